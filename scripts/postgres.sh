#!/usr/bin/env bash
# The PostgreSQL server the test suite creates its databases on.
#
#   scripts/postgres.sh start   prints the admin URL the tests use (export it as
#                               HYPERFLEET_TEST_PG); messages go to stderr
#   scripts/postgres.sh stop    stops the throwaway cluster, if `start` started one
#
# An existing server is used only if it already accepts the suite's
# password-less login as `postgres` on 127.0.0.1:5432; its configuration is
# never touched. Otherwise the suite runs a throwaway cluster of its own: its
# data under target/pg-test (ignored by git, 0700), its own port on loopback,
# and a random password for `postgres` over TCP (trust only on its own socket,
# inside that 0700 directory), so other local users cannot borrow a superuser.
# Run as root, the cluster belongs to the `postgres` user (initdb refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."

shared=postgres://postgres@127.0.0.1:5432
own=$PWD/target/pg-test

log() { echo "postgres.sh: $*" >&2; }
answers() { psql "$1/postgres" -Atqc 'select 1' >/dev/null 2>&1; }

# The newest server binaries: Debian's versioned directories, else PATH.
server_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$bin" ] && [ -x "$bin/pg_ctl" ]; then echo "$bin"; return; fi
  bin=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
  [ -x "$bin/pg_ctl" ] || { log "no PostgreSQL server binaries (initdb, pg_ctl); scripts/setup.sh installs them"; exit 1; }
  echo "$bin"
}

# Runs a server tool as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

own_url() { echo "postgres://postgres:$(cat "$own/password")@127.0.0.1:$(cat "$own/port")"; }

running() { [ -f "$own/port" ] && as_owner "$(server_bin)/pg_ctl" -D "$own/data" status >/dev/null 2>&1; }

start() {
  if answers "$shared"; then
    echo "$shared"
    return
  fi
  local bin
  bin=$(server_bin)
  if running && answers "$(own_url)"; then
    own_url
    return
  fi
  if [ ! -f "$own/data/PG_VERSION" ]; then
    log "127.0.0.1:5432 does not take the suite's password-less login; creating a throwaway cluster in $own"
    rm -rf "$own"
    mkdir -p "$own"
    chmod 0700 "$own"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$own"
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(24))' >"$own/password")
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$own/password"
    as_owner "$bin/initdb" -D "$own/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$own/password" --no-sync >"$own/initdb.log" 2>&1 || { cat "$own/initdb.log" >&2; exit 1; }
  fi
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$own/port"
  local opts="-p $(cat "$own/port") -k $own -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
  as_owner "$bin/pg_ctl" -D "$own/data" -o "$opts" -l "$own/server.log" -w start >/dev/null \
    || { tail -20 "$own/server.log" >&2; exit 1; }
  answers "$(own_url)" || { log "the throwaway cluster does not answer on $(own_url)"; exit 1; }
  log "throwaway cluster up on 127.0.0.1:$(cat "$own/port")"
  own_url
}

stop() {
  if running; then
    as_owner "$(server_bin)/pg_ctl" -D "$own/data" -m fast -w stop >/dev/null
    log "throwaway cluster stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/postgres.sh start|stop" >&2; exit 2 ;;
esac
