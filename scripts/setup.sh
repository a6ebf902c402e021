#!/usr/bin/env bash
# Installs what Hyperfleet needs to build and test on a Debian machine (as root).
# Idempotent: installs only what is missing.
set -euo pipefail

need_pkgs=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# chromium + chromium-driver: the dashboard's real-browser tests (headless, over WebDriver).
for p in pkg-config libvirt-dev libvirt-clients gcc curl ca-certificates postgresql postgresql-client python3-venv systemd \
  chromium chromium-driver; do
  have "$p" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: no Rust toolchain found; install one with rustup (Rust >= 1.94)" >&2
    exit 1
  fi
fi
