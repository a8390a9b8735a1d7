//! The indexer: replays the daily logs through the decoders into a sled
//! cache of readings, schema, events and statistics, and answers queries.
//!
//! Architecture invariants:
//! - everything in the cache is derived from the logs: deleting the cache and
//!   indexing again gives the same answers to every query;
//! - a cursor (per daily file: the offset after the last complete line and a
//!   CRC of the bytes before it) is committed in the same atomic sled batch
//!   as the derived data it accounts for, so a crash between batches is
//!   harmless;
//! - the indexer never writes the logs.
//!
//! Storage: one sled tree with key prefixes (so one batch is atomic across
//! all of them). Readings are grouped per sensor and day, in segments of at
//! least [`SEGMENT_MIN`] readings ([`chunk`]); everything else is keyed by
//! day too, so re-indexing a day removes exactly its derived data.

pub mod chunk;
mod codec;
mod keys;
mod read;

pub use read::{EventRecord, SchemaRow, SourceStats, Stats};

use decode::{Cuts, Decoders, Outcome, SourceState, Value};
use logfile::{DayFile, DayReader, Line};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

/// Version of everything the cache stores, and of what the decoders derive
/// from a line (bumped when decoding changes, so caches are rebuilt from the
/// logs); a cache of another version is rebuilt.
/// 2: field names are never empty and never contain `/` or spaces.
/// 3: readings in segments per sensor and day instead of one chunk per hour.
pub const FORMAT_VERSION: u32 = 3;
/// Lines per atomic batch during catch-up: bounds memory whatever the size of the logs.
const BATCH_LINES: u64 = 20_000;
/// sled's page cache: small, or it grows into gigabytes during a bulk load.
const SLED_CACHE_BYTES: u64 = 8 << 20;
/// A sensor's readings of a day are stored in segments ([`chunk`]); new
/// readings are merged into the day's last segment while it holds fewer than
/// this many, and start a new segment after. So a commit re-encodes at most
/// this many old readings per sensor (following a live log commits a few
/// lines at a time), a bulk catch-up (20,000 lines a batch) rarely any, and
/// a day of a sensor is a handful of keys.
const SEGMENT_MIN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cache {}: {source}", path.display())]
    Db { path: PathBuf, source: sled::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("the cache {} is damaged ({what}); delete it or run `blackbox rebuild`", path.display())]
    Damaged { path: PathBuf, what: String },
    #[error("writing the output: {0}")]
    Output(#[source] io::Error),
    #[error("there is no cache at {}: run `blackbox index` to build it from the logs", path.display())]
    Missing { path: PathBuf },
    #[error("the cache {} is in use by another blackbox process (`blackbox index --follow`?); stop it, or query from that machine once it has stopped", path.display())]
    Busy { path: PathBuf },
}

/// Where a day's indexing stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    pub offset: u64,
    pub lines: u64,
    pub crc: u32,
    /// File size and modification time when the cursor was written: while
    /// they are unchanged the file need not be hashed again.
    pub size: u64,
    pub mtime_ns: i128,
    pub compressed: bool,
    /// Decoder state per source after the last line indexed.
    pub states: BTreeMap<String, SourceState>,
    /// Cut lines in progress (serialised exactly as the two maps it replaced).
    pub cuts: Cuts,
}

/// What one source sent: stored per day, summed for `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCounts {
    /// Readings (`L` lines).
    pub lines: u64,
    /// Readings decoded into values.
    pub decoded: u64,
    /// Values they gave.
    pub values: u64,
    /// Readings a decoder knows but that carry no values (`?`, `DF`, banners).
    pub recognised: u64,
    pub undecoded: u64,
    /// Pieces of lines cut by capture (overlong, disconnect, stop).
    pub partial: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

impl SourceCounts {
    /// Adds `other`, keeping the earliest first and the latest last time.
    pub fn merge(&mut self, other: &SourceCounts) {
        let empty = self.lines == 0;
        self.lines += other.lines;
        self.decoded += other.decoded;
        self.values += other.values;
        self.recognised += other.recognised;
        self.undecoded += other.undecoded;
        self.partial += other.partial;
        self.first_ms = if empty { other.first_ms } else { self.first_ms.min(other.first_ms) };
        self.last_ms = self.last_ms.max(other.last_ms);
    }
}

/// Per day and sensor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FieldDay {
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub kind: String,
    pub unit: Option<String>,
}

/// Per day: lines that are not readings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DayMeta {
    pub meta_lines: u64,
    pub bad_lines: u64,
}

/// What a catch-up did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    pub days: usize,
    pub lines: u64,
    pub bytes: u64,
    /// Days re-indexed because their file changed, shrank or their cursor was stale.
    pub reindexed: Vec<String>,
    /// Days removed because their file is gone.
    pub removed: Vec<String>,
    /// The progress callback asked to stop before the end.
    pub stopped: bool,
}

/// Progress of a catch-up, for a progress bar.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub day: String,
    pub days_done: usize,
    pub days_total: usize,
    pub lines: u64,
    /// Bytes of the days finished, and of the current day so far.
    pub bytes_done: u64,
    pub bytes_in_day: u64,
    pub bytes_total: u64,
}

/// Why an existing cache was thrown away on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reset {
    /// Another format version.
    Version { found: u32 },
    /// Another decoder configuration.
    Config,
    /// The cache could not be opened; it was moved aside to this path.
    MovedAside(PathBuf),
}

/// An open cache.
pub struct Index {
    store: Store,
    sensors: Sensors,
    /// The last segment written of each sensor's current day (kept across
    /// catch-ups, so that following a log does not look it up every time).
    segments: Segments,
    /// For readers: the cache directory, held open so that every file comes from it.
    _dir: Option<std::fs::File>,
}

/// The sled database, and what writes to it.
struct Store {
    path: PathBuf,
    db: sled::Db,
}

/// Sensor names and their ids.
#[derive(Default)]
struct Sensors {
    by_name: HashMap<String, u32>,
    names: Vec<String>,
    /// source → device → its sensor ids, filled as sensors are met.
    lookup: FxMap<String, FxMap<String, DeviceIds>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.store.path).field("sensors", &self.sensors.names.len()).finish()
    }
}

/// A fingerprint of the decoding configuration: when it changes, the cache is rebuilt.
pub fn fingerprint(config: &config::Config, source_names: &[String]) -> String {
    let sources: Vec<_> =
        config.sources.iter().zip(source_names).map(|(s, n)| (n, &s.decoder, &s.device, &s.regex, &s.columns, &s.separator)).collect();
    let text = format!("{FORMAT_VERSION} {:?} {:?} {:?} {:?}", config.rf12, config.drivers, config.events, sources);
    format!("{:08x}{:08x}", crc32fast::hash(text.as_bytes()), text.len())
}

impl Index {
    /// Opens (or creates) the cache at `path`. A cache that cannot be opened
    /// is moved aside; one of another format version or configuration
    /// fingerprint is emptied. Either way the next catch-up rebuilds it.
    pub fn open(path: &Path, fingerprint: &str) -> Result<(Index, Option<Reset>), IndexError> {
        Self::open_mode(path, path, fingerprint, true)
    }

    /// Opens an existing cache for reading: nothing is reset or moved. A
    /// cache built differently is returned with the reason, so the caller can
    /// warn that its answers are stale until `blackbox index` runs.
    pub fn open_read(path: &Path, fingerprint: &str) -> Result<(Index, Option<Reset>), IndexError> {
        // A rebuild may swap the cache directory at any moment, and sled opens
        // its files one by one. Opening them all through one directory
        // descriptor (/proc/self/fd/N) keeps them from two different caches;
        // if the old cache is deleted while it opens, try again.
        let mut attempt = 0;
        loop {
            if !path.join("conf").exists() && !path.join("db").exists() {
                return Err(IndexError::Missing { path: path.into() });
            }
            let dir = std::fs::File::open(path).map_err(|source| IndexError::Io { path: path.into(), source })?;
            let via = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir)));
            let db_path = if via.exists() { via } else { path.to_path_buf() };
            match Self::open_mode(path, &db_path, fingerprint, false) {
                Ok((mut idx, reset)) => {
                    idx._dir = Some(dir);
                    return Ok((idx, reset));
                }
                Err(IndexError::Damaged { .. } | IndexError::Io { .. }) if attempt < 3 => {
                    attempt += 1;
                    tracing::debug!(attempt, "the cache changed while opening it (a rebuild swapped it?); opening again");
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn open_mode(path: &Path, db_path: &Path, fingerprint: &str, write: bool) -> Result<(Index, Option<Reset>), IndexError> {
        let mut reset = None;
        let db = match open_db(db_path) {
            Ok(db) => db,
            Err(e) if is_lock_error(&e) => return Err(IndexError::Busy { path: path.into() }),
            Err(e) if !write => return Err(IndexError::Damaged { path: path.into(), what: e.to_string() }),
            // The environment, not the cache: a read-only or full file system, permissions.
            Err(sled::Error::Io(io)) if is_environment(&io) => return Err(IndexError::Io { path: path.into(), source: io }),
            Err(e) => {
                let aside = aside_path(path);
                tracing::warn!(cache = %path.display(), error = %e, aside = %aside.display(), "the cache cannot be opened; moving it aside and rebuilding");
                std::fs::rename(path, &aside).map_err(|source| IndexError::Io { path: path.into(), source })?;
                reset = Some(Reset::MovedAside(aside));
                open_db(path).map_err(|source| IndexError::Db { path: path.into(), source })?
            }
        };
        let db_err = |source| IndexError::Db { path: path.into(), source };
        let version = db.get(keys::meta("version")).map_err(db_err)?.and_then(|v| codec::decode::<u32>(&v));
        let stored_fp = db.get(keys::meta("fingerprint")).map_err(db_err)?.and_then(|v| codec::decode::<String>(&v));
        let empty = db.is_empty();
        if !empty && reset.is_none() {
            if version != Some(FORMAT_VERSION) {
                reset = Some(Reset::Version { found: version.unwrap_or(0) });
            } else if stored_fp.as_deref() != Some(fingerprint) {
                reset = Some(Reset::Config);
            }
            if reset.is_some() && write {
                tracing::warn!(cache = %path.display(), reason = ?reset, "the cache was built differently; rebuilding it");
                db.clear().map_err(db_err)?;
            }
        }
        if write {
            db.insert(keys::meta("version"), codec::encode(&FORMAT_VERSION)).map_err(db_err)?;
            db.insert(keys::meta("fingerprint"), codec::encode(&fingerprint.to_string())).map_err(db_err)?;
        }
        let mut index =
            Index { store: Store { path: path.into(), db }, sensors: Sensors::default(), segments: Segments::default(), _dir: None };
        index.load_sensors()?;
        Ok((index, reset))
    }

    pub fn path(&self) -> &Path {
        &self.store.path
    }

    fn load_sensors(&mut self) -> Result<(), IndexError> {
        for item in self.store.db.scan_prefix([keys::SENSOR_ID]) {
            let (k, v) = item.map_err(self.store.db_err())?;
            let id = keys::parse_sensor_id(&k).ok_or_else(|| self.store.damaged("sensor key"))?;
            let name = String::from_utf8(v.to_vec()).map_err(|_| self.store.damaged("sensor name"))?;
            if self.sensors.names.len() <= id as usize {
                self.sensors.names.resize(id as usize + 1, String::new());
            }
            self.sensors.names[id as usize] = name.clone();
            self.sensors.by_name.insert(name, id);
        }
        Ok(())
    }

    /// Makes sure everything is on disk.
    pub fn flush(&self) -> Result<(), IndexError> {
        self.store.db.flush().map(|_| ()).map_err(self.store.db_err())
    }

    /// Brings the cache up to date with the logs: days in order, each from
    /// its cursor, re-indexing days whose file changed under the cursor and
    /// removing days whose file is gone. `progress` is called at each day and
    /// batch; when it returns false the catch-up stops there (everything
    /// committed so far stays consistent) with `stopped` set.
    pub fn catch_up(
        &mut self,
        logs: &Path,
        decoders: &Decoders,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<CatchUp, IndexError> {
        let scan = logfile::scan(logs).map_err(|source| IndexError::Io { path: logs.into(), source })?;
        let mut result = CatchUp::default();
        let present: BTreeSet<String> = scan.days.iter().map(|d| keys::day_name(d.date)).collect();
        for item in self.store.db.scan_prefix([keys::CURSOR]) {
            let (k, _) = item.map_err(self.store.db_err())?;
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            if !present.contains(&name) {
                result.removed.push(name);
            }
        }
        let mut batch = sled::Batch::default();
        for name in &result.removed {
            self.remove_day(name, &mut batch)?;
        }
        self.store.db.apply_batch(batch).map_err(self.store.db_err())?;

        let mut p = Progress { days_total: scan.days.len(), ..Progress::default() };
        p.bytes_total = scan.days.iter().map(|d| std::fs::metadata(&d.path).map(|m| m.len()).unwrap_or(0)).sum();
        // Decoder state flows from day to day; once a day is re-indexed, every later day is too.
        let mut carried: BTreeMap<String, SourceState> = BTreeMap::new();
        let mut redo_rest = false;
        for (i, day) in scan.days.iter().enumerate() {
            let name = keys::day_name(day.date);
            p.day = name.clone();
            p.days_done = i;
            if !progress(&p) {
                result.stopped = true;
                return Ok(result);
            }
            let stored: Option<Cursor> =
                self.store.db.get(keys::cursor(&name)).map_err(self.store.db_err())?.and_then(|v| codec::decode(&v));
            let file_meta = std::fs::metadata(&day.path).map_err(|source| IndexError::Io { path: day.path.clone(), source })?;
            let start = match stored {
                Some(c) if !redo_rest && self.cursor_valid(day, &c, &file_meta)? => c,
                Some(_) => {
                    tracing::info!(day = %name, "re-indexing: the file changed under the cursor");
                    result.reindexed.push(name.clone());
                    redo_rest = true;
                    let mut batch = sled::Batch::default();
                    self.remove_day(&name, &mut batch)?;
                    self.store.db.apply_batch(batch).map_err(self.store.db_err())?;
                    Cursor { states: carried.clone(), ..Cursor::default() }
                }
                None => {
                    redo_rest = true;
                    Cursor { states: carried.clone(), ..Cursor::default() }
                }
            };
            let unchanged = start.size == file_meta.len()
                && start.mtime_ns == mtime_ns(&file_meta)
                && start.compressed == day.compressed
                && start.offset > 0;
            let end = if unchanged {
                start
            } else {
                match self.index_day(day, start, &file_meta, decoders, &mut result, &mut p, progress)? {
                    Some(end) => end,
                    None => {
                        result.stopped = true;
                        return Ok(result);
                    }
                }
            };
            p.bytes_done += file_meta.len();
            p.bytes_in_day = 0;
            carried = end.states;
            result.days += 1;
        }
        p.days_done = scan.days.len();
        progress(&p);
        Ok(result)
    }

    fn cursor_valid(&self, day: &DayFile, c: &Cursor, meta: &std::fs::Metadata) -> Result<bool, IndexError> {
        if c.size == meta.len() && c.mtime_ns == mtime_ns(meta) && c.compressed == day.compressed {
            return Ok(true);
        }
        if !day.compressed && meta.len() < c.offset {
            return Ok(false);
        }
        // The file changed in some way: the bytes before the cursor must be the same.
        let io_err = |source| IndexError::Io { path: day.path.clone(), source };
        let mut reader = DayReader::open_at(&day.path, day.compressed, 0, 0).map_err(io_err)?;
        let mut hasher = crc32fast::Hasher::new();
        let mut seen = 0u64;
        while seen < c.offset {
            match reader.next_line().map_err(io_err)? {
                Some(line) => {
                    hasher.update(line.raw);
                    seen += line.raw.len() as u64;
                }
                None => return Ok(false),
            }
        }
        Ok(seen == c.offset && hasher.finalize() == c.crc)
    }

    #[allow(clippy::too_many_arguments)]
    fn index_day(
        &mut self,
        day: &DayFile,
        mut cur: Cursor,
        meta: &std::fs::Metadata,
        decoders: &Decoders,
        result: &mut CatchUp,
        p: &mut Progress,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Option<Cursor>, IndexError> {
        let name = keys::day_name(day.date);
        let io_err = |source| IndexError::Io { path: day.path.clone(), source };
        let mut reader = DayReader::open_at(&day.path, day.compressed, cur.offset, cur.lines).map_err(io_err)?;
        let mut hasher = crc32fast::Hasher::new_with_initial(cur.crc);
        let day_no = logfile::time::day_number(day.date);
        cur.size = meta.len();
        cur.mtime_ns = mtime_ns(meta);
        cur.compressed = day.compressed;
        let Index { store, sensors, segments, .. } = self;
        let (store, name) = (&*store, &name);
        // Only this day's segments are written from now on; a day indexed
        // from its start has none yet (new, or removed to be re-indexed).
        if segments.day != day_no || cur.offset == 0 {
            *segments = Segments { day: day_no, last: FxMap::default() };
        }
        // Committing a batch (merging and compressing chunks, writing sled)
        // runs on a second thread while this one reads and decodes the next.
        // Batches are committed in order, each atomically with its cursor.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(Accumulator, Cursor)>(1);
            let committer = scope.spawn(move || -> Result<(), IndexError> {
                for (acc, cur) in rx {
                    if let Err(e) = store.commit(name, &cur, acc, &mut segments.last) {
                        // What it remembers may not have been written.
                        segments.last.clear();
                        return Err(e);
                    }
                }
                Ok(())
            });
            let read = (|| -> Result<Option<Cursor>, IndexError> {
                let mut acc = Accumulator::default();
                loop {
                    let Some(line) = reader.next_line().map_err(io_err)? else { break };
                    hasher.update(line.raw);
                    acc.lines += 1;
                    result.lines += 1;
                    p.lines += 1;
                    result.bytes += line.raw.len() as u64;
                    let line_no = line.line_no;
                    // Valid UTF-8 (nearly every line) is checked by the faster strict path.
                    let text = match std::str::from_utf8(line.bytes) {
                        Ok(t) => std::borrow::Cow::Borrowed(t),
                        Err(_) => String::from_utf8_lossy(line.bytes),
                    };
                    match logfile::parse_line(&text) {
                        Ok(Line::Reading { time, source, text }) => {
                            let ts = logfile::time::join_millis(day.date, time);
                            // Most lines have nothing escaped: decode them without a copy.
                            let text: std::borrow::Cow<'_, str> = if text.contains('\\') {
                                String::from_utf8_lossy(&logfile::unescape(text)).into_owned().into()
                            } else {
                                text.into()
                            };
                            sensors.reading(&mut acc, &mut cur, decoders, day_no, name, line_no, ts, source, &text);
                        }
                        Ok(Line::Meta { event: "cut", args, .. }) => {
                            if let (Some(src), Some(reason)) = (args.get("source"), args.get("reason")) {
                                cur.cuts.announce(src, reason);
                            }
                            acc.day_meta.meta_lines += 1;
                        }
                        Ok(Line::Meta { .. }) => acc.day_meta.meta_lines += 1,
                        Err(_) => acc.day_meta.bad_lines += 1,
                    }
                    if acc.lines >= BATCH_LINES {
                        cur.offset = reader.offset();
                        cur.lines = reader.line_no();
                        cur.crc = hasher.clone().finalize();
                        if tx.send((std::mem::take(&mut acc), cur.clone())).is_err() {
                            return Ok(None); // the committer failed: its error is returned below
                        }
                        p.bytes_in_day = cur.offset;
                        if !progress(p) {
                            return Ok(None);
                        }
                    }
                }
                cur.offset = reader.offset();
                cur.lines = reader.line_no();
                cur.crc = hasher.clone().finalize();
                if tx.send((acc, cur.clone())).is_err() {
                    return Ok(None);
                }
                Ok(Some(cur))
            })();
            drop(tx);
            // A panic on the committer is a bug: let it go on as a panic.
            committer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            read
        })
    }

    /// Adds to `batch` the removal of everything derived from one day.
    fn remove_day(&self, day: &str, batch: &mut sled::Batch) -> Result<(), IndexError> {
        let day_no = keys::parse_day_name(day);
        batch.remove(keys::cursor(day));
        for prefix in [keys::day_prefix(day_no), keys::event_prefix(day_no)] {
            for item in self.store.db.scan_prefix(prefix) {
                batch.remove(item.map_err(self.store.db_err())?.0);
            }
        }
        for id in 0..self.sensors.names.len() as u32 {
            for item in self.store.db.scan_prefix(keys::chunk_prefix(id, day_no)) {
                batch.remove(item.map_err(self.store.db_err())?.0);
            }
        }
        Ok(())
    }
}

impl Sensors {
    /// Decodes one reading into the batch.
    #[allow(clippy::too_many_arguments)]
    fn reading(
        &mut self,
        acc: &mut Accumulator,
        cur: &mut Cursor,
        decoders: &Decoders,
        day_no: i64,
        day: &str,
        line_no: u64,
        ts: i64,
        source: &str,
        text: &str,
    ) {
        if !acc.sources.contains_key(source) {
            acc.sources.insert(source.to_string(), SourceCounts { first_ms: ts, ..SourceCounts::default() });
        }
        let Some(sd) = acc.sources.get_mut(source) else { unreachable!("inserted above") };
        sd.lines += 1;
        sd.last_ms = ts;
        for (k, e) in decoders.events(source, text).into_iter().enumerate() {
            *acc.event_counts.entry(e.code.clone()).or_default() += 1;
            acc.events.push((
                keys::event(day_no, line_no, k as u8),
                EventRecord {
                    time_ms: ts,
                    source: source.into(),
                    code: e.code,
                    level: e.level.to_string(),
                    description: e.description,
                    file: format!("{day}.txt"),
                    line: line_no,
                    text: text.into(),
                },
            ));
        }
        // A piece of a line cut by capture is kept in the log but never decoded.
        let partial = cur.cuts.is_piece(source);
        if partial {
            sd.partial += 1;
            return;
        }
        if !cur.states.contains_key(source) {
            cur.states.insert(source.to_string(), SourceState::default());
        }
        let Some(state) = cur.states.get_mut(source) else { unreachable!("inserted above") };
        match decoders.decode(source, ts, text, state) {
            Outcome::Decoded { device, fields } => {
                sd.decoded += 1;
                sd.values += fields.len() as u64;
                let Sensors { by_name, names, lookup } = self;
                let devices = match lookup.get_mut(source) {
                    Some(d) => d,
                    None => lookup.entry(source.to_string()).or_default(),
                };
                let ids = match devices.get_mut(&*device) {
                    Some(ids) => ids,
                    None => devices.entry(device.to_string()).or_default(),
                };
                for (i, f) in fields.into_iter().enumerate() {
                    let id = ids.id(i, &f.name, || {
                        let sensor = format!("{source}/{device}/{}", f.name);
                        match by_name.get(&sensor) {
                            Some(&id) => id,
                            None => {
                                let id = names.len() as u32;
                                names.push(sensor.clone());
                                by_name.insert(sensor.clone(), id);
                                acc.new_sensors.push((id, sensor));
                                id
                            }
                        }
                    });
                    let sb = acc
                        .sensors
                        .entry(id)
                        .or_insert_with(|| SensorBatch { day: FieldDay { first_ms: ts, ..FieldDay::default() }, entries: Vec::new() });
                    let fd = &mut sb.day;
                    fd.count += 1;
                    fd.last_ms = ts;
                    let kind = f.value.type_name();
                    if fd.kind != kind {
                        fd.kind = kind.to_string();
                    }
                    if let Some(u) = f.unit {
                        if fd.unit.as_deref() != Some(&*u) {
                            fd.unit = Some(u.to_string());
                        }
                    }
                    sb.entries.push(chunk::Entry { time_ms: ts, line: line_no, field: i.min(255) as u8, value: f.value });
                }
            }
            Outcome::Recognised { .. } => sd.recognised += 1,
            Outcome::Undecoded => sd.undecoded += 1,
        }
    }
}

impl Store {
    fn db_err(&self) -> impl Fn(sled::Error) -> IndexError + '_ {
        move |source| IndexError::Db { path: self.path.clone(), source }
    }

    fn damaged(&self, what: &str) -> IndexError {
        IndexError::Damaged { path: self.path.clone(), what: what.into() }
    }

    /// Writes the accumulated data and the cursor in one atomic batch.
    /// `segments` remembers each sensor's last segment of the day as
    /// committed (number and readings), so that it is looked up in sled once
    /// per day and process.
    fn commit(&self, day: &str, cur: &Cursor, acc: Accumulator, segments: &mut FxMap<u32, LastSegment>) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        for (id, name) in &acc.new_sensors {
            batch.insert(keys::sensor_id(*id), name.as_bytes());
        }
        let day_no = keys::parse_day_name(day);
        for (source, add) in acc.sources {
            let key = keys::day_key(day_no, keys::DAY_SOURCE, source.as_bytes());
            let mut merged = self.get::<SourceCounts>(&key)?.unwrap_or_default();
            merged.merge(&add);
            batch.insert(key, codec::encode(&merged));
        }
        for (id, SensorBatch { day: add, mut entries }) in acc.sensors {
            // The day's last segment takes the new readings while it is short.
            let (seq, mut old) = match segments.get(&id) {
                Some(last) if last.len < SEGMENT_MIN => (last.seq, self.segment(&keys::chunk(id, day_no, last.seq))?),
                Some(last) => (last.seq + 1, Vec::new()),
                None => match self.last_segment(id, day_no)? {
                    Some((seq, old)) if old.len() < SEGMENT_MIN => (seq, old),
                    Some((seq, _)) => (seq + 1, Vec::new()),
                    None => (0, Vec::new()),
                },
            };
            if !old.is_empty() {
                old.append(&mut entries);
                entries = old;
            }
            segments.insert(id, LastSegment { seq, len: entries.len() });
            batch.insert(keys::chunk(id, day_no, seq), chunk::encode(&entries));
            let key = keys::day_key(day_no, keys::DAY_FIELD, &id.to_be_bytes());
            let merged = match self.get::<FieldDay>(&key)? {
                Some(mut f) => {
                    f.count += add.count;
                    f.last_ms = add.last_ms;
                    f.kind = add.kind;
                    if add.unit.is_some() {
                        f.unit = add.unit;
                    }
                    f
                }
                None => add,
            };
            batch.insert(key, codec::encode(&merged));
        }
        for (code, n) in acc.event_counts {
            let key = keys::day_key(day_no, keys::DAY_EVENT, code.as_bytes());
            let old = self.get::<u64>(&key)?.unwrap_or(0);
            batch.insert(key, codec::encode(&(old + n)));
        }
        for (key, e) in acc.events {
            batch.insert(key, codec::encode(&e));
        }
        let mkey = keys::day_key(day_no, keys::DAY_META, b"");
        let mut dm = self.get::<DayMeta>(&mkey)?.unwrap_or_default();
        dm.meta_lines += acc.day_meta.meta_lines;
        dm.bad_lines += acc.day_meta.bad_lines;
        batch.insert(mkey, codec::encode(&dm));
        batch.insert(keys::cursor(day), codec::encode(cur));
        self.db.apply_batch(batch).map_err(self.db_err())
    }

    /// The number and readings of the last segment of a sensor's day, if any.
    fn last_segment(&self, id: u32, day: i64) -> Result<Option<(u32, Vec<chunk::Entry>)>, IndexError> {
        // Forward: a day has a handful of segments, and sled's `next_back`
        // (which its `last` uses too) brings a 1 MiB constant into the binary.
        let mut last = None;
        for item in self.db.scan_prefix(keys::chunk_prefix(id, day)) {
            last = Some(item.map_err(self.db_err())?);
        }
        let Some((k, v)) = last else { return Ok(None) };
        let seq = keys::parse_chunk_seq(&k).ok_or_else(|| self.damaged("reading segment key"))?;
        Ok(Some((seq, chunk::decode(&v).ok_or_else(|| self.damaged("reading segment"))?)))
    }

    /// The readings of one segment, which must exist.
    fn segment(&self, key: &[u8]) -> Result<Vec<chunk::Entry>, IndexError> {
        let bytes = self.db.get(key).map_err(self.db_err())?.ok_or_else(|| self.damaged("reading segment missing"))?;
        chunk::decode(&bytes).ok_or_else(|| self.damaged("reading segment"))
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, IndexError> {
        match self.db.get(key).map_err(self.db_err())? {
            None => Ok(None),
            Some(v) => codec::decode(&v).map(Some).ok_or_else(|| self.damaged("record")),
        }
    }
}

/// A fast hasher for the indexer's own maps (the FxHash mixing step). Keys
/// come from the logs, so at worst a crafted log makes indexing slower; it
/// can never change what is stored.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.add(u64::from_le_bytes(word));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// The sensor ids of one device, found without building `SOURCE/DEVICE/FIELD`
/// once they are known.
#[derive(Default)]
struct DeviceIds {
    /// The fields of the device's last reading, in order: a device sends the
    /// same fields in the same order line after line, so this usually answers
    /// with one short comparison.
    last: Vec<(Box<str>, u32)>,
    /// Every field met.
    all: FxMap<Box<str>, u32>,
}

impl DeviceIds {
    /// The id of the `i`th field of a reading, named `name`; `new` finds or
    /// makes it the first time.
    fn id(&mut self, i: usize, name: &str, new: impl FnOnce() -> u32) -> u32 {
        if let Some((n, id)) = self.last.get(i) {
            if **n == *name {
                return *id;
            }
        }
        let id = match self.all.get(name) {
            Some(&id) => id,
            None => {
                let id = new();
                self.all.insert(name.into(), id);
                id
            }
        };
        if i < self.last.len() {
            self.last[i] = (name.into(), id);
        } else if i == self.last.len() {
            self.last.push((name.into(), id));
        }
        id
    }
}

/// Each sensor's last segment of the day being indexed.
#[derive(Default)]
struct Segments {
    day: i64,
    last: FxMap<u32, LastSegment>,
}

#[derive(Clone, Copy)]
struct LastSegment {
    seq: u32,
    len: usize,
}

/// What a batch adds for one sensor.
struct SensorBatch {
    day: FieldDay,
    entries: Vec<chunk::Entry>,
}

#[derive(Default)]
struct Accumulator {
    lines: u64,
    sensors: FxMap<u32, SensorBatch>,
    sources: BTreeMap<String, SourceCounts>,
    event_counts: BTreeMap<String, u64>,
    events: Vec<(Vec<u8>, EventRecord)>,
    day_meta: DayMeta,
    new_sensors: Vec<(u32, String)>,
}

fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
    sled::Config::new().path(path).cache_capacity(SLED_CACHE_BYTES).mode(sled::Mode::LowSpace).flush_every_ms(Some(1000)).open()
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

fn is_environment(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(e.kind(), PermissionDenied | ReadOnlyFilesystem | StorageFull | QuotaExceeded | NotFound | Interrupted | OutOfMemory)
}

/// Swaps a freshly built cache in place of `path` atomically (Linux
/// `renameat2(RENAME_EXCHANGE)`), then removes the old one.
pub fn swap_in(built: &Path, path: &Path) -> Result<(), IndexError> {
    let io_err = |source| IndexError::Io { path: path.into(), source };
    if path.exists() {
        rustix::fs::renameat_with(rustix::fs::CWD, built, rustix::fs::CWD, path, rustix::fs::RenameFlags::EXCHANGE)
            .map_err(|e| io_err(e.into()))?;
        std::fs::remove_dir_all(built).map_err(io_err)?;
    } else {
        std::fs::rename(built, path).map_err(io_err)?;
    }
    Ok(())
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".damaged-{stamp}"));
    path.with_file_name(name)
}

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// Value as JSON, for `query` and `export`.
pub fn value_json(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(|n| n.to_string()).unwrap_or_else(|| "null".into()),
        Value::Bool(b) => b.to_string(),
        Value::Text(s) => serde_json::Value::String(s.clone()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Following a log a few lines at a time merges each commit into the
    /// day's last segment until it holds SEGMENT_MIN readings, then starts
    /// another (also after a restart): a sensor's day stays a handful of
    /// keys, each commit re-encodes a bounded number of readings, and all
    /// read back in order.
    #[test]
    fn small_commits_fill_segments_of_bounded_size() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let day = logs.join("2012").join("20121130.txt");
        std::fs::create_dir_all(day.parent().unwrap()).unwrap();
        std::fs::write(&day, "").unwrap();
        let config = config::Config::parse("", Path::new("blackbox.toml")).unwrap();
        let decoders = Decoders::new(&config, &[]).unwrap();
        let (mut idx, _) = Index::open(&dir.path().join("cache"), &fingerprint(&config, &[])).unwrap();
        let (total, per_commit) = (3 * SEGMENT_MIN + 100, 7);
        let (mut n, mut reopened) = (0, false);
        while n < total {
            let mut f = std::fs::OpenOptions::new().append(true).open(&day).unwrap();
            for _ in 0..per_commit.min(total - n) {
                writeln!(f, "L {:02}:{:02}:{:02}.000 s v={n}", n / 3600, n / 60 % 60, n % 60).unwrap();
                n += 1;
            }
            idx.catch_up(&logs, &decoders, &mut |_| true).unwrap();
            if n >= 1500 && !reopened {
                reopened = true;
                // A new process: the day's last segment is found in sled.
                drop(idx);
                idx = Index::open(&dir.path().join("cache"), &fingerprint(&config, &[])).unwrap().0;
            }
        }
        let id = idx.sensors.by_name["s/s/v"];
        let sizes: Vec<usize> = idx
            .store
            .db
            .scan_prefix(keys::chunk_prefix(id, keys::parse_day_name("20121130")))
            .map(|kv| chunk::decode(&kv.unwrap().1).unwrap().len())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert_eq!(sizes.len(), total.div_ceil(SEGMENT_MIN + per_commit - 1), "segments of {sizes:?}");
        assert!(sizes.iter().all(|&s| s < SEGMENT_MIN + per_commit), "segments of {sizes:?}");
        // A short segment always takes the next readings, also after the restart.
        assert!(sizes[..sizes.len() - 1].iter().all(|&s| s >= SEGMENT_MIN), "segments of {sizes:?}");
        let mut values = Vec::new();
        idx.query("s/s/v", None, None, &mut |_, v| {
            values.push(v.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(values, (0..total as i64).map(Value::Int).collect::<Vec<_>>());
    }
}
