# services.hyperfleet: the config file generated from `settings` (checked at
# build time by `hyperfleet check-config`), secrets from `environmentFile`
# only, and either one `hyperfleet up` unit or the split api / worker /
# scheduler units behind a one-shot migrate unit. The hardening is that of
# examples/systemd/ (the units for Debian hosts).
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.hyperfleet;
  hardening = import ./hardening.nix;
  secrets = import ./secrets.nix;
  toml = pkgs.formats.toml { };

  stateDir = "/var/lib/hyperfleet";
  settings = lib.recursiveUpdate {
    data_dir = stateDir;
    database.url = "sqlite://${stateDir}/hyperfleet.db";
  } cfg.settings;

  configFile = toml.generate "hyperfleet.toml" settings;
  # check-config reads channel secrets; the build sees placeholders instead.
  checkFile = toml.generate "hyperfleet-check.toml" (secrets.placeholders settings);
  checkedConfig = pkgs.runCommand "hyperfleet.toml" { nativeBuildInputs = [ cfg.package ]; } ''
    hyperfleet --config ${checkFile} check-config > /dev/null
    cp ${configFile} $out
  '';

  listen = settings.api.listen or "127.0.0.1:8080";
  port = lib.toInt (builtins.head (builtins.match ".*:([0-9]+)" listen));

  # What every unit shares: the user, the config, the secrets.
  unit = { description, command, serviceConfig, extraUnit ? { } }: lib.recursiveUpdate {
    inherit description;
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    environment.HYPERFLEET_CONFIG = "${checkedConfig}";
    serviceConfig = {
      ExecStart = "${cfg.package}/bin/hyperfleet ${command}";
      User = "hyperfleet";
      Group = "hyperfleet";
      StateDirectory = "hyperfleet";
      StateDirectoryMode = "0700";
      UMask = "0077";
    } // lib.optionalAttrs (cfg.environmentFile != null) {
      EnvironmentFile = cfg.environmentFile;
    } // serviceConfig;
  } extraUnit;

  daemon = {
    Type = "exec";
    Restart = "on-failure";
    RestartSec = "2s";
  };
  # PostgreSQL, should it run on this machine: start after it and after the
  # roles and databases it ensures (postgresql-setup.service in recent
  # nixpkgs). Units that do not exist here are ignored.
  postgres = lib.hasPrefix "postgres" settings.database.url;
  withDb = lib.optional postgres "postgresql.service";
  afterDb = withDb ++ lib.optional postgres "postgresql-setup.service";
  afterMigrate = {
    after = [ "network-online.target" "hyperfleet-migrate.service" ];
    requires = [ "hyperfleet-migrate.service" ];
    wantedBy = [ "multi-user.target" ];
  };
  # The worker: libvirt's socket (group libvirtd), /dev/kvm, /proc.
  worker = hardening.worker // {
    SupplementaryGroups = [ "libvirtd" ];
    # Running operations get worker.shutdown_grace_s to finish.
    TimeoutStopSec = "60s";
  };

  allInOne = {
    hyperfleet = unit {
      description = "Hyperfleet (API, worker and scheduler)";
      command = "up";
      serviceConfig = daemon // worker;
      extraUnit = {
        after = [ "network-online.target" "libvirtd.service" ] ++ afterDb;
        wants = [ "network-online.target" "libvirtd.service" ] ++ withDb;
        wantedBy = [ "multi-user.target" ];
      };
    };
  };

  split = {
    hyperfleet-migrate = unit {
      description = "Hyperfleet database migrations";
      command = "migrate";
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; } // hardening.strict;
      extraUnit = {
        after = [ "network-online.target" ] ++ afterDb;
        wants = [ "network-online.target" ] ++ withDb;
      };
    };
    hyperfleet-api = unit {
      description = "Hyperfleet API (OpenAPI server)";
      command = "api";
      serviceConfig = daemon // hardening.strict;
      extraUnit = afterMigrate;
    };
    hyperfleet-scheduler = unit {
      description = "Hyperfleet scheduler";
      command = "scheduler";
      serviceConfig = daemon // hardening.strict;
      extraUnit = afterMigrate;
    };
    hyperfleet-worker = unit {
      description = "Hyperfleet worker (operations on this hypervisor host)";
      command = "worker";
      serviceConfig = daemon // worker;
      extraUnit = afterMigrate // {
        after = afterMigrate.after ++ [ "libvirtd.service" ];
        wants = [ "network-online.target" "libvirtd.service" ];
      };
    };
  };
in
{
  options.services.hyperfleet = {
    enable = mkEnableOption "Hyperfleet, the management plane for libvirt/KVM fleets";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      description = "The hyperfleet package.";
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      description = ''
        hyperfleet.toml (see examples/hyperfleet.toml). data_dir defaults to
        /var/lib/hyperfleet and the database to SQLite there. Secrets never go
        here (this ends up in the Nix store): give channel secrets as
        { env = "VAR"; } or { file = "/path"; } and a PostgreSQL password as
        HYPERFLEET__DATABASE__URL in environmentFile.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/hyperfleet.env";
      description = "VAR=value lines read by every unit (secrets; outside the Nix store).";
    };

    role = mkOption {
      type = types.enum [ "all-in-one" "split" ];
      default = "all-in-one";
      description = ''
        all-in-one: one hyperfleet.service running `hyperfleet up`. split:
        hyperfleet-api, hyperfleet-worker and hyperfleet-scheduler, each
        hardened for its role, after a one-shot hyperfleet-migrate.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open api.listen's port in the firewall.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = secrets.inline settings == [ ];
        message = "services.hyperfleet.settings holds secrets inline (they would be world-readable in the Nix store): "
          + builtins.concatStringsSep ", " (secrets.inline settings)
          + ". Use { env = \"VAR\"; } with environmentFile, or { file = \"/path\"; }.";
      }
      {
        assertion = cfg.environmentFile == null || !(lib.hasPrefix builtins.storeDir cfg.environmentFile);
        message = "services.hyperfleet.environmentFile is in the Nix store, which anyone can read.";
      }
    ];

    # The worker drives this host's libvirtd (the `libvirtd` group comes with it).
    virtualisation.libvirtd.enable = lib.mkDefault true;

    users.users.hyperfleet = {
      isSystemUser = true;
      group = "hyperfleet";
      # polkit and libvirt read group membership from the user database:
      # a static user, not DynamicUser.
      extraGroups = [ "libvirtd" ];
      home = stateDir;
    };
    users.groups.hyperfleet = { };

    # The same file the units read, for `hyperfleet token create` and friends.
    environment.etc."hyperfleet/hyperfleet.toml".source = checkedConfig;
    environment.systemPackages = [ cfg.package ];

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall port;

    systemd.services = if cfg.role == "split" then split else allInOne;
  };
}
