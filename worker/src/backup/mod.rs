//! What the backup jobs share: the directory layout and synced writes
//! (`files`), the disks of a domain (`disks`), the `qemu-img`/`virsh` calls
//! (`tools`: argument vectors, never a shell, each with a timeout), and the
//! verification of a written backup (`verify`), whose boot level (`boot`)
//! runs a fresh domain built from an allow-list (`boot_domain`).
//!
//! A backup is written into `<dir>/<vm>/<id>.partial/`, every file fsynced,
//! the manifest last, then the directory is renamed to `<dir>/<vm>/<id>/`: a
//! directory without `.partial` is complete.

pub mod boot;
mod boot_domain;
pub mod disks;
pub mod files;
pub mod live;
pub mod tools;
pub mod verify;
