# A NixOS VM test (pkgs.testers.runNixOSTest; the flake's checks.vm-sqlite and
# checks.vm-postgres): one machine with libvirtd and the module enabled boots,
# the test gets an admin token, defines a small diskless QEMU guest and shuts
# it down through the API. SQLite runs the all-in-one role; PostgreSQL (over
# its Unix socket, peer authentication) runs the split units.
# It needs KVM to boot the machine; the offline suite only evaluates it.
{ module, database ? "sqlite" }:

let
  postgres = database == "postgres";
  role = if postgres then "split" else "all-in-one";
  apiUnit = if postgres then "hyperfleet-api.service" else "hyperfleet.service";
  virsh = "virsh -c qemu:///system";
  vm = "hf-vm-test";

  # `up` creates the first admin token and prints it on standard output (the
  # journal); the split units do not, so the test makes one with the CLI.
  getToken =
    if postgres then ''
      machine.wait_for_unit("hyperfleet-migrate.service")
      token = machine.succeed(
          "runuser -u hyperfleet -- hyperfleet --config /etc/hyperfleet/hyperfleet.toml"
          " token create --name vm-test --role admin"
      ).strip()
    '' else ''
      token = machine.wait_until_succeeds(
          "journalctl -u hyperfleet.service -o cat | sed -n 's/^Admin token[^:]*: //p' | grep .",
          timeout=60,
      ).strip()
    '';
in
{
  name = "hyperfleet-${database}";

  nodes.machine = { pkgs, lib, ... }: {
    imports = [ module ];

    virtualisation.memorySize = 2048;
    virtualisation.libvirtd.enable = true;
    environment.systemPackages = [ pkgs.curl pkgs.jq pkgs.libvirt ];

    services.hyperfleet = {
      enable = true;
      inherit role;
      settings = {
        worker.inventory_interval_s = 2;
        # Nested guests may have no /dev/kvm: TCG, and a warning, not an error.
        health.emulation_only = true;
      } // lib.optionalAttrs postgres {
        database.url = "postgres://hyperfleet@localhost/hyperfleet?host=/run/postgresql";
      };
    };

    services.postgresql = lib.mkIf postgres {
      enable = true;
      ensureDatabases = [ "hyperfleet" ];
      ensureUsers = [ { name = "hyperfleet"; ensureDBOwnership = true; } ];
    };
  };

  testScript = ''
    import json

    machine.wait_for_unit("libvirtd.service")
    machine.wait_for_unit("${apiUnit}")
    machine.wait_for_open_port(8080)
    ${getToken}
    auth = f"-H 'Authorization: Bearer {token}'"

    # A diskless guest: it never answers ACPI, so the shutdown is forced.
    machine.succeed("""cat > /tmp/${vm}.xml <<'EOF'
    <domain type='qemu'>
      <name>${vm}</name>
      <memory unit='MiB'>64</memory>
      <vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <features><acpi/></features>
      <on_poweroff>destroy</on_poweroff>
      <devices>
        <emulator>/run/libvirt/nix-emulators/qemu-system-x86_64</emulator>
        <memballoon model='none'/>
      </devices>
    </domain>
    EOF""")
    machine.succeed("${virsh} define /tmp/${vm}.xml && ${virsh} start ${vm}")

    machine.wait_until_succeeds(
        f"curl -sf {auth} localhost:8080/api/v1/vms | jq -e '.. | objects | select(.name? == \"${vm}\")'",
        timeout=120,
    )
    headers = machine.succeed(
        f"curl -sf -D - -o /dev/null {auth} -H 'content-type: application/json'"
        " -X POST -d '{\"timeout_s\": 5, \"force\": true}' localhost:8080/api/v1/vms/${vm}/shutdown"
    )
    location = next(
        line.split(":", 1)[1].strip() for line in headers.splitlines() if line.lower().startswith("location:")
    )
    machine.wait_until_succeeds(
        f"curl -sf {auth} localhost:8080{location} | jq -e '.status == \"succeeded\"'", timeout=120
    )
    print(json.dumps(json.loads(machine.succeed(f"curl -sf {auth} localhost:8080{location}")), indent=2))
    machine.succeed("${virsh} domstate ${vm} | grep -q 'shut off'")
  '';
}
