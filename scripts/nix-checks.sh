#!/usr/bin/env bash
# The nix/ checks that run offline (see README.md, "NixOS"): parse every .nix
# file, evaluate the module for each role against a stand-in for nixpkgs, and
# check the units and the config it produces with systemd-analyze and
# `hyperfleet check-config` ($HYPERFLEET_BIN, default target/debug/hyperfleet).
# Installs Debian's nix-bin when missing; if it cannot, says so loudly and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HYPERFLEET_BIN:-target/debug/hyperfleet}

if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "nix-checks: installing nix-bin"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null; }; } || :
fi
if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "##############################################################" >&2
  echo "## NIX CHECKS SKIPPED: nix-instantiate (nix-bin) unavailable ##" >&2
  echo "##############################################################" >&2
  echo "nix: 0 passed, 1 failed"
  exit 1
fi
# Debian's nix.conf names a build-users group that evaluation does not need.
export NIX_CONFIG="build-users-group ="
exec python3 nix/tests/check.py "$bin"
