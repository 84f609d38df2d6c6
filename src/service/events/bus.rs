//! The bus: publishing never waits for a consumer. Each consumer reads through its own
//! bounded window of the broadcast channel; one that falls behind by more than the window
//! catches up from the events the bus keeps (at least [`KEEP_FOR`] or [`KEEP_EVENTS`] of
//! them), and only what fell out of those is lost to it, counted and logged.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use super::{Event, EventBody};
use crate::time;

/// Events kept for consumers that resume (`Last-Event-ID`) or fall behind: every event of the
/// last [`KEEP_FOR`], and at least the last [`KEEP_EVENTS`] whatever their age.
pub const KEEP_EVENTS: usize = 10_000;
pub const KEEP_FOR: Duration = Duration::from_secs(600);
/// The most kept however young (a burst of events cannot take unbounded memory).
const KEEP_AT_MOST: usize = 100_000;
/// Each consumer's window on the live stream, before it reads from the kept events instead.
const WINDOW: usize = 1024;

#[derive(Debug)]
pub struct EventBus {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<Event>>,
    /// Events each consumer lost, by consumer name (for the metrics page).
    lost: Mutex<HashMap<&'static str, Arc<AtomicU64>>>,
}

#[derive(Debug)]
struct Inner {
    /// This run's first id: nothing before it was ever published here, so nothing before it
    /// is missed by a consumer resuming from an older id (a previous run's).
    first_id: u64,
    next_id: u64,
    /// Oldest first, with when each was published.
    kept: VecDeque<(Instant, Arc<Event>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(SystemTime::now())
    }
}

impl EventBus {
    /// A bus whose first id is `started` in Unix seconds × 1,000,000 + 1: ids keep growing
    /// across restarts (a run would need a million events a second to reach the next run's).
    pub fn new(started: SystemTime) -> EventBus {
        let secs = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        EventBus::starting_at(secs.saturating_mul(1_000_000) + 1)
    }

    pub fn starting_at(first_id: u64) -> EventBus {
        EventBus {
            inner: Mutex::new(Inner {
                first_id,
                next_id: first_id,
                kept: VecDeque::new(),
            }),
            live: broadcast::channel(WINDOW).0,
            lost: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the event its id and time, keeps it, and hands it to every consumer. Never
    /// waits for one.
    pub fn publish(&self, body: EventBody) -> Arc<Event> {
        let mut inner = lock(&self.inner);
        let event = Arc::new(Event {
            id: inner.next_id,
            time: time::rfc3339(SystemTime::now()),
            body,
        });
        inner.next_id += 1;
        let now = Instant::now();
        inner.kept.push_back((now, event.clone()));
        while inner.kept.len() > KEEP_EVENTS
            && inner.kept.front().is_some_and(|(at, _)| {
                now.duration_since(*at) > KEEP_FOR || inner.kept.len() > KEEP_AT_MOST
            })
        {
            inner.kept.pop_front();
        }
        // Sent under the lock, so every consumer sees ids in order.
        let _ = self.live.send(event.clone());
        drop(inner);
        tracing::debug!(id = event.id, kind = event.body.kind.name(), "event");
        event
    }

    fn first_id(&self) -> u64 {
        lock(&self.inner).first_id
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        lock(&self.inner).next_id
    }

    /// Kept events after `id`, oldest first, and how many after it are no longer kept.
    pub fn since(&self, id: u64) -> (Vec<Arc<Event>>, u64) {
        let inner = lock(&self.inner);
        let events: Vec<Arc<Event>> = inner
            .kept
            .iter()
            .filter(|(_, e)| e.id > id)
            .map(|(_, e)| e.clone())
            .collect();
        let first_kept = events.first().map_or(inner.next_id, |e| e.id);
        let missing = first_kept.saturating_sub(id.saturating_add(1).max(inner.first_id));
        (events, missing)
    }

    /// A consumer named `name` (in logs and metrics) reading every event from the next one
    /// on; with `after`, from the first kept event after that id.
    pub fn subscribe(self: &Arc<Self>, name: &'static str, after: Option<u64>) -> Subscription {
        // Subscribed before reading the kept events: nothing published in between is missed
        // (what is in both is skipped by id).
        let live = self.live.subscribe();
        let last = match after {
            Some(id) => id,
            None => self.next_id().saturating_sub(1),
        };
        let lost = lock(&self.lost).entry(name).or_default().clone();
        let mut s = Subscription {
            bus: self.clone(),
            name,
            live,
            backlog: VecDeque::new(),
            last,
            lost,
        };
        if after.is_some() {
            s.catch_up();
        }
        s
    }

    /// Events lost so far, per consumer name.
    pub fn lost(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = lock(&self.lost)
            .iter()
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
            .collect();
        v.sort();
        v
    }
}

/// One consumer's view of the bus: every event once, in id order.
#[derive(Debug)]
pub struct Subscription {
    bus: Arc<EventBus>,
    name: &'static str,
    live: broadcast::Receiver<Arc<Event>>,
    backlog: VecDeque<Arc<Event>>,
    /// The last id handed out (or skipped as lost).
    last: u64,
    lost: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                self.last = e.id;
                return Some(e);
            }
            // An id from before this run: go on from the first of this run.
            self.last = self.last.max(self.bus.first_id().saturating_sub(1));
            match self.live.recv().await {
                Ok(e) if e.id > self.last => {
                    if e.id > self.last + 1 {
                        // Published between subscribing and the catch-up read, or after a
                        // loss: take the kept ones first.
                        self.catch_up();
                        continue;
                    }
                    self.last = e.id;
                    return Some(e);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                self.last = e.id;
                return Some(e);
            }
            self.last = self.last.max(self.bus.first_id().saturating_sub(1));
            match self.live.try_recv() {
                Ok(e) if e.id == self.last + 1 => {
                    self.last = e.id;
                    return Some(e);
                }
                Ok(e) if e.id > self.last => self.catch_up(),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.catch_up(),
                Err(_) => return None,
            }
        }
    }

    /// The id of the last event handed out.
    pub fn last_id(&self) -> u64 {
        self.last
    }

    /// Refills the backlog from the kept events after the last one handed out; what is no
    /// longer kept is lost to this consumer.
    fn catch_up(&mut self) {
        let (events, missing) = self.bus.since(self.last);
        if missing > 0 {
            self.lost.fetch_add(missing, Ordering::Relaxed);
            tracing::warn!(
                consumer = self.name,
                lost = missing,
                "an event consumer fell behind by more than the kept events; those are lost to it"
            );
            self.last += missing;
        }
        self.backlog = events.into();
    }
}

#[cfg(test)]
mod tests {
    use super::super::EventKind;
    use super::*;

    fn body(n: usize) -> EventBody {
        EventBody {
            reason: Some(n.to_string()),
            ..EventBody::new(EventKind::ServiceStarted)
        }
    }

    #[tokio::test]
    async fn ids_grow_by_one_and_every_consumer_gets_each_event_once_in_order() {
        let bus = Arc::new(EventBus::starting_at(7));
        let mut a = bus.subscribe("a", None);
        let mut b = bus.subscribe("b", None);
        for n in 0..5 {
            bus.publish(body(n));
        }
        for s in [&mut a, &mut b] {
            let ids: Vec<u64> = (0..5).map(|_| s.try_recv().expect("event").id).collect();
            assert_eq!(ids, [7, 8, 9, 10, 11]);
            assert!(s.try_recv().is_none());
        }
    }

    /// A consumer far behind the live window reads on from the kept events, losing nothing;
    /// publishing never waited for it.
    #[tokio::test]
    async fn a_slow_consumer_catches_up_from_the_kept_events() {
        let bus = Arc::new(EventBus::starting_at(1));
        let mut slow = bus.subscribe("slow", None);
        let n = WINDOW * 3;
        for i in 0..n {
            bus.publish(body(i));
        }
        for want in 1..=n as u64 {
            assert_eq!(slow.recv().await.expect("event").id, want);
        }
        assert_eq!(bus.lost(), [("slow", 0)]);
    }

    /// Past the kept events (all young here, so up to the cap), what fell out is counted as
    /// lost, and reading goes on from the oldest kept one.
    #[tokio::test]
    async fn what_is_no_longer_kept_is_counted_as_lost() {
        let bus = Arc::new(EventBus::starting_at(1));
        let mut slow = bus.subscribe("slow", None);
        let n = KEEP_AT_MOST + 500;
        for i in 0..n {
            bus.publish(body(i));
        }
        let first = slow.recv().await.expect("event");
        assert_eq!(first.id, 501);
        assert_eq!(bus.lost(), [("slow", 500)]);
    }

    #[tokio::test]
    async fn resuming_after_an_id_gives_exactly_the_events_after_it() {
        let bus = Arc::new(EventBus::starting_at(100));
        for i in 0..10 {
            bus.publish(body(i));
        }
        let mut resumed = bus.subscribe("sse", Some(104));
        bus.publish(body(10));
        let mut ids = Vec::new();
        while let Some(e) = resumed.try_recv() {
            ids.push(e.id);
        }
        assert_eq!(ids, (105..=110).collect::<Vec<_>>());
        // Resuming from before this run (an id of the previous one) misses nothing.
        let (events, missing) = bus.since(0);
        assert_eq!((events.len(), missing), (11, 0));
        let mut from_before = bus.subscribe("sse", Some(3));
        assert_eq!(from_before.try_recv().map(|e| e.id), Some(100));
    }

    #[test]
    fn ids_start_from_the_start_time_and_stay_exact_in_javascript() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800); // 2100-01-01
        let bus = EventBus::new(at);
        let id = bus.publish(body(0)).id;
        assert_eq!(id, 4_102_444_800_000_001);
        assert!(id < 1 << 53);
    }
}
