//! What to tell, and when, for one route: a pure function of what the
//! follower observed, the ledger, acknowledgements, silences and the wall
//! time given (no clock, no I/O), so every rule is tested directly.
//!
//! - A device's *episode* is its level and the data time it began. The
//!   route has told an episode when the ledger has a sent message with it.
//! - Live changes (data time within [`LIVE_MS`] of the wall time) are told
//!   one by one, grouped by `group_wait`: the device transitions the indexer
//!   stored, so a change that came and went between two looks is told too,
//!   and the wall-time status (a device silent long enough is grey now,
//!   even if no line came since).
//! - An episode that differs from what was told and began before that
//!   window (blackbox was not watching: down, catching up, rebuilt with
//!   other checks) is told in one summary, not change by change.
//! - `repeat` tells a covered episode again while it lasts, unless it is
//!   acknowledged; silenced devices are not told at all (when the silence
//!   ends, what then stands and was not told goes in a summary).

use crate::message::{Item, Kind, Message};
use crate::route::Route;
use crate::state::{active_silences, Ack, Entry, Outcome, Silence};
use health::{Level, Status};
use std::collections::{BTreeMap, HashSet};

/// How old (in data time, against the wall clock) a change may be and still
/// be told on its own: older ones go in a summary.
pub const LIVE_MS: i64 = 5 * 60_000;

/// A device's transition, as the indexer stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub device: String,
    pub source: String,
    pub from: Level,
    pub to: Level,
    pub at_ms: i64,
    pub why: String,
    pub value: Option<f64>,
    pub check: Option<String>,
}

/// What the follower sees at one moment.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Wall time.
    pub now_ms: i64,
    /// Device transitions whose data time is within [`LIVE_MS`] of `now_ms`, in log order.
    pub changes: Vec<Change>,
    /// The site at `now_ms` ([`health::Health::status_at`]).
    pub status: Status,
}

/// The episode a route last told for a device.
#[derive(Debug, Clone, PartialEq)]
struct Told {
    /// As the route sees it: `None` for a level it does not cover.
    level: Option<Level>,
    since_ms: i64,
    /// Wall time of the last message about it.
    at_ms: i64,
    sends: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    item: Item,
    seen_ms: i64,
    kind: Kind,
}

/// The last status of a device, for repeats and the level a change comes from.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    why: String,
    value: Option<f64>,
    check: Option<String>,
    source: String,
}

/// One route's plan.
#[derive(Debug)]
pub struct Planner {
    route: Route,
    site: String,
    told: BTreeMap<String, Told>,
    told_ids: HashSet<String>,
    pending: Vec<Pending>,
    in_flight: Option<Message>,
    retry_at: Option<i64>,
    seen: BTreeMap<String, Seen>,
}

impl Planner {
    /// A plan for `route`, resumed from the ledger's `entries` (all routes').
    pub fn new(route: Route, site: &str, entries: &[Entry]) -> Planner {
        let mut p = Planner {
            route,
            site: site.into(),
            told: BTreeMap::new(),
            told_ids: HashSet::new(),
            pending: Vec::new(),
            in_flight: None,
            retry_at: None,
            seen: BTreeMap::new(),
        };
        for e in entries {
            if e.outcome == Outcome::Sent && e.message.route == p.route.name && e.message.kind != Kind::Test {
                p.record(&e.message, e.at_ms);
            }
        }
        p
    }

    pub fn route(&self) -> &Route {
        &self.route
    }

    fn told_level(&self, device: &str) -> (Option<Level>, i64) {
        self.told.get(device).map_or((None, i64::MIN), |t| (t.level, t.since_ms))
    }

    fn is_pending(&self, id: &str) -> bool {
        self.pending.iter().any(|p| p.item.id == id) || self.in_flight.as_ref().is_some_and(|m| m.items.iter().any(|i| i.id == id))
    }

    fn item(&self, device: &str, source: &str, from: Level, to: Level, since_ms: i64, seen: Option<&Seen>) -> Item {
        let (why, value, check) = match seen {
            Some(s) => (s.why.clone(), s.value, s.check.clone()),
            None => (String::new(), None, None),
        };
        Item {
            id: Item::id_of(&self.route.name, device, to, since_ms),
            device: device.into(),
            source: source.into(),
            from,
            to,
            since_ms,
            why,
            value,
            check,
            firing: self.route.covers(to),
            ends: None,
        }
    }

    /// For a change out of the route's levels: the told episode it ends.
    fn ending(&self, device: &str, from: Level) -> Option<(String, i64)> {
        let t = self.told.get(device)?;
        (t.level == Some(from)).then(|| (Item::id_of(&self.route.name, device, from, t.since_ms), t.since_ms))
    }

    /// Takes in what the follower sees now.
    pub fn observe(&mut self, obs: &Observation, silences: &[Silence]) {
        let now = obs.now_ms;
        let silenced = active_silences(silences, now);
        let is_silenced = |device: &str| silenced.iter().any(|(g, _)| g.matches(device));
        // The devices' transitions first: each live one the route covers is told.
        for c in &obs.changes {
            if !self.route.watches(&c.device) || is_silenced(&c.device) {
                continue;
            }
            let relevant = self.route.covers(c.to) || (self.route.resolved && self.route.covers(c.from));
            let (_, told_since) = self.told_level(&c.device);
            if !relevant || c.at_ms <= told_since || now - c.at_ms > LIVE_MS {
                continue;
            }
            let seen = Seen { level: c.to, why: c.why.clone(), value: c.value, check: c.check.clone(), source: c.source.clone() };
            let mut item = self.item(&c.device, &c.source, c.from, c.to, c.at_ms, Some(&seen));
            if !item.firing {
                item.ends = self.ending(&c.device, c.from);
            }
            if !self.told_ids.contains(&item.id) && !self.is_pending(&item.id) {
                self.pending.push(Pending { item, seen_ms: now, kind: Kind::Change });
            }
        }
        // Then what stands now: wall-time grey and black, and what blackbox did not see happen.
        for d in &obs.status.devices {
            let check = d.results.first().map(|r| r.check.clone());
            let value = d.results.first().and_then(|r| r.value);
            let seen = Seen { level: d.level, why: d.why.clone(), value, check, source: d.source.clone() };
            let before = self.seen.insert(d.device.clone(), seen.clone()).map_or(Level::Ok, |s| s.level);
            if !self.route.watches(&d.device) {
                continue;
            }
            let want = self.route.routed(d.level);
            let (told, told_since) = self.told_level(&d.device);
            if want == told && (want.is_none() || d.since_ms == told_since) {
                // Back where it was told: a summary about it has nothing left to say.
                self.pending.retain(|p| !(p.kind == Kind::Summary && p.item.device == d.device));
                continue;
            }
            if want.is_none() && (!self.route.resolved || told.is_none()) {
                // Out of the route's levels, and not to be told so.
                self.told.insert(d.device.clone(), Told { level: None, since_ms: d.since_ms, at_ms: now, sends: 0 });
                continue;
            }
            let id = Item::id_of(&self.route.name, &d.device, d.level, d.since_ms);
            if self.told_ids.contains(&id) || self.is_pending(&id) || is_silenced(&d.device) {
                continue;
            }
            let live = now - d.since_ms <= LIVE_MS;
            let from = if live { before } else { told.unwrap_or(Level::Ok) };
            let mut item = self.item(&d.device, &d.source, from, d.level, d.since_ms, Some(&seen));
            if !item.firing {
                item.ends = told.and_then(|l| self.ending(&d.device, l));
            }
            // A summary says what stands: an older one about this device is replaced.
            self.pending.retain(|p| !(p.kind == Kind::Summary && p.item.device == d.device));
            self.pending.push(Pending { item, seen_ms: now, kind: if live { Kind::Change } else { Kind::Summary } });
        }
        self.pending.retain(|p| !is_silenced(&p.item.device));
    }

    /// The next message to send at wall time `now_ms`, if one is due. It is
    /// in flight until [`Planner::settle`]; none is due meanwhile.
    pub fn due(&mut self, now_ms: i64, acks: &[Ack], silences: &[Silence]) -> Option<Message> {
        if self.in_flight.is_some() || self.retry_at.is_some_and(|t| now_ms < t) {
            return None;
        }
        self.retry_at = None;
        let oldest = self.pending.iter().map(|p| p.seen_ms).min();
        if oldest.is_some_and(|t| t + self.route.group_wait_ms <= now_ms) {
            // Live changes first, in the order they happened; then the summary.
            let kind = if self.pending.iter().any(|p| p.kind == Kind::Change) { Kind::Change } else { Kind::Summary };
            let (mut take, keep): (Vec<Pending>, Vec<Pending>) = self.pending.drain(..).partition(|p| p.kind == kind);
            self.pending = keep;
            take.sort_by(|a, b| (a.item.since_ms, &a.item.device).cmp(&(b.item.since_ms, &b.item.device)));
            let items: Vec<Item> = take.into_iter().map(|p| p.item).collect();
            return Some(self.fly(Message::new(kind, &self.route.name, &self.site, now_ms, items, 0)));
        }
        let silenced = active_silences(silences, now_ms);
        let repeatable = |device: &String, t: &Told| -> Option<Level> {
            let level = t.level?;
            let acked = acks.iter().any(|a| a.device == *device && a.holds(level, t.since_ms, now_ms));
            let quiet = silenced.iter().any(|(g, _)| g.matches(device)) || self.pending.iter().any(|p| p.item.device == *device);
            (!acked && !quiet && self.route.watches(device)).then_some(level)
        };
        // When one device's repeat is due, those due within half a period
        // go with it: one message, and their repeats keep together from then on.
        if !self.told.iter().any(|(d, t)| repeatable(d, t).is_some() && t.at_ms + self.route.repeat_ms <= now_ms) {
            return None;
        }
        let mut items = Vec::new();
        let mut salt = 0;
        for (device, t) in &self.told {
            let Some(level) = repeatable(device, t) else { continue };
            if t.at_ms + self.route.repeat_ms - self.route.repeat_ms / 2 > now_ms {
                continue;
            }
            let seen = self.seen.get(device).filter(|s| s.level == level);
            let source = seen.map_or_else(|| device.split('/').next().unwrap_or("").to_string(), |s| s.source.clone());
            items.push(self.item(device, &source, level, level, t.since_ms, seen));
            salt = salt.max(t.sends);
        }
        if items.is_empty() {
            return None;
        }
        Some(self.fly(Message::new(Kind::Repeat, &self.route.name, &self.site, now_ms, items, salt)))
    }

    fn fly(&mut self, m: Message) -> Message {
        self.in_flight = Some(m.clone());
        m
    }

    /// When the next message could be due (for the sender's sleep): `None`
    /// when only a new observation can make one.
    pub fn next_due(&self) -> Option<i64> {
        let group = self.pending.iter().map(|p| p.seen_ms + self.route.group_wait_ms).min();
        let repeat = self.told.values().filter(|t| t.level.is_some()).map(|t| t.at_ms + self.route.repeat_ms).min();
        let next = group.into_iter().chain(repeat).min()?;
        Some(self.retry_at.map_or(next, |r| next.max(r)))
    }

    /// What became of the message in flight, at wall time `now_ms`.
    pub fn settle(&mut self, outcome: Outcome, now_ms: i64) {
        let Some(m) = self.in_flight.take() else { return };
        match outcome {
            Outcome::Sent => self.record(&m, now_ms),
            Outcome::Failed => {
                // Tried again at the next `repeat` (a repeat is simply made again then).
                self.retry_at = Some(now_ms + self.route.repeat_ms);
                if m.kind != Kind::Repeat {
                    let back = m.items.into_iter().map(|item| Pending { item, seen_ms: now_ms, kind: m.kind });
                    self.pending.splice(0..0, back);
                }
            }
        }
    }

    fn record(&mut self, m: &Message, at_ms: i64) {
        for i in &m.items {
            self.told_ids.insert(i.id.clone());
            let t = self.told.entry(i.device.clone()).or_insert(Told { level: None, since_ms: i64::MIN, at_ms, sends: 0 });
            if i.since_ms >= t.since_ms {
                let same = t.since_ms == i.since_ms && t.level == self.route.routed(i.to);
                *t = Told { level: self.route.routed(i.to), since_ms: i.since_ms, at_ms, sends: if same { t.sends + 1 } else { 1 } };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use health::DeviceStatus;

    const T0: i64 = 1_780_000_000_000;

    fn route(resolved: bool) -> Route {
        Route {
            name: "on call".into(),
            levels: vec![Level::Error, Level::Critical, Level::Grey, Level::Black],
            devices: Vec::new(),
            channels: Vec::new(),
            group_wait_ms: 30_000,
            repeat_ms: 3_600_000,
            resolved,
        }
    }

    fn dev(name: &str, level: Level, since_ms: i64) -> DeviceStatus {
        DeviceStatus {
            device: name.into(),
            source: "usb".into(),
            level,
            since_ms,
            why: format!("{} now", level.word()),
            last_seen_ms: since_ms,
            results: Vec::new(),
        }
    }

    fn change(name: &str, from: Level, to: Level, at_ms: i64) -> Change {
        Change { device: name.into(), source: "usb".into(), from, to, at_ms, why: String::new(), value: None, check: None }
    }

    fn obs(now_ms: i64, changes: Vec<Change>, devices: Vec<DeviceStatus>) -> Observation {
        Observation { now_ms, changes, status: Status { at_ms: now_ms, level: Level::Ok, devices } }
    }

    fn send(p: &mut Planner, now: i64) -> Option<Message> {
        let m = p.due(now, &[], &[])?;
        p.settle(Outcome::Sent, now);
        Some(m)
    }

    fn devices(m: &Message) -> Vec<(&str, Level, bool)> {
        m.items.iter().map(|i| (i.device.as_str(), i.to, i.firing)).collect()
    }

    #[test]
    fn twenty_devices_grey_at_once_are_one_message() {
        let mut p = Planner::new(route(true), "home", &[]);
        let names: Vec<String> = (0..20).map(|i| format!("usb/node-{i}")).collect();
        let ok: Vec<_> = names.iter().map(|n| dev(n, Level::Ok, T0 - 60_000)).collect();
        p.observe(&obs(T0, vec![], ok), &[]);
        assert!(p.due(T0 + 60_000, &[], &[]).is_none(), "nothing to tell while all is green");
        // The power cut: they go grey by the wall clock a second apart.
        for k in 0..20 {
            let now = T0 + 100_000 + k * 1000;
            let grey: Vec<_> = names
                .iter()
                .enumerate()
                .map(
                    |(i, n)| {
                        if i as i64 <= k {
                            dev(n, Level::Grey, T0 + 100_000 + i as i64 * 1000)
                        } else {
                            dev(n, Level::Ok, T0 - 60_000)
                        }
                    },
                )
                .collect();
            p.observe(&obs(now, vec![], grey), &[]);
            assert!(p.due(now, &[], &[]).is_none(), "held for group_wait");
        }
        let m = send(&mut p, T0 + 130_000).expect("one message");
        assert_eq!(m.kind, Kind::Change);
        assert_eq!(m.items.len(), 20);
        assert!(m.items.iter().all(|i| i.to == Level::Grey && i.from == Level::Ok && i.firing));
        assert!(p.due(T0 + 200_000, &[], &[]).is_none(), "told once");
    }

    #[test]
    fn changes_are_told_once_even_those_that_came_and_went() {
        let mut p = Planner::new(route(true), "home", &[]);
        let a = "usb/a";
        // Critical and back between two looks: the stored transitions say so.
        let changes = vec![change(a, Level::Ok, Level::Critical, T0), change(a, Level::Critical, Level::Ok, T0 + 5000)];
        p.observe(&obs(T0 + 6000, changes.clone(), vec![dev(a, Level::Ok, T0 + 5000)]), &[]);
        let m = send(&mut p, T0 + 36_000).expect("told");
        assert_eq!(devices(&m), [(a, Level::Critical, true), (a, Level::Ok, false)]);
        // The same transitions seen again (the next look, or after a restart from the ledger).
        p.observe(&obs(T0 + 40_000, changes.clone(), vec![dev(a, Level::Ok, T0 + 5000)]), &[]);
        assert!(p.due(T0 + 100_000, &[], &[]).is_none());
        let entry = Entry { at_ms: T0 + 36_000, outcome: Outcome::Sent, channel: None, failures: vec![], message: m };
        let mut again = Planner::new(route(true), "home", &[entry]);
        again.observe(&obs(T0 + 40_000, changes, vec![dev(a, Level::Ok, T0 + 5000)]), &[]);
        assert!(again.due(T0 + 100_000, &[], &[]).is_none(), "the ledger remembers");
    }

    #[test]
    fn resolved_repeat_ack_and_silence() {
        let mut p = Planner::new(route(true), "home", &[]);
        let a = "usb/a";
        p.observe(&obs(T0, vec![change(a, Level::Ok, Level::Error, T0)], vec![dev(a, Level::Error, T0)]), &[]);
        assert_eq!(devices(&send(&mut p, T0 + 30_000).unwrap()), [(a, Level::Error, true)]);
        // Still error an hour later: a repeat, with the same episode.
        let later = T0 + 30_000 + 3_600_000;
        p.observe(&obs(later, vec![], vec![dev(a, Level::Error, T0)]), &[]);
        let r = send(&mut p, later).expect("repeat");
        assert_eq!((r.kind, devices(&r)), (Kind::Repeat, vec![(a, Level::Error, true)]));
        // Acknowledged: no more repeats of this episode.
        let ack = Ack { at_ms: later, device: a.into(), level: Level::Error, since_ms: T0, until_ms: None, note: None };
        assert!(p.due(later + 3_600_000, std::slice::from_ref(&ack), &[]).is_none());
        // Worse: a change, told although acknowledged (the ack was for the error).
        let t1 = later + 3_600_000;
        p.observe(&obs(t1, vec![change(a, Level::Error, Level::Critical, t1)], vec![dev(a, Level::Critical, t1)]), &[]);
        assert_eq!(devices(&p.due(t1 + 30_000, std::slice::from_ref(&ack), &[]).unwrap()), [(a, Level::Critical, true)]);
        p.settle(Outcome::Sent, t1 + 30_000);
        // Silenced: the recovery is not told while it lasts.
        let t2 = t1 + 60_000;
        let silence = Silence { at_ms: t2, glob: "usb/*".into(), until_ms: t2 + 7_200_000, note: None, cleared: false };
        let s = std::slice::from_ref(&silence);
        p.observe(&obs(t2, vec![change(a, Level::Critical, Level::Warning, t2)], vec![dev(a, Level::Warning, t2)]), s);
        assert!(p.due(t2 + 60_000, &[], s).is_none());
        // After it, what stands and was not told goes in a summary.
        let t3 = t2 + 7_200_000;
        p.observe(&obs(t3, vec![], vec![dev(a, Level::Warning, t2)]), s);
        let m = send(&mut p, t3 + 30_000).expect("summary");
        assert_eq!((m.kind, devices(&m)), (Kind::Summary, vec![(a, Level::Warning, false)]));
        assert!(m.headline().contains("not watching"), "{}", m.headline());
    }

    #[test]
    fn history_is_summarised_and_resolved_false_stays_quiet() {
        // First start on a site with a history: what is not green now, in one summary.
        let mut p = Planner::new(route(false), "home", &[]);
        let day = 86_400_000;
        let history =
            vec![dev("usb/a", Level::Critical, T0 - day), dev("usb/b", Level::Black, T0 - 3 * day), dev("usb/c", Level::Ok, T0 - day)];
        p.observe(&obs(T0, vec![], history), &[]);
        let m = send(&mut p, T0 + 30_000).expect("summary");
        assert_eq!((m.kind, devices(&m)), (Kind::Summary, vec![("usb/b", Level::Black, true), ("usb/a", Level::Critical, true)]));
        // resolved = false: back to ok is not told, and no repeat of it follows.
        let t = T0 + 60_000;
        p.observe(&obs(t, vec![change("usb/a", Level::Critical, Level::Ok, t)], vec![dev("usb/a", Level::Ok, t)]), &[]);
        assert!(p.due(t + 30_000, &[], &[]).is_none());
        let r = send(&mut p, T0 + 30_000 + 3_600_000).expect("repeat of b only");
        assert_eq!(devices(&r), [("usb/b", Level::Black, true)]);
    }

    #[test]
    fn a_failed_message_waits_for_the_next_repeat() {
        let mut p = Planner::new(route(true), "home", &[]);
        p.observe(&obs(T0, vec![change("usb/a", Level::Ok, Level::Error, T0)], vec![dev("usb/a", Level::Error, T0)]), &[]);
        let m = p.due(T0 + 30_000, &[], &[]).unwrap();
        assert!(p.due(T0 + 30_000, &[], &[]).is_none(), "one in flight at a time");
        p.settle(Outcome::Failed, T0 + 31_000);
        assert!(p.due(T0 + 60_000, &[], &[]).is_none());
        assert_eq!(p.next_due(), Some(T0 + 31_000 + 3_600_000));
        let again = p.due(T0 + 31_000 + 3_600_000, &[], &[]).expect("retried");
        assert_eq!(again.id, m.id, "the same message, the same id");
    }

    #[test]
    fn repeats_go_together_and_a_resolution_names_what_it_ends() {
        let mut p = Planner::new(route(true), "home", &[]);
        p.observe(&obs(T0, vec![change("usb/a", Level::Ok, Level::Error, T0)], vec![dev("usb/a", Level::Error, T0)]), &[]);
        let first = send(&mut p, T0 + 30_000).unwrap();
        let t1 = T0 + 600_000;
        p.observe(
            &obs(
                t1,
                vec![change("usb/b", Level::Ok, Level::Error, t1)],
                vec![dev("usb/a", Level::Error, T0), dev("usb/b", Level::Error, t1)],
            ),
            &[],
        );
        send(&mut p, t1 + 30_000).unwrap();
        // a's repeat is due first; b's, ten minutes later, goes with it.
        let r = send(&mut p, T0 + 30_000 + 3_600_000).expect("repeat");
        assert_eq!(devices(&r), [("usb/a", Level::Error, true), ("usb/b", Level::Error, true)]);
        assert!(p.due(t1 + 30_000 + 3_600_000, &[], &[]).is_none(), "b was repeated already");
        // a recovers: the resolved alert carries the id of the alert it ends.
        let t2 = T0 + 2 * 3_600_000;
        p.observe(
            &obs(t2, vec![change("usb/a", Level::Error, Level::Ok, t2)], vec![dev("usb/a", Level::Ok, t2), dev("usb/b", Level::Error, t1)]),
            &[],
        );
        let m = send(&mut p, t2 + 30_000).unwrap();
        assert_eq!(m.items[0].ends, Some((first.items[0].id.clone(), T0)));
        let j = m.json();
        assert_eq!(j["alerts"][0]["fingerprint"], first.json()["alerts"][0]["fingerprint"]);
        assert_eq!(j["alerts"][0]["labels"], first.json()["alerts"][0]["labels"]);
        assert_eq!(j["alerts"][0]["status"], "resolved");
    }
}
