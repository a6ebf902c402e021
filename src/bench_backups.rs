//! `hyperfleet bench-backups`: the worker's own backup code on a 1 GiB qcow2
//! disk of incompressible data — an offline backup (`qemu-img convert`,
//! fsync, sha256 of every file, manifest) and a checksum verification —
//! beside `cp` and `sha256sum` of the same file in the same run, and the boot
//! test's time to marker on a real libvirt. The disk boots (its first
//! sectors are [`crate::boot_sector`]). Not a test: it prints figures.
//! Every figure is taken with the source in the page cache (`cp` reads it
//! first), as a nightly backup of a busy host would not be; compare the
//! ratio, not the absolute numbers.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use hyperfleet_core::backup::{
    BackupMethod, Manifest, ManifestDisk, VerifyLevel, VerifyResult, Versions, boot_marker, sha256_hex,
};
use hyperfleet_worker::backup::{
    boot::{BootOptions, boot_test},
    files,
    tools::Tools,
    verify,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct BackupBenchArgs {
    /// Where the scratch directory goes (libvirt's QEMU user must reach it for the boot test).
    pub dir: PathBuf,
    pub size_mib: u64,
    pub libvirt_uri: String,
    /// Skip the boot test (no libvirt here).
    pub no_boot: bool,
}

#[derive(Debug, Serialize)]
pub struct BackupBenchReport {
    pub disk_bytes: u64,
    pub cp_mb_s: f64,
    pub sha256sum_mb_s: f64,
    /// `cp` then `sha256sum`, one after the other: the yardstick.
    pub cp_then_sha256sum_mb_s: f64,
    /// `qemu-img convert` + fsync + sha256 of every file + manifest.
    pub backup_mb_s: f64,
    pub checksum_verify_mb_s: f64,
    /// Backup then checksum verification, one after the other.
    pub backup_then_verify_mb_s: f64,
    /// `backup_then_verify_mb_s / cp_then_sha256sum_mb_s` (goal ≥ 0.8).
    pub ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_marker_after_ms: Option<u64>,
    /// The whole boot test: overlays, domain start, marker, teardown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_test_total_ms: Option<f64>,
}

fn mb_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

pub async fn run(args: BackupBenchArgs) -> anyhow::Result<BackupBenchReport> {
    let root = args.dir.join(format!("hf-bench-backups-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let result = measure(&args, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn measure(args: &BackupBenchArgs, root: &Path) -> anyhow::Result<BackupBenchReport> {
    let tools = Tools { uri: args.libvirt_uri.clone(), timeout: Duration::from_secs(3600) };
    let nonce = format!("nonce-{}", ulid::Ulid::new().to_string().to_lowercase());
    let source = root.join("source.qcow2");
    make_disk(&tools, root, &source, args.size_mib, &nonce).await?;
    let bytes = std::fs::metadata(&source)?.len();

    let copy = root.join("cp.qcow2");
    let cp = timed(|| command("cp", &[source.as_os_str(), copy.as_os_str()]))?;
    std::fs::remove_file(&copy)?;
    let sha = timed(|| command("sha256sum", &[source.as_os_str()]))?;

    let dir = root.join("backup");
    let started = Instant::now();
    let (manifest, ledger_sha) = backup(&tools, &source, &dir).await?;
    let backup_took = started.elapsed();
    let boot_options = BootOptions {
        root: root.to_owned(),
        marker_text: format!("{} {nonce}", crate::boot_sector::MARKER),
        marker: boot_marker(&format!("{} {nonce}", crate::boot_sector::MARKER))?,
        timeout_s: 120,
        max_memory_mib: 64,
        max_vcpus: 1,
    };
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let report = verify::verify(&tools, &dir, &ledger_sha, VerifyLevel::Checksum, &boot_options, &cancel)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("not cancelled")?;
    let verify_took = started.elapsed();
    anyhow::ensure!(report.result == VerifyResult::Ok, "the backup did not verify: {:?}", report.findings);

    let (mut boot_marker_after_ms, mut boot_test_total_ms) = (None, None);
    if !args.no_boot {
        let started = Instant::now();
        let seen = boot_test(&tools, &dir, &manifest, &boot_options, &cancel)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .context("not cancelled")?;
        boot_test_total_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(seen.marker_after_ms.is_some(), "the backup did not boot: {:?}", seen.console_tail);
        boot_marker_after_ms = seen.marker_after_ms;
    }
    let yardstick = mb_s(bytes, cp + sha);
    let ours = mb_s(bytes, backup_took + verify_took);
    Ok(BackupBenchReport {
        disk_bytes: bytes,
        cp_mb_s: mb_s(bytes, cp),
        sha256sum_mb_s: mb_s(bytes, sha),
        cp_then_sha256sum_mb_s: yardstick,
        backup_mb_s: mb_s(bytes, backup_took),
        checksum_verify_mb_s: mb_s(bytes, verify_took),
        backup_then_verify_mb_s: ours,
        ratio: ours / yardstick,
        boot_marker_after_ms,
        boot_test_total_ms,
    })
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

fn command(program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let out = std::process::Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    anyhow::ensure!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// A bootable qcow2 disk of `size_mib` MiB of incompressible (xorshift) data.
async fn make_disk(tools: &Tools, root: &Path, target: &Path, size_mib: u64, nonce: &str) -> anyhow::Result<()> {
    let raw = root.join("source.raw");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&raw)?);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..size_mib.max(1) {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        if i == 0 {
            chunk[..1024].copy_from_slice(&crate::boot_sector::first_sectors(nonce));
        }
        f.write_all(&chunk)?;
    }
    f.into_inner()?.sync_all()?;
    tools.convert(&raw, "raw", target).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::remove_file(&raw)?;
    Ok(())
}

/// What `backup.create` does for a shut-off VM's one disk, with the same helpers.
async fn backup(tools: &Tools, source: &Path, dir: &Path) -> anyhow::Result<(Manifest, String)> {
    std::fs::create_dir_all(dir.join("disks"))?;
    let image = dir.join("disks/vda.qcow2");
    tools.convert(source, "qcow2", &image).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let domain = "<domain type='qemu'><name>bench</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                  <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features><devices>\
                  <disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk></devices></domain>\n";
    files::write_synced(&dir.join("domain.xml"), domain.as_bytes())?;
    let virtual_size =
        tools.virtual_size(&image).await.map_err(|e| anyhow::anyhow!("{e}"))?.map_err(|e| anyhow::anyhow!(e))?;
    let rel = vec!["disks/vda.qcow2".to_owned(), "domain.xml".to_owned()];
    let owned = dir.to_owned();
    let listed = tokio::task::spawn_blocking(move || {
        let listed = files::sync_and_hash(&owned, &rel, &CancellationToken::new())?;
        files::sync_path(&owned.join("disks"))?;
        Ok::<_, std::io::Error>(listed)
    })
    .await??;
    let manifest = Manifest {
        format: Manifest::FORMAT,
        backup_id: hyperfleet_core::BackupId::new(),
        host: "bench".into(),
        vm: "bench".into(),
        method: BackupMethod::Offline,
        consistency: "consistent".into(),
        created_at: hyperfleet_core::Timestamp::now(),
        versions: Versions {
            hyperfleet: env!("CARGO_PKG_VERSION").into(),
            libvirt: String::new(),
            qemu: String::new(),
        },
        disks: vec![ManifestDisk {
            target: "vda".into(),
            path: "disks/vda.qcow2".into(),
            source_format: "qcow2".into(),
            virtual_size,
        }],
        skipped: vec![],
        files: listed,
    };
    let bytes = manifest.to_bytes();
    files::write_synced(&dir.join(Manifest::FILE), &bytes)?;
    files::sync_path(dir)?;
    Ok((manifest, sha256_hex(&bytes)))
}
