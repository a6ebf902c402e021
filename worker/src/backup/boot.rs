//! The boot level: the backup's disks become throw-away qcow2 overlays (the
//! backup is only ever their read-only backing file) in
//! `<backups.dir>/.verify/hf-verify-<id>/`, and a fresh domain of the same
//! name (see `boot_domain`) is started with libvirt's auto-destroy flag on a
//! connection of its own, so it dies with that connection — with the worker,
//! at the latest. It passes when the boot marker appears on its serial
//! console in time. The domain and the overlays are removed however the test
//! ends; a worker's start sweeps away what a killed one left ([`sweep`]).

use std::{
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use hyperfleet_core::{
    backup::{BootMarker, BootReport, CONSOLE_TAIL_BYTES, Manifest},
    operation::{ErrorClass, JobFailure},
};
use tokio_util::sync::CancellationToken;
use virt::{connect::Connect, domain::Domain};

use super::{
    boot_domain::{BootDomain, domain_xml},
    files::{self, io_failure},
    tools::Tools,
};
use crate::libvirt::classify;

/// Boot-test domains and their directories are named with this prefix.
pub const PREFIX: &str = "hf-verify-";
/// The directory under `backups.dir` that holds the boot tests' overlays.
pub const DIR: &str = ".verify";
/// The backup's firmware variables, when its domain has `<nvram>`.
pub const NVRAM: &str = "nvram.fd";

const POLL: Duration = Duration::from_millis(100);
/// How much console text the marker is searched in (the newest).
const WINDOW: usize = 64 << 10;

/// How a boot test is run.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// `backups.dir`: the overlays go under its `.verify/`.
    pub root: PathBuf,
    pub marker_text: String,
    pub marker: BootMarker,
    pub timeout_s: u32,
    pub max_memory_mib: u32,
    pub max_vcpus: u32,
}

impl BootOptions {
    /// `[backups]`'s boot settings, with a request's marker and timeout over them.
    pub fn new(
        s: &hyperfleet_core::settings::BackupSettings,
        marker: Option<&str>,
        timeout_s: Option<u32>,
    ) -> Result<Self, JobFailure> {
        let marker_text = marker.unwrap_or(&s.boot_marker).to_owned();
        let invalid = |e: hyperfleet_core::Error| JobFailure::new(ErrorClass::Permanent, e.code(), e.to_string());
        Ok(Self {
            root: s.dir.clone().unwrap_or_else(|| PathBuf::from("backups")),
            marker: hyperfleet_core::backup::boot_marker(&marker_text).map_err(invalid)?,
            marker_text,
            timeout_s: hyperfleet_core::backup::boot_timeout(timeout_s.unwrap_or(s.boot_timeout_s)).map_err(invalid)?,
            max_memory_mib: s.boot_max_memory_mib,
            max_vcpus: s.boot_max_vcpus,
        })
    }
}

/// Boots the backup in `backup_dir` (its checksums already verified against
/// `manifest`); `None` when cancelled. A guest that never prints the marker
/// is a report without `marker_after_ms`, not an error.
pub async fn boot_test(
    tools: &Tools,
    backup_dir: &Path,
    manifest: &Manifest,
    o: &BootOptions,
    cancel: &CancellationToken,
) -> Result<Option<BootReport>, JobFailure> {
    let name = format!("{PREFIX}{}", ulid::Ulid::new().to_string().to_lowercase());
    let dir = o.root.join(DIR).join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| io_failure("creating the boot test's directory", &e))?;
    let _remove = RemoveOnDrop(dir.clone());
    let mut overlays = Vec::new();
    for disk in &manifest.disks {
        let overlay = dir.join(format!("{}.qcow2", disk.target));
        tools.overlay(&backup_dir.join(&disk.path), &overlay).await?;
        overlays.push((disk.target.clone(), overlay));
    }
    let nvram = if manifest.files.iter().any(|f| f.path == NVRAM) {
        // The guest writes its variables: into a copy, never into the backup.
        let copy = dir.join(NVRAM);
        std::fs::copy(backup_dir.join(NVRAM), &copy).map_err(|e| io_failure("copying nvram.fd", &e))?;
        Some(copy)
    } else {
        None
    };
    let backup_xml = std::fs::read_to_string(backup_dir.join("domain.xml"))
        .map_err(|e| io_failure("reading the backup's domain.xml", &e))?;
    let console = dir.join("console.log");
    let spec = BootDomain {
        name: name.clone(),
        overlays,
        console: console.clone(),
        nvram,
        max_memory_mib: o.max_memory_mib,
        max_vcpus: o.max_vcpus,
    };
    let xml =
        domain_xml(&backup_xml, &spec).map_err(|m| JobFailure::new(ErrorClass::Permanent, "boot_unsupported", m))?;
    // Dropping this future (a lost lease) stops the blocking loop too.
    let stop = cancel.child_token();
    let _stop_on_drop = stop.clone().drop_guard();
    let run = Run {
        uri: tools.uri.clone(),
        xml,
        console,
        marker: o.marker.clone(),
        timeout: Duration::from_secs(u64::from(o.timeout_s)),
        stop,
    };
    let seen = tokio::task::spawn_blocking(move || run.run()).await.map_err(|e| {
        JobFailure::new(ErrorClass::Transient, "libvirt_error", format!("the boot test panicked: {e}"))
    })??;
    Ok(seen.map(|s| BootReport {
        domain: name,
        marker: o.marker_text.clone(),
        timeout_s: o.timeout_s,
        marker_after_ms: s.marker_after.map(|d| d.as_millis() as u64),
        stopped_after_ms: s.stopped_after.map(|d| d.as_millis() as u64),
        console_tail: s.tail,
    }))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = files::remove_dir(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a boot test's overlays");
        }
    }
}

struct Run {
    uri: String,
    xml: String,
    console: PathBuf,
    marker: BootMarker,
    timeout: Duration,
    stop: CancellationToken,
}

struct Seen {
    marker_after: Option<Duration>,
    /// When the guest stopped on its own before the marker.
    stopped_after: Option<Duration>,
    tail: String,
}

/// The domain, destroyed when the test ends however it ends; then its connection closes.
struct Running {
    domain: Domain,
    _conn: Connect,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.domain.destroy()
            && self.domain.is_active().unwrap_or(false)
        {
            tracing::warn!(error = %e, "could not destroy a boot test's domain; it goes with its connection");
        }
    }
}

impl Run {
    /// Starts the domain and watches its console; `None` when stopped (cancelled).
    fn run(self) -> Result<Option<Seen>, JobFailure> {
        let conn = Connect::open(Some(&self.uri)).map_err(|e| classify(&e))?;
        let domain =
            conn.create_domain_xml(&self.xml, virt::sys::VIR_DOMAIN_START_AUTODESTROY).map_err(|e| classify(&e))?;
        let running = Running { domain, _conn: conn };
        let started = Instant::now();
        let mut console = Console { path: self.console.clone(), offset: 0, window: Vec::new() };
        loop {
            console.read_more();
            if self.marker.is_match(&console.text()) {
                return Ok(Some(Seen {
                    marker_after: Some(started.elapsed()),
                    stopped_after: None,
                    tail: console.tail(),
                }));
            }
            if self.stop.is_cancelled() {
                return Ok(None);
            }
            if started.elapsed() >= self.timeout {
                return Ok(Some(Seen { marker_after: None, stopped_after: None, tail: console.tail() }));
            }
            if !running.domain.is_active().map_err(|e| classify(&e))? {
                console.read_more();
                let marker_after = self.marker.is_match(&console.text()).then(|| started.elapsed());
                let stopped_after = marker_after.is_none().then(|| started.elapsed());
                return Ok(Some(Seen { marker_after, stopped_after, tail: console.tail() }));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The serial console's file, read as it grows; the newest [`WINDOW`] bytes kept.
struct Console {
    path: PathBuf,
    offset: u64,
    window: Vec<u8>,
}

impl Console {
    fn read_more(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut new = Vec::new();
        if let Ok(n) = f.read_to_end(&mut new) {
            self.offset += n as u64;
            self.window.extend_from_slice(&new);
            if self.window.len() > WINDOW {
                self.window.drain(..self.window.len() - WINDOW);
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.window).into_owned()
    }

    fn tail(&self) -> String {
        let from = self.window.len().saturating_sub(CONSOLE_TAIL_BYTES);
        String::from_utf8_lossy(&self.window[from..]).into_owned()
    }
}

/// At a worker's start: destroys boot-test domains whose overlays are under
/// this worker's `<root>/.verify/` (a killed worker's; other workers' are
/// left alone) and removes every directory there. Returns how many of each.
pub fn sweep(uri: &str, root: &Path) -> (usize, usize) {
    let base = root.join(DIR);
    let mut domains = 0;
    match Connect::open(Some(uri)) {
        Ok(conn) => {
            let active = conn.list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE).unwrap_or_default();
            for d in active {
                let ours = d.name().is_ok_and(|n| n.starts_with(PREFIX))
                    && d.xml_desc(0).is_ok_and(|x| x.contains(&*base.to_string_lossy()));
                if ours && d.destroy().is_ok() {
                    domains += 1;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "boot test sweep: cannot reach libvirt"),
    }
    let mut dirs = 0;
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(PREFIX) && files::remove_dir(&entry.path()).is_ok() {
            dirs += 1;
        }
    }
    (domains, dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_read_as_it_grows_and_its_tail_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut c = Console { path: path.clone(), offset: 0, window: Vec::new() };
        c.read_more();
        assert_eq!(c.text(), "", "not there yet");
        std::fs::write(&path, "SeaBIOS\nHYPERFLEET-BOOT").unwrap();
        c.read_more();
        let marker = hyperfleet_core::backup::boot_marker("HYPERFLEET-BOOT-OK nonce-[a-z0-9]+").unwrap();
        assert!(!marker.is_match(&c.text()));
        std::fs::write(&path, format!("SeaBIOS\nHYPERFLEET-BOOT-OK nonce-42\n{}", "x".repeat(WINDOW))).unwrap();
        c.read_more();
        assert_eq!(c.window.len(), WINDOW, "only the newest bytes are kept");
        let mut c = Console { path, offset: 0, window: Vec::new() };
        c.read_more();
        assert_eq!(c.tail().len(), CONSOLE_TAIL_BYTES);
        let short = Console { path: dir.path().into(), offset: 0, window: b"HYPERFLEET-BOOT-OK nonce-42\n".to_vec() };
        assert!(marker.is_match(&short.text()) && short.tail() == short.text());
    }
}
