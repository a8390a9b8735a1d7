//! Notifications (the `notify` crate of DESIGN.md, named `alert` because
//! `notify` is the file-watching crate the indexer uses): routes from
//! `[[notify]]`, what to tell and when ([`planner`]), the channels (webhook,
//! command, GSM modem) tried in order, and the ledger of what was sent, in
//! the state directory ([`state`]).
//!
//! The follower runs a [`Notifier`]: a thread per route that looks at the
//! site after every catch-up (and every second, for what the wall clock
//! alone changes), and sends what is due. Sending never holds the cache: a
//! dead webhook or a slow modem delays only its own route.

pub mod command;
pub mod message;
pub mod modem;
pub mod planner;
pub mod route;
pub mod state;
pub mod webhook;

pub use message::{Item, Kind, Message};
pub use planner::{Change, Observation, Planner, LIVE_MS};
pub use route::{Channel, Route, Routes};
pub use state::{Ack, Entry, Failure, Outcome, Records, Silence, ACKS, LEDGER, SILENCES};

use logfile::Clock;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Tries of one channel before the next is tried.
pub const TRIES: u32 = 3;
/// The wait before the second try; it doubles for each further one.
const BACKOFF: Duration = Duration::from_millis(500);

/// What became of a message: sent by which channel, and the tries that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub outcome: Outcome,
    pub channel: Option<String>,
    pub failures: Vec<Failure>,
}

/// The fields of a message as environment variables for a command.
pub fn environment(m: &Message) -> Vec<(String, String)> {
    let first = m.items.first();
    let clean = |s: &str| s.replace('\0', "\\0");
    let env = vec![
        ("BLACKBOX_ID", m.id.clone()),
        ("BLACKBOX_KIND", m.kind.word().into()),
        ("BLACKBOX_STATUS", m.status().into()),
        ("BLACKBOX_SITE", clean(&m.site)),
        ("BLACKBOX_ROUTE", clean(&m.route)),
        ("BLACKBOX_LEVEL", m.level().word().into()),
        ("BLACKBOX_COLOUR", m.level().colour().into()),
        ("BLACKBOX_MESSAGE", clean(&m.headline())),
        ("BLACKBOX_COUNT", m.items.len().to_string()),
        ("BLACKBOX_DEVICE", first.map(|i| clean(&i.device)).unwrap_or_default()),
        ("BLACKBOX_DEVICES", clean(&m.items.iter().map(|i| i.device.as_str()).collect::<Vec<_>>().join(" "))),
        ("BLACKBOX_CHECK", first.and_then(|i| i.check.as_deref()).map(clean).unwrap_or_default()),
        ("BLACKBOX_VALUE", first.and_then(|i| i.value).map(|v| v.to_string()).unwrap_or_default()),
        ("BLACKBOX_TIME", first.map(|i| message::rfc3339(i.since_ms)).unwrap_or_default()),
        ("BLACKBOX_JSON", clean(&m.json().to_string())),
    ];
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One try of `channel`: `Ok` with what it said, or why not and whether another try may help.
fn try_once(channel: &Channel, m: &Message) -> Result<String, webhook::Failed> {
    use webhook::Failed;
    match channel {
        Channel::Webhook { url, timeout } => {
            webhook::post(url, &m.json().to_string(), *timeout).map(|code| format!("{url} answered {code}"))
        }
        Channel::Command { argv, timeout } => {
            command::run(argv, &m.text(), &environment(m), *timeout).map(|()| format!("{} exited with 0", argv[0])).map_err(Failed::Retry)
        }
        Channel::Modem { target, timeout } => {
            let text = modem::sms_text(&m.text());
            match modem::send(target, &text, *timeout) {
                Ok(refs) => Ok(format!(
                    "SMS to {} through {} (message reference {})",
                    target.to.join(", "),
                    target.port,
                    refs.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                )),
                Err(e) => Err(Failed::Retry(e.to_string())),
            }
        }
    }
}

/// Tries one channel up to [`TRIES`] times (a refusal ends it at once).
/// Every failed try is added to `failures`.
pub fn try_channel(channel: &Channel, m: &Message, failures: &mut Vec<Failure>) -> Option<String> {
    let mut wait = BACKOFF;
    for n in 1..=TRIES {
        match try_once(channel, m) {
            Ok(said) => return Some(said),
            Err(e) => {
                failures.push(Failure { channel: channel.word().into(), error: e.text().to_string() });
                tracing::info!(channel = channel.word(), route = %m.route, error = e.text(), "a notification try failed");
                if matches!(e, webhook::Failed::Final(_)) || n == TRIES {
                    return None;
                }
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
    None
}

/// Sends `m` through `route`'s channels in order until one succeeds.
pub fn deliver(route: &Route, m: &Message) -> Delivery {
    let mut failures = Vec::new();
    for c in &route.channels {
        if try_channel(c, m, &mut failures).is_some() {
            return Delivery { outcome: Outcome::Sent, channel: Some(c.word().into()), failures };
        }
    }
    Delivery { outcome: Outcome::Failed, channel: None, failures }
}

/// Looks at the site at a wall time: the follower's view of its cache.
pub type Look = dyn Fn(i64) -> Result<Observation, String> + Send + Sync;
/// Called with each ledger record written (for a live view).
pub type OnRecord = dyn Fn(&Entry) + Send + Sync;

#[derive(Debug, Default)]
struct Signal {
    generation: u64,
    stop: bool,
}

/// The notification threads of a follower, one per route. Dropping it
/// stops them after the message each may be sending.
pub struct Notifier {
    signal: Arc<(Mutex<Signal>, Condvar)>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// How long a route thread sleeps at most: the wall clock alone turns a
/// silent device grey, so the site is looked at this often.
const LOOK_EVERY: Duration = Duration::from_secs(1);

impl Notifier {
    /// Starts a thread per route. The ledger is read once here; warnings about it are returned.
    pub fn start(
        routes: &Routes,
        clock: Arc<dyn Clock>,
        look: Arc<Look>,
        on_record: Arc<OnRecord>,
    ) -> std::io::Result<(Notifier, Vec<String>)> {
        let ledger = Records::new(&routes.state, LEDGER);
        let (entries, warnings) = ledger.read::<Entry>()?;
        let signal: Arc<(Mutex<Signal>, Condvar)> = Arc::default();
        // One writer at a time: the torn-tail check and the append go together.
        let writing = Arc::new(Mutex::new(ledger));
        for route in &routes.routes {
            let planner = Planner::new(route.clone(), &routes.site, &entries);
            let run = RouteThread {
                planner,
                signal: signal.clone(),
                clock: clock.clone(),
                look: look.clone(),
                on_record: on_record.clone(),
                ledger: writing.clone(),
                acks: Records::new(&routes.state, ACKS),
                silences: Records::new(&routes.state, SILENCES),
            };
            std::thread::Builder::new().name(format!("notify {}", route.name)).spawn(move || run.run())?;
        }
        Ok((Notifier { signal }, warnings))
    }

    /// Something may have changed (the follower indexed new lines).
    pub fn wake(&self) {
        let (lock, cv) = &*self.signal;
        lock.lock().unwrap_or_else(PoisonError::into_inner).generation += 1;
        cv.notify_all();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let (lock, cv) = &*self.signal;
        lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        cv.notify_all();
    }
}

struct RouteThread {
    planner: Planner,
    signal: Arc<(Mutex<Signal>, Condvar)>,
    clock: Arc<dyn Clock>,
    look: Arc<Look>,
    on_record: Arc<OnRecord>,
    ledger: Arc<Mutex<Records>>,
    acks: Records,
    silences: Records,
}

impl RouteThread {
    fn run(mut self) {
        let mut seen = u64::MAX;
        loop {
            // Wait for a catch-up, the next due time, or a second at most.
            {
                let now = self.clock.now().wall_ms;
                let due = self.planner.next_due().map_or(LOOK_EVERY, |t| Duration::from_millis((t - now).clamp(0, 1000) as u64));
                let (lock, cv) = &*self.signal;
                let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
                if !s.stop && s.generation == seen {
                    s = cv.wait_timeout(s, due.min(LOOK_EVERY)).unwrap_or_else(PoisonError::into_inner).0;
                }
                if s.stop {
                    return;
                }
                seen = s.generation;
            }
            let now = self.clock.now().wall_ms;
            let acks: Vec<Ack> = self.acks.read().map(|r| r.0).unwrap_or_default();
            let silences: Vec<Silence> = self.silences.read().map(|r| r.0).unwrap_or_default();
            match (self.look)(now) {
                Ok(obs) => self.planner.observe(&obs, &silences),
                Err(e) => tracing::warn!(error = %e, "notifications could not look at the cache"),
            }
            while let Some(m) = self.planner.due(now, &acks, &silences) {
                let d = deliver(self.planner.route(), &m);
                let entry =
                    Entry { at_ms: self.clock.now().wall_ms, outcome: d.outcome, channel: d.channel, failures: d.failures, message: m };
                let written = self.ledger.lock().unwrap_or_else(PoisonError::into_inner).append(&entry);
                if let Err(e) = written {
                    // Told but not recorded: it may be told again after a restart (with the same id).
                    tracing::error!(error = %e, "cannot record a notification in the ledger");
                }
                if entry.outcome == Outcome::Failed {
                    tracing::error!(route = %entry.message.route, id = %entry.message.id, "every channel failed; trying again at the next repeat");
                }
                self.planner.settle(entry.outcome, entry.at_ms);
                (self.on_record)(&entry);
                if self.signal.0.lock().unwrap_or_else(PoisonError::into_inner).stop {
                    return;
                }
            }
        }
    }
}
