//! `/ui/events`: live updates as server-sent events.
//!
//! One [`Feed`] per API process reads what changed in the ledger — operations
//! whose row changed since its cursor — woken by this process's commits (the
//! store's in-process wake-ups), by other processes' commits that announce
//! work (PostgreSQL NOTIFY), and by a short poll for the changes nobody
//! announces (a worker elsewhere starting or finishing an attempt). Each change gets a sequence number and is broadcast to every
//! open tab; no tab costs a query. Pages then fetch server-rendered fragments
//! for the rows they show.
//!
//! Resuming: an event's id is `<feed>-<seq>`. A tab that comes back (after a
//! dropped connection, a hidden tab, a pause) names the last id it saw
//! (`Last-Event-ID`, or `?last_event_id=` for a new `EventSource`) and gets
//! the changes it missed from the feed's recent memory — or, when they are no
//! longer kept or the id is from another process, one `reset` event that
//! tells the page to read everything again.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use hyperfleet_core::{OperationId, Result, Timestamp, app::App, operation::OperationStatus, store::Change};
use poem::{
    IntoResponse, Request, Response, handler,
    http::StatusCode,
    web::{
        Data, Query,
        sse::{Event, SSE},
    },
};
use tokio::sync::broadcast::{self, error::RecvError};

use super::session;
use crate::AppState;

/// How often the feed looks without being woken (commits of other processes).
const POLL: Duration = Duration::from_millis(250);
/// How far back each look reaches before its cursor: a PostgreSQL commit can
/// become visible after one stamped later than it.
const SLACK: Duration = Duration::from_secs(5);
/// Rows per read of the ledger.
const PAGE: u32 = 500;
/// Changes kept for tabs that resume.
const KEPT: usize = 4096;
/// A comment line this often keeps idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// How often an open stream checks that its session still lives (logout,
/// a revoked or expired token, idle expiry end it). The check counts as
/// activity: an open live page keeps its session from idling out.
const RECHECK: Duration = Duration::from_secs(15);

/// One change, numbered by the feed.
#[derive(Debug, Clone, Copy)]
struct Note {
    seq: u64,
    id: OperationId,
    status: OperationStatus,
}

#[derive(Debug, Default)]
struct Recent {
    seq: u64,
    kept: VecDeque<Note>,
}

/// The process's one change feed, shared by every open tab.
#[derive(Debug)]
pub struct Feed {
    /// Names this feed in event ids, so an id from another process or an
    /// earlier start is recognised instead of misread.
    epoch: String,
    sender: broadcast::Sender<Note>,
    recent: Mutex<Recent>,
}

/// Where a tab resumes from.
enum Resume {
    /// These changes were missed; then the live ones follow.
    Replay(Vec<Note>),
    /// What was missed is not known here: read everything again.
    Reset,
}

impl Feed {
    /// Starts the feed over `app`'s ledger; it reads until the feed is dropped.
    pub fn start(app: App) -> Arc<Self> {
        let epoch = format!("{:x}", uuid::Uuid::now_v7().as_u128() & 0xffff_ffff_ffff);
        let feed = Arc::new(Self { epoch, sender: broadcast::channel(KEPT).0, recent: Mutex::default() });
        tokio::spawn(run(Arc::downgrade(&feed), app));
        feed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of the latest change: a page rendered now has seen everything up to it.
    pub fn position(&self) -> String {
        format!("{}-{}", self.epoch, self.lock().seq)
    }

    fn publish(&self, change: Change) {
        let mut recent = self.lock();
        recent.seq += 1;
        let note = Note { seq: recent.seq, id: change.id, status: change.status };
        if recent.kept.len() == KEPT {
            recent.kept.pop_front();
        }
        recent.kept.push_back(note);
        // Sent under the lock, so a tab subscribing under it misses nothing and sees nothing twice.
        let _ = self.sender.send(note);
    }

    /// Subscribes a tab that last saw `after`.
    fn subscribe(&self, after: Option<&str>) -> (Resume, broadcast::Receiver<Note>) {
        let recent = self.lock();
        let receiver = self.sender.subscribe();
        let Some(after) = after else { return (Resume::Replay(Vec::new()), receiver) };
        let seen =
            after.strip_prefix(&self.epoch).and_then(|s| s.strip_prefix('-')).and_then(|s| s.parse::<u64>().ok());
        let oldest_kept = recent.kept.front().map_or(recent.seq + 1, |n| n.seq);
        let resume = match seen {
            Some(seen) if seen <= recent.seq && seen + 1 >= oldest_kept => {
                Resume::Replay(recent.kept.iter().filter(|n| n.seq > seen).copied().collect())
            }
            _ => Resume::Reset,
        };
        (resume, receiver)
    }

    fn event(&self, note: Note) -> Event {
        let data = serde_json::json!({ "id": note.id, "status": note.status.as_str() }).to_string();
        Event::message(data).event_type("op").id(format!("{}-{}", self.epoch, note.seq))
    }

    fn reset(&self) -> Event {
        Event::message("{}").event_type("reset").id(self.position())
    }
}

/// The feed's cursor over the ledger, and the changes it already told.
#[derive(Debug)]
struct Reader {
    cursor: Timestamp,
    told: HashMap<OperationId, Timestamp>,
}

impl Reader {
    /// The rows of one read that are news: not told before at this `updated_at`.
    fn absorb(&mut self, rows: Vec<Change>) -> Vec<Change> {
        let mut news = Vec::new();
        for c in rows {
            self.cursor = self.cursor.max(c.updated_at);
            if self.told.insert(c.id, c.updated_at) != Some(c.updated_at) {
                news.push(c);
            }
        }
        news
    }

    /// Forgets what the next read cannot return again.
    fn forget_old(&mut self) {
        let horizon = self.cursor.minus(SLACK);
        self.told.retain(|_, t| *t >= horizon);
    }

    async fn look(&mut self, app: &App) -> Result<Vec<Change>> {
        let mut from = self.cursor.minus(SLACK);
        let mut news = Vec::new();
        loop {
            let rows = app.operations_changed_since(from, PAGE).await?;
            let full = rows.len() == PAGE as usize;
            let last = rows.last().map(|c| c.updated_at);
            news.extend(self.absorb(rows));
            match last {
                Some(t) if full && t > from => from = t,
                _ => break,
            }
        }
        self.forget_old();
        Ok(news)
    }
}

async fn run(feed: Weak<Feed>, app: App) {
    let mut woken = app.store().wakes.watch();
    // Commits of other processes (PostgreSQL NOTIFY): a listener of the feed's
    // own, dropped with this task. It ends at once on SQLite.
    let (notice, mut noticed) = tokio::sync::mpsc::unbounded_channel();
    let store = app.store().clone();
    let listen = store.listen_for_wakes(move |_| {
        let _ = notice.send(());
    });
    tokio::pin!(listen);
    let mut listening = true;
    let mut reader = Reader { cursor: app.now(), told: HashMap::new() };
    loop {
        tokio::select! {
            _ = woken.next() => {}
            Some(()) = noticed.recv() => while noticed.try_recv().is_ok() {},
            () = &mut listen, if listening => listening = false,
            () = tokio::time::sleep(POLL) => {}
        }
        let Some(feed) = feed.upgrade() else { return };
        match reader.look(&app).await {
            Ok(news) => news.into_iter().for_each(|c| feed.publish(c)),
            Err(e) => tracing::debug!(error = %e, "the dashboard's change feed could not read the ledger"),
        }
    }
}

/// One open stream.
struct Tab {
    receiver: broadcast::Receiver<Note>,
    feed: Arc<Feed>,
    state: AppState,
    cookie: String,
    checked: Instant,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct EventsQuery {
    last_event_id: Option<String>,
}

/// `GET /ui/events`: the change feed for one tab, from where it left off.
#[handler]
pub async fn stream(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(feed): Data<&Arc<Feed>>,
    query: Option<Query<EventsQuery>>,
) -> Response {
    // Not a redirect: an `EventSource` would follow it to the login page and retry forever.
    if session::current(req, state).await.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let header = req.headers().get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let after = header.or_else(|| query.and_then(|Query(q)| q.last_event_id));
    let (resume, receiver) = feed.subscribe(after.as_deref());
    let first: Vec<Event> = match resume {
        Resume::Replay(missed) => missed.into_iter().map(|n| feed.event(n)).collect(),
        Resume::Reset => vec![feed.reset()],
    };
    let cookie = session::cookie(req).unwrap_or_default();
    let tab = Tab { receiver, feed: feed.clone(), state: state.clone(), cookie, checked: Instant::now() };
    let live = futures_util::stream::unfold(tab, |mut tab| async move {
        loop {
            if tab.checked.elapsed() >= RECHECK {
                // An ended session (or a database that cannot say) ends the stream.
                tab.state.app.session(&tab.cookie).await.ok()?;
                tab.checked = Instant::now();
            }
            let event = match tokio::time::timeout(RECHECK, tab.receiver.recv()).await {
                Err(_) => continue,
                Ok(Ok(note)) => tab.feed.event(note),
                Ok(Err(RecvError::Lagged(_))) => tab.feed.reset(),
                Ok(Err(RecvError::Closed)) => return None,
            };
            return Some((event, tab));
        }
    });
    let stopping = state.shutdown.clone().cancelled_owned();
    let stream = futures_util::stream::iter(first).chain(live).take_until(stopping);
    SSE::new(stream).keep_alive(KEEP_ALIVE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp(chrono::DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap())
    }

    #[test]
    fn a_change_is_told_once_however_often_it_is_read() {
        let (a, b) = (OperationId::default(), OperationId::default());
        let change = |id, ms, status| Change { id, status, updated_at: at(ms) };
        let mut reader = Reader { cursor: at(0), told: HashMap::new() };
        let first = reader.absorb(vec![change(a, 10, OperationStatus::Queued)]);
        assert_eq!(first.len(), 1);
        // The next read reaches back over the same row: nothing new.
        assert!(reader.absorb(vec![change(a, 10, OperationStatus::Queued)]).is_empty());
        // A later change of the same operation, and one committed late with an earlier stamp.
        let news = reader.absorb(vec![change(b, 5, OperationStatus::Queued), change(a, 20, OperationStatus::Running)]);
        assert_eq!(
            news.iter().map(|c| (c.id, c.status)).collect::<Vec<_>>(),
            [(b, OperationStatus::Queued), (a, OperationStatus::Running)]
        );
        assert_eq!(reader.cursor, at(20));
        reader.cursor = at(20 + SLACK.as_millis() as i64);
        reader.forget_old();
        assert_eq!(reader.told.keys().copied().collect::<Vec<_>>(), [a]);
    }

    fn feed() -> Feed {
        Feed { epoch: "e".into(), sender: broadcast::channel(KEPT).0, recent: Mutex::default() }
    }

    fn publish(feed: &Feed, n: usize) {
        for _ in 0..n {
            let updated_at = Timestamp::now();
            feed.publish(Change { id: OperationId::default(), status: OperationStatus::Queued, updated_at });
        }
    }

    #[test]
    fn a_tab_resumes_after_its_last_id_or_is_told_to_reset() {
        let feed = feed();
        publish(&feed, 3);
        assert_eq!(feed.position(), "e-3");
        let replayed = |after| match feed.subscribe(Some(after)).0 {
            Resume::Replay(notes) => Some(notes.iter().map(|n| n.seq).collect::<Vec<_>>()),
            Resume::Reset => None,
        };
        assert_eq!(replayed("e-1"), Some(vec![2, 3]));
        assert_eq!(replayed("e-3"), Some(vec![]));
        assert_eq!(replayed("e-0"), Some(vec![1, 2, 3]));
        assert_eq!(replayed("e-4"), None, "an id from the future is from another start");
        assert_eq!(replayed("other-1"), None);
        assert_eq!(replayed("garbage"), None);
        publish(&feed, KEPT);
        assert_eq!(replayed("e-2"), None, "changes no longer kept");
        assert_eq!(replayed("e-3").map(|v| v.len()), Some(KEPT));
    }
}
