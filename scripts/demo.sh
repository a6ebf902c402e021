#!/usr/bin/env bash
# Runs Hyperfleet all-in-one against a real libvirtd with QEMU (TCG, no KVM
# needed) and two tiny bootable VMs, so that backups are real: libvirt's test
# driver has no disks. On a Debian machine, as root:
#
#   scripts/demo.sh          start libvirtd (scripts/libvirtd.sh), define the VMs
#                            demo-web (started) and demo-db (shut off), run `hyperfleet up`
#   scripts/demo.sh clean    destroy and undefine the two VMs, remove the demo's files
#
# Each VM's 4 MiB disk boots the boot sector of src/boot_sector.rs, which
# prints `HYPERFLEET-BOOT-OK demo-<name>-<nonce>` on its serial console (the
# default `backups.boot_marker` matches it). Everything lives in $DEMO_DIR
# (default /var/lib/hyperfleet-demo: libvirt's QEMU user must reach it). The
# libvirt daemon stays up afterwards; `scripts/libvirtd.sh stop` stops it.
# HYPERFLEET_BIN runs an already built binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."

URI=qemu:///system
DEMO_DIR=${DEMO_DIR:-/var/lib/hyperfleet-demo}
VMS=(demo-web demo-db)
# src/boot_sector.rs: CODE_HEX (the code before the 55 aa signature at offset 510).
BOOT_HEX=fa31c08ed88ec08ed0bc007cb80102bb007eb9020030f6cd13be3e7ce80f00be007ee80900b00ae80f00faf4ebfcac84c07405e80300ebf6c3baf803eec34859504552464c4545542d424f4f542d4f4b20

log() { echo "demo.sh: $*" >&2; }

clean() {
  local vm
  for vm in "${VMS[@]}"; do
    if virsh -c "$URI" dominfo "$vm" >/dev/null 2>&1; then
      # Only the demo's own domains, marked in their metadata.
      if virsh -c "$URI" dumpxml "$vm" | grep 'hyperfleet.dev/demo' >/dev/null; then
        virsh -c "$URI" destroy "$vm" >/dev/null 2>&1 || true
        virsh -c "$URI" undefine "$vm" >/dev/null
        log "removed $vm"
      else
        log "leaving $vm alone: not a demo domain"
      fi
    fi
  done
  rm -rf "$DEMO_DIR"
}

# $1: the disk; $2: the text the guest prints after the marker.
make_disk() {
  truncate -s 4M "$1"
  printf "$(sed 's/../\\x&/g' <<<"$BOOT_HEX")" | dd of="$1" conv=notrunc status=none
  printf '\x55\xaa' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
  printf '%s' "$2" | dd of="$1" bs=1 seek=512 conv=notrunc status=none
}

define_vm() {
  local vm=$1 disk="$DEMO_DIR/disks/$1.raw"
  if virsh -c "$URI" dominfo "$vm" >/dev/null 2>&1; then
    log "$vm is already defined"
    return
  fi
  make_disk "$disk" "$vm-$(date +%s)"
  cat >"$DEMO_DIR/disks/$vm.xml" <<EOF
<domain type='qemu'>
  <name>$vm</name>
  <metadata><hf:demo xmlns:hf="https://hyperfleet.dev/demo"/></metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'><source path='$DEMO_DIR/disks/$vm.console'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
  virsh -c "$URI" define "$DEMO_DIR/disks/$vm.xml" >/dev/null
  log "defined $vm (disk $disk)"
}

case "${1:-start}" in
  clean)
    clean
    exit 0
    ;;
  start) ;;
  *)
    echo "usage: scripts/demo.sh [start|clean]" >&2
    exit 2
    ;;
esac

. scripts/setup.sh
scripts/libvirtd.sh start
mkdir -p "$DEMO_DIR/disks" "$DEMO_DIR/data" "$DEMO_DIR/backups"
chmod 0755 "$DEMO_DIR" "$DEMO_DIR/disks" "$DEMO_DIR/backups"
for vm in "${VMS[@]}"; do
  define_vm "$vm"
done
if [ "$(virsh -c "$URI" domstate demo-web)" != running ]; then
  virsh -c "$URI" start demo-web >/dev/null
fi
log "demo-web runs, demo-db is shut off; its console: $DEMO_DIR/disks/demo-web.console"

BIN=${HYPERFLEET_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --locked --bin hyperfleet
  BIN=./target/release/hyperfleet
fi
export HYPERFLEET__WORKER__LIBVIRT_URI=$URI
export HYPERFLEET__DATA_DIR="$DEMO_DIR/data"
export HYPERFLEET__BACKUPS__DIR="$DEMO_DIR/backups"
exec "$BIN" up "$@"
