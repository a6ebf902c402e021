# Secrets in services.hyperfleet.settings. The settings become a file in the
# Nix store, readable by every user of the machine, so a secret must be a
# reference ({ env = "VAR"; } or { file = "/path"; }), never a value.
let
  isRef = v: builtins.isAttrs v && (v ? env || v ? file);
  channelSecrets = [ "url" ]; # a Slack, Discord or Teams URL is a credential
  anywhere = [ "password" "secret" "token" ];
  # postgres://user:password@host/db
  hasPassword = url: builtins.isString url && builtins.match "[a-z]+://[^/@:]*:[^/@]+@.*" url != null;

  # Dotted paths of the strings under `v` whose key is in `names`.
  walk = names: path: v:
    let
      child = n: if path == "" then n else "${path}.${n}";
    in
    if builtins.isAttrs v then
      builtins.concatLists (map
        (n:
          if builtins.elem n names && builtins.isString v.${n} then [ (child n) ]
          else walk names (child n) v.${n})
        (builtins.attrNames v))
    else if builtins.isList v then
      builtins.concatLists (builtins.genList (i: walk names "${path}[${toString i}]" (builtins.elemAt v i)) (builtins.length v))
    else [ ];

  channels = s: (s.alerts or { }).channels or [ ];
in
{
  # The paths of secrets given inline; empty when there are none.
  inline = s:
    walk anywhere "" s
    ++ walk channelSecrets "alerts.channels" (channels s)
    ++ (if builtins.isString ((s.audit or { }).key or null) then [ "audit.key" ] else [ ])
    ++ (if hasPassword ((s.database or { }).url or null) then [ "database.url (a password in the URL)" ] else [ ]);

  # The settings with every channel secret reference replaced by a placeholder
  # value of the right shape: `check-config` reads them, the build cannot.
  placeholders = s:
    if channels s == [ ] then s
    else s // {
      alerts = s.alerts // {
        channels = map
          (c: builtins.mapAttrs (n: v: if isRef v then (if n == "url" then "https://placeholder.invalid/" else "placeholder") else v) c)
          (channels s);
      };
    };
}
