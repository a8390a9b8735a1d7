//! What is told: items (one device's change) gathered into a message, with
//! stable ids, as text (for people, a command's stdin and SMS) and as JSON
//! (for webhooks, shaped like Alertmanager's).

use health::Level;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One device's change, as told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable: the route, the device, the level and the data time it began.
    pub id: String,
    /// `SOURCE/DEVICE`.
    pub device: String,
    pub source: String,
    pub from: Level,
    pub to: Level,
    /// The data time the device reached `to`.
    pub since_ms: i64,
    /// Why: the failing check's message, or how long it has been silent.
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Whether the route covers `to` (else this tells it is resolved).
    pub firing: bool,
    /// For a resolved item: the id and start of the firing episode it ends
    /// (when the route told it), so a receiver can match the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<(String, i64)>,
}

impl Item {
    /// The stable id of `device` reaching `to` at `since_ms`, for `route`.
    pub fn id_of(route: &str, device: &str, to: Level, since_ms: i64) -> String {
        format!("{:016x}", fnv(&[route, device, to.word(), &since_ms.to_string()]))
    }
}

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Live changes, grouped.
    Change,
    /// Conditions that last, told again every `repeat`.
    Repeat,
    /// What changed while blackbox was not watching (after a catch-up).
    Summary,
    /// `blackbox notify test`.
    Test,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Change => "change",
            Kind::Repeat => "repeat",
            Kind::Summary => "summary",
            Kind::Test => "test",
        }
    }
}

/// A message to one route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Stable: made from the kind, the route and its items' ids (and, for a
    /// repeat, how many times they were told before), so a message sent
    /// again after a crash carries the same id.
    pub id: String,
    pub kind: Kind,
    pub route: String,
    pub site: String,
    /// Wall time it was made.
    pub made_ms: i64,
    pub items: Vec<Item>,
}

impl Message {
    pub fn new(kind: Kind, route: &str, site: &str, made_ms: i64, items: Vec<Item>, salt: u64) -> Message {
        let mut parts: Vec<&str> = vec![kind.word(), route];
        parts.extend(items.iter().map(|i| i.id.as_str()));
        let salt = salt.to_string();
        parts.push(&salt);
        Message { id: format!("{:016x}", fnv(&parts)), kind, route: route.into(), site: site.into(), made_ms, items }
    }

    /// `firing` while any item is, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.kind == Kind::Test || self.items.iter().any(|i| i.firing) {
            "firing"
        } else {
            "resolved"
        }
    }

    /// The worst level among the firing items (the level of a test message: ok).
    pub fn level(&self) -> Level {
        self.items.iter().filter(|i| i.firing).map(|i| i.to).max().unwrap_or(Level::Ok)
    }

    /// One line for a log or a live view.
    pub fn headline(&self) -> String {
        let n = self.items.len();
        let what = match (self.kind, n) {
            (Kind::Test, _) => return format!("{}: test message from blackbox (route {:?})", self.site, self.route),
            (Kind::Summary, _) => "while blackbox was not watching".to_string(),
            (Kind::Repeat, _) => "still".to_string(),
            (Kind::Change, _) => String::new(),
        };
        match self.items.as_slice() {
            [one] => {
                let prefix = if what.is_empty() { String::new() } else { format!("{what}: ") };
                format!("{}: {prefix}{}", self.site, item_line(one))
            }
            items => {
                let mut counts: Vec<(Level, bool, usize)> = Vec::new();
                for i in items {
                    match counts.iter_mut().find(|(l, f, _)| *l == i.to && *f == i.firing) {
                        Some(c) => c.2 += 1,
                        None => counts.push((i.to, i.firing, 1)),
                    }
                }
                counts.sort_by_key(|&(l, f, _)| std::cmp::Reverse((f, l)));
                let counts: Vec<String> = counts
                    .iter()
                    .map(|&(l, f, c)| if f { format!("{c} {}", l.word().to_uppercase()) } else { format!("{c} back to {}", l.word()) })
                    .collect();
                let prefix = if what.is_empty() { String::new() } else { format!("{what}: ") };
                let mut devices: Vec<&str> = items.iter().map(|i| i.device.as_str()).collect();
                devices.sort_unstable();
                devices.dedup();
                let what = if devices.len() == n { format!("{n} devices") } else { format!("{n} changes of {} devices", devices.len()) };
                format!("{}: {prefix}{what}: {}", self.site, counts.join(", "))
            }
        }
    }

    /// The whole text: the headline, then one line per item.
    pub fn text(&self) -> String {
        let mut t = self.headline();
        if self.items.len() > 1 {
            for i in &self.items {
                t.push('\n');
                t.push_str(&item_line(i));
            }
        }
        t.push_str(&format!("\n[{} {}]", self.kind.word(), &self.id[..8.min(self.id.len())]));
        t
    }

    /// The webhook's JSON document: Alertmanager's webhook shape (version
    /// 4), so receivers written for it adapt easily, with blackbox's own
    /// fields beside it (docs/configuration.md, "The webhook's JSON").
    pub fn json(&self) -> Value {
        let alerts: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                // A resolved alert carries the labels and fingerprint of the
                // alert it ends, as Alertmanager's do, and ends when it was resolved.
                let (level, fingerprint, starts) = match (&i.ends, i.firing) {
                    (Some((id, since)), false) => (i.from, id.clone(), *since),
                    (None, false) => (i.from, i.id.clone(), i.since_ms),
                    _ => (i.to, i.id.clone(), i.since_ms),
                };
                json!({
                    "status": if i.firing { "firing" } else { "resolved" },
                    "labels": {
                        "alertname": "blackbox",
                        "site": self.site,
                        "source": i.source,
                        "device": i.device,
                        "level": level.word(),
                        "colour": level.colour(),
                    },
                    "annotations": { "summary": item_line(i), "description": i.why },
                    "startsAt": rfc3339(starts),
                    "endsAt": if i.firing { "0001-01-01T00:00:00Z".to_string() } else { rfc3339(i.since_ms) },
                    "generatorURL": "",
                    "fingerprint": fingerprint,
                    "id": i.id,
                    "from": i.from.word(),
                    "to": i.to.word(),
                    "value": i.value,
                    "check": i.check,
                    "data_time": rfc3339(i.since_ms),
                })
            })
            .collect();
        json!({
            "version": "4",
            "groupKey": format!("{}/{}", self.site, self.route),
            "truncatedAlerts": 0,
            "status": self.status(),
            "receiver": self.route,
            "groupLabels": { "site": self.site },
            "commonLabels": { "site": self.site },
            "commonAnnotations": {},
            "externalURL": "",
            "alerts": alerts,
            "id": self.id,
            "kind": self.kind.word(),
            "site": self.site,
            "level": self.level().word(),
            "colour": self.level().colour(),
            "text": self.text(),
        })
    }
}

/// `CRITICAL usb/roomNode-4: temp 31 above 28 (since 2026-11-30 10:02:03 UTC)`.
pub fn item_line(i: &Item) -> String {
    let state = if i.firing { i.to.word().to_uppercase() } else { format!("back to {}", i.to.word()) };
    format!("{state} {}: {} (since {})", i.device, i.why, human_time(i.since_ms))
}

/// `2026-11-30 10:02:03 UTC`.
pub fn human_time(ms: i64) -> String {
    let s = rfc3339(ms);
    format!("{} {} UTC", &s[..10], &s[11..19])
}

/// `2026-11-30T10:02:03.000Z`.
pub fn rfc3339(ms: i64) -> String {
    logfile::time::rfc3339_millis(ms)
}

/// FNV-1a over the parts, each followed by a 0 byte.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(device: &str, to: Level, firing: bool) -> Item {
        Item {
            id: Item::id_of("r", device, to, 1_764_496_923_000),
            device: device.into(),
            source: "usb".into(),
            from: Level::Ok,
            to,
            since_ms: 1_764_496_923_000,
            why: "temp 31 above 28".into(),
            value: Some(31.0),
            check: Some("warm".into()),
            firing,
            ends: None,
        }
    }

    #[test]
    fn times_ids_and_text() {
        assert_eq!(Item::id_of("r", "usb/a", Level::Critical, 5), Item::id_of("r", "usb/a", Level::Critical, 5));
        assert_ne!(Item::id_of("r", "usb/a", Level::Critical, 5), Item::id_of("r", "usb/a", Level::Critical, 6));
        let m = Message::new(Kind::Change, "r", "home", 0, vec![item("usb/a", Level::Critical, true)], 0);
        assert_eq!(m.headline(), "home: CRITICAL usb/a: temp 31 above 28 (since 2025-11-30 10:02:03 UTC)");
        assert_eq!(m.id, Message::new(Kind::Change, "r", "home", 99, vec![item("usb/a", Level::Critical, true)], 0).id);
        assert_ne!(m.id, Message::new(Kind::Repeat, "r", "home", 0, vec![item("usb/a", Level::Critical, true)], 0).id);
        let items = vec![item("usb/a", Level::Grey, true), item("usb/b", Level::Grey, true), item("usb/c", Level::Ok, false)];
        let m = Message::new(Kind::Change, "r", "home", 0, items, 0);
        assert_eq!(m.headline(), "home: 3 devices: 2 GREY, 1 back to ok");
        assert_eq!(m.text().lines().count(), 5);
        let j = m.json();
        assert_eq!(j["status"], "firing");
        assert_eq!(j["alerts"][2]["status"], "resolved");
        assert_eq!(j["alerts"][0]["labels"]["colour"], "grey");
        assert_eq!(j["level"], "grey");
    }
}
