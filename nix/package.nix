# The hyperfleet binary, built from the workspace's Cargo.lock. The test suite
# is not run here: it needs PostgreSQL, libvirtd and QEMU (scripts/test.sh and
# the VM test in nix/tests/vm.nix cover it).
{ lib, rustPlatform, pkg-config, cmake, libvirt }:

rustPlatform.buildRustPackage {
  pname = "hyperfleet";
  version = (builtins.fromTOML (builtins.readFile ../Cargo.toml)).workspace.package.version;

  src = lib.cleanSourceWith {
    src = ../.;
    # Build inputs only: a change to the nix files or the docs does not rebuild.
    filter = path: type:
      let base = baseNameOf path;
      in !(builtins.elem base [ "target" "nix" "flake.nix" "flake.lock" ".git" ]);
  };

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [ "--package" "hyperfleet" ];

  # cmake for aws-lc-sys (a rustls back end) should it not use its cc builder;
  # it must not take over the configure phase.
  nativeBuildInputs = [ pkg-config cmake ];
  dontUseCmakeConfigure = true;
  buildInputs = [ libvirt ];

  doCheck = false;

  meta = {
    description = "Management plane for libvirt/KVM hypervisor fleets";
    license = lib.licenses.asl20;
    mainProgram = "hyperfleet";
    platforms = lib.platforms.linux;
  };
}
