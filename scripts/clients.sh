#!/usr/bin/env bash
# Generates three OpenAPI clients from the committed spec
# (openapi/hyperfleet.json), builds them, and runs one scenario with each
# against a real Hyperfleet server (SQLite + libvirt's test:///default driver
# on a free loopback port, in a temporary directory):
#
#   python      openapi-python-client      clients/python/scenario.py
#   rust        progenitor (build.rs)      clients/rust/src/main.rs
#   typescript  openapi-typescript + openapi-fetch, tsc --strict, node
#
# Scenario: list VMs and find `test`; shut it down if running, else start it;
# poll the operation to `succeeded` (30 s at most); print its attempts.
#
# Needs Rust, Python 3 with venv + pip, Node 20 + npm; reaches only the
# package registries. The server binary is $HYPERFLEET_BIN (default
# target/debug/hyperfleet); this script does not build it.
# Prints `client NAME: ok|FAILED (...)` per client, then
# `clients: N passed, M failed`; exits non-zero if any client failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# HYPERFLEET_SPEC overrides the spec (e.g. to try a draft); default: the committed one.
SPEC=${HYPERFLEET_SPEC:-openapi/hyperfleet.json}
case $SPEC in /*) ;; *) SPEC=$ROOT/$SPEC ;; esac
[[ -f $SPEC ]] || { echo "clients.sh: no spec at $SPEC" >&2; exit 2; }
export HYPERFLEET_SPEC=$SPEC  # read by clients/rust/build.rs

BIN=${HYPERFLEET_BIN:-target/debug/hyperfleet}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
if [[ ! -x $BIN ]]; then
  echo "clients.sh: no Hyperfleet binary at $BIN (build it, or set HYPERFLEET_BIN)" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hyperfleet-clients.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

declare -A PREPARED=()  # client -> "" when ready, else the reason it is not
log() { echo "== $*"; }
# step NAME LOGFILE CMD...: runs CMD with its output in LOGFILE; on failure
# shows the log's tail and returns 1.
step() {
  local name=$1 logfile=$2; shift 2
  local t0=$SECONDS
  if "$@" >"$logfile" 2>&1; then
    log "$name ($((SECONDS - t0)) s)"
  else
    log "$name FAILED ($((SECONDS - t0)) s); its output (first and last lines):"
    if (($(wc -l <"$logfile") > 40)); then
      { head -n 20 "$logfile"; echo "..."; tail -n 15 "$logfile"; } | cut -c1-300 | sed 's/^/   | /'
    else
      cut -c1-300 "$logfile" | sed 's/^/   | /'
    fi
    return 1
  fi
}

# ---- generate and build (each client on its own: one failing does not stop the others)

prepare_python() {
  local venv=clients/python/.venv
  local pip=("$venv/bin/python" -m pip)
  if [[ ! -x $venv/bin/python ]]; then
    # Debian without python3-venv has no ensurepip: then a pip-less venv,
    # filled by the system pip (--python needs pip >= 22.3).
    if ! python3 -m venv "$venv" >"$WORK/py-venv.log" 2>&1; then
      rm -rf "$venv"
      step "python: venv (without pip)" "$WORK/py-venv.log" python3 -m venv --without-pip "$venv" || return 1
    fi
  fi
  if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    pip=(python3 -m pip --python "$venv/bin/python")
  fi
  step "python: pip install (openapi-python-client)" "$WORK/py-pip.log" \
    "${pip[@]}" install --disable-pip-version-check -q -r clients/python/requirements.txt || return 1
  # ruff (a pinned dependency) formats the output; it must be on PATH.
  step "python: generate" "$WORK/py-gen.log" \
    env PATH="$ROOT/$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
      --path "$SPEC" --meta none --fail-on-warning --overwrite \
      --output-path clients/python/generated/hyperfleet_client || return 1
  step "python: import check" "$WORK/py-check.log" \
    env PYTHONPATH=clients/python/generated "$venv/bin/python" -c \
      'import ast, sys; ast.parse(open("clients/python/scenario.py").read()); import hyperfleet_client.api.vms.vm_list, hyperfleet_client.api.operations.operation_get' || return 1
}

prepare_rust() {
  # build.rs runs progenitor::Generator on the spec (rerun when it changes).
  step "rust: cargo build (progenitor)" "$WORK/rs-build.log" \
    cargo build --locked --manifest-path clients/rust/Cargo.toml || return 1
}

prepare_typescript() {
  local dir=clients/typescript
  step "typescript: npm ci" "$WORK/ts-npm.log" \
    npm ci --prefix "$dir" --no-audit --no-fund || return 1
  rm -rf "$dir/generated" "$dir/dist"
  step "typescript: generate (openapi-typescript)" "$WORK/ts-gen.log" \
    "$dir/node_modules/.bin/openapi-typescript" "$SPEC" -o "$dir/generated/hyperfleet.d.ts" || return 1
  step "typescript: tsc --noEmit (strict)" "$WORK/ts-check.log" \
    npm run --prefix "$dir" -s check || return 1
  step "typescript: tsc" "$WORK/ts-build.log" npm run --prefix "$dir" -s build || return 1
}

for client in python rust typescript; do
  if "prepare_$client"; then PREPARED[$client]=""; else PREPARED[$client]="generate/build failed"; fi
done

# ---- server

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export HYPERFLEET_URL=http://127.0.0.1:$PORT
mkdir -p "$WORK/server"
server_env=(env -u HYPERFLEET_CONFIG -u HYPERFLEET__DATABASE__URL
  HYPERFLEET__WORKER__LIBVIRT_URI=test:///default HYPERFLEET__API__LISTEN=127.0.0.1:$PORT)
(cd "$WORK/server" && exec "${server_env[@]}" "$BIN" up >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
ready=
for _ in $(seq 150); do
  if python3 - "$HYPERFLEET_URL/readyz" <<'EOF' 2>/dev/null; then ready=1; break; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
EOF
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.2
done
if [[ -z $ready ]]; then
  log "server did not become ready on $HYPERFLEET_URL; its log:"
  tail -n 40 "$WORK/server.log" | sed 's/^/   | /'
  for client in python rust typescript; do echo "client $client: FAILED (no server)"; done
  echo "clients: 0 passed, 3 failed"
  exit 1
fi
log "server up on $HYPERFLEET_URL (pid $SERVER_PID, $BIN)"

# Without a token command the server ignores the token; still send a
# well-formed `Authorization: Bearer ...` header.
HYPERFLEET_TOKEN=no-token-command
if (cd "$WORK/server" && "${server_env[@]}" "$BIN" help token) >/dev/null 2>&1; then
  HYPERFLEET_TOKEN=$(cd "$WORK/server" && "${server_env[@]}" "$BIN" token create --name clients --role operator 2>"$WORK/token.log") || {
    log "token create FAILED:"; sed 's/^/   | /' "$WORK/token.log"; exit 1; }
  log "operator token created"
else
  log "this hyperfleet has no \`token\` command: running without a token"
fi
export HYPERFLEET_TOKEN

# ---- scenarios, one after another

run_python() {
  PYTHONPATH=clients/python/generated clients/python/.venv/bin/python clients/python/scenario.py
}
run_rust() { clients/rust/target/debug/hyperfleet-client-scenario; }
run_typescript() { node clients/typescript/dist/scenario.js; }

passed=0 failed=0 scenario_failed=0
results=()
for client in python rust typescript; do
  if [[ -n ${PREPARED[$client]} ]]; then
    results+=("client $client: FAILED (${PREPARED[$client]})"); failed=$((failed + 1)); continue
  fi
  log "$client scenario"
  t0=$SECONDS
  if "run_$client" 2>&1 | sed "s/^/   $client | /"; then
    log "$client scenario passed ($((SECONDS - t0)) s)"
    results+=("client $client: ok"); passed=$((passed + 1))
  else
    results+=("client $client: FAILED (scenario)"); failed=$((failed + 1)); scenario_failed=1
  fi
done

if ((scenario_failed)); then
  log "server log (last lines):"
  tail -n 20 "$WORK/server.log" | sed 's/^/   | /'
fi
printf '%s\n' "${results[@]}"
echo "clients: $passed passed, $failed failed"
((failed == 0))
