//! The domain a boot test runs: built fresh from an allow-list, never from
//! the backup's XML as a whole. From the backup it takes only the OS and
//! firmware settings (domain type, machine, loader, boot menu, a few
//! features), its memory and vCPUs up to limits, and the bus of each disk.
//! Its disks are throw-away overlays, its only device besides them a serial
//! console written to a file: no network interface, no host device, no
//! shared filesystem, no graphics.

use std::path::PathBuf;

use serde::Deserialize;

use super::live::escape;

#[derive(Debug, Deserialize)]
struct DomainXml {
    #[serde(rename = "@type", default)]
    kind: String,
    memory: Option<Memory>,
    vcpu: Option<Count>,
    os: Option<OsXml>,
    features: Option<FeaturesXml>,
    devices: Option<DevicesXml>,
}

#[derive(Debug, Deserialize)]
struct Memory {
    #[serde(rename = "@unit", default)]
    unit: String,
    #[serde(rename = "$text")]
    value: u64,
}

#[derive(Debug, Deserialize)]
struct Count {
    #[serde(rename = "$text")]
    value: u32,
}

#[derive(Debug, Deserialize)]
struct OsXml {
    #[serde(rename = "@firmware")]
    firmware: Option<String>,
    #[serde(rename = "type")]
    os_type: Option<OsType>,
    loader: Option<Loader>,
    bootmenu: Option<BootMenu>,
}

#[derive(Debug, Deserialize)]
struct OsType {
    #[serde(rename = "@arch")]
    arch: Option<String>,
    #[serde(rename = "@machine")]
    machine: Option<String>,
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct Loader {
    #[serde(rename = "@readonly")]
    readonly: Option<String>,
    #[serde(rename = "@type")]
    kind: Option<String>,
    #[serde(rename = "@secure")]
    secure: Option<String>,
    #[serde(rename = "$text", default)]
    path: String,
}

#[derive(Debug, Deserialize)]
struct BootMenu {
    #[serde(rename = "@enable")]
    enable: Option<String>,
    #[serde(rename = "@timeout")]
    timeout: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct FeaturesXml {
    acpi: Option<serde::de::IgnoredAny>,
    apic: Option<serde::de::IgnoredAny>,
    pae: Option<serde::de::IgnoredAny>,
    smm: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct DevicesXml {
    #[serde(rename = "disk", default)]
    disks: Vec<DiskXml>,
}

#[derive(Debug, Deserialize)]
struct DiskXml {
    target: TargetXml,
}

#[derive(Debug, Deserialize)]
struct TargetXml {
    #[serde(rename = "@dev")]
    dev: String,
    #[serde(rename = "@bus")]
    bus: Option<String>,
}

/// What goes into a boot test's domain besides the backup's settings.
#[derive(Debug, Clone)]
pub struct BootDomain {
    pub name: String,
    /// `(target, overlay)` per backed-up disk.
    pub overlays: Vec<(String, PathBuf)>,
    pub console: PathBuf,
    /// A copy of the backup's `nvram.fd`, when it has one.
    pub nvram: Option<PathBuf>,
    pub max_memory_mib: u32,
    pub max_vcpus: u32,
}

/// The boot test's domain XML for a backup whose `domain.xml` is `backup_xml`.
pub fn domain_xml(backup_xml: &str, d: &BootDomain) -> Result<String, String> {
    let b: DomainXml =
        quick_xml::de::from_str(backup_xml).map_err(|e| format!("cannot read the backup's domain.xml: {e}"))?;
    let kind = match b.kind.as_str() {
        k @ ("kvm" | "qemu") => k,
        other => return Err(format!("a `{other}` domain cannot be boot-tested (only kvm and qemu)")),
    };
    let memory_kib = b.memory.map_or(u64::MAX, |m| kib(m.value, &m.unit)).min(u64::from(d.max_memory_mib) * 1024);
    let vcpus = b.vcpu.map_or(1, |c| c.value).clamp(1, d.max_vcpus);
    let mut xml = format!(
        "<domain type='{kind}'>\n  <name>{}</name>\n  <memory unit='KiB'>{memory_kib}</memory>\n  <vcpu>{vcpus}</vcpu>\n",
        escape(&d.name)
    );
    let os = b.os;
    let firmware = os.as_ref().and_then(|o| o.firmware.as_deref()).filter(|f| matches!(*f, "bios" | "efi"));
    xml.push_str(&match firmware {
        Some(f) => format!("  <os firmware='{f}'>\n"),
        None => "  <os>\n".into(),
    });
    let os_type = os.as_ref().and_then(|o| o.os_type.as_ref());
    let mut type_attrs = String::new();
    for (name, value) in
        [("arch", os_type.and_then(|t| t.arch.as_deref())), ("machine", os_type.and_then(|t| t.machine.as_deref()))]
    {
        if let Some(v) = value {
            type_attrs.push_str(&format!(" {name}='{}'", escape(v)));
        }
    }
    let hvm = os_type.map(|t| t.value.trim()).filter(|v| !v.is_empty()).unwrap_or("hvm");
    xml.push_str(&format!("    <type{type_attrs}>{}</type>\n", escape(hvm)));
    if let Some(l) = os.as_ref().and_then(|o| o.loader.as_ref()).filter(|l| !l.path.trim().is_empty()) {
        let mut attrs = String::new();
        for (name, value) in [("readonly", &l.readonly), ("type", &l.kind), ("secure", &l.secure)] {
            if let Some(v) = value {
                attrs.push_str(&format!(" {name}='{}'", escape(v)));
            }
        }
        xml.push_str(&format!("    <loader{attrs}>{}</loader>\n", escape(l.path.trim())));
    }
    // Also with a firmware libvirt picks itself: the guest's variables are the backup's, in a copy.
    if let Some(nvram) = &d.nvram {
        xml.push_str(&format!("    <nvram>{}</nvram>\n", escape(&nvram.to_string_lossy())));
    }
    // Only the disks can boot: the test is whether the backed-up disks do.
    xml.push_str("    <boot dev='hd'/>\n");
    if let Some(m) = os.as_ref().and_then(|o| o.bootmenu.as_ref()).filter(|m| m.enable.as_deref() == Some("yes")) {
        let timeout = m.timeout.map(|t| format!(" timeout='{}'", t.min(65_535))).unwrap_or_default();
        xml.push_str(&format!("    <bootmenu enable='yes'{timeout}/>\n"));
    }
    xml.push_str("  </os>\n");
    if let Some(f) = b.features {
        xml.push_str("  <features>\n");
        for (name, on) in [("acpi", f.acpi.is_some()), ("apic", f.apic.is_some()), ("pae", f.pae.is_some())] {
            if on {
                xml.push_str(&format!("    <{name}/>\n"));
            }
        }
        if f.smm.is_some() {
            xml.push_str("    <smm state='on'/>\n");
        }
        xml.push_str("  </features>\n");
    }
    xml.push_str(
        "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  \
         <devices>\n",
    );
    let disks = b.devices.map(|d| d.disks).unwrap_or_default();
    for (target, overlay) in &d.overlays {
        let bus = disks.iter().find(|x| &x.target.dev == target).and_then(|x| x.target.bus.as_deref());
        let bus = bus.filter(|b| matches!(*b, "virtio" | "sata" | "ide" | "scsi" | "usb")).unwrap_or("virtio");
        xml.push_str(&format!(
            "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source \
             file='{}'/>\n      <target dev='{}' bus='{bus}'/>\n    </disk>\n",
            escape(&overlay.to_string_lossy()),
            escape(target),
        ));
    }
    xml.push_str(&format!(
        "    <serial type='file'>\n      <source path='{}'/>\n      <target port='0'/>\n    </serial>\n    <memballoon \
         model='none'/>\n  </devices>\n</domain>\n",
        escape(&d.console.to_string_lossy())
    ));
    Ok(xml)
}

fn kib(value: u64, unit: &str) -> u64 {
    let bytes: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "" | "k" | "KiB" => 1024,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => 1024,
    };
    value.saturating_mul(bytes) / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKUP: &str = r#"<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
      <name>web</name><uuid>8c6b2a0e-5b0f-4d8e-9d6e-1a2b3c4d5e6f</uuid>
      <memory unit='KiB'>8388608</memory><vcpu placement='static'>8</vcpu>
      <os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
        <loader readonly='yes' type='pflash' secure='no'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
        <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram>
        <kernel>/boot/vmlinuz</kernel><cmdline>console=ttyS0 evil</cmdline>
        <boot dev='network'/><bootmenu enable='yes' timeout='3000'/></os>
      <features><acpi/><apic/><smm state='on'/><hyperv mode='custom'/></features>
      <cpu mode='host-passthrough'/>
      <devices>
        <emulator>/usr/bin/qemu-system-x86_64</emulator>
        <disk type='file' device='disk'><source file='/img/web.qcow2'/><target dev='sda' bus='sata'/></disk>
        <disk type='file' device='disk'><source file='/img/data.raw'/><target dev='vdb' bus='virtio'/></disk>
        <interface type='network'><source network='default'/></interface>
        <hostdev mode='subsystem' type='pci'><source><address bus='0x01' slot='0x00'/></source></hostdev>
        <filesystem type='mount'><source dir='/srv'/><target dir='srv'/></filesystem>
        <graphics type='vnc' port='-1'/>
        <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
      </devices>
      <qemu:commandline><qemu:arg value='-device'/></qemu:commandline>
    </domain>"#;

    fn domain() -> BootDomain {
        BootDomain {
            name: "hf-verify-01".into(),
            overlays: vec![
                ("sda".into(), "/b/.verify/x/sda.qcow2".into()),
                ("vdb".into(), "/b/.verify/x/vdb.qcow2".into()),
            ],
            console: "/b/.verify/x/console.log".into(),
            nvram: Some("/b/.verify/x/nvram.fd".into()),
            max_memory_mib: 1024,
            max_vcpus: 2,
        }
    }

    #[test]
    fn only_allow_listed_settings_reach_the_boot_domain() {
        let xml = domain_xml(BACKUP, &domain()).unwrap();
        for absent in [
            "<interface",
            "<hostdev",
            "<filesystem",
            "<graphics",
            "<channel",
            "commandline",
            "<kernel",
            "evil",
            "network",
            "host-passthrough",
            "hyperv",
            "/img/",
            "<uuid",
            "web_VARS",
        ] {
            assert!(!xml.contains(absent), "{absent} leaked into {xml}");
        }
        for present in [
            "<domain type='kvm'>",
            "<name>hf-verify-01</name>",
            "<memory unit='KiB'>1048576</memory>",
            "<vcpu>2</vcpu>",
            "<os firmware='efi'>",
            "<type arch='x86_64' machine='pc-q35-7.2'>hvm</type>",
            "<loader readonly='yes' type='pflash' secure='no'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>",
            "<nvram>/b/.verify/x/nvram.fd</nvram>",
            "<boot dev='hd'/>",
            "<bootmenu enable='yes' timeout='3000'/>",
            "<acpi/>",
            "<smm state='on'/>",
            "<source file='/b/.verify/x/sda.qcow2'/>\n      <target dev='sda' bus='sata'/>",
            "<target dev='vdb' bus='virtio'/>",
            "<serial type='file'>\n      <source path='/b/.verify/x/console.log'/>",
        ] {
            assert!(xml.contains(present), "{present} missing from {xml}");
        }
    }

    #[test]
    fn small_guests_keep_their_size_and_odd_ones_are_refused() {
        let small = "<domain type='qemu'><name>t</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
                     <os><type>hvm</type></os><devices/></domain>";
        let xml = domain_xml(small, &BootDomain { nvram: None, ..domain() }).unwrap();
        assert!(xml.contains("<memory unit='KiB'>65536</memory>") && xml.contains("<vcpu>1</vcpu>"), "{xml}");
        assert!(!xml.contains("<features>") && !xml.contains("<loader") && !xml.contains("<nvram"), "{xml}");
        assert!(xml.contains("<target dev='sda' bus='virtio'/>"), "a bus the backup does not name: virtio: {xml}");
        assert!(domain_xml("<domain type='lxc'><name>c</name></domain>", &domain()).is_err());
        assert!(domain_xml("not xml", &domain()).is_err());
    }
}
