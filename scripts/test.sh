#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (as root): installs what is
# missing, starts PostgreSQL, checks formatting and lints, and runs every test
# on SQLite and on PostgreSQL. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup.sh
scripts/postgres.sh

# Databases left by earlier runs of the suite.
psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc \
  "select 'DROP DATABASE IF EXISTS ' || quote_ident(datname) || ';' from pg_database where datname like 'hf_test_%'" \
  | psql -q "postgres://postgres@127.0.0.1:5432/postgres" >/dev/null

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (SQLite and PostgreSQL)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line over every test binary: `N passed, N failed`.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
