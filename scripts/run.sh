#!/usr/bin/env bash
# Runs Hyperfleet all-in-one on a fresh Debian machine (as root): SQLite in
# ./hyperfleet-data and libvirt's built-in test driver (no libvirt daemon
# needed). Extra arguments go to `hyperfleet up`.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup.sh
cargo build --release --locked --bin hyperfleet
export HYPERFLEET__WORKER__LIBVIRT_URI="${HYPERFLEET__WORKER__LIBVIRT_URI:-test:///default}"
exec ./target/release/hyperfleet up "$@"
