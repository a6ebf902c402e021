#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 for user `postgres` without a
# password (what the test suite uses: loopback only, one database per test).
set -euo pipefail

pg_ok() { psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; }
pg_ok && exit 0

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ]; then
  echo "postgres: no PostgreSQL cluster found (scripts/setup.sh installs one)" >&2
  exit 1
fi
if ! pg_lsclusters -h 2>/dev/null | awk '{print $4}' | grep -q online; then
  echo "postgres: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 50); do pg_ok && exit 0; pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
pg_ok && exit 0

# Reachable but refusing a password-less login: allow it for loopback only.
hba="/etc/postgresql/$version/main/pg_hba.conf"
if ! grep -q "hyperfleet-tests" "$hba"; then
  echo "postgres: allowing password-less loopback logins for user postgres (tests)"
  sed -i '1i host all postgres 127.0.0.1/32 trust # hyperfleet-tests\nhost all postgres ::1/128 trust # hyperfleet-tests' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
for _ in $(seq 1 50); do pg_ok && exit 0; sleep 0.2; done
echo "postgres: PostgreSQL does not answer on 127.0.0.1:5432" >&2
exit 1
