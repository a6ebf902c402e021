//! The libvirt adapter (the `virt` crate, no shell anywhere). libvirt calls
//! block, so each runs on the blocking pool over one long-lived connection per
//! worker (reopened when it breaks). libvirt's own stderr printing is turned
//! off; its messages reach the attempt row and the log instead.

use std::sync::{Arc, Mutex, Once};

use hyperfleet_core::{
    Timestamp,
    operation::{ErrorClass, JobFailure},
    store::VmRecord,
    vm::VmState,
};
use virt::{connect::Connect, domain::Domain, error::ErrorNumber};

#[derive(Debug)]
pub struct Hypervisor {
    uri: String,
    host: String,
    conn: Arc<Mutex<Option<Arc<Connect>>>>,
}

static SILENCE: Once = Once::new();

impl Hypervisor {
    pub fn new(uri: &str, host: &str) -> Self {
        SILENCE.call_once(virt::error::clear_error_callback);
        Self { uri: uri.to_owned(), host: host.to_owned(), conn: Arc::default() }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Runs `f` against the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, JobFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, virt::error::Error> + Send + 'static,
    {
        let uri = self.uri.clone();
        let slot = self.conn.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let conn = {
                let mut guard = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match guard.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let c = Arc::new(Connect::open(Some(&uri)).map_err(|e| classify(&e))?);
                        *guard = Some(c.clone());
                        c
                    }
                }
            };
            let result = f(&conn).map_err(|e| classify(&e));
            if let Err(failure) = &result
                && failure.class == ErrorClass::Transient
            {
                // The connection may be broken: the next call opens a fresh one.
                slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            }
            result
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(JobFailure::new(ErrorClass::Transient, "libvirt_error", format!("libvirt call panicked: {e}")))
        })
    }

    /// Every domain on this host, for the inventory.
    pub async fn list(&self) -> Result<Vec<VmRecord>, JobFailure> {
        let host = self.host.clone();
        self.call(move |c| {
            let domains = c.list_all_domains(0)?;
            domains.iter().map(|d| record(&host, d)).collect()
        })
        .await
    }

    /// One domain's record, or `None` when it does not exist.
    pub async fn describe(&self, name: &str) -> Result<Option<VmRecord>, JobFailure> {
        let host = self.host.clone();
        let name = name.to_owned();
        self.call(move |c| match c.lookup_domain_by_name(&name) {
            Ok(d) => record(&host, &d).map(Some),
            Err(e) if e.code() == virt::enumutil::Enum::Known(ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    /// Runs `f` on the domain called `name`.
    pub async fn with_domain<T, F>(&self, name: &str, f: F) -> Result<T, JobFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Domain) -> Result<T, virt::error::Error> + Send + 'static,
    {
        let name = name.to_owned();
        self.call(move |c| f(&c.lookup_domain_by_name(&name)?)).await
    }

    /// The domain's state.
    pub async fn state(&self, name: &str) -> Result<VmState, JobFailure> {
        self.with_domain(name, |d| d.state().map(|(s, _)| vm_state(&s.to_string()))).await
    }

    pub async fn versions(&self) -> Result<(u32, u32), JobFailure> {
        self.call(|c| Ok((c.lib_version()?, c.hyp_version().unwrap_or(0)))).await
    }
}

fn record(host: &str, d: &Domain) -> Result<VmRecord, virt::error::Error> {
    let (state, reason) = d.state()?;
    let info = d.info()?;
    let reason = match reason {
        virt::enumutil::Enum::Known(r) => virsh_reason(&r.to_string()).to_owned(),
        virt::enumutil::Enum::Unknown(n) => format!("unknown({n})"),
    };
    Ok(VmRecord {
        host: host.to_owned(),
        name: d.name()?,
        uuid: d.uuid_string()?,
        state: vm_state(&state.to_string()),
        state_reason: reason,
        vcpus: info.nr_virt_cpu as i32,
        memory_kib: info.max_mem as i64,
        autostart: d.autostart().unwrap_or(false),
        persistent: d.is_persistent().unwrap_or(false),
        updated_at: Timestamp::now(),
    })
}

/// libvirt's state name as a [`VmState`]. A state newer than this code is
/// reported as `nostate` (and logged) rather than failing the whole inventory.
fn vm_state(name: &str) -> VmState {
    VmState::parse(name).unwrap_or_else(|_| {
        tracing::warn!(state = name, "libvirt reported a domain state this version does not know");
        VmState::Nostate
    })
}

/// State reasons as `virsh domstate --reason` prints them (the `virt` crate
/// runs words together: `fromsnapshot`).
fn virsh_reason(reason: &str) -> &str {
    match reason {
        "fromsnapshot" => "from snapshot",
        "migrationcanceled" => "migration canceled",
        "savecanceled" => "save canceled",
        "postcopy" => "post-copy",
        "postcopyfailed" => "post-copy failed",
        "ioerror" => "I/O error",
        "apierror" => "API error",
        "startingup" => "starting up",
        other => other,
    }
}

/// libvirt errors → the ledger's classes: a missing domain or a wrong state
/// cannot be fixed by retrying; a lost connection or a timeout can.
pub fn classify(e: &virt::error::Error) -> JobFailure {
    let message = e.message().to_owned();
    use virt::enumutil::Enum::Known;
    match e.code() {
        Known(ErrorNumber::NoDomain) => JobFailure::new(ErrorClass::Permanent, "vm_not_found", message),
        Known(ErrorNumber::OperationInvalid) => JobFailure::new(ErrorClass::Permanent, "invalid_vm_state", message),
        Known(ErrorNumber::NoConnect)
        | Known(ErrorNumber::Rpc)
        | Known(ErrorNumber::SystemError)
        | Known(ErrorNumber::OperationTimeout)
        | Known(ErrorNumber::AuthFailed)
        | Known(ErrorNumber::OperationFailed) => JobFailure::new(ErrorClass::Transient, "libvirt_unavailable", message),
        _ => JobFailure::new(ErrorClass::Permanent, "libvirt_error", message),
    }
}
