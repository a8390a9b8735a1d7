//! MQTT out, with the log as the outbox (docs/mqtt.md). The follower's
//! forwarder reads the day files from its own cursor (a day and a byte
//! offset, in the state directory), publishes each line's messages with QoS
//! 1, and moves the cursor past a batch of lines only once the broker
//! acknowledged (PUBACK) every message of it. A broker that is away an hour
//! costs nothing but time: the lines wait in the log, memory stays bounded
//! by one batch, and everything goes out in order when it returns. A crash
//! resends at most the batch in flight (a power cut, at most a second more:
//! see [`cursor`]); every message carries a stable id
//! (the site, day and byte offset of its line) so consumers drop repeats.
//!
//! With `discovery`, Home Assistant's discovery configs (retained) for every
//! numeric field. With `raw`, the forwarder also answers a mirror's resend
//! requests from its log ([`mirror`]); [`replay`] re-publishes history on
//! purpose (`blackbox forward --from`).

mod cursor;
pub mod mirror;

use decode::{Decoders, Outcome, SourceState};
use health::Status;
use logfile::time::rfc3339_millis;
use rumqttc::{Client, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use cursor::CURSOR;
/// Lines per batch: the most held in memory, and the most a crash resends.
const BATCH_LINES: usize = 2000;
/// Messages unacknowledged at a time (rumqttc's in-flight limit too).
const WINDOW: usize = 1000;
/// How long the broker has to acknowledge a chunk before the connection is made again.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker has to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `[mqtt]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub site: String,
    pub prefix: String,
    pub raw: bool,
    /// Home Assistant discovery.
    pub discovery: bool,
    /// `mqtts://`: the CA certificates (PEM) that sign the broker's.
    pub tls_ca: Option<Vec<u8>>,
}

/// Where Debian (and most Linux systems) keep the trusted CA certificates.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The broker of `url`, with the credentials and CA file given: the part of
/// [`Settings`] a mirror shares with a forwarder.
pub fn broker(url: &str, user: Option<&str>, password_file: Option<&Path>, ca_file: Option<&Path>) -> Result<Settings, String> {
    let (host, port, tls) = parse_url(url)?;
    let password = match password_file {
        Some(f) => Some(std::fs::read_to_string(f).map_err(|e| format!("password_file {}: {e}", f.display()))?.trim().to_string()),
        None => None,
    };
    let tls_ca = match (tls, ca_file) {
        (false, Some(f)) => return Err(format!("ca_file {} is for mqtts:// URLs; {url} is not one", f.display())),
        (false, None) => None,
        (true, file) => {
            let f = file.unwrap_or(Path::new(SYSTEM_CAS));
            let pem = std::fs::read(f).map_err(|e| format!("ca_file {}: {e}", f.display()))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(format!("ca_file {}: no PEM certificate in it", f.display()));
            }
            Some(pem)
        }
    };
    Ok(Settings {
        host,
        port,
        user: user.map(str::to_string),
        password,
        site: String::new(),
        prefix: "blackbox".into(),
        raw: true,
        discovery: false,
        tls_ca,
    })
}

impl Settings {
    /// The `[mqtt]` table's settings; `None` when there is none. `site` is the default site name.
    pub fn new(config: &config::Config, site: &str) -> Result<Option<Settings>, String> {
        let Some(m) = &config.mqtt else { return Ok(None) };
        let b = broker(&m.url, m.user.as_deref(), m.password_file.as_deref(), m.ca_file.as_deref()).map_err(|e| format!("[mqtt] {e}"))?;
        let name_ok = |s: &str| !s.is_empty() && !s.contains(['/', '+', '#', '\0']);
        let site = m.site.clone().unwrap_or_else(|| site.to_string());
        let prefix = m.prefix.clone().unwrap_or_else(|| "blackbox".into());
        if !name_ok(&site) || !name_ok(&prefix) {
            return Err(format!("[mqtt] site {site:?} and prefix {prefix:?} must be non-empty, without / + #"));
        }
        let discovery = m.discovery.unwrap_or(false);
        Ok(Some(Settings { site, prefix, raw: m.raw.unwrap_or(true), discovery, ..b }))
    }
}

/// `mqtt://host[:port]` (port 1883) or `mqtts://host[:port]` (TLS, port
/// 8883): the host, the port and whether it is TLS.
pub fn parse_url(url: &str) -> Result<(String, u16, bool), String> {
    let bad = |why: &str| Err(format!("url {url:?}: {why}"));
    let (rest, tls) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
        (Some(rest), _) => (rest, false),
        (_, Some(rest)) => (rest, true),
        _ => return bad("expected mqtt://host:port or mqtts://host:port"),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h, p),
            _ => return bad("the port must be a number from 1 to 65535"),
        },
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() || host.contains('/') {
        return bad("no host");
    }
    Ok((host.to_string(), port, tls))
}

/// Where the forwarder is in the logs: the next line to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// `YYYYMMDD`.
    pub day: String,
    pub offset: u64,
}

/// One message to publish.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// A line of the logs: its day (`YYYYMMDD`), byte offset and text.
type Logged = (String, u64, String);

/// The lines from the cursor on, at most `max`, and the cursor after them
/// (plain and compressed days alike). Without `list`, only the cursor's day
/// is looked at while it exists (the log directory is not listed for later
/// days).
fn read_batch(logs: &Path, cursor: &Cursor, max: usize, list: bool) -> std::io::Result<(Vec<Logged>, Cursor)> {
    let mut out = Vec::new();
    // Nearly always, the cursor's day is the one growing: its new lines come
    // before any later day's, and the log directory need not be listed.
    if let Ok(date) = chrono::NaiveDate::parse_from_str(&cursor.day, "%Y%m%d") {
        let path = logfile::layout::day_path(logs, date);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > cursor.offset => {
                let day = logfile::DayFile { date, path, compressed: false };
                let offset = read_day(&day, cursor.offset, max, u64::MAX, &mut out)?;
                if !out.is_empty() || !list {
                    return Ok((out, Cursor { day: cursor.day.clone(), offset }));
                }
            }
            Ok(_) if !list => return Ok((out, cursor.clone())),
            _ => {}
        }
    }
    let days = logfile::scan(logs)?.days;
    let mut at = cursor.clone();
    for d in &days {
        let name = d.date.format("%Y%m%d").to_string();
        if name < at.day {
            continue;
        }
        if name > at.day {
            // A later day: the earlier one is finished (capture moved on).
            at = Cursor { day: name.clone(), offset: 0 };
        }
        at.offset = read_day(d, at.offset, max - out.len(), u64::MAX, &mut out)?;
        if out.len() >= max {
            break;
        }
    }
    Ok((out, at))
}

/// Appends to `out` at most `max` whole lines of `day` from byte `offset`
/// up to (not including) byte `until`; returns the offset after them.
fn read_day(day: &logfile::DayFile, offset: u64, max: usize, until: u64, out: &mut Vec<Logged>) -> std::io::Result<u64> {
    let name = day.date.format("%Y%m%d").to_string();
    let mut r = match logfile::DayReader::open_at(&day.path, day.compressed, offset, 0) {
        Ok(r) => r,
        // An offset past the end of a compressed day: nothing there.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(offset),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    let mut at = offset;
    // Only whole lines: a line being written is sent once it ends.
    while n < max && at < until {
        let Some(l) = r.next_line()? else { break };
        let text = &l.raw[..l.raw.len() - 1];
        out.push((name.clone(), l.offset, String::from_utf8_lossy(text).into_owned()));
        at = l.offset + l.raw.len() as u64;
        n += 1;
    }
    Ok(at)
}

/// `# HH:MM:SS.mmm previous NAME SIZE`: the day before's file name and final size.
pub(crate) fn parse_line_place(line: &str) -> Option<(String, u64)> {
    match logfile::parse_line(line) {
        Ok(logfile::Line::Meta { event: "previous", args, .. }) => {
            let name = args.word(0)?;
            let size = args.word(1)?.parse().ok()?;
            Some((name.to_string(), size))
        }
        _ => None,
    }
}

/// The end of the logs now: where a forwarder without a cursor starts.
fn end_of_logs(logs: &Path) -> Cursor {
    let days = logfile::scan(logs).map(|s| s.days).unwrap_or_default();
    match days.iter().rev().find(|d| !d.compressed) {
        Some(d) => Cursor { day: d.date.format("%Y%m%d").to_string(), offset: std::fs::metadata(&d.path).map_or(0, |m| m.len()) },
        None => Cursor { day: String::new(), offset: 0 },
    }
}

/// What `blackbox forward --from` asks for.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The first day (`YYYYMMDD`), from its start.
    pub from: String,
    /// The last day, to its end (default: up to the end of the logs at the start).
    pub to: Option<String>,
    /// At most this many lines a second.
    pub rate: u32,
}

/// Re-publishes history on purpose, for a new consumer: every message of
/// the lines from `r.from` on (values, JSON, raw, Home Assistant configs
/// with `discovery`), QoS 1, at most `r.rate` lines a second, up to the end
/// of the logs as they are when it starts. The follower's cursor is not
/// touched. `progress` is told the lines sent and where. Returns the lines sent.
pub fn replay(
    settings: Settings,
    logs: &Path,
    decoders: Decoders,
    schema: Arc<Schema>,
    r: &Replay,
    progress: &mut dyn FnMut(u64, &Cursor),
) -> Result<u64, String> {
    let days = logfile::scan(logs).map_err(|e| format!("{}: {e}", logs.display()))?.days;
    let name = |d: &logfile::DayFile| d.date.format("%Y%m%d").to_string();
    // Where to stop: the end of `to`, else of the logs now (a day still being written stops where it is).
    let last = days.iter().rfind(|d| r.to.as_ref().is_none_or(|to| name(d) <= *to));
    let Some(last) = last else { return Ok(0) };
    let end = Cursor {
        day: name(last),
        offset: if last.compressed { u64::MAX } else { std::fs::metadata(&last.path).map_err(|e| e.to_string())?.len() },
    };
    let signal: Signal = Arc::default();
    let mut run = Run::new(settings, logs, Path::new(""), decoders, Arc::new(|| None), schema, signal);
    let mut cursor = Cursor { day: r.from.clone(), offset: 0 };
    let started = Instant::now();
    let mut sent = 0u64;
    let mut failures = 0;
    let batch = (r.rate.max(1) as usize).min(BATCH_LINES);
    loop {
        let opts = options(&run.s, &format!("blackbox-{}-replay", run.s.site)).map_err(|b| format!("{b:?}"))?;
        let (client, conn) = Client::new(opts, WINDOW);
        let mut link = Link::new(&client, conn, None).map_err(|e| format!("{e:?}"))?;
        let result = (|| -> Result<(), Broke> {
            link.connack()?;
            if run.s.discovery {
                link.send(&run.discovery_all())?;
            }
            loop {
                let (lines, next) =
                    read_batch(&run.logs, &cursor, batch, true).map_err(|e| Broke::Broker(format!("reading the logs: {e}")))?;
                let lines: Vec<Logged> =
                    lines.into_iter().take_while(|(d, o, _)| (d.as_str(), *o) < (end.day.as_str(), end.offset)).collect();
                if lines.is_empty() {
                    return Ok(());
                }
                let msgs: Vec<Msg> = lines.iter().flat_map(|(day, offset, line)| run.messages(day, *offset, line)).collect();
                link.send(&msgs)?;
                sent += lines.len() as u64;
                // Past the end (lines were left out) the next read finds nothing.
                cursor = next;
                progress(sent, &cursor);
                // The rate: `sent` lines take at least `sent / rate` seconds.
                let due = started + Duration::from_secs_f64(sent as f64 / f64::from(r.rate.max(1)));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })();
        match result {
            Ok(()) => return Ok(sent),
            Err(Broke::Stop) => return Ok(sent),
            Err(Broke::Broker(e)) => {
                failures += 1;
                if failures > 10 {
                    return Err(format!("the broker at {}:{}: {e} (gave up after 10 tries; {sent} lines sent)", run.s.host, run.s.port));
                }
                tracing::warn!(error = %e, "MQTT: the broker is away; trying again");
                std::thread::sleep(Duration::from_millis(500) * failures);
            }
        }
    }
}

/// Looks at the site now, for the retained status topics.
pub type Look = dyn Fn() -> Option<Status> + Send + Sync;
/// Every sensor the cache knows, with its unit and kind (`int`, `float`, ...): Home Assistant's configs.
pub type Schema = dyn Fn() -> Vec<(String, Option<String>, String)> + Send + Sync;

/// The forwarding thread of a follower. Dropping it stops it.
pub struct Forwarder {
    signal: Signal,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").finish_non_exhaustive()
    }
}

/// A forwarder whose starting point is settled, not yet sending: see
/// [`Forwarder::prepare`].
pub struct Ready {
    settings: Settings,
    logs: PathBuf,
    state: PathBuf,
    cursor: Cursor,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the settings: they hold the broker's password.
        f.debug_struct("Ready").field("cursor", &self.cursor).finish_non_exhaustive()
    }
}

impl Ready {
    /// Where the forwarder starts: the saved cursor, or, on a first start,
    /// the end of the logs as they were when it was prepared.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Starts the forwarding thread.
    pub fn start(self, decoders: Decoders, look: Arc<Look>, schema: Arc<Schema>) -> std::io::Result<Forwarder> {
        let signal: Signal = Arc::default();
        let mut run = Run::new(self.settings, &self.logs, &self.state, decoders, look, schema, signal.clone());
        let cursor = self.cursor;
        std::thread::Builder::new().name("mqtt forwarder".into()).spawn(move || run.run(cursor))?;
        Ok(Forwarder { signal })
    }
}

impl Forwarder {
    /// Settles where to start, before the caller goes on (and says it
    /// forwards): a first start begins at the end of the logs as they are at
    /// this moment, and saves that cursor, so a line written after this call
    /// returns is sent, one written before it is not.
    pub fn prepare(settings: Settings, logs: &Path, state: &Path) -> std::io::Result<Ready> {
        let cursor = match cursor::load(state) {
            Some(c) => c,
            None => {
                let c = end_of_logs(logs);
                cursor::CursorFile::new(state).save(&c)?;
                c
            }
        };
        Ok(Ready { settings, logs: logs.to_path_buf(), state: state.to_path_buf(), cursor })
    }

    /// New lines may be in the logs.
    pub fn wake(&self) {
        wake(&self.signal, false);
    }

    /// A function that wakes this forwarder, for a file watch to call as
    /// soon as the logs change (the forwarder reads them itself; it need
    /// not wait for the index).
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let signal = self.signal.clone();
        move || wake(&signal, false)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        wake(&self.signal, true);
    }
}

/// What wakes a forwarder: new lines (counted) or a stop. Told to the
/// connection's queue too, while there is one.
#[derive(Default)]
struct Wakes {
    count: u64,
    stop: bool,
    link: Option<mpsc::SyncSender<Pumped>>,
}

type Signal = Arc<(Mutex<Wakes>, Condvar)>;

fn wake(signal: &Signal, stop: bool) {
    let (lock, cv) = &**signal;
    let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
    g.count += 1;
    g.stop |= stop;
    if let Some(tx) = &g.link {
        // A full queue is a busy forwarder: it looks at the count anyway.
        let _ = tx.try_send(Pumped::Wake);
    }
    cv.notify_all();
}

struct Run {
    s: Settings,
    logs: PathBuf,
    decoders: Decoders,
    states: HashMap<String, SourceState>,
    look: Arc<Look>,
    schema: Arc<Schema>,
    signal: Signal,
    /// The statuses the broker holds (retained), by topic.
    told: BTreeMap<String, String>,
    /// The head last published, and when.
    head_told: Option<(Cursor, Instant)>,
    /// Sensors whose Home Assistant config was published on this connection.
    announced: HashSet<String>,
    /// Numeric sensors seen in the lines sent, with their units.
    seen: BTreeMap<String, Option<String>>,
    /// Where the cursor is saved.
    cursor_file: cursor::CursorFile,
    /// When the log directory was last listed for new days.
    listed: Option<Instant>,
}

/// Why a connection was given up.
#[derive(Debug)]
enum Broke {
    Stop,
    Broker(String),
}

impl Run {
    fn new(s: Settings, logs: &Path, state: &Path, decoders: Decoders, look: Arc<Look>, schema: Arc<Schema>, signal: Signal) -> Run {
        Run {
            s,
            logs: logs.to_path_buf(),
            decoders,
            states: HashMap::new(),
            look,
            schema,
            signal,
            told: BTreeMap::new(),
            announced: HashSet::new(),
            seen: BTreeMap::new(),
            head_told: None,
            cursor_file: cursor::CursorFile::new(state),
            listed: None,
        }
    }

    /// Saves the cursor; with `settle`, the synced copy too if the last save did not write it.
    fn save(&mut self, cursor: &Cursor, settle: bool) {
        let saved = if settle { self.cursor_file.settle(cursor) } else { self.cursor_file.save(cursor) };
        if let Err(e) = saved {
            tracing::error!(error = %e, "MQTT: cannot save the cursor; a restart will send these lines again");
        }
    }

    fn stopping(&self) -> bool {
        self.signal.0.lock().unwrap_or_else(PoisonError::into_inner).stop
    }

    fn topic(&self, parts: &[&str]) -> String {
        topic(&self.s.prefix, &self.s.site, parts)
    }

    fn run(&mut self, mut cursor: Cursor) {
        let mut wait = Duration::from_millis(500);
        while !self.stopping() {
            let tried = Instant::now();
            match self.connected(&mut cursor) {
                Err(Broke::Stop) | Ok(()) => return,
                Err(Broke::Broker(e)) => {
                    tracing::warn!(error = %e, host = %self.s.host, port = self.s.port, "MQTT: the broker is away; the lines wait in the log");
                    // Status topics and discovery configs are told again on the next connection.
                    self.told.clear();
                    self.announced.clear();
                    tracing::debug!(wait_ms = wait.as_millis() as u64, "MQTT: waiting before connecting again");
                    // Only a stop ends the wait early: new lines (wakes) do
                    // not hurry the next attempt, or a busy site would try
                    // (and warn) once per line.
                    let until = Instant::now() + wait;
                    let (lock, cv) = &*self.signal;
                    let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    while !g.stop {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        g = cv.wait_timeout(g, left).unwrap_or_else(PoisonError::into_inner).0;
                    }
                    drop(g);
                    // A connection that held a while starts the backoff again.
                    wait = if tried.elapsed() > Duration::from_secs(10) {
                        Duration::from_millis(500)
                    } else {
                        (wait * 2).min(Duration::from_secs(30))
                    };
                }
            }
        }
    }

    /// One connection: sends batches while there are lines, the statuses
    /// when they change, and waits for new lines in between.
    fn connected(&mut self, cursor: &mut Cursor) -> Result<(), Broke> {
        let online = self.topic(&["online"]);
        let mut opts = options(&self.s, &format!("blackbox-{}", self.s.site))?;
        opts.set_last_will(LastWill::new(online.clone(), "offline", QoS::AtLeastOnce, true));
        tracing::debug!("MQTT: connecting");
        let (client, conn) = Client::new(opts, WINDOW);
        let resend = self.topic(&["resend"]);
        let mut link = Link::new(&client, conn, self.s.raw.then(|| resend.clone()))?;
        // New lines and a stop interrupt the waits below at once.
        self.signal.0.lock().unwrap_or_else(PoisonError::into_inner).link = Some(link.waker());
        link.connack()?;
        tracing::debug!("MQTT: connected");
        link.send(&[Msg { topic: online, payload: b"online".to_vec(), retain: true }])?;
        if self.s.raw {
            link.send(&[self.head(cursor)])?;
            self.head_told = Some((cursor.clone(), Instant::now()));
        }
        if self.s.raw {
            // A mirror that misses lines asks for them here.
            client.subscribe(resend.clone(), QoS::AtLeastOnce).map_err(|e| Broke::Broker(e.to_string()))?;
            link.suback()?;
        }
        if self.s.discovery {
            // Home Assistant says `online` here when it starts: its configs are sent again then.
            client.subscribe(HA_STATUS, QoS::AtLeastOnce).map_err(|e| Broke::Broker(e.to_string()))?;
            link.suback()?;
            tracing::info!("MQTT: listening for Home Assistant's online on {HA_STATUS}");
            link.ha_online = true;
        }
        let mut seen = u64::MAX;
        loop {
            if self.stopping() {
                return Err(Broke::Stop);
            }
            if std::mem::take(&mut link.ha_online) {
                self.announced.clear();
                let configs = self.discovery_all();
                tracing::info!(configs = configs.len(), "MQTT: Home Assistant is online: sending its discovery configs");
                link.send(&configs)?;
            }
            for ask in std::mem::take(&mut link.resends) {
                self.resend(&mut link, &ask, cursor)?;
            }
            // The log directory is listed for a new day at most once a second.
            let list = self.listed.is_none_or(|at| at.elapsed() >= LIST_EVERY);
            if list {
                self.listed = Some(Instant::now());
            }
            let (lines, next) =
                read_batch(&self.logs, cursor, BATCH_LINES, list).map_err(|e| Broke::Broker(format!("reading the logs: {e}")))?;
            if !lines.is_empty() {
                let mut msgs: Vec<Msg> = lines.iter().flat_map(|(day, offset, line)| self.messages(day, *offset, line)).collect();
                if self.s.raw && self.head_told.as_ref().is_none_or(|(_, at)| at.elapsed() >= HEAD_EVERY) {
                    // Where the site's log ends, for mirrors: what they lack at the end they ask for.
                    // (Sent with the batch; should the batch fail, a head ahead of the cursor only
                    // makes a mirror ask for lines that come anyway.) At most once a second while
                    // lines come, and once more when they stop.
                    msgs.push(self.head(&next));
                    self.head_told = Some((next.clone(), Instant::now()));
                }
                link.send(&msgs)?;
                *cursor = next;
                self.save(cursor, false);
                continue;
            }
            // Lines stopped: the synced copy catches up (see cursor.rs).
            self.save(cursor, true);
            if self.s.raw && self.head_told.as_ref().is_none_or(|(c, _)| c != cursor) {
                link.send(&[self.head(cursor)])?;
                self.head_told = Some((cursor.clone(), Instant::now()));
            }
            let statuses = self.statuses();
            if !statuses.is_empty() {
                link.send(&statuses)?;
                for m in statuses {
                    self.told.insert(m.topic, String::from_utf8_lossy(&m.payload).into_owned());
                }
            }
            // Nothing new: wait for new lines (a wake; at most a second),
            // taking what the broker sends meanwhile (Home Assistant's
            // `online`, resend requests).
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until && !link.ha_online && link.resends.is_empty() {
                let g = self.signal.0.lock().unwrap_or_else(PoisonError::into_inner);
                if g.count != seen || g.stop {
                    seen = g.count;
                    break;
                }
                drop(g);
                link.idle(until.saturating_duration_since(Instant::now()))?;
            }
        }
    }

    /// Answers a mirror's request: the raw lines of a day from an offset,
    /// at most [`RESEND_LINES`] of them and none the cursor has not passed
    /// (those go out anyway). The day is looked up among the log's files;
    /// the request never names a path.
    fn resend(&mut self, link: &mut Link, ask: &Cursor, cursor: &Cursor) -> Result<(), Broke> {
        let days = logfile::scan(&self.logs).map_err(|e| Broke::Broker(format!("reading the logs: {e}")))?.days;
        let Some(day) = days.iter().find(|d| d.date.format("%Y%m%d").to_string() == ask.day) else {
            tracing::warn!(day = %ask.day, "MQTT: a resend request for a day the log does not have");
            return Ok(());
        };
        let until = match ask.day.cmp(&cursor.day) {
            std::cmp::Ordering::Less => u64::MAX,
            std::cmp::Ordering::Equal => cursor.offset,
            std::cmp::Ordering::Greater => return Ok(()),
        };
        let mut lines = Vec::new();
        read_day(day, ask.offset, RESEND_LINES, until, &mut lines).map_err(|e| Broke::Broker(format!("reading the logs: {e}")))?;
        if let Some((_, first, _)) = lines.first() {
            if *first != ask.offset {
                tracing::warn!(day = %ask.day, offset = ask.offset, "MQTT: a resend request not at the start of a line");
                return Ok(());
            }
        }
        tracing::info!(day = %ask.day, offset = ask.offset, lines = lines.len(), "MQTT: sending lines again for a mirror");
        let msgs: Vec<Msg> = lines.iter().map(|(day, offset, line)| self.raw_of(day, *offset, line)).collect();
        link.send(&msgs)?;
        Ok(())
    }

    /// A line's messages: its values, its JSON, its raw text.
    fn messages(&mut self, day: &str, offset: u64, line: &str) -> Vec<Msg> {
        let id = format!("{}/{day}/{offset}", self.s.site);
        let mut out = Vec::new();
        if self.s.raw {
            // Every line, readings or not, goes to mirrors.
            out.push(self.raw_of(day, offset, line));
        }
        let Ok(logfile::Line::Reading { time, source, text }) = logfile::parse_line(line) else { return out };
        let Ok(date) = chrono::NaiveDate::parse_from_str(day, "%Y%m%d") else { return out };
        let time_ms = logfile::time::join_millis(date, time);
        let unescaped = String::from_utf8_lossy(&logfile::unescape(text)).into_owned();
        let state = self.states.entry(source.to_string()).or_default();
        let (device, fields, at) = match self.decoders.decode(source, time_ms, &unescaped, state) {
            Outcome::Decoded { device, fields } => (device.into_owned(), fields, time_ms),
            Outcome::Replayed { time_ms: t, device, fields, .. } => (device.into_owned(), fields, t),
            _ => return out,
        };
        let mut values = serde_json::Map::new();
        for f in &fields {
            let v = index::value_json(&f.value);
            let sensor = format!("{source}/{device}/{}", f.name);
            if self.s.discovery && matches!(f.value, decode::Value::Int(_) | decode::Value::Float(_)) {
                if !self.seen.contains_key(&sensor) {
                    self.seen.insert(sensor.clone(), f.unit.as_ref().map(|u| u.to_string()));
                }
                if self.announced.insert(sensor) {
                    // A field seen for the first time on this connection: its config first.
                    out.push(self.ha_config(source, &device, &f.name, f.unit.as_deref()));
                }
            }
            out.push(Msg { topic: self.topic(&[source, &device, &f.name]), payload: v.clone().into_bytes(), retain: false });
            values.insert(f.name.to_string(), serde_json::from_str(&v).unwrap_or(serde_json::Value::Null));
        }
        let doc = json!({"id": id, "time": rfc3339_millis(at), "source": source, "device": device, "fields": values});
        out.push(Msg { topic: self.topic(&[source, &device]), payload: doc.to_string().into_bytes(), retain: false });
        out
    }

    /// Home Assistant's config of every numeric sensor the cache knows.
    /// With those the forwarder itself saw in lines the cache may not have
    /// indexed yet.
    fn discovery_all(&mut self) -> Vec<Msg> {
        let mut all: BTreeMap<String, Option<String>> = self.seen.clone();
        for (sensor, unit, kind) in (self.schema)() {
            if kind == "integer" || kind == "float" {
                all.insert(sensor, unit);
            }
        }
        let mut out = Vec::new();
        for (sensor, unit) in all {
            let mut parts = sensor.splitn(3, '/');
            let (Some(source), Some(device), Some(field)) = (parts.next(), parts.next(), parts.next()) else { continue };
            out.push(self.ha_config(source, device, field, unit.as_deref()));
            self.announced.insert(sensor.clone());
        }
        out
    }

    /// The retained discovery config of one sensor (docs/mqtt.md, "Home Assistant").
    fn ha_config(&self, source: &str, device: &str, field: &str, unit: Option<&str>) -> Msg {
        let id = |parts: &[&str]| {
            let joined = parts.join("_");
            joined.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect::<String>()
        };
        let device_id = id(&["blackbox", &self.s.site, source, device]);
        let unique = id(&["blackbox", &self.s.site, source, device, field]);
        let (class, state_class) = ha_class(field, unit);
        let mut doc = json!({
            "name": field,
            "unique_id": unique,
            "object_id": unique,
            "state_topic": self.topic(&[source, device, field]),
            "availability_topic": self.topic(&["online"]),
            "payload_available": "online",
            "payload_not_available": "offline",
            "state_class": state_class,
            "device": {"identifiers": [device_id], "name": device, "model": source, "manufacturer": "blackbox", "suggested_area": self.s.site},
        });
        if let Some(u) = unit {
            doc["unit_of_measurement"] = json!(u);
        }
        if let Some(c) = class {
            doc["device_class"] = json!(c);
        }
        Msg {
            topic: format!("homeassistant/sensor/{device_id}/{}/config", id(&[field])),
            payload: doc.to_string().into_bytes(),
            retain: true,
        }
    }

    /// `<prefix>/<site>/head`, retained: the cursor, up to which every line
    /// went out. A mirror compares its copy with it (a lost message at the
    /// end of a burst is never followed by one that shows the gap).
    fn head(&self, cursor: &Cursor) -> Msg {
        let (topic, payload) = head_message(&self.s.prefix, &self.s.site, cursor);
        Msg { topic, payload, retain: true }
    }
}

/// `<prefix>/<site>/<parts...>`. A device's name must not add levels or
/// wildcards to a topic, nor a `.`, which NATS (serving MQTT) takes for a
/// separator and refuses.
fn topic(prefix: &str, site: &str, parts: &[&str]) -> String {
    let mut t = format!("{prefix}/{site}");
    for p in parts {
        t.push('/');
        t.push_str(&p.replace(['/', '+', '#', '.'], "_"));
    }
    t
}

/// The topic and payload a site's forwarder publishes (retained) as its
/// `head`: where its log ends.
pub fn head_message(prefix: &str, site: &str, cursor: &Cursor) -> (String, Vec<u8>) {
    (topic(prefix, site, &["head"]), serde_json::to_vec(cursor).unwrap_or_default())
}

/// The topic and payload a site's forwarder publishes for a raw line at
/// `offset` of `day`: what mirrors take, for tools that stand in for sites
/// (`bench mqtt` simulates a hundred of them).
pub fn raw_message(prefix: &str, site: &str, day: &str, offset: u64, line: &str) -> (String, Vec<u8>) {
    let source = match logfile::parse_line(line) {
        Ok(logfile::Line::Reading { source, .. }) => source,
        _ => "#",
    };
    let doc = json!({"id": format!("{site}/{day}/{offset}"), "day": day, "offset": offset, "line": line});
    (topic(prefix, site, &["raw", source]), doc.to_string().into_bytes())
}

impl Run {
    fn raw_of(&self, day: &str, offset: u64, line: &str) -> Msg {
        let (topic, payload) = raw_message(&self.s.prefix, &self.s.site, day, offset, line);
        Msg { topic, payload, retain: false }
    }

    /// Retained status messages that changed since last told.
    fn statuses(&self) -> Vec<Msg> {
        let Some(status) = (self.look)() else { return Vec::new() };
        let mut out = Vec::new();
        let site = json!({"level": status.level, "colour": status.level.colour(), "at": rfc3339_millis(status.at_ms)});
        let mut all = vec![(self.topic(&["status"]), json!({"level": site["level"], "colour": site["colour"]}).to_string())];
        for d in &status.devices {
            let name = d.device.split_once('/').map_or(d.device.as_str(), |(_, n)| n);
            let doc = json!({"level": d.level, "colour": d.level.colour(), "since": rfc3339_millis(d.since_ms), "why": d.why});
            all.push((self.topic(&["status", &d.source, name]), doc.to_string()));
        }
        for (topic, payload) in all {
            if self.told.get(&topic) != Some(&payload) {
                out.push(Msg { topic, payload: payload.into_bytes(), retain: true });
            }
        }
        out
    }
}

/// Where Home Assistant announces itself.
const HA_STATUS: &str = "homeassistant/status";
/// How often the forwarder lists the log directory for a new day while
/// its cursor's day is there (a new day's first lines wait at most this).
const LIST_EVERY: Duration = Duration::from_secs(1);
/// How often the head goes out while lines come.
const HEAD_EVERY: Duration = Duration::from_secs(1);
/// The most lines one resend request is answered with.
const RESEND_LINES: usize = 5000;

/// A connection's options: the broker, credentials, keep-alive, packet size.
fn options(s: &Settings, client_id: &str) -> Result<MqttOptions, Broke> {
    let mut opts = MqttOptions::new(client_id, s.host.clone(), s.port);
    opts.set_keep_alive(Duration::from_secs(15));
    opts.set_clean_session(true);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    opts.set_inflight(WINDOW as u16);
    if let (Some(u), Some(p)) = (&s.user, &s.password) {
        opts.set_credentials(u.clone(), p.clone());
    }
    if let Some(ca) = &s.tls_ca {
        opts.set_transport(rumqttc::Transport::tls(ca.clone(), None, None));
    }
    Ok(opts)
}

/// Home Assistant's device class and state class for a unit.
fn ha_class(field: &str, unit: Option<&str>) -> (Option<&'static str>, &'static str) {
    match unit.unwrap_or("") {
        "°C" | "°F" | "C" | "F" | "K" => (Some("temperature"), "measurement"),
        "%" if field.to_ascii_lowercase().starts_with("hum") => (Some("humidity"), "measurement"),
        "W" | "kW" => (Some("power"), "measurement"),
        "Wh" | "kWh" => (Some("energy"), "total_increasing"),
        "V" => (Some("voltage"), "measurement"),
        "A" => (Some("current"), "measurement"),
        "hPa" | "Pa" => (Some("pressure"), "measurement"),
        "lux" => (Some("illuminance"), "measurement"),
        "dBm" | "dB" => (Some("signal_strength"), "measurement"),
        _ => (None, "measurement"),
    }
}

/// What a connection's pump hands over: an event of the connection, or a
/// wake (new lines in the logs, or a stop).
enum Ev {
    Mqtt(Result<Event, rumqttc::ConnectionError>),
    Wake,
}

/// What the pump sends: the events ready at once (a publish's many
/// acknowledgements wake the user once, not once each), or a wake.
enum Pumped {
    Events(Vec<Result<Event, rumqttc::ConnectionError>>),
    Wake,
}

/// The most events the pump hands over at once.
const PUMP_BATCH: usize = 256;

/// Events waiting between a connection's pump and its user: the broker
/// sends at most its in-flight window unacknowledged, so this is rarely full.
const PUMP_QUEUE: usize = 64;
/// How often an idle pump looks whether its link was dropped.
const PUMP_LOOK: Duration = Duration::from_millis(500);

/// A connection's client, and its event loop run by a thread of its own
/// (the pump), which passes the events on. The user waits on one queue for
/// the broker's packets and for wakes alike, so a new line goes out at
/// once instead of at the next look, and an idle forwarder sleeps instead
/// of polling.
struct Link<'a> {
    client: &'a Client,
    events: mpsc::Receiver<Pumped>,
    /// Events received and not taken yet.
    ready: std::collections::VecDeque<Result<Event, rumqttc::ConnectionError>>,
    /// For wakes: [`Link::waker`].
    tx: mpsc::SyncSender<Pumped>,
    /// Set when the link is dropped: the pump ends and the connection closes.
    done: Arc<AtomicBool>,
    /// Home Assistant said it is online (or the connection is new): send its configs.
    ha_online: bool,
    /// Where mirrors ask for lines again, when listened to.
    resend_topic: Option<String>,
    /// Their requests, not answered yet.
    resends: Vec<Cursor>,
    /// Other messages that came while an answer was awaited (a mirror's
    /// lines, resent by the broker as soon as a session resumes): kept
    /// for the caller, never dropped unacknowledged.
    other: Vec<rumqttc::Publish>,
}

impl<'a> Link<'a> {
    fn new(client: &'a Client, mut conn: rumqttc::Connection, resend_topic: Option<String>) -> Result<Link<'a>, Broke> {
        let (tx, events) = mpsc::sync_channel(PUMP_QUEUE);
        let done = Arc::new(AtomicBool::new(false));
        let (pump, stop) = (tx.clone(), done.clone());
        std::thread::Builder::new()
            .name("mqtt pump".into())
            .spawn(move || {
                // The connection is given up after its first error: the
                // user decides when to connect again (with backoff).
                while !stop.load(Ordering::SeqCst) {
                    let mut got = match conn.recv_timeout(PUMP_LOOK) {
                        Ok(ev) => vec![ev],
                        Err(rumqttc::RecvTimeoutError::Timeout) => continue,
                        Err(rumqttc::RecvTimeoutError::Disconnected) => return,
                    };
                    // And what else is ready now.
                    while got.len() < PUMP_BATCH && got.last().is_some_and(|e| e.is_ok()) {
                        match conn.try_recv() {
                            Ok(ev) => got.push(ev),
                            Err(_) => break,
                        }
                    }
                    let broke = got.last().is_some_and(|e| e.is_err());
                    if pump.send(Pumped::Events(got)).is_err() || broke {
                        return;
                    }
                }
            })
            .map_err(|e| Broke::Broker(format!("cannot start the connection's thread: {e}")))?;
        Ok(Link {
            client,
            events,
            ready: Default::default(),
            tx,
            done,
            ha_online: false,
            resend_topic,
            resends: Vec::new(),
            other: Vec::new(),
        })
    }

    /// Interrupts [`Link::idle`] from another thread.
    fn waker(&self) -> mpsc::SyncSender<Pumped> {
        self.tx.clone()
    }

    /// The next event within `d`; `None` when none came.
    fn recv(&mut self, d: Duration) -> Option<Result<Ev, Broke>> {
        if let Some(ev) = self.ready.pop_front() {
            return Some(Ok(Ev::Mqtt(ev)));
        }
        let got = self.events.recv_timeout(d);
        self.take(got.map_err(|e| e == mpsc::RecvTimeoutError::Disconnected))
    }

    /// The next event that has already come.
    fn try_recv(&mut self) -> Option<Result<Ev, Broke>> {
        if let Some(ev) = self.ready.pop_front() {
            return Some(Ok(Ev::Mqtt(ev)));
        }
        let got = self.events.try_recv();
        self.take(got.map_err(|e| e == mpsc::TryRecvError::Disconnected))
    }

    /// What came from the pump (`Err(true)`: it ended; `Err(false)`: nothing yet).
    fn take(&mut self, got: Result<Pumped, bool>) -> Option<Result<Ev, Broke>> {
        match got {
            Ok(Pumped::Wake) => Some(Ok(Ev::Wake)),
            Ok(Pumped::Events(evs)) => {
                self.ready.extend(evs);
                self.ready.pop_front().map(|ev| Ok(Ev::Mqtt(ev)))
            }
            Err(false) => None,
            Err(true) => Some(Err(Broke::Broker("the connection ended".into()))),
        }
    }

    /// Notes Home Assistant's `online` and mirrors' resend requests; any
    /// other message is kept in `other`.
    fn incoming(&mut self, p: &rumqttc::Publish) {
        if p.topic == HA_STATUS {
            self.ha_online |= &p.payload[..] == b"online";
        } else if self.resend_topic.as_deref() == Some(p.topic.as_str()) {
            match serde_json::from_slice::<Cursor>(&p.payload) {
                Ok(c) if self.resends.len() < 100 && !self.resends.contains(&c) => self.resends.push(c),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "MQTT: a resend request that is not {{\"day\", \"offset\"}}; ignored"),
            }
        } else {
            // Only a mirror subscribes to anything else, and it takes these
            // right after its subscriptions are confirmed.
            self.other.push(p.clone());
        }
    }
}

impl Drop for Link<'_> {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

impl Link<'_> {
    /// Publishes `msgs` with QoS 1 and returns once the broker acknowledged
    /// every one. At most [`WINDOW`] are unacknowledged at a time, and new
    /// ones go out as acknowledgements come in: the stream never stops to
    /// wait until the end (a broker whose small acknowledgements Nagle's
    /// algorithm holds back then costs one delay per call, not per chunk).
    fn send(&mut self, msgs: &[Msg]) -> Result<(), Broke> {
        let mut sent: HashSet<u16> = HashSet::new();
        let (mut queued, mut acked) = (0, 0);
        let mut deadline = Instant::now() + ACK_TIMEOUT;
        while acked < msgs.len() {
            // Publishing must never block: the pump may itself be waiting
            // for this thread to take its events (a full queue both ways).
            while queued < msgs.len() && queued - acked < WINDOW {
                let m = &msgs[queued];
                match self.client.try_publish(m.topic.clone(), QoS::AtLeastOnce, m.retain, m.payload.clone()) {
                    Ok(()) => queued += 1,
                    Err(rumqttc::ClientError::TryRequest(_)) => break,
                    Err(e) => return Err(Broke::Broker(e.to_string())),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Broke::Broker(format!(
                    "{} of {} messages not acknowledged within {} s",
                    msgs.len() - acked,
                    msgs.len(),
                    ACK_TIMEOUT.as_secs()
                )));
            }
            match self.recv(left).transpose()? {
                Some(Ev::Mqtt(Ok(Event::Outgoing(Outgoing::Publish(pkid))))) => {
                    sent.insert(pkid);
                }
                Some(Ev::Mqtt(Ok(Event::Incoming(Packet::PubAck(ack))))) => {
                    if sent.remove(&ack.pkid) {
                        acked += 1;
                        deadline = Instant::now() + ACK_TIMEOUT;
                    }
                }
                Some(Ev::Mqtt(Ok(Event::Incoming(Packet::ConnAck(c))))) if c.code != rumqttc::ConnectReturnCode::Success => {
                    return Err(Broke::Broker(format!("the broker refused the connection: {:?}", c.code)));
                }
                Some(Ev::Mqtt(Ok(Event::Incoming(Packet::Publish(p))))) => self.incoming(&p),
                Some(Ev::Mqtt(Err(e))) => return Err(Broke::Broker(e.to_string())),
                Some(_) | None => {}
            }
        }
        Ok(())
    }

    /// Waits for the broker to accept the connection: a broker that is
    /// stopping may take it and never answer.
    /// Returns whether the broker kept a session for this client.
    fn connack(&mut self) -> Result<bool, Broke> {
        let mut present = false;
        self.answer("the connection", &mut |p| match p {
            Packet::ConnAck(c) if c.code == rumqttc::ConnectReturnCode::Success => {
                present = c.session_present;
                Some(Ok(()))
            }
            Packet::ConnAck(c) => Some(Err(Broke::Broker(format!("the broker refused the connection: {:?}", c.code)))),
            _ => None,
        })?;
        Ok(present)
    }

    /// Waits for the broker to confirm a subscription.
    fn suback(&mut self) -> Result<(), Broke> {
        self.answer("the subscription", &mut |p| matches!(p, Packet::SubAck(_)).then_some(Ok(())))
    }

    /// Serves the connection until `done` says what an incoming packet
    /// settles, for at most [`CONNECT_TIMEOUT`].
    fn answer(&mut self, to: &str, done: &mut dyn FnMut(&Packet) -> Option<Result<(), Broke>>) -> Result<(), Broke> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Broke::Broker(format!("no answer to {to} within {} s", CONNECT_TIMEOUT.as_secs())));
            }
            match self.recv(left).transpose()? {
                Some(Ev::Mqtt(Ok(Event::Incoming(p)))) => {
                    if let Some(r) = done(&p) {
                        return r;
                    }
                    if let Packet::Publish(p) = &p {
                        self.incoming(p);
                    }
                }
                Some(Ev::Mqtt(Err(e))) => return Err(Broke::Broker(e.to_string())),
                Some(_) | None => {}
            }
        }
    }

    /// Takes incoming messages for at most `d`, until a wake or one that
    /// needs an answer (Home Assistant's `online`, a resend request), and
    /// notices the connection broke.
    fn idle(&mut self, d: Duration) -> Result<(), Broke> {
        let until = Instant::now() + d;
        while !self.ha_online && self.resends.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.recv(left).transpose()? {
                Some(Ev::Mqtt(Ok(Event::Incoming(Packet::Publish(p))))) => self.incoming(&p),
                Some(Ev::Mqtt(Ok(_))) => {}
                Some(Ev::Mqtt(Err(e))) => return Err(Broke::Broker(e.to_string())),
                Some(Ev::Wake) | None => return Ok(()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_messages_go_to_their_source_or_to_raw_underscore() {
        let (topic, payload) = raw_message("bb", "cellar", "20261129", 42, "L 00:00:01.000 usb.0 OK 1 2");
        assert_eq!(topic, "bb/cellar/raw/usb_0");
        let doc: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(doc, json!({"id": "cellar/20261129/42", "day": "20261129", "offset": 42, "line": "L 00:00:01.000 usb.0 OK 1 2"}));
        assert_eq!(raw_message("bb", "cellar", "20261129", 0, "# 00:00:00.000 previous 20261128.txt 10").0, "bb/cellar/raw/_");
        assert_eq!(raw_message("bb", "cellar", "20261129", 9, "not a log line at all").0, "bb/cellar/raw/_");
        let (head, payload) = head_message("bb", "cellar", &Cursor { day: "20261129".into(), offset: 7 });
        assert_eq!((head.as_str(), payload), ("bb/cellar/head", br#"{"day":"20261129","offset":7}"#.to_vec()));
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("mqtt://broker.lan:1884").unwrap(), ("broker.lan".to_string(), 1884, false));
        assert_eq!(parse_url("mqtt://10.0.0.2").unwrap(), ("10.0.0.2".to_string(), 1883, false));
        assert_eq!(parse_url("mqtts://h").unwrap(), ("h".to_string(), 8883, true));
        assert!(parse_url("http://h").unwrap_err().contains("mqtt://host:port"));
        assert!(parse_url("mqtt://h:0").unwrap_err().contains("port"));
        assert!(parse_url("mqtt://:1883").unwrap_err().contains("no host"));
    }

    #[test]
    fn batches_are_whole_lines_in_day_order_from_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs/2026");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("20261129.txt"), "L 23:59:59.000 a x\n").unwrap();
        // The newest day ends with a line still being written.
        std::fs::write(logs.join("20261130.txt"), "L 00:00:01.000 a y\nL 00:00:02.000 a z\nL 00:00:03").unwrap();
        let root = dir.path().join("logs");
        let start = Cursor { day: "20261129".into(), offset: 0 };
        // Batch after batch until nothing is left, as the forwarder reads.
        let drain = |max| {
            let (mut all, mut at) = (Vec::new(), start.clone());
            loop {
                let (lines, next) = read_batch(&root, &at, max, true).unwrap();
                assert!(lines.len() <= max);
                if lines.is_empty() {
                    assert_eq!(next, at, "nothing read, the cursor stays");
                    break (all, at);
                }
                all.extend(lines.into_iter().map(|(d, o, _)| (d, o)));
                at = next;
            }
        };
        let want = [("20261129".to_string(), 0), ("20261130".to_string(), 0), ("20261130".to_string(), 19)];
        for max in [10, 2, 1] {
            let (offsets, end) = drain(max);
            assert_eq!(offsets, want, "in batches of at most {max}");
            assert_eq!(end, Cursor { day: "20261130".into(), offset: 38 }, "the unfinished line waits");
        }
        // At the end of its day, the cursor finds the next one only when
        // the directory is listed.
        let end_of_first = Cursor { day: "20261129".into(), offset: 19 };
        assert_eq!(read_batch(&root, &end_of_first, 10, false).unwrap(), (vec![], end_of_first.clone()));
        let (first, next) = read_batch(&root, &end_of_first, 10, true).unwrap();
        assert_eq!((first.len(), next), (2, Cursor { day: "20261130".into(), offset: 38 }));
        // A day that is gone (compressed) is always looked for.
        std::fs::remove_file(logs.join("20261129.txt")).unwrap();
        assert_eq!(read_batch(&root, &end_of_first, 10, false).unwrap().0.len(), 2);
        assert_eq!(end_of_logs(&root), Cursor { day: "20261130".into(), offset: 48 });
    }
}
