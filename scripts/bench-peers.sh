#!/usr/bin/env bash
# Hyperfleet's queue beside its peers, in one run: each drains the same number
# of pre-inserted no-op jobs at the same concurrency, for several rounds;
# prints each round, the medians, and Hyperfleet's ratio to each peer.
#
#   scripts/bench-peers.sh [--ops N] [--concurrency C] [--rounds R]
#                          [--sqlite-ops N] [--only postgres|sqlite]
#
# PostgreSQL (--ops jobs, one PostgreSQL, a fresh database for each run):
# graphile-worker 0.18 (latest 0.18.x, from npm into a temporary directory)
# with its defaults, and with batching on (a local queue of concurrency + 1
# and batched completion, its documented settings); plain apalis-postgres
# 1.0.0 (its migrations, its default Config, one apalis worker limited to the
# concurrency, timed to the last job `Done` in its table).
# SQLite (--sqlite-ops jobs, default 5000, a fresh file for each run):
# Hyperfleet's ledger on SQLite (WAL, synchronous FULL); plain apalis-sqlite
# 1.0.0 at its defaults (its `setup` sets synchronous OFF, but on one pooled
# connection only: the peer prints on stderr what each connection had); the
# raw limit of a SQLite queue on one connection in WAL mode (claim, attempt
# row, finish: three transactions per job), synchronous FULL and NORMAL.
# Hyperfleet: `hyperfleet bench --mode drain` (keeps every operation and
# attempt row; graphile-worker deletes finished jobs). The apalis and raw
# SQLite peers are `hyperfleet-bench-peers` (bench/peers, a Cargo workspace
# of its own, built here once with --locked). Needs Node 20 + npm (for the
# PostgreSQL part) and a PostgreSQL that accepts $HYPERFLEET_BENCH_PG
# (default postgres://postgres@127.0.0.1:5432) without a password, where it
# creates and drops the database $HYPERFLEET_BENCH_DB (default
# hf_bench_peers_<pid>); the binary is $HYPERFLEET_BIN (default
# target/release/hyperfleet).
set -euo pipefail
cd "$(dirname "$0")/.."

ops=20000 concurrency=16 rounds=3 sqlite_ops=5000 only=
usage="usage: $0 [--ops N] [--concurrency C] [--rounds R] [--sqlite-ops N] [--only postgres|sqlite]"
while [ $# -gt 0 ]; do
  case $1 in
    --ops) ops=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --sqlite-ops) sqlite_ops=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case $only in "" | postgres | sqlite) ;; *) echo "$usage" >&2; exit 2 ;; esac
PG=${HYPERFLEET_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BIN=${HYPERFLEET_BIN:-target/release/hyperfleet}
[ -x "$BIN" ] || { echo "bench-peers: no binary at $BIN (cargo build --release)" >&2; exit 2; }

echo "== hyperfleet-bench-peers from bench/peers" >&2
cargo build --release --locked --manifest-path bench/peers/Cargo.toml >&2
PEERS=${CARGO_TARGET_DIR:-bench/peers/target}/release/hyperfleet-bench-peers

work=$(mktemp -d "${TMPDIR:-/tmp}/hyperfleet-peers.XXXXXX")
db=${HYPERFLEET_BENCH_DB:-hf_bench_peers_$$}
cleanup() {
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || :
  rm -rf "$work"
}
trap cleanup EXIT

fresh_db() {
  PGOPTIONS=--client-min-messages=warning psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
  psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
}
hyperfleet_drain() {
  fresh_db
  "$BIN" bench --database "$PG/$db" --mode drain --ops "$ops" --concurrency "$concurrency" --idle-samples 0 --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ops_per_sec"], 1))'
}
# The same number of operations submitted one by one through the submit path
# (concurrency submitters) while the worker runs them: submit + run per second.
hyperfleet_submit() {
  fresh_db
  "$BIN" bench --database "$PG/$db" --mode submit --ops "$ops" --concurrency "$concurrency" --idle-samples 0 --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ops_per_sec"], 1))'
}
graphile_drain() {
  fresh_db
  (cd "$work" && GRAPHILE_LOGGER_DEBUG=0 node drain.js "$PG/$db" "$ops" "$concurrency" "$1" 2>/dev/null | tail -n 1)
}
apalis_postgres_drain() {
  fresh_db
  "$PEERS" apalis-postgres --url "$PG/$db" --ops "$ops" --concurrency "$concurrency"
}

# The SQLite runs, each on a fresh file in $work.
fresh_file() {
  rm -f "$work/$1.db" "$work/$1.db-wal" "$work/$1.db-shm"
  echo "$work/$1.db"
}
hyperfleet_sqlite_drain() {
  "$BIN" bench --database "sqlite://$(fresh_file hyperfleet)" --mode drain --ops "$sqlite_ops" \
    --concurrency "$concurrency" --idle-samples 0 --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ops_per_sec"], 1))'
}
apalis_sqlite_drain() {
  "$PEERS" apalis-sqlite --path "$(fresh_file apalis)" --ops "$sqlite_ops" --concurrency "$concurrency"
}
raw_sqlite() {
  "$PEERS" raw-sqlite --path "$(fresh_file "raw-$1")" --ops "$sqlite_ops" --synchronous "$1"
}

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { python3 -c "print(round($1/$2, 2))"; }
declare -A figures=()

if [ "$only" != sqlite ]; then
  echo "== graphile-worker 0.18 from npm into $work" >&2
  (cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund graphile-worker@0.18 >/dev/null)
  echo "graphile-worker $(node -p "require('$work/node_modules/graphile-worker/package.json').version")" >&2

  # Drains $ops pre-inserted no-op jobs and prints jobs per second: from the
  # worker's start to the last job's success, as graphile-worker reports them.
  cat > "$work/drain.js" <<'JS'
const { run, runMigrations, makeWorkerUtils, Logger } = require("graphile-worker");
const logger = new Logger(() => () => {}); // no line per job
const [connectionString, ops, concurrency, batching] = [process.argv[2], +process.argv[3], +process.argv[4], process.argv[5] === "on"];
(async () => {
  await runMigrations({ connectionString, logger });
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.withPgClient((c) => c.query("SELECT graphile_worker.add_job('noop', '{}'::json) FROM generate_series(1, $1)", [ops]));
  await utils.release();
  const worker = batching
    ? { localQueue: { size: concurrency + 1 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
    : {};
  let done = 0, started = 0, finished;
  const allDone = new Promise((resolve) => { finished = resolve; });
  const runner = await run({
    connectionString, concurrency, noHandleSignals: true, pollInterval: 1000, logger,
    taskList: { noop: async () => {} }, preset: { worker },
  });
  started = process.hrtime.bigint();
  runner.events.on("job:success", () => { if (++done === ops) finished(); });
  await allDone;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await runner.stop();
  console.log((ops / seconds).toFixed(1));
})().catch((e) => { console.error(e); process.exit(1); });
JS

  for round in $(seq "$rounds"); do
    h=$(hyperfleet_drain); g=$(graphile_drain off); b=$(graphile_drain on); a=$(apalis_postgres_drain)
    u=$(hyperfleet_submit)
    echo "round $round: hyperfleet $h/s, graphile-worker $g/s, graphile-worker batching $b/s, apalis-postgres $a/s, hyperfleet submit+run $u/s"
    figures[h]+="$h " figures[g]+="$g " figures[b]+="$b " figures[a]+="$a " figures[u]+="$u "
  done
  h=$(median "${figures[h]}") g=$(median "${figures[g]}") b=$(median "${figures[b]}") a=$(median "${figures[a]}")
  u=$(median "${figures[u]}")
  echo "median of $rounds rounds, $ops jobs, concurrency $concurrency, one PostgreSQL:"
  echo "  hyperfleet drain (full ledger)      $h/s"
  echo "  hyperfleet submit + run             $u/s   ×$(ratio "$u" "$g") of graphile-worker's default drain"
  echo "  graphile-worker 0.18 default        $g/s   hyperfleet ×$(ratio "$h" "$g")"
  echo "  graphile-worker 0.18 batching on    $b/s   hyperfleet ×$(ratio "$h" "$b")"
  echo "  apalis-postgres 1.0.0 defaults      $a/s   hyperfleet ×$(ratio "$h" "$a")"
fi

if [ "$only" != postgres ]; then
  for round in $(seq "$rounds"); do
    s=$(hyperfleet_sqlite_drain); a=$(apalis_sqlite_drain); f=$(raw_sqlite full); n=$(raw_sqlite normal)
    echo "sqlite round $round: hyperfleet $s/s, apalis-sqlite $a/s, raw FULL $f/s, raw NORMAL $n/s"
    figures[s]+="$s " figures[as]+="$a " figures[f]+="$f " figures[n]+="$n "
  done
  s=$(median "${figures[s]}") a=$(median "${figures[as]}") f=$(median "${figures[f]}") n=$(median "${figures[n]}")
  echo "median of $rounds rounds, $sqlite_ops jobs, concurrency $concurrency, SQLite files on one disk:"
  echo "  hyperfleet drain (full ledger, FULL)  $s/s"
  echo "  apalis-sqlite 1.0.0 defaults          $a/s   hyperfleet ×$(ratio "$s" "$a")"
  echo "  raw cycle, one connection, FULL       $f/s   hyperfleet ×$(ratio "$s" "$f")"
  echo "  raw cycle, one connection, NORMAL     $n/s   hyperfleet ×$(ratio "$s" "$n")"
fi
