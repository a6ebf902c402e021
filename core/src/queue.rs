//! The queue contract. The ledger is the queue: a worker claims the oldest
//! runnable operation of its queues straight from `operations`. Wake-ups only
//! say "look now" — in-process at commit, PostgreSQL NOTIFY across processes,
//! and a poll interval as the floor — so a lost or duplicate wake-up costs
//! latency, never work.
//!
//! Queue names are explicit (never a Rust type name): one queue per host for
//! work bound to a hypervisor, one shared queue for host-less work.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use futures::{
    Stream,
    channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded},
};

use crate::Timestamp;

pub const SHARED_QUEUE: &str = "hyperfleet.shared";

/// Not a work queue: the in-process wake-up of the alert router, told when
/// an alert event is committed.
pub const ALERTS: &str = "hyperfleet.alerts";

pub fn host_queue(host: &str) -> String {
    format!("hyperfleet.host.{host}")
}

pub fn queue_for(host: Option<&str>) -> String {
    host.map_or_else(|| SHARED_QUEUE.to_owned(), host_queue)
}

/// In-process wake-ups: a worker in the same process as the submitter is
/// told at commit time instead of waiting for its next poll.
/// Subscribers listen per queue, so a commit wakes only the workers of the
/// queue it pushed to (every wake costs the woken worker a fetch query).
/// The subscription name of [`Wakes::watch`]; no queue name is empty.
const ANY: &str = "";

#[derive(Debug, Default)]
pub struct Wakes {
    subscribers: Mutex<Vec<(String, UnboundedSender<()>)>>,
    /// Other processes' workers (PostgreSQL): the store's announcer sends
    /// them a NOTIFY for each queue [`Wakes::announce`] names.
    remote: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Wakes {
    pub fn subscribe(&self, queue: &str) -> WakeListener {
        let (tx, rx) = unbounded();
        self.lock().push((queue.to_owned(), tx));
        WakeListener { rx: Arc::new(Mutex::new(rx)) }
    }

    /// A listener woken by every commit that wakes any queue or listener
    /// (the dashboard's change feed).
    pub fn watch(&self) -> WakeListener {
        self.subscribe(ANY)
    }

    /// Wakes the listeners of `queue` (and the watchers of every queue).
    pub fn notify(&self, queue: &str) {
        self.lock().retain(|(q, tx)| (q != queue && q != ANY) || tx.unbounded_send(()).is_ok());
    }

    /// Says that committed work waits on `queue`: wakes this process's
    /// listeners now, and other processes' through the announcer, if any.
    pub fn announce(&self, queue: &str) {
        self.notify(queue);
        if let Some(remote) = self.remote.get() {
            let _ = remote.send(queue.to_owned());
        }
    }

    /// Where [`Wakes::announce`] sends the queues other processes are told of.
    pub fn announce_to(&self, remote: tokio::sync::mpsc::UnboundedSender<String>) {
        let _ = self.remote.set(remote);
    }

    /// Wakes every listener (after work whose queues are not tracked, e.g. the reaper's).
    pub fn notify_all(&self) {
        self.lock().retain(|(_, tx)| tx.unbounded_send(()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, UnboundedSender<()>)>> {
        self.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A stream that yields whenever work was committed in this process.
#[derive(Debug, Clone)]
pub struct WakeListener {
    rx: Arc<Mutex<UnboundedReceiver<()>>>,
}

impl Stream for WakeListener {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let mut rx = self.rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Coalesce a burst of wake-ups into one poll of the queue.
        let mut woke = false;
        loop {
            match Pin::new(&mut *rx).poll_next(cx) {
                Poll::Ready(Some(())) => woke = true,
                Poll::Ready(None) => return if woke { Poll::Ready(Some(())) } else { Poll::Ready(None) },
                Poll::Pending => return if woke { Poll::Ready(Some(())) } else { Poll::Pending },
            }
        }
    }
}

/// Which of this process's queues cannot be served right now, and why: what
/// readiness and the worker's heartbeat report. A queue is in trouble from its
/// first failed fetch until its next successful one.
#[derive(Debug, Default)]
pub struct Serving {
    failing: Mutex<Vec<(String, Timestamp, String)>>,
}

impl Serving {
    /// `queue` could not be fetched from: `error` says why.
    pub fn failing(&self, queue: &str, error: &str) {
        let mut failing = self.lock();
        match failing.iter_mut().find(|(q, ..)| q == queue) {
            Some(entry) => error.clone_into(&mut entry.2),
            None => failing.push((queue.to_owned(), Timestamp::now(), error.to_owned())),
        }
    }

    /// `queue` was fetched from successfully.
    pub fn serving(&self, queue: &str) {
        self.lock().retain(|(q, ..)| q != queue);
    }

    /// One line naming every queue not served, since when and why; `None` when all are.
    pub fn problem(&self) -> Option<String> {
        let failing = self.lock();
        (!failing.is_empty()).then(|| {
            failing
                .iter()
                .map(|(q, since, e)| format!("queue {q} not served since {since}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Timestamp, String)>> {
        self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
