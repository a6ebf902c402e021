"""The nix/ checks that run without nixpkgs: every .nix file parses
(`nix-instantiate --parse`), and nix/tests/eval.nix evaluates (the module
against a stand-in for nixpkgs, `--eval --strict --json`); then the units
the module produces pass `systemd-analyze verify` and stay under the exposure
bounds of examples/systemd, the config build step (`check-config` on the
generated TOML with placeholder secrets) succeeds with the hyperfleet under
test, the generated file itself is accepted, secrets given inline are refused,
and the VM test's script is valid Python. Prints `nix: N passed, M failed`.

Usage: check.py HYPERFLEET_BIN   (from the repository's root)
"""

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib

# Highest exposure allowed x10 (as tests/api/units.rs): the strict set for the
# API, scheduler and migrations; the worker (and `up`, which runs one) needs
# libvirt's socket, /dev/kvm and /proc.
BOUNDS = {
    "hyperfleet-api.service": 15,
    "hyperfleet-scheduler.service": 15,
    "hyperfleet-migrate.service": 15,
    "hyperfleet-worker.service": 20,
    "hyperfleet.service": 20,
}
ROLE_UNITS = {
    "all-in-one": {"hyperfleet.service"},
    "split": {f"hyperfleet-{r}.service" for r in ("api", "worker", "scheduler", "migrate")},
}
CASE_ROLE = {"all-in-one": "all-in-one", "split": "split", "vm-sqlite": "all-in-one", "vm-postgres": "split"}
CASE_PORTS = {"split": [8443]}
# What each refusal must name.
REJECTED = {
    "inline-webhook-secret": "alerts.channels[0].secret",
    "inline-slack-url": "alerts.channels[0].url",
    "inline-smtp-password": "alerts.channels[0].password",
    "password-in-database-url": "database.url",
    "inline-audit-key": "audit.key",
    "environment-file-in-store": "environmentFile is in the Nix store",
    "unknown-role": "refused by an option type",
}

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}".rstrip())


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    return p.returncode, (p.stdout + p.stderr).strip()


def check_case(case, report, binary, tmp):
    units = report["units"]
    role = CASE_ROLE[case]
    check(f"{case}: units", set(units) == ROLE_UNITS[role], sorted(units))
    check(f"{case}: firewall", report["ports"] == CASE_PORTS.get(case, []), report["ports"])
    user = report["user"]
    check(f"{case}: static system user in libvirtd",
          user.get("isSystemUser") is True and "libvirtd" in user.get("extraGroups", []), user)
    check(f"{case}: libvirtd enabled", report["libvirtd"] is True, report["libvirtd"])

    for name, text in units.items():
        lines = text.splitlines()
        command = {"hyperfleet.service": "up"}.get(name, name.removeprefix("hyperfleet-").removesuffix(".service"))
        check(f"{case}: {name} runs `hyperfleet {command}`", f"ExecStart=@PKG@/bin/hyperfleet {command}" in lines)
        if role == "split" and name != "hyperfleet-migrate.service":
            after = next((line for line in lines if line.startswith("After=")), "")
            check(f"{case}: {name} requires and follows the migrations",
                  "Requires=hyperfleet-migrate.service" in lines and "hyperfleet-migrate.service" in after.split("=", 1)[1].split(),
                  lines)
    if role == "split":
        migrate = units.get("hyperfleet-migrate.service", "").splitlines()
        check(f"{case}: migrations are a one-shot", "Type=oneshot" in migrate and "RemainAfterExit=true" in migrate, migrate)

    udir = os.path.join(tmp, case)
    os.makedirs(udir)
    for name, text in units.items():
        # The stand-in package's path; verify checks that the binary exists.
        with open(os.path.join(udir, name), "w") as f:
            f.write(text.replace("@PKG@/bin/hyperfleet", binary))
    for name in sorted(units):
        rc, said = run(["systemd-analyze", "verify", "--man=no", f"./{name}"], cwd=udir)
        check(f"{case}: systemd-analyze verify {name}", rc == 0 and not said, said)
        bound = BOUNDS[name]
        rc, said = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={bound}", f"./{name}"], cwd=udir)
        overall = said.splitlines()[-1] if said else ""
        score = re.search(r"level for \S+: ([0-9.]+)", overall)
        check(f"{case}: {name} exposure {score.group(1) if score else '?'} <= {bound / 10}", rc == 0, overall)

    # The module's build step as written, with the hyperfleet under test.
    out = os.path.join(udir, "hyperfleet.toml")
    env = dict(os.environ, PATH=os.path.dirname(binary) + ":" + os.environ["PATH"], out=out, RUST_BACKTRACE="0")
    rc, said = run(["bash", "-euo", "pipefail", "-c", report["build"]], env=env)
    check(f"{case}: build step (check-config with placeholder secrets)", rc == 0 and os.path.exists(out), said)
    if os.path.exists(out):
        # The secret files live elsewhere here: the same text, other paths.
        with open(out) as f:
            text = f.read()
        for i, (path, value) in enumerate(sorted(report["files"].items())):
            copy = os.path.join(udir, f"secret-{i}")
            with open(copy, "w") as f:
                f.write(value)
            text = text.replace(json.dumps(path), json.dumps(copy))
        generated = os.path.join(udir, "generated.toml")
        with open(generated, "w") as f:
            f.write(text)
        env = dict(os.environ, HYPERFLEET_CONFIG=generated, RUST_BACKTRACE="0", **report["env"])
        rc, said = run([binary, "check-config"], env=env)
        check(f"{case}: check-config accepts the generated file", rc == 0, said)


def nix_files():
    for top, dirs, files in os.walk("."):
        dirs[:] = [d for d in dirs if d not in ("target", ".git", "node_modules") and not d.startswith(".")]
        yield from sorted(os.path.join(top, f)[2:] for f in files if f.endswith(".nix"))


def main():
    binary = os.path.abspath(sys.argv[1])
    for path in nix_files():
        rc, said = run(["nix-instantiate", "--parse", path])
        check(f"parses: {path}", rc == 0, said)
    rc, said = run(["nix-instantiate", "--read-write-mode", "--eval", "--strict", "--json", "nix/tests/eval.nix"])
    check("nix/tests/eval.nix evaluates", rc == 0, said)
    if rc != 0:
        print(f"nix: {passed} passed, {failed} failed")
        sys.exit(1)
    result = json.loads(said.splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        for case, report in sorted(result["cases"].items()):
            check_case(case, report, binary, tmp)
    for case, needle in REJECTED.items():
        said = result["rejected"].get(case, [])
        check(f"refused: {case}", any(needle in m for m in said), said)
    pkg = result["package"]
    with open("Cargo.toml", "rb") as f:
        version = tomllib.load(f)["workspace"]["package"]["version"]
    check("package: version from Cargo.toml", pkg["version"] == version, pkg["version"])
    check("package: tests off, built from Cargo.lock with pkg-config and libvirt",
          pkg["doCheck"] is False and pkg["lockFile"] and "pkg-config" in pkg["nativeBuildInputs"]
          and pkg["buildInputs"] == ["libvirt"], pkg)
    keeps = {"core": True, "src": True, "migrations": True, "target": False, "nix": False, ".git": False}
    check("package: source filter", pkg["keeps"] == keeps, pkg["keeps"])
    check("disabled: adds nothing", result["disabled"] == {}, result["disabled"])
    for db, test in sorted(result["vm"].items()):
        try:
            ast.parse(test["testScript"])
            check(f"vm test {test['name']}: script parses", True)
        except SyntaxError as e:
            check(f"vm test {test['name']}: script parses", False, e)
    print(f"nix: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
