{
  description = "Hyperfleet: management plane for libvirt/KVM hypervisor fleets";

  # The workspace needs Rust >= 1.94 (edition 2024): an unstable nixpkgs.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      hyperfleet = pkgs.callPackage ./nix/package.nix { };
      vmTest = args: pkgs.testers.runNixOSTest (import ./nix/tests/vm.nix ({ module = self.nixosModules.default; } // args));
    in
    {
      packages.${system} = {
        inherit hyperfleet;
        default = hyperfleet;
      };

      devShells.${system}.default = pkgs.mkShell {
        inputsFrom = [ hyperfleet ];
        packages = with pkgs; [ cargo rustc clippy rustfmt postgresql libvirt qemu_kvm nix systemd ];
      };

      # Its package defaults to nix/package.nix built with the system's nixpkgs.
      nixosModules.default = import ./nix/module.nix;

      # `nix flake check` boots them (needs KVM); the offline suite only parses
      # and evaluates them (scripts/nix-checks.sh).
      checks.${system} = {
        vm-sqlite = vmTest { database = "sqlite"; };
        vm-postgres = vmTest { database = "postgres"; };
      };
    };
}
