#!/usr/bin/env bash
# Destroys and undefines the libvirt domains the test suite itself defined and
# an interrupted run left behind: only domains whose <metadata> carries the
# suite's marker (tests/fixtures/qemu-domain.xml), whatever their names. A
# hypervisor's own domains are never touched, even one named like a test's.
#
#   scripts/test-domains.sh [URI]     (default qemu:///system)
set -euo pipefail

uri=${1:-qemu:///system}
marker=https://hyperfleet.dev/test

# Whether the domain's XML holds <metadata><x:test xmlns:x="$marker"/></metadata>.
ours() {
  virsh -c "$uri" dumpxml "$1" </dev/null 2>/dev/null | python3 -c '
import sys, xml.etree.ElementTree as ET
try:
    root = ET.fromstring(sys.stdin.read())
except ET.ParseError:
    sys.exit(1)
sys.exit(0 if root.find("metadata/{%s}test" % sys.argv[1]) is not None else 1)' "$marker"
}

mapfile -t domains < <(virsh -c "$uri" list --all --name)
for vm in "${domains[@]}"; do
  [ -n "$vm" ] || continue
  ours "$vm" || continue
  echo "test-domains.sh: removing $vm, left by an earlier test run" >&2
  virsh -c "$uri" destroy "$vm" </dev/null >/dev/null 2>&1 || :
  virsh -c "$uri" undefine "$vm" </dev/null >/dev/null
done
