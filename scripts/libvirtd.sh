#!/usr/bin/env bash
# Starts (or stops) a real libvirt daemon with the QEMU driver for the
# end-to-end tests, on a Debian (bookworm) machine running as root *without*
# systemd (no service manager starts libvirtd for us).
#
#   scripts/libvirtd.sh start    install what is missing, start virtlogd + libvirtd,
#                                wait until `virsh -c qemu:///system version` answers
#   scripts/libvirtd.sh stop     stop only the daemons `start` started
#   scripts/libvirtd.sh status   exit 0 when qemu:///system answers
#
# Exit codes: 0 ok, 1 failure, 2 usage, 3 real QEMU unavailable (the caller
# decides whether to skip its real-QEMU tests).
#
# Guests run under TCG (`<domain type='qemu'>`); /dev/kvm is not needed. No
# libvirt network is defined or started: the test domains have no NIC.
set -euo pipefail

URI=qemu:///system
STATE=/run/hyperfleet-libvirtd.started
QEMU_BIN=/usr/bin/qemu-system-x86_64
LOG_DIR=/var/log/libvirt
WAIT_SECS=30
# The Debian build of libvirt runs guests as user and group `libvirt-qemu`
# (compiled-in default; /etc/libvirt/qemu.conf only comes with
# libvirt-daemon-system, which we do not install).
QEMU_USER=libvirt-qemu
QEMU_GROUP=libvirt-qemu

log() { echo "libvirtd.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
skip() { echo "REAL-QEMU TESTS SKIPPED: $*" >&2; exit 3; }

answers() { virsh -c "$URI" version >/dev/null 2>&1; }

# PIDs of processes whose command name is exactly $1 (no procps needed).
pids_named() {
  local f pid
  for f in /proc/[0-9]*/comm; do
    [ "$(cat "$f" 2>/dev/null)" = "$1" ] || continue
    pid=${f#/proc/}; echo "${pid%/comm}"
  done
}

alive_as() { [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

install_packages() {
  local libvirt_pkgs=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
  local qemu_pkgs=(qemu-system-x86 qemu-utils)
  local missing=() p
  for p in "${libvirt_pkgs[@]}" "${qemu_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || skip "packages missing (${missing[*]}) and no apt-get"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || log "apt-get update failed (trying the install anyway)"
    # Recommends are not needed (and would pull in lxc/xen/vbox drivers, lvm2, ...).
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || log "apt-get install ${missing[*]} failed"
    # Installing Debian's qemu-system-x86 can remove a newer qemu-utils (from
    # backports) it conflicts with: install what went missing, at Debian's version.
    missing=()
    for p in "${qemu_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
      log "installing ${missing[*]} (removed by the first install)"
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || log "apt-get install ${missing[*]} failed"
    fi
  fi
  command -v qemu-img >/dev/null || skip "qemu-img is missing and qemu-utils could not be installed"
  [ -x "$QEMU_BIN" ] || skip "$QEMU_BIN is missing and qemu-system-x86 could not be installed"
  for p in "${libvirt_pkgs[@]}"; do
    installed "$p" || skip "package $p is missing and could not be installed"
  done
  command -v libvirtd >/dev/null && command -v virtlogd >/dev/null \
    || skip "libvirtd/virtlogd not found after installing libvirt-daemon"
}

# What the Debian packages' maintainer scripts and service units would
# normally provide. The daemon creates most of its own state directories when
# it starts as root, but the users and groups must exist beforehand.
prepare_system() {
  getent group kvm >/dev/null || groupadd --system kvm
  getent group "$QEMU_GROUP" >/dev/null || groupadd --system "$QEMU_GROUP"
  if ! getent passwd "$QEMU_USER" >/dev/null; then
    useradd --system --gid kvm --groups "$QEMU_GROUP" --home-dir /var/lib/libvirt \
      --no-create-home --shell /usr/sbin/nologin --comment "Libvirt Qemu" "$QEMU_USER"
  fi

  # No KVM is needed (guests use TCG), but when /dev/kvm exists libvirt's
  # capability probe sees KVM while the guest user cannot open the device
  # (Debian's udev rule normally makes it root:kvm 0660; without udev it is
  # root:root 0600). libvirt then treats its cached capabilities as outdated
  # and re-probes QEMU on every define/start (~3.5 s each). Give the device the
  # ownership udev would.
  if [ -c /dev/kvm ]; then chgrp kvm /dev/kvm && chmod g+rw /dev/kvm || log "cannot chgrp/chmod /dev/kvm"; fi

  install -d -m 0755 /run/libvirt /var/lib/libvirt /var/cache/libvirt /etc/libvirt
  install -d -m 0700 /etc/libvirt/qemu
  install -d -m 0755 "$LOG_DIR"
  install -d -m 0750 "$LOG_DIR/qemu"
  install -d -m 0711 /var/lib/libvirt/images
  install -d -m 0751 -o "$QEMU_USER" -g "$QEMU_GROUP" /var/lib/libvirt/qemu
  install -d -m 0750 -o "$QEMU_USER" -g "$QEMU_GROUP" /var/cache/libvirt/qemu
}

# libvirtd double-forks every QEMU, so a guest's process is reparented to the
# nearest "child subreaper", normally PID 1. Without a real init PID 1 may reap
# orphans lazily, and libvirt (which polls kill(pid, 0), true for a zombie)
# then needs ~2 s to destroy a guest. So libvirtd runs under a tiny reaper:
# a perl-base process that is a subreaper, reaps every exited descendant at
# once and ends itself when it has no children left (libvirtd and guests gone).
REAPER='$0 = "hf-reaper";
  syscall(157, 36, 1, 0, 0, 0) == 0 or warn "prctl(PR_SET_CHILD_SUBREAPER): $!\n";
  defined(my $pid = fork) or die "fork: $!\n";
  if ($pid == 0) { exec @ARGV or die "exec $ARGV[0]: $!\n" }
  while ((my $p = waitpid(-1, 0)) > 0) {
    warn "$ARGV[-4] -d exited with status $?\n" if $p == $pid && $?;
  }'

# Starts daemon $1 (virtlogd / libvirtd) unless one runs; records it in $STATE.
start_daemon() {
  local name=$1 pidfile=/run/$1.pid pid reaper=
  if [ -n "$(pids_named "$name")" ]; then
    log "$name already running (not started by this script; left alone)"
    return 0
  fi
  log "starting $name"
  rm -f "$pidfile"
  # Clean environment: the daemon passes PATH etc. on to every QEMU it runs.
  local cmd=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    "LIBVIRT_LOG_OUTPUTS=3:file:$LOG_DIR/$name.log" "$name" -d -p "$pidfile")
  if [ "$name" = libvirtd ] && [ "$(uname -m)" = x86_64 ] && command -v perl >/dev/null; then
    setsid perl -e "$REAPER" -- "${cmd[@]}" </dev/null >/dev/null 2>>"$LOG_DIR/reaper.log" &
    reaper=yes
  else
    "${cmd[@]}" || die "$name -d failed (see $LOG_DIR/$name.log)"
  fi
  for _ in $(seq 1 50); do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && alive_as "$pid" "$name" && break
    pid=; sleep 0.1
  done
  if [ -z "$pid" ]; then
    tail -n 20 "$LOG_DIR/$name.log" "$LOG_DIR/reaper.log" >&2 2>/dev/null || true
    die "$name did not start"
  fi
  if [ -n "$reaper" ]; then  # the daemonized libvirtd was adopted by the reaper
    reaper=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")
    if alive_as "$reaper" hf-reaper; then echo "hf-reaper $reaper" >>"$STATE"
    else log "warning: libvirtd (pid $pid) is not a child of the reaper"; fi
  fi
  echo "$name $pid" >>"$STATE"
}

start() {
  if answers; then log "$URI already answers"; exit 0; fi
  [ "$(id -u)" = 0 ] || die "must run as root"
  install_packages
  prepare_system
  start_daemon virtlogd
  start_daemon libvirtd
  for _ in $(seq 1 $((WAIT_SECS * 5))); do
    if answers; then log "$URI answers"; return 0; fi
    sleep 0.2
  done
  tail -n 30 "$LOG_DIR/libvirtd.log" >&2 2>/dev/null || true
  virsh -c "$URI" version >&2 || true
  die "$URI does not answer after ${WAIT_SECS}s"
}

stop_pid() {
  local name=$1 pid=$2
  alive_as "$pid" "$name" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do alive_as "$pid" "$name" || return 0; sleep 0.1; done
  log "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# Stops, in reverse order, what `start` recorded. Guests (qemu processes) are
# not touched: libvirtd re-attaches to them when it starts again. The reaper
# ends by itself once libvirtd and all guests it adopted are gone.
stop() {
  [ -f "$STATE" ] || { log "nothing started by this script"; return 0; }
  local name pid
  tac "$STATE" | while read -r name pid; do
    [ -n "$pid" ] || continue
    if [ "$name" = hf-reaper ]; then
      for _ in $(seq 1 20); do alive_as "$pid" "$name" || break; sleep 0.1; done
      if alive_as "$pid" "$name"; then log "reaper (pid $pid) stays while guests still run"; fi
    else
      stop_pid "$name" "$pid"
    fi
  done
  rm -f "$STATE"
}

status() {
  if answers; then
    virsh -c "$URI" version
    [ -f "$STATE" ] && { echo "started by this script:"; cat "$STATE"; }
    return 0
  fi
  echo "$URI does not answer" >&2
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
