#!/usr/bin/env bash
# Hyperfleet's queue beside graphile-worker on the same PostgreSQL, in one run:
# each drains the same number of pre-inserted no-op jobs at the same
# concurrency, for several rounds; prints each round, the medians, and
# Hyperfleet's ratio to each peer.
#
#   scripts/bench-peers.sh [--ops N] [--concurrency C] [--rounds R]
#
# Peers: graphile-worker 0.18 (latest 0.18.x, from npm into a temporary
# directory) with its defaults, and with batching on (a local queue of
# concurrency + 1 and batched completion, its documented settings).
# Hyperfleet: `hyperfleet bench --mode drain` (keeps every operation and
# attempt row; graphile-worker deletes finished jobs). Each run gets a fresh
# database. Needs Node 20 + npm and a PostgreSQL that accepts
# $HYPERFLEET_BENCH_PG (default postgres://postgres@127.0.0.1:5432) without a
# password; the binary is $HYPERFLEET_BIN (default target/release/hyperfleet).
# Not yet here: plain apalis-postgres/apalis-sqlite and the raw SQLite cycle.
set -euo pipefail
cd "$(dirname "$0")/.."

ops=20000 concurrency=16 rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --ops) ops=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--ops N] [--concurrency C] [--rounds R]" >&2; exit 2 ;;
  esac
done
PG=${HYPERFLEET_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BIN=${HYPERFLEET_BIN:-target/release/hyperfleet}
[ -x "$BIN" ] || { echo "bench-peers: no binary at $BIN (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/hyperfleet-peers.XXXXXX")
db=hf_bench_peers_$$
cleanup() {
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || :
  rm -rf "$work"
}
trap cleanup EXIT

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

fresh_db() {
  PGOPTIONS=--client-min-messages=warning psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
  psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
}
hyperfleet_drain() {
  fresh_db
  "$BIN" bench --database "$PG/$db" --mode drain --ops "$ops" --concurrency "$concurrency" --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ops_per_sec"], 1))'
}
graphile_drain() {
  fresh_db
  (cd "$work" && GRAPHILE_LOGGER_DEBUG=0 node drain.js "$PG/$db" "$ops" "$concurrency" "$1" 2>/dev/null | tail -n 1)
}

declare -A figures=()
for round in $(seq "$rounds"); do
  h=$(hyperfleet_drain); g=$(graphile_drain off); b=$(graphile_drain on)
  echo "round $round: hyperfleet $h/s, graphile-worker $g/s, graphile-worker batching $b/s"
  figures[h]+="$h " figures[g]+="$g " figures[b]+="$b "
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
h=$(median "${figures[h]}") g=$(median "${figures[g]}") b=$(median "${figures[b]}")
echo "median of $rounds rounds, $ops jobs, concurrency $concurrency, one PostgreSQL:"
echo "  hyperfleet drain (full ledger)      $h/s"
echo "  graphile-worker 0.18 default        $g/s   hyperfleet ×$(python3 -c "print(round($h/$g, 2))")"
echo "  graphile-worker 0.18 batching on    $b/s   hyperfleet ×$(python3 -c "print(round($h/$b, 2))")"
