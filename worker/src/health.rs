//! The health checks of one host, measured in Rust (no shell): libvirt's
//! responsiveness, VM states, free disk, memory, load, `/dev/kvm`, storage
//! pools. Each yields a [`Measurement`]; the ledger applies hysteresis and
//! keeps the history. Fleet facts (late workers, backlog) are not measured
//! here: the scheduler's fleet monitor owns them, one alert per fact.

use std::{path::Path, time::Instant};

use hyperfleet_core::{
    health::{Measurement, Status},
    settings::HealthSettings,
    store::SystemInfo,
    vm::VmState,
};

use crate::{libvirt::Hypervisor, system::WatchedDirs};

pub async fn measure(hv: &Hypervisor, cfg: &HealthSettings, dirs: &WatchedDirs) -> Vec<Measurement> {
    let mut out = Vec::new();
    let started = Instant::now();
    match hv.versions().await {
        Ok(_) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let msg = format!("libvirt at {} answered in {ms:.1} ms", hv.uri());
            out.push(Measurement::measured("libvirt", ms, "ms", cfg.libvirt_response_ms, true, msg));
        }
        Err(e) => out.push(Measurement::plain(
            "libvirt",
            Status::Error,
            format!("libvirt at {} is unreachable: {}", hv.uri(), e.message),
        )),
    }
    match hv.list().await {
        Ok(vms) => {
            let crashed: Vec<&str> =
                vms.iter().filter(|v| v.state == VmState::Crashed).map(|v| v.name.as_str()).collect();
            let paused: Vec<String> = vms
                .iter()
                .filter(|v| v.state == VmState::Paused && v.state_reason != "user")
                .map(|v| format!("{} ({})", v.name, v.state_reason))
                .collect();
            let m = if !crashed.is_empty() {
                Measurement::plain("vm_states", Status::Error, format!("crashed: {}", crashed.join(", ")))
            } else if !paused.is_empty() {
                Measurement::plain("vm_states", Status::Warn, format!("paused unexpectedly: {}", paused.join(", ")))
            } else {
                Measurement::plain(
                    "vm_states",
                    Status::Ok,
                    format!("{} VMs, none crashed or unexpectedly paused", vms.len()),
                )
            };
            out.push(m);
        }
        Err(e) => {
            out.push(Measurement::plain("vm_states", Status::Error, format!("cannot list domains: {}", e.message)))
        }
    }
    let disks = dirs
        .data_dir
        .iter()
        .map(|d| ("data_dir", d))
        .chain(dirs.image_dirs.iter().map(|d| ("image_dir", d)))
        .chain(cfg.backup_dirs.iter().map(|d| ("backup_dir", d)));
    for (role, dir) in disks {
        out.push(disk(role, dir, cfg));
    }
    let host = crate::system::collect(&WatchedDirs::default(), "", "");
    out.push(memory(&host, cfg));
    out.push(load(&host, cfg));
    out.push(kvm(cfg));
    out.push(pools(hv).await);
    out
}

fn disk(role: &str, dir: &Path, cfg: &HealthSettings) -> Measurement {
    let check = format!("disk:{role}:{}", dir.display());
    match crate::system::disk_usage(dir) {
        Some((total, used)) if total > 0 => {
            let free = (total - used) as f64 * 100.0 / total as f64;
            let msg = format!("{free:.1}% free on the filesystem of {}", dir.display());
            Measurement::measured(&check, free, "%", cfg.disk_free_pct, false, msg)
        }
        _ => Measurement::plain(&check, Status::Error, format!("cannot read free space of {}", dir.display())),
    }
}

fn memory(info: &SystemInfo, cfg: &HealthSettings) -> Measurement {
    if info.memory_total_bytes == 0 {
        return Measurement::plain("memory", Status::Error, "cannot read /proc/meminfo");
    }
    let used = info.memory_used_bytes as f64 * 100.0 / info.memory_total_bytes as f64;
    let msg = format!("{used:.1}% of {} MiB used", info.memory_total_bytes / (1 << 20));
    Measurement::measured("memory", used, "%", cfg.memory_used_pct, true, msg)
}

fn load(info: &SystemInfo, cfg: &HealthSettings) -> Measurement {
    let per_cpu = info.load_avg_1m * 100.0 / f64::from(info.cpus.max(1));
    let msg = format!("load {:.2} on {} CPUs ({per_cpu:.0}% per CPU)", info.load_avg_1m, info.cpus);
    Measurement::measured("load", per_cpu, "%", cfg.load_per_cpu_pct, true, msg)
}

fn kvm(cfg: &HealthSettings) -> Measurement {
    let dev = cfg.kvm_device.display();
    let usable = std::fs::OpenOptions::new().read(true).write(true).open(&cfg.kvm_device);
    match usable {
        Ok(_) => Measurement::plain("kvm", Status::Ok, format!("{dev} is present and usable")),
        Err(e) => {
            let status = if cfg.emulation_only { Status::Warn } else { Status::Error };
            let why = if cfg.emulation_only { " (this host is configured for emulation only)" } else { "" };
            Measurement::plain("kvm", status, format!("{dev} is not usable: {e}{why}"))
        }
    }
}

async fn pools(hv: &Hypervisor) -> Measurement {
    let listed = hv
        .call(|c| {
            c.list_all_storage_pools(0)?
                .iter()
                .map(|p| Ok((p.name()?, p.is_active()?)))
                .collect::<Result<Vec<(String, bool)>, virt::error::Error>>()
        })
        .await;
    match listed {
        Ok(pools) => {
            let inactive: Vec<&str> = pools.iter().filter(|p| !p.1).map(|p| p.0.as_str()).collect();
            if inactive.is_empty() {
                Measurement::plain("storage_pools", Status::Ok, format!("{} storage pools, all active", pools.len()))
            } else {
                Measurement::plain(
                    "storage_pools",
                    Status::Warn,
                    format!("inactive storage pools: {}", inactive.join(", ")),
                )
            }
        }
        Err(e) => {
            Measurement::plain("storage_pools", Status::Error, format!("cannot list storage pools: {}", e.message))
        }
    }
}
