//! The state directory's records (DESIGN.md, "Where things live"): the
//! notification ledger, acknowledgements and silences. Each is a file of
//! JSON lines, appended and synced one record at a time, outside the cache,
//! so `rm -r cache` and `rebuild` never make blackbox tell something again.
//! A record cut short by a crash (the last line, without its newline) is
//! left out when read, and the next record starts on a line of its own.

use crate::message::{Kind, Message};
use health::glob::Glob;
use health::Level;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The ledger's file name in the state directory.
pub const LEDGER: &str = "notify.jsonl";
pub const ACKS: &str = "acks.jsonl";
pub const SILENCES: &str = "silences.jsonl";

/// One try of one channel that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub channel: String,
    pub error: String,
}

/// A ledger record: a message and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Wall time the outcome was known.
    pub at_ms: i64,
    /// `sent`, or `failed` when every channel failed.
    pub outcome: Outcome,
    /// The channel that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The tries that failed before, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    pub message: Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Sent,
    Failed,
}

/// `blackbox ack`: no repeats for a device while it stays at `level` since
/// `since_ms` (the episode acknowledged), until `until_ms` (wall time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub at_ms: i64,
    pub device: String,
    pub level: Level,
    pub since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Ack {
    /// Whether it holds for a device at `level` since `since_ms`, at wall time `now_ms`.
    pub fn holds(&self, level: Level, since_ms: i64, now_ms: i64) -> bool {
        self.level == level && self.since_ms == since_ms && self.until_ms.is_none_or(|u| now_ms < u)
    }
}

/// `blackbox silence`: nothing told about the devices `glob` matches from
/// `at_ms` until `until_ms`; a record with `cleared` ends earlier ones of the
/// same glob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub at_ms: i64,
    pub glob: String,
    pub until_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
}

/// The silences in force at `now_ms`, with their globs.
pub fn active_silences(all: &[Silence], now_ms: i64) -> Vec<(Glob, Silence)> {
    let mut out: Vec<(Glob, Silence)> = Vec::new();
    for s in all {
        if s.cleared {
            out.retain(|(_, o)| o.glob != s.glob);
        } else if let Ok(g) = Glob::new(&s.glob) {
            out.push((g, s.clone()));
        }
    }
    out.retain(|(_, s)| s.at_ms <= now_ms && now_ms < s.until_ms);
    out
}

/// A file of JSON records in the state directory.
#[derive(Debug, Clone)]
pub struct Records {
    path: PathBuf,
}

impl Records {
    pub fn new(state: &Path, name: &str) -> Records {
        Records { path: state.join(name) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` and syncs it to disk (and, for a new file, its
    /// directory), so a record once written survives a power cut.
    pub fn append<T: Serialize>(&self, record: &T) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let new = !self.path.exists();
        if new {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = OpenOptions::new().create(true).append(true).read(true).open(&self.path)?;
        // After a crash mid-record the file ends without a newline: start on a line of our own.
        let len = f.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        f.write_all(&line)?;
        f.sync_data()?;
        if new {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Every record, oldest first, and a warning per line that is not one
    /// (naming the file and line). A missing file has none.
    pub fn read<T: DeserializeOwned>(&self) -> io::Result<(Vec<T>, Vec<String>)> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        let mut warnings = Vec::new();
        let complete = text.ends_with(b"\n");
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        for (n, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice(line) {
                Ok(r) => records.push(r),
                // The record a crash cut short: it was never complete, so never counted.
                Err(_) if n == last && !complete => {}
                Err(e) => warnings.push(format!("{}:{}: not a record, left out: {e}", self.path.display(), n + 1)),
            }
        }
        Ok((records, warnings))
    }
}

/// What `status` says about notifications: the last ones, failures, acks
/// and silences in force. Nothing when notifications never ran.
pub fn summary(state: &Path, now: i64, status: &health::Status) -> Option<serde_json::Value> {
    let (entries, _) = Records::new(state, LEDGER).read::<Entry>().ok()?;
    let (acks, _) = Records::new(state, ACKS).read::<Ack>().ok()?;
    let (silences, _) = Records::new(state, SILENCES).read::<Silence>().ok()?;
    if entries.is_empty() && acks.is_empty() && silences.is_empty() {
        return None;
    }
    let real: Vec<&Entry> = entries.iter().filter(|e| e.message.kind != Kind::Test).collect();
    let sent = real.iter().filter(|e| e.outcome == Outcome::Sent).count();
    let failed = real.iter().filter(|e| e.outcome == Outcome::Failed).count();
    let last: Vec<serde_json::Value> = entries
        .iter()
        .rev()
        .take(5)
        .map(|e| {
            serde_json::json!({
                "at": crate::message::rfc3339(e.at_ms),
                "outcome": e.outcome,
                "channel": e.channel,
                "route": e.message.route,
                "kind": e.message.kind,
                "id": e.message.id,
                "text": e.message.headline(),
                "failures": e.failures.len(),
            })
        })
        .collect();
    let acks: Vec<serde_json::Value> = acks
        .iter()
        // Only those that still hold: the device is still in the episode acknowledged.
        .filter(|a| status.devices.iter().any(|d| d.device == a.device && a.holds(d.level, d.since_ms, now)))
        .map(|a| {
            serde_json::json!({
                "device": a.device, "level": a.level, "since": crate::message::rfc3339(a.since_ms),
                "until": a.until_ms.map(crate::message::rfc3339), "note": a.note, "at": crate::message::rfc3339(a.at_ms),
            })
        })
        .collect();
    let silences: Vec<serde_json::Value> = active_silences(&silences, now)
        .into_iter()
        .map(|(_, s)| serde_json::json!({"glob": s.glob, "until": crate::message::rfc3339(s.until_ms), "note": s.note}))
        .collect();
    Some(
        serde_json::json!({"sent": sent, "failed": failed, "tests": entries.len() - real.len(), "last": last, "acks": acks, "silences": silences}),
    )
}

/// An acknowledgement of device `d`'s episode now, for `for_ms` (until it changes when none).
pub fn ack_of(d: &health::DeviceStatus, for_ms: Option<i64>, note: Option<String>, now_ms: i64) -> Result<Ack, String> {
    if d.level == Level::Ok {
        return Err(format!("{} is ok: there is nothing to acknowledge", d.device));
    }
    Ok(Ack { at_ms: now_ms, device: d.device.clone(), level: d.level, since_ms: d.since_ms, until_ms: for_ms.map(|f| now_ms + f), note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_records_survive_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let r = Records::new(&dir.path().join("state"), SILENCES);
        let s = |glob: &str, cleared| Silence { at_ms: 0, glob: glob.into(), until_ms: 100, note: None, cleared };
        r.append(&s("a/*", false)).unwrap();
        // A crash in the middle of the next record.
        std::fs::OpenOptions::new().append(true).open(r.path()).unwrap().write_all(b"{\"at_ms\":1,\"gl").unwrap();
        let (got, warnings): (Vec<Silence>, _) = r.read().unwrap();
        assert_eq!((got.len(), warnings.len()), (1, 0));
        r.append(&s("b/*", false)).unwrap();
        r.append(&s("a/*", true)).unwrap();
        let (got, warnings): (Vec<Silence>, _) = r.read().unwrap();
        assert_eq!(got.len(), 3);
        // The torn line is now in the middle: said, not fatal.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("silences.jsonl:2"), "{warnings:?}");
        let active = active_silences(&got, 50);
        assert_eq!(active.iter().map(|(_, s)| s.glob.as_str()).collect::<Vec<_>>(), ["b/*"]);
        assert!(active_silences(&got, 100).is_empty());
    }
}
