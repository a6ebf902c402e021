//! System facts a worker reports about its machine with its heartbeats: read
//! from `/proc` and `statvfs`, never from a shell.

use std::path::{Path, PathBuf};

use hyperfleet_core::{
    Timestamp,
    store::{DiskUsage, SystemInfo},
};

/// Directories whose disk usage is reported, with their role.
#[derive(Debug, Clone, Default)]
pub struct WatchedDirs {
    pub data_dir: Option<PathBuf>,
    pub image_dirs: Vec<PathBuf>,
    pub iso_dir: Option<PathBuf>,
}

pub fn collect(dirs: &WatchedDirs, libvirt_version: &str, hypervisor_version: &str) -> SystemInfo {
    let (total, available) = meminfo();
    let mut disks = Vec::new();
    let roles = dirs
        .data_dir
        .iter()
        .map(|d| ("data_dir", d))
        .chain(dirs.image_dirs.iter().map(|d| ("image_dir", d)))
        .chain(dirs.iso_dir.iter().map(|d| ("iso_dir", d)));
    for (role, path) in roles {
        if let Some((t, used)) = disk_usage(path) {
            disks.push(DiskUsage {
                role: role.into(),
                path: path.display().to_string(),
                total_bytes: t,
                used_bytes: used,
            });
        }
    }
    SystemInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default(),
        uptime_s: read_trimmed("/proc/uptime")
            .and_then(|u| u.split_whitespace().next().and_then(|s| s.parse::<f64>().ok()))
            .map_or(0, |s| s as u64),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        load_avg_1m: read_trimmed("/proc/loadavg")
            .and_then(|l| l.split_whitespace().next().and_then(|s| s.parse().ok()))
            .unwrap_or(0.0),
        memory_total_bytes: total,
        memory_used_bytes: total.saturating_sub(available),
        disks,
        libvirt_version: libvirt_version.to_owned(),
        hypervisor_version: hypervisor_version.to_owned(),
        reported_at: Timestamp::now(),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// (MemTotal, MemAvailable) in bytes.
fn meminfo() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// (total, used) bytes of the filesystem holding `path`.
pub fn disk_usage(path: &Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let frsize = st.fragment_size() as u64;
    let total = st.blocks() as u64 * frsize;
    let free = st.blocks_free() as u64 * frsize;
    Some((total, total.saturating_sub(free)))
}

/// libvirt's packed version number (major·1e6 + minor·1e3 + micro) as text.
pub fn version_text(v: u32) -> String {
    if v == 0 { "unknown".into() } else { format!("{}.{}.{}", v / 1_000_000, (v / 1_000) % 1_000, v % 1_000) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_figures() {
        let dir = std::env::temp_dir();
        let info = collect(&WatchedDirs { data_dir: Some(dir), ..WatchedDirs::default() }, "1", "2");
        assert!(info.memory_total_bytes > 0 && info.memory_used_bytes <= info.memory_total_bytes);
        assert!(info.cpus >= 1 && info.uptime_s > 0);
        assert_eq!(info.disks.len(), 1);
        assert!(info.disks[0].used_bytes <= info.disks[0].total_bytes && info.disks[0].total_bytes > 0);
        assert_eq!(version_text(10_000_002), "10.0.2");
    }
}
