# The sandbox of each role, as in examples/systemd/ (checked by the same
# `systemd-analyze security` bounds). `strict`: the API, scheduler and
# migrations. `worker`: what it needs beyond that — libvirt's socket,
# /dev/kvm and /proc (/proc/meminfo, /proc/loadavg) for the health checks.
let
  common = {
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    RemoveIPC = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
  };
in
{
  strict = common // {
    PrivateDevices = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    PrivateUsers = true;
  };
  worker = common // {
    DevicePolicy = "closed";
    DeviceAllow = [ "/dev/kvm rw" ];
  };
}
