//! The disks of a domain, read from its XML: which are backed up and which
//! are skipped (CD-ROMs, floppies, read-only disks) — and its firmware
//! variables (`<nvram>`), which are backed up too.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct DomainXml {
    os: Option<OsXml>,
    devices: DevicesXml,
}

#[derive(Debug, Deserialize)]
struct OsXml {
    nvram: Option<NvramXml>,
}

#[derive(Debug, Deserialize)]
struct NvramXml {
    #[serde(rename = "$text", default)]
    path: String,
}

/// The file of the domain's firmware variables, when it has one.
pub fn nvram(xml: &str) -> Result<Option<PathBuf>, String> {
    let domain: DomainXml = quick_xml::de::from_str(xml).map_err(|e| format!("cannot read the domain XML: {e}"))?;
    Ok(domain.os.and_then(|o| o.nvram).map(|n| n.path.trim().to_owned()).filter(|p| !p.is_empty()).map(PathBuf::from))
}

#[derive(Debug, Deserialize)]
struct DevicesXml {
    #[serde(rename = "disk", default)]
    disks: Vec<DiskXml>,
}

#[derive(Debug, Deserialize)]
struct DiskXml {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(rename = "@device", default)]
    device: String,
    driver: Option<DriverXml>,
    source: Option<SourceXml>,
    target: TargetXml,
    readonly: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct DriverXml {
    #[serde(rename = "@type")]
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SourceXml {
    #[serde(rename = "@file")]
    file: Option<String>,
    #[serde(rename = "@dev")]
    dev: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TargetXml {
    #[serde(rename = "@dev")]
    dev: String,
}

/// A disk that is backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The guest's device name (`vda`): also the backup's file name.
    pub target: String,
    pub source: PathBuf,
    /// The source's format as libvirt opens it (never probed: a raw guest could fake a header).
    pub format: String,
}

/// The disks of a domain's XML to back up, and the targets skipped (with why).
pub fn disks(xml: &str) -> Result<(Vec<Disk>, Vec<String>), String> {
    let domain: DomainXml = quick_xml::de::from_str(xml).map_err(|e| format!("cannot read the domain XML: {e}"))?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for d in domain.devices.disks {
        let target = d.target.dev;
        if !target.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("disk target `{target}` is not a plain device name"));
        }
        if d.device != "disk" && !d.device.is_empty() {
            skipped.push(format!("{target} ({})", d.device));
            continue;
        }
        if d.readonly.is_some() {
            skipped.push(format!("{target} (read-only)"));
            continue;
        }
        let source = match (d.kind.as_str(), d.source) {
            ("file", Some(SourceXml { file: Some(f), .. })) | ("block", Some(SourceXml { dev: Some(f), .. })) => f,
            (kind, _) => {
                return Err(format!("disk {target}: a `{kind}` disk without a local source cannot be backed up yet"));
            }
        };
        let format = d.driver.and_then(|d| d.format).unwrap_or_else(|| "raw".into());
        out.push(Disk { target, source: source.into(), format });
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_up_writable_disks_and_skips_cdroms_and_read_only_ones() {
        let xml = r#"<domain type='qemu'><name>x</name><devices>
          <emulator>/usr/bin/qemu</emulator>
          <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
          <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='hdc'/><readonly/></disk>
          <controller type='usb'/>
          <disk type='file' device='disk'><source file='/img/b.raw'/><target dev='vdb'/><readonly/></disk>
          <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg/c'/><target dev='vdc'/></disk>
        </devices></domain>"#;
        let (disks, skipped) = disks(xml).unwrap();
        assert_eq!(
            disks,
            [
                Disk { target: "vda".into(), source: "/img/a.qcow2".into(), format: "qcow2".into() },
                Disk { target: "vdc".into(), source: "/dev/vg/c".into(), format: "raw".into() },
            ]
        );
        assert_eq!(skipped, ["hdc (cdrom)", "vdb (read-only)"]);
        let net = "<domain><devices><disk type='network' device='disk'><target dev='vda'/></disk></devices></domain>";
        assert!(super::disks(net).is_err());
        assert_eq!(super::disks("<domain><devices/></domain>").unwrap().0, []);
        assert_eq!(nvram(xml).unwrap(), None);
        let efi = "<domain><os><type>hvm</type><loader readonly='yes' type='pflash'>/fw/CODE.fd</loader>\
                   <nvram template='/fw/VARS.fd'>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os><devices/></domain>";
        assert_eq!(nvram(efi).unwrap(), Some(PathBuf::from("/var/lib/libvirt/qemu/nvram/web_VARS.fd")));
    }
}
