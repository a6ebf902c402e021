//! The systemd units in `examples/systemd/` as systemd itself reads them:
//! `systemd-analyze verify` finds nothing, and the exposure score of each
//! stays under the bound written here (lower is safer; 10 is unconfined).

use std::path::Path;

/// (unit, highest exposure allowed ×10): the API, scheduler and migrations get
/// the strict set; the worker needs libvirt's socket, /dev/kvm and /proc.
const UNITS: [(&str, u32); 4] = [
    ("hyperfleet-api.service", 15),
    ("hyperfleet-scheduler.service", 15),
    ("hyperfleet-migrate.service", 15),
    ("hyperfleet-worker.service", 20),
];

fn analyze(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("systemd-analyze (Debian's `systemd` package; scripts/setup.sh installs it)")
}

#[test]
fn the_example_units_verify_and_stay_confined() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd");
    let dir = tempfile::tempdir().unwrap();
    for (unit, _) in UNITS {
        // The units name the installed binary; verify checks that it exists.
        let text = std::fs::read_to_string(source.join(unit)).unwrap();
        let text = text.replace("/usr/local/bin/hyperfleet", env!("CARGO_BIN_EXE_hyperfleet"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    for (unit, bound) in UNITS {
        let path = format!("./{unit}");
        let out = analyze(dir.path(), &["verify", "--man=no", &path]);
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.trim().is_empty(), "{unit}: {said}");
        let threshold = format!("--threshold={bound}");
        let out = analyze(dir.path(), &["security", "--offline=yes", &threshold, &path]);
        let report = String::from_utf8_lossy(&out.stdout);
        let overall = report.lines().last().unwrap_or_default();
        assert!(out.status.success(), "{unit} is less confined than {}: {overall}", f64::from(bound) / 10.0);
    }
}
