# A small stand-in for the parts of nixpkgs the module uses, so that it can be
# evaluated without nixpkgs (offline): lib's option functions and types, a few
# helpers, pkgs.formats.toml, runCommand and callPackage, and a renderer of
# systemd units. It is not nixpkgs: option merging is "the user's value or the
# default", the TOML writer and the unit renderer are this file's own. What
# it checks is the module's logic and the units and TOML it produces.
{ package }:

let
  concat = builtins.concatStringsSep;

  option = check: { inherit check; };

  # TOML with every table inline: one `key = value` line per top-level key.
  tomlKey = builtins.toJSON;
  tomlValue = v:
    if builtins.isAttrs v then "{ " + concat ", " (map (n: "${tomlKey n} = ${tomlValue v.${n}}") (builtins.attrNames v)) + " }"
    else if builtins.isList v then "[ " + concat ", " (map tomlValue v) + " ]"
    else if builtins.isFloat v then toString v
    else if builtins.isInt v then toString v
    else if builtins.isBool v || builtins.isString v then builtins.toJSON v
    else throw "TOML cannot hold ${builtins.typeOf v}";
  toToml = attrs: concat "" (map (n: "${tomlKey n} = ${tomlValue attrs.${n}}\n") (builtins.attrNames attrs));

  lib = rec {
    mkOption = { type, default ? null, ... }: { _type = "option"; inherit type default; };
    mkEnableOption = _: mkOption { type = types.bool; default = false; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkDefault = v: v;
    types = {
      bool = option builtins.isBool;
      str = option builtins.isString;
      package = option (v: builtins.isAttrs v && v ? outPath);
      attrs = option builtins.isAttrs;
      nullOr = t: option (v: v == null || t.check v);
      enum = values: option (v: builtins.elem v values);
    };

    recursiveUpdate = a: b:
      a // builtins.mapAttrs
        (n: v: if a ? ${n} && builtins.isAttrs a.${n} && builtins.isAttrs v then recursiveUpdate a.${n} v else v)
        b;
    optional = c: x: if c then [ x ] else [ ];
    optionalAttrs = c: x: if c then x else { };
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    toInt = s: builtins.fromJSON s;
  };

  pkgs = {
    formats.toml = { }: {
      type = lib.types.attrs;
      # A real file (builtins.toFile), so the build step below can run as written.
      generate = name: value: builtins.toFile name (toToml value);
    };
    # The build step's script, for the checks to run with the hyperfleet under test.
    runCommand = name: env: script: { outPath = "/nix/store/standin-${name}"; inherit name script; };
    callPackage = _: _: package;
  };

  # A unit file from a NixOS `systemd.services.<name>` value (the keys the module uses).
  ini = v: if builtins.isBool v then (if v then "true" else "false") else toString v;
  lines = key: v: map (x: "${key}=${ini x}\n") (if builtins.isList v then v else [ v ]);
  joined = key: attrs: name: if attrs ? ${name} then [ "${key}=${concat " " attrs.${name}}\n" ] else [ ];
  renderUnit = s: concat "" (
    [ "[Unit]\n" "Description=${s.description}\n" ]
    ++ joined "After" s "after" ++ joined "Wants" s "wants" ++ joined "Requires" s "requires"
    ++ [ "\n[Service]\n" ]
    ++ map (n: "Environment=\"${n}=${s.environment.${n}}\"\n") (builtins.attrNames (s.environment or { }))
    ++ builtins.concatLists (map (n: lines n s.serviceConfig.${n}) (builtins.attrNames s.serviceConfig))
    ++ (if s ? wantedBy then [ "\n[Install]\n" ] ++ joined "WantedBy" s "wantedBy" else [ ])
  );

  # mkIf resolved, recursively.
  push = v:
    if builtins.isAttrs v && (v._type or null) == "if" then (if v.condition then push v.content else { })
    else if builtins.isAttrs v && !(v ? outPath) then builtins.mapAttrs (_: push) v
    else v;

  # The module with `cfg` as services.hyperfleet: its config, mkIf resolved.
  evalModule = module: cfg:
    let
      options = (module { config = { }; inherit lib pkgs; }).options.services.hyperfleet;
      values = builtins.mapAttrs
        (n: o:
          let v = cfg.${n} or o.default;
          in if o.type.check v then v else throw "services.hyperfleet.${n}: invalid value ${builtins.toJSON v}")
        options;
      unknown = builtins.filter (n: !(options ? ${n})) (builtins.attrNames cfg);
    in
    if unknown != [ ] then throw "unknown options: ${concat ", " unknown}"
    else push (module { config.services.hyperfleet = values; inherit lib pkgs; }).config;
in
{
  inherit lib pkgs renderUnit evalModule;
}
