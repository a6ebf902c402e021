# The module evaluated offline against nix/tests/standin.nix (no nixpkgs), for
# scripts/nix-checks.sh: `nix-instantiate --eval --strict --json` prints, per
# case, the unit files, the build step that checks the config, the firewall
# ports and the user; and, per rejected case, what the module said.
let
  standin = import ./standin.nix { package = { outPath = "@PKG@"; }; };
  module = import ../module.nix;
  vmTest = database: import ./vm.nix { inherit module database; };

  # The machine's services.hyperfleet in the VM test, as the stand-in sees it.
  vmNode = database: ((vmTest database).nodes.machine { config = { }; inherit (standin) lib pkgs; }).services.hyperfleet;

  failed = config: map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);

  report = cfg: { env ? { }, files ? { } }:
    let config = standin.evalModule module cfg;
    in
    if failed config != [ ] then throw (builtins.concatStringsSep "\n" (failed config))
    else {
      units = builtins.listToAttrs (map
        (n: { name = "${n}.service"; value = standin.renderUnit config.systemd.services.${n}; })
        (builtins.attrNames config.systemd.services));
      build = config.environment.etc."hyperfleet/hyperfleet.toml".source.script;
      ports = config.networking.firewall.allowedTCPPorts;
      user = config.users.users.hyperfleet;
      libvirtd = config.virtualisation.libvirtd.enable;
      # Values for the `{ env = … }` and `{ file = … }` secrets, to check the generated file itself.
      inherit env files;
    };

  channels = [
    { name = "chat"; type = "slack"; min_severity = "warning"; url = { env = "HYPERFLEET_SLACK_URL"; }; }
    { name = "hooks"; type = "webhook"; url = { env = "HYPERFLEET_HOOK_URL"; }; secret = { file = "/run/secrets/hook-secret"; }; }
  ];
in
{
  cases = {
    all-in-one = report { enable = true; } { };
    split = report
      {
        enable = true;
        role = "split";
        openFirewall = true;
        environmentFile = "/run/secrets/hyperfleet.env";
        settings = {
          api.listen = "0.0.0.0:8443";
          database.url = "postgres://hyperfleet@localhost/hyperfleet";
          alerts.channels = channels;
          health.disk_free_pct = { warn = 20.0; error = 10.0; clear = 25.0; for_s = 600; };
        };
      }
      {
        env = { HYPERFLEET_SLACK_URL = "https://hooks.slack.invalid/x"; HYPERFLEET_HOOK_URL = "https://hook.invalid/"; };
        files."/run/secrets/hook-secret" = "s3cret";
      };
    vm-sqlite = report (vmNode "sqlite") { };
    vm-postgres = report (vmNode "postgres") { };
  };

  # Each must be refused: what the module said (empty if it accepted it).
  rejected =
    let
      said = cfg:
        let
          config = standin.evalModule module cfg;
          r = builtins.tryEval (builtins.deepSeq config (failed config));
        in if r.success then r.value else [ "refused by an option type" ];
    in
    {
      inline-webhook-secret = said {
        enable = true;
        settings.alerts.channels = [ { name = "h"; type = "webhook"; url = { env = "U"; }; secret = "s3cret"; } ];
      };
      inline-slack-url = said {
        enable = true;
        settings.alerts.channels = [ { name = "c"; type = "slack"; url = "https://hooks.slack.com/services/T/B/x"; } ];
      };
      inline-smtp-password = said {
        enable = true;
        settings.alerts.channels = [ { name = "m"; type = "email"; smtp_host = "h"; from = "a@b.c"; to = [ "a@b.c" ]; password = "pw"; } ];
      };
      password-in-database-url = said { enable = true; settings.database.url = "postgres://hf:pw@db/hf"; };
      inline-audit-key = said { enable = true; settings.audit.key = "k"; };
      environment-file-in-store = said { enable = true; environmentFile = "${builtins.storeDir}/x-env"; };
      unknown-role = said { enable = true; role = "both"; };
    };

  # The VM test's scripts (Python, parsed by the checks) and names.
  vm = builtins.listToAttrs (map
    (d: { name = d; value = { inherit (vmTest d) name testScript; }; })
    [ "sqlite" "postgres" ]);

  # nix/package.nix's arguments to buildRustPackage, and what its source filter keeps.
  package =
    let
      p = import ../package.nix {
        lib = standin.lib // {
          cleanSourceWith = args: args;
          licenses.asl20 = "Apache-2.0";
          platforms.linux = [ "x86_64-linux" ];
        };
        rustPlatform.buildRustPackage = args: args;
        pkg-config = "pkg-config";
        cmake = "cmake";
        libvirt = "libvirt";
      };
    in
    {
      inherit (p) pname version doCheck nativeBuildInputs buildInputs cargoBuildFlags;
      lockFile = builtins.pathExists p.cargoLock.lockFile && baseNameOf p.cargoLock.lockFile == "Cargo.lock";
      keeps = builtins.listToAttrs (map
        (path: { name = path; value = p.src.filter (toString ../.. + "/${path}") "directory"; })
        [ "core" "src" "migrations" "target" "nix" ".git" ]);
    };

  # Disabled, the module adds nothing.
  disabled = standin.evalModule module { };
}
