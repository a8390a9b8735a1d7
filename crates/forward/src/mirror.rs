//! The mirror: a central machine's copy of every site's day files, made
//! from the raw lines the sites' forwarders publish (docs/mqtt.md,
//! "Mirroring"). A line is appended only at the byte offset it has on its
//! site, so the copy is byte for byte the site's file; a repeat (an offset
//! already written) is dropped; a line beyond the end of the copy is a gap:
//! it waits (bounded) while the mirror asks the site to send again from the
//! missing offset, on `<prefix>/<site>/resend`, which the site's forwarder
//! answers from its log. The `previous NAME SIZE` header that opens each
//! day tells the mirror the final size of the day before, so a day that
//! ended while lines were missing is completed too. Files copied by rsync
//! are taken as they are: the mirror continues after their last byte.

use crate::{parse_line_place, Broke, Ev, Link, Settings};
use chrono::NaiveDate;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lines waiting for a gap before them to be filled, per site and day.
const MAX_WAITING: usize = 20_000;
/// How long a resend request is given before it is asked again.
const ASK_AGAIN: Duration = Duration::from_secs(3);
/// Messages written before they are acknowledged.
const ACK_BATCH: usize = 400;
/// How often the copies are synced while lines come in.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What became of one raw line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Written, with this many waiting lines after it.
    Appended(usize),
    /// Its offset was already in the copy.
    Repeat,
    /// It lies beyond the end of the copy, which ends at this offset.
    Gap(u64),
    /// Not taken: a bad site or day name, or the waiting room is full.
    Refused,
}

/// A site's name as a directory: the characters of a SOURCE, not starting with a dot.
pub fn site_ok(site: &str) -> bool {
    !site.is_empty()
        && site.len() <= 64
        && !site.starts_with('.')
        && site.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@+".contains(&b))
}

#[derive(Debug)]
struct DayCopy {
    file: File,
    len: u64,
    dirty: bool,
}

/// The mirror's copies under `<dir>/<site>/logs/YYYY/YYYYMMDD.txt`.
#[derive(Debug)]
pub struct Copies {
    root: PathBuf,
    open: HashMap<(String, String), DayCopy>,
    /// Lines beyond the end of a copy, by site and day, then offset.
    waiting: HashMap<(String, String), BTreeMap<u64, String>>,
    /// The last resend asked per site and day: from which offset, when.
    asked: HashMap<(String, String), (u64, Instant)>,
    /// Each site's head: where its log ends, as its forwarder last said.
    heads: HashMap<String, crate::Cursor>,
    pub appended: u64,
    pub repeats: u64,
    last_sync: Instant,
    /// The sync running on a thread of its own ([`Copies::sync_soon`]).
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Copies {
    pub fn new(root: &Path) -> Copies {
        Copies {
            root: root.to_path_buf(),
            open: HashMap::new(),
            waiting: HashMap::new(),
            asked: HashMap::new(),
            heads: HashMap::new(),
            appended: 0,
            repeats: 0,
            last_sync: Instant::now(),
            syncing: None,
        }
    }

    /// The day file of `site` and `day` (`YYYYMMDD`); `None` for names that
    /// must not become paths.
    pub fn path(&self, site: &str, day: &str) -> Option<PathBuf> {
        if !site_ok(site) || day.len() != 8 {
            return None;
        }
        let date = NaiveDate::parse_from_str(day, "%Y%m%d").ok()?;
        Some(logfile::layout::day_path(&self.root.join(site).join("logs"), date))
    }

    /// The size of the copy of `site`'s `day` (0 when there is none).
    pub fn len(&mut self, site: &str, day: &str) -> std::io::Result<u64> {
        match self.copy(site, day, false)? {
            Some(c) => Ok(c.len),
            None => Ok(0),
        }
    }

    fn copy(&mut self, site: &str, day: &str, create: bool) -> std::io::Result<Option<&mut DayCopy>> {
        let key = (site.to_string(), day.to_string());
        if !self.open.contains_key(&key) {
            let Some(path) = self.path(site, day) else { return Ok(None) };
            if !create && !path.exists() {
                return Ok(None);
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            let len = file.metadata()?.len();
            if self.open.len() >= 256 {
                // Bounded: close the others (synced first).
                self.sync()?;
                self.open.clear();
            }
            self.open.insert(key.clone(), DayCopy { file, len, dirty: false });
        }
        Ok(self.open.get_mut(&key))
    }

    /// Takes one line that has `offset` in `site`'s `day`.
    pub fn take(&mut self, site: &str, day: &str, offset: u64, line: &str) -> std::io::Result<Taken> {
        let Some(copy) = self.copy(site, day, true)? else { return Ok(Taken::Refused) };
        if offset < copy.len {
            self.repeats += 1;
            return Ok(Taken::Repeat);
        }
        if offset > copy.len {
            let end = copy.len;
            let waiting = self.waiting.entry((site.to_string(), day.to_string())).or_default();
            if waiting.len() >= MAX_WAITING && !waiting.contains_key(&offset) {
                return Ok(Taken::Refused);
            }
            waiting.insert(offset, line.to_string());
            return Ok(Taken::Gap(end));
        }
        append(copy, line)?;
        self.appended += 1;
        // Lines that waited for this one.
        let key = (site.to_string(), day.to_string());
        let mut after = 0;
        if let Some(waiting) = self.waiting.get_mut(&key) {
            // `copy` is borrowed from `open`, a different field.
            let Some(copy) = self.open.get_mut(&key) else { return Ok(Taken::Appended(0)) };
            while let Some(entry) = waiting.first_entry() {
                if *entry.key() < copy.len {
                    entry.remove();
                    continue;
                }
                if *entry.key() > copy.len {
                    break;
                }
                let line = entry.remove();
                append(copy, &line)?;
                self.appended += 1;
                after += 1;
            }
            if waiting.is_empty() {
                self.waiting.remove(&key);
            }
        }
        Ok(Taken::Appended(after))
    }

    /// Whether to ask `site` for `day` from `from` now: not when the same
    /// was asked less than [`ASK_AGAIN`] ago.
    pub fn should_ask(&mut self, site: &str, day: &str, from: u64) -> bool {
        let key = (site.to_string(), day.to_string());
        match self.asked.get(&key) {
            Some((at, when)) if *at == from && when.elapsed() < ASK_AGAIN => false,
            _ => {
                self.asked.insert(key, (from, Instant::now()));
                true
            }
        }
    }

    /// Gaps still open: (site, day, end of the copy), for asking again.
    pub fn open_gaps(&mut self) -> Vec<(String, String, u64)> {
        let keys: Vec<(String, String)> = self.waiting.keys().cloned().collect();
        let mut out = Vec::new();
        for (site, day) in keys {
            if let Ok(len) = self.len(&site, &day) {
                out.push((site, day, len));
            }
        }
        out
    }

    /// Notes `site`'s head; returns the offset its copy of the head's day
    /// ends at when that is short of the head (a resend to ask for).
    pub fn set_head(&mut self, site: &str, head: crate::Cursor) -> std::io::Result<Option<u64>> {
        if self.path(site, &head.day).is_none() {
            return Ok(None);
        }
        let len = self.len(site, &head.day)?;
        let short = (len < head.offset).then_some(len);
        self.heads.insert(site.to_string(), head);
        Ok(short)
    }

    /// Copies still short of their site's head: (site, day, end of the copy).
    pub fn behind_heads(&mut self) -> std::io::Result<Vec<(String, String, u64)>> {
        let heads: Vec<(String, crate::Cursor)> = self.heads.iter().map(|(s, h)| (s.clone(), h.clone())).collect();
        let mut out = Vec::new();
        for (site, head) in heads {
            let len = self.len(&site, &head.day)?;
            if len < head.offset {
                out.push((site, head.day, len));
            }
        }
        Ok(out)
    }

    /// Syncs every copy written since the last sync, and waits for it.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if let Some(running) = self.syncing.take() {
            running.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        for c in self.open.values_mut().filter(|c| c.dirty) {
            c.file.sync_data()?;
            c.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Starts syncing every copy written since the last sync on a thread of
    /// its own, unless the last one is still running; returns the error of
    /// the last one if it failed. A hundred syncs a second (one per site)
    /// take long enough on a slow disk to hold up the lines meanwhile; the
    /// acknowledgements do not wait for them anyway ([`flush`]).
    pub fn sync_soon(&mut self) -> std::io::Result<()> {
        if let Some(running) = self.syncing.take() {
            if !running.is_finished() {
                self.syncing = Some(running);
                return Ok(());
            }
            running.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        let mut files = Vec::new();
        for c in self.open.values_mut().filter(|c| c.dirty) {
            files.push(c.file.try_clone()?);
            c.dirty = false;
        }
        self.last_sync = Instant::now();
        if !files.is_empty() {
            let running =
                std::thread::Builder::new().name("mirror sync".into()).spawn(move || files.iter().try_for_each(File::sync_data))?;
            self.syncing = Some(running);
        }
        Ok(())
    }
}

fn append(copy: &mut DayCopy, line: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    copy.file.write_all(&bytes)?;
    copy.len += bytes.len() as u64;
    copy.dirty = true;
    Ok(())
}

/// A raw message: `{"id", "day", "offset", "line"}`.
#[derive(Debug, serde::Deserialize)]
struct RawMsg {
    day: String,
    offset: u64,
    line: String,
}

/// What the mirror is told on the command line.
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    pub broker: Settings,
    pub dir: PathBuf,
    pub client_id: String,
    /// Only these sites (default: every site).
    pub sites: Vec<String>,
}

/// Runs the mirror until `stop` says so: subscribes to every site's raw
/// lines with a persistent session and QoS 1, writes them into the copies,
/// and acknowledges each message only once its line is written (synced
/// within a second), so a mirror killed at any moment gets them again from
/// the broker.
pub fn mirror(s: &MirrorSettings, stop: &dyn Fn() -> bool, progress: &mut dyn FnMut(&Copies)) -> std::io::Result<()> {
    let mut copies = Copies::new(&s.dir);
    let mut wait = Duration::from_millis(500);
    while !stop() {
        let tried = Instant::now();
        match mirror_connected(s, &mut copies, stop, progress) {
            Ok(()) => return copies.sync(),
            Err(Broke::Stop) => return copies.sync(),
            Err(Broke::Broker(e)) => {
                tracing::warn!(error = %e, host = %s.broker.host, port = s.broker.port, "mirror: the broker is away");
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                // A connection that held a while starts the backoff again.
                wait = if tried.elapsed() > Duration::from_secs(10) {
                    Duration::from_millis(500)
                } else {
                    (wait * 2).min(Duration::from_secs(10))
                };
            }
        }
    }
    copies.sync()
}

fn mirror_connected(
    s: &MirrorSettings,
    copies: &mut Copies,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(&Copies),
) -> Result<(), Broke> {
    let mut opts: MqttOptions = crate::options(&s.broker, &s.client_id)?;
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    let (client, conn) = Client::new(opts, ACK_BATCH * 3);
    let mut link = Link::new(&client, conn, None)?;
    let session = link.connack()?;
    let prefix = &s.broker.prefix;
    let filters: Vec<String> = if s.sites.is_empty() {
        vec![format!("{prefix}/+/raw/#"), format!("{prefix}/+/head")]
    } else {
        s.sites.iter().flat_map(|site| [format!("{prefix}/{site}/raw/#"), format!("{prefix}/{site}/head")]).collect()
    };
    for f in &filters {
        client.subscribe(f.clone(), QoS::AtLeastOnce).map_err(|e| Broke::Broker(e.to_string()))?;
        link.suback()?;
    }
    tracing::info!(filters = ?filters, resumed = session, dir = %s.dir.display(), "mirror: subscribed");
    let mut unacked: Vec<rumqttc::Publish> = Vec::new();
    // What the broker resent while the subscriptions were confirmed.
    for p in std::mem::take(&mut link.other) {
        take_message(s, copies, &client, &p)?;
        unacked.push(p);
    }
    let mut last_gaps = Instant::now();
    // Acknowledgements that did not fit in the request queue at the last flush.
    let mut stalled = false;
    loop {
        if stop() {
            flush(copies, &client, &mut unacked)?;
            return Err(Broke::Stop);
        }
        // While messages wait to be acknowledged, only what has already
        // arrived is taken: the broker sends a few at a time (mosquitto 20)
        // until they are acknowledged, so a pause must not wait for more.
        // Acknowledgements that did not fit are tried again soon.
        let event = if unacked.is_empty() {
            link.recv(Duration::from_millis(100))
        } else if stalled {
            link.recv(Duration::from_millis(5))
        } else {
            link.try_recv()
        };
        let got = match event.transpose()? {
            Some(Ev::Mqtt(Ok(Event::Incoming(Packet::Publish(p))))) => Some(p),
            Some(Ev::Mqtt(Err(e))) => return Err(Broke::Broker(e.to_string())),
            Some(_) => None,
            None => {
                // Quiet: what was written is acknowledged.
                flush(copies, &client, &mut unacked)?;
                stalled = !unacked.is_empty();
                progress(copies);
                None
            }
        };
        if let Some(p) = got {
            take_message(s, copies, &client, &p)?;
            unacked.push(p);
            if unacked.len() >= ACK_BATCH {
                flush(copies, &client, &mut unacked)?;
                stalled = !unacked.is_empty();
                progress(copies);
            }
        }
        if last_gaps.elapsed() >= ASK_AGAIN {
            last_gaps = Instant::now();
            let mut gaps = copies.open_gaps();
            gaps.extend(copies.behind_heads().map_err(|e| Broke::Broker(format!("reading the copies: {e}")))?);
            for (site, day, from) in gaps {
                if copies.should_ask(&site, &day, from) {
                    ask(&client, prefix, &site, &day, from)?;
                }
            }
        }
    }
}

/// Acknowledges what the copies hold (written; synced at most [`SYNC_EVERY`]
/// later). Syncing before every acknowledgement would cost a sync per
/// file per few messages (the broker sends a few at a time): a thousand
/// lines a second from a hundred sites would not keep up. What a power cut
/// takes from the end of a copy is asked again from its site, whose `head`
/// says how far it reaches.
fn flush(copies: &mut Copies, client: &Client, unacked: &mut Vec<rumqttc::Publish>) -> Result<(), Broke> {
    if copies.last_sync.elapsed() >= SYNC_EVERY {
        copies.sync_soon().map_err(|e| Broke::Broker(format!("syncing the copies: {e}")))?;
    }
    if unacked.is_empty() {
        return Ok(());
    }
    // Never blocking: the pump may itself be waiting for this thread to
    // take its events, so a full request queue could wait forever. What
    // does not fit now goes at the next look; meanwhile the broker, short
    // of acknowledgements, sends no more.
    let mut sent = 0;
    for p in unacked.iter() {
        match client.try_ack(p) {
            Ok(()) => sent += 1,
            Err(rumqttc::ClientError::TryRequest(_)) => break,
            Err(e) => return Err(Broke::Broker(e.to_string())),
        }
    }
    unacked.drain(..sent);
    Ok(())
}

fn ask(client: &Client, prefix: &str, site: &str, day: &str, from: u64) -> Result<(), Broke> {
    tracing::info!(site, day, from, "mirror: asking the site to send again");
    let doc = json!({"day": day, "offset": from});
    match client.try_publish(format!("{prefix}/{site}/resend"), QoS::AtLeastOnce, false, doc.to_string().into_bytes()) {
        // A full request queue: asked again within ASK_AGAIN.
        Ok(()) | Err(rumqttc::ClientError::TryRequest(_)) => Ok(()),
        Err(e) => Err(Broke::Broker(e.to_string())),
    }
}

fn take_message(s: &MirrorSettings, copies: &mut Copies, client: &Client, p: &rumqttc::Publish) -> Result<(), Broke> {
    // `<prefix>/<site>/raw/<source>` or `<prefix>/<site>/head`
    let mut levels = p.topic.split('/');
    let (Some(_), Some(site), kind) = (levels.next(), levels.next(), levels.next()) else { return Ok(()) };
    let io = |e: std::io::Error| Broke::Broker(format!("writing the copy of {site}: {e}"));
    if kind == Some("head") {
        let Ok(head) = serde_json::from_slice::<crate::Cursor>(&p.payload) else {
            tracing::warn!(topic = %p.topic, "mirror: a head that is not {{\"day\", \"offset\"}}; ignored");
            return Ok(());
        };
        if let Some(from) = copies.set_head(site, head.clone()).map_err(io)? {
            if copies.should_ask(site, &head.day, from) {
                ask(client, &s.broker.prefix, site, &head.day, from)?;
            }
        }
        return Ok(());
    }
    let Ok(raw) = serde_json::from_slice::<RawMsg>(&p.payload) else {
        tracing::warn!(topic = %p.topic, "mirror: not a raw line message; ignored");
        return Ok(());
    };
    if raw.line.contains('\n') {
        tracing::warn!(topic = %p.topic, "mirror: a raw line with a newline in it; ignored");
        return Ok(());
    }
    // A day's first line names the day before and its final size: a copy
    // of that day shorter than that is missing its end.
    if raw.offset == 0 {
        if let Some((name, size)) = parse_line_place(&raw.line) {
            let before = name.trim_end_matches(".txt").to_string();
            if copies.path(site, &before).is_some() {
                let len = copies.len(site, &before).map_err(io)?;
                if len < size && copies.should_ask(site, &before, len) {
                    ask(client, &s.broker.prefix, site, &before, len)?;
                }
            }
        }
    }
    match copies.take(site, &raw.day, raw.offset, &raw.line).map_err(io)? {
        Taken::Gap(from) => {
            if copies.should_ask(site, &raw.day, from) {
                ask(client, &s.broker.prefix, site, &raw.day, from)?;
            }
        }
        Taken::Refused => tracing::warn!(site, day = %raw.day, "mirror: a line refused (bad name, or too many waiting)"),
        Taken::Appended(_) | Taken::Repeat => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_land_at_their_offsets_and_gaps_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Copies::new(dir.path());
        assert_eq!(c.take("cellar", "20261130", 0, "L 00:00:00.000 a x").unwrap(), Taken::Appended(0));
        // 19 bytes written; the line at 38 is early.
        assert_eq!(c.take("cellar", "20261130", 38, "L 00:00:02.000 a z").unwrap(), Taken::Gap(19));
        assert!(c.should_ask("cellar", "20261130", 19));
        assert!(!c.should_ask("cellar", "20261130", 19), "not asked twice at once");
        assert_eq!(c.open_gaps(), [("cellar".to_string(), "20261130".to_string(), 19)]);
        assert_eq!(c.take("cellar", "20261130", 19, "L 00:00:01.000 a y").unwrap(), Taken::Appended(1));
        assert_eq!(c.take("cellar", "20261130", 0, "L 00:00:00.000 a x").unwrap(), Taken::Repeat);
        assert!(c.open_gaps().is_empty());
        c.sync().unwrap();
        let path = dir.path().join("cellar/logs/2026/20261130.txt");
        assert_eq!(std::fs::read_to_string(path).unwrap(), "L 00:00:00.000 a x\nL 00:00:01.000 a y\nL 00:00:02.000 a z\n");
        assert_eq!((c.appended, c.repeats), (3, 1));
    }

    #[test]
    fn names_from_the_network_never_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Copies::new(dir.path());
        for site in ["..", ".hidden", "a/b", "", "a\\b", "x y"] {
            assert_eq!(c.take(site, "20261130", 0, "L 00:00:00.000 a x").unwrap(), Taken::Refused, "{site:?}");
        }
        for day in ["2026113", "../../x", "20261332", "2026113a"] {
            assert_eq!(c.take("cellar", day, 0, "L 00:00:00.000 a x").unwrap(), Taken::Refused, "{day:?}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_rsynced_file_is_continued() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("cellar/logs/2026");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("20261130.txt"), "L 00:00:00.000 a x\n").unwrap();
        let mut c = Copies::new(dir.path());
        assert_eq!(c.take("cellar", "20261130", 0, "L 00:00:00.000 a x").unwrap(), Taken::Repeat);
        assert_eq!(c.take("cellar", "20261130", 19, "L 00:00:01.000 a y").unwrap(), Taken::Appended(0));
    }
}
