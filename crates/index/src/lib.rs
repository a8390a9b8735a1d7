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
//! all of them). Readings are grouped per device and day, in segments that
//! store each line's time once and each field as a packed column
//! ([`segment`], [`pack`]); everything else is keyed by day too, so
//! re-indexing a day removes exactly its derived data.
//!
//! The modules, in the order data flows: [`catch_up`] walks the days and
//! runs the three stages of indexing a day: [`decoding`] (lines to fields),
//! [`sensors`] (fields to sensor and device ids, gathered in rows per
//! device) and [`store`] (rows encoded and committed with the cursor).
//! [`read`] answers queries; [`keys`] and [`codec`] lay out sled's keys and
//! records; [`fx`] is the hasher of the indexer's maps.

mod catch_up;
mod codec;
mod decoding;
mod fx;
mod judging;
mod keys;
pub mod pack;
mod read;
mod rollups;
pub mod segment;
mod sensors;
mod store;

pub use read::{EventRecord, SchemaRow, SourceStats, Stats};
pub use rollups::SensorHours;

use decode::{Cuts, SourceState, Value};
use sensors::Sensors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
#[cfg(test)]
use store::SEGMENT_MIN;
use store::{Segments, Store};

/// Version of everything the cache stores, and of what the decoders derive
/// from a line (bumped when decoding changes, so caches are rebuilt from the
/// logs); a cache of another version is rebuilt.
/// 2: field names are never empty and never contain `/` or spaces.
/// 3: readings in segments per sensor and day instead of one chunk per hour.
/// 4: readings in column segments per device and day, packed without deflate.
/// 5: readings a dataflash replayed, stored by the day they were read.
/// 6: the dataflash state in the cursors holds capture's `Progress` whole.
/// 7: health transitions and the evaluator's state (`T`, `H`).
/// 8: the evaluator's state deflated; a commit's transitions in one record.
/// 9: rollups (`U`) of the days that are over.
/// 10: a result waiting for `for` keeps why it fails, not its message.
pub const FORMAT_VERSION: u32 = 11;
/// Lines per batch that passes between the stages of indexing a day: small,
/// so the batches in flight take little memory whatever the size of the logs.
pub(crate) const BATCH_LINES: u64 = 4_000;
/// Lines per atomic commit (several batches): a device's rows of a commit
/// make long segments, and few commits mean little of sled's overhead;
/// 10,000 keeps the rows of the commits in flight to a few MB.
pub(crate) const COMMIT_LINES: u64 = 10_000;
/// sled's page cache: small, or it grows into gigabytes during a bulk load
/// (a query reads a few segments; 4 MiB holds a day of a busy site).
const SLED_CACHE_BYTES: u64 = 4 << 20;
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
    #[error("{} is held by another blackbox process (`blackbox index --follow` or `blackbox demo`; sled allows one process per cache)", path.display())]
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
    /// Packets replayed from a receiver's dataflash and indexed at the time
    /// the receiver got them (counted in `decoded` too).
    pub replayed: u64,
    /// Of those, placed less precisely than to the second (see docs/dataflash.md).
    pub replay_approximate: u64,
    /// Replayed packets that were logged already (live or by an earlier replay): not counted twice.
    pub replay_known: u64,
    /// Replayed packets whose time could not be told: not indexed.
    pub replay_unplaced: u64,
    /// Damaged pages (`DF C?`) a replay reported: their packets are lost.
    pub flash_damaged: u64,
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
        self.replayed += other.replayed;
        self.replay_approximate += other.replay_approximate;
        self.replay_known += other.replay_known;
        self.replay_unplaced += other.replay_unplaced;
        self.flash_damaged += other.flash_damaged;
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
    /// The checks the health evaluator applies while indexing ([`Index::set_checks`]).
    checks: health::Checks,
    /// The newest health state as [`Index::health`] last decoded it, with
    /// the bytes it came from: a follower answers `status` without
    /// decoding it again until a commit changes it.
    health_memo: std::sync::Mutex<Option<(sled::IVec, std::sync::Arc<health::Health>)>>,
    /// The rollups made of the days that are over ([`Index::set_rollups`]).
    rollups: rollup::Rollups,
    /// The last day rolled up (every day before it is too).
    rolled: Option<i64>,
    /// Counters' states after the day `.0`, as rolling up left them.
    counter_memo: Option<(i64, fx::FxMap<u32, rollup::CounterState>)>,
    /// Opened to index (not only to read).
    writable: bool,
    /// Bumped whenever the stored rollups change (a day rolled up or
    /// removed, other rollups), so that `rollup_memo` is never stale.
    rollup_generation: u64,
    /// The stored hours [`Index::rollup_hours`] read last, by generation,
    /// sensor and days: a follower asked for the same year again (a
    /// dashboard, a script polling) does not decode it again.
    rollup_memo: std::sync::Mutex<Option<rollups::Memo>>,
    /// For readers: the cache directory, held open so that every file comes from it.
    _dir: Option<std::fs::File>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.store.path).field("sensors", &self.sensors.names.len()).finish()
    }
}

/// A fingerprint of the decoding configuration: when it changes, the cache is rebuilt.
pub fn fingerprint(config: &config::Config, source_names: &[String]) -> String {
    let sources: Vec<_> = config
        .sources
        .iter()
        .zip(source_names)
        .map(|(s, n)| (n, &s.decoder, &s.device, &s.regex, &s.columns, &s.separator, s.dataflash))
        .collect();
    // Checks and silence limits are in it too: results are recomputed when they change (by a rebuild).
    let silence: Vec<_> = config.sources.iter().map(|s| (s.grey_after, s.black_after)).collect();
    let text = format!(
        "{FORMAT_VERSION} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        config.rf12, config.drivers, config.events, sources, config.checks, config.status, silence
    );
    format!("{:08x}{:08x}", crc32fast::hash(text.as_bytes()), text.len())
}

impl Index {
    /// The checks to apply from now on (none by default). They are part of
    /// the configuration's [`fingerprint`], so a cache is never continued
    /// with other checks than those it was built with.
    pub fn set_checks(&mut self, checks: health::Checks) {
        self.checks = checks;
        *self.health_memo.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Opens (or creates) the cache at `path`. A cache that cannot be opened
    /// is moved aside; one of another format version or configuration
    /// fingerprint is emptied. Either way the next catch-up rebuilds it.
    pub fn open(path: &Path, fingerprint: &str) -> Result<(Index, Option<Reset>), IndexError> {
        Self::open_mode(path, path, fingerprint, true)
    }

    /// [`Index::open`], waiting up to `wait` while another holder has the
    /// cache's lock ([`IndexError::Busy`]): a reader in another process
    /// holds it for milliseconds, and sled's threads hold it a moment after
    /// an `Index` of this process is dropped; a follower holds it for good.
    /// `waiting` is called once, when the first attempt finds it busy.
    pub fn open_waiting(
        path: &Path,
        fingerprint: &str,
        wait: std::time::Duration,
        waiting: impl FnOnce(),
    ) -> Result<(Index, Option<Reset>), IndexError> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = std::time::Duration::from_millis(5);
        let mut waiting = Some(waiting);
        loop {
            match Self::open(path, fingerprint) {
                Err(IndexError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    if let Some(f) = waiting.take() {
                        f();
                    }
                    // Retried, not waited on a signal: sled's lock says nothing about who holds it.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                other => return other,
            }
        }
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
        let mut index = Index {
            store: Store { path: path.into(), db },
            sensors: Sensors::default(),
            segments: Segments::default(),
            checks: health::Checks::default(),
            health_memo: std::sync::Mutex::new(None),
            rollups: rollup::Rollups::default(),
            rolled: None,
            counter_memo: None,
            writable: write,
            rollup_generation: 0,
            rollup_memo: std::sync::Mutex::new(None),
            _dir: None,
        };
        index.load_sensors()?;
        index.sync_rollups(false)?;
        Ok((index, reset))
    }

    pub fn path(&self) -> &Path {
        &self.store.path
    }

    fn load_sensors(&mut self) -> Result<(), IndexError> {
        for item in self.store.db.scan_prefix([keys::DEVICE_ID]) {
            let (k, v) = item.map_err(self.store.db_err())?;
            let id = keys::parse_sensor_id(&k).ok_or_else(|| self.store.damaged("device key"))?;
            let name = String::from_utf8(v.to_vec()).map_err(|_| self.store.damaged("device name"))?;
            self.sensors.insert_device(id, name);
        }
        for item in self.store.db.scan_prefix([keys::SENSOR_ID]) {
            let (k, v) = item.map_err(self.store.db_err())?;
            let id = keys::parse_sensor_id(&k).ok_or_else(|| self.store.damaged("sensor key"))?;
            let (device, name) = keys::parse_sensor_record(&v).ok_or_else(|| self.store.damaged("sensor record"))?;
            self.sensors.insert(id, device, name);
        }
        Ok(())
    }

    /// Makes sure everything is on disk.
    pub fn flush(&self) -> Result<(), IndexError> {
        self.store.db.flush().map(|_| ()).map_err(self.store.db_err())
    }
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

/// Whether another process (a follower) holds the cache at `path`: sled
/// locks its `db` file with `flock` while a process has it open. Checked by
/// taking that lock for a moment instead of opening the cache, which would
/// read all of it into memory.
pub fn held_by_another(path: &Path) -> Result<bool, IndexError> {
    let db = path.join("db");
    let file = match std::fs::File::open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(IndexError::Io { path: db, source }),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        // Closing the file (at the end of this function) releases it.
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(IndexError::Io { path: db, source: e.into() }),
    }
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

pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
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
    use decode::Decoders;
    use std::io::Write;

    /// A site with one day file holding `text`, its decoders (no
    /// configuration) and a cache opened on it; and a way to reopen the
    /// cache as a new process would.
    struct Site {
        dir: tempfile::TempDir,
        logs: PathBuf,
        day: PathBuf,
        decoders: Decoders,
        fingerprint: String,
    }

    impl Site {
        fn new(text: &str) -> (Site, Index) {
            let dir = tempfile::tempdir().unwrap();
            let logs = dir.path().join("logs");
            let day = logs.join("2012").join("20121130.txt");
            std::fs::create_dir_all(day.parent().unwrap()).unwrap();
            std::fs::write(&day, text).unwrap();
            let config = config::Config::parse("", Path::new("blackbox.toml")).unwrap();
            let site = Site { decoders: Decoders::new(&config, &[]).unwrap(), fingerprint: fingerprint(&config, &[]), dir, logs, day };
            let idx = site.open();
            (site, idx)
        }

        fn open(&self) -> Index {
            Index::open(&self.dir.path().join("cache"), &self.fingerprint).unwrap().0
        }
    }

    /// The rows of each segment of `device`'s day 2012-11-30, in order.
    fn segment_sizes(idx: &Index, device: &str) -> Vec<usize> {
        let id = idx.sensors.device_by_name[device];
        idx.store
            .db
            .scan_prefix(keys::chunk_prefix(id, keys::parse_day_name("20121130")))
            .map(|kv| segment::decode(&kv.unwrap().1).unwrap().len())
            .collect()
    }

    /// Every value of `sensor`, in time order.
    fn values(idx: &Index, sensor: &str) -> Vec<Value> {
        let mut values = Vec::new();
        idx.query(sensor, None, None, &mut |_, v| {
            values.push(v.clone());
            Ok(())
        })
        .unwrap();
        values
    }

    /// A catch-up stopped (or killed) between commits of a day, then run
    /// again, indexes the rest of that day: the cursors committed halfway
    /// must not say that the file was indexed to its end. (Found by trying
    /// `kill -9` during `index`: the rest of the day was lost for good.)
    #[test]
    fn a_catch_up_stopped_halfway_through_a_day_finishes_it_next_time() {
        let total = 3 * COMMIT_LINES + 123;
        let mut text = String::new();
        for n in 0..total {
            text.push_str(&format!("L {:02}:{:02}:{:02}.{:03} s v={n}\n", n / 3_600_000, n / 60_000 % 60, n / 1000 % 60, n % 1000));
        }
        let (site, mut idx) = Site::new(&text);
        let done = idx.catch_up(&site.logs, &site.decoders, &mut |p| p.lines < COMMIT_LINES + BATCH_LINES).unwrap();
        assert!(done.stopped);
        // A new process, as after a kill.
        drop(idx);
        let mut idx = site.open();
        assert!((values(&idx, "s/s/v").len() as u64) < total, "the first catch-up stopped before the end");
        idx.catch_up(&site.logs, &site.decoders, &mut |_| true).unwrap();
        assert_eq!(values(&idx, "s/s/v").len() as u64, total, "the rest of the day after the stop");
    }

    /// Following a log a few lines at a time merges each commit into the
    /// day's last segment until it holds SEGMENT_MIN readings, then starts
    /// another (also after a restart): a sensor's day stays a handful of
    /// keys, each commit re-encodes a bounded number of readings, and all
    /// read back in order.
    /// A device's last lines come from earlier days too when its latest day
    /// has fewer, oldest first, across the segments of each day.
    #[test]
    fn last_lines_reach_back_over_days_and_segments() {
        let line = |n: u64| format!("L 00:{:02}:{:02}.000 s v={n}\n", n / 60, n % 60);
        let (site, mut idx) = Site::new(&(0..30).map(line).collect::<String>());
        idx.catch_up(&site.logs, &site.decoders, &mut |_| true).unwrap();
        // A second segment of the first day, then three lines the next day.
        let mut f = std::fs::OpenOptions::new().append(true).open(&site.day).unwrap();
        f.write_all((30..35).map(line).collect::<String>().as_bytes()).unwrap();
        idx.catch_up(&site.logs, &site.decoders, &mut |_| true).unwrap();
        std::fs::write(site.logs.join("2012").join("20121201.txt"), (0..3).map(line).collect::<String>()).unwrap();
        idx.catch_up(&site.logs, &site.decoders, &mut |_| true).unwrap();
        let dec1 = keys::parse_day_name("20121201") * logfile::time::DAY_MS;
        let last = idx.last_lines("s/s", dec1 + 1000, 10).unwrap();
        let mut want: Vec<(String, u64)> = (29..=35).map(|l| ("20121130".to_string(), l)).collect();
        want.extend((1..=3).map(|l| ("20121201".to_string(), l)));
        assert_eq!(last, want);
        // The day of the time given is the latest; fewer than asked when that is all.
        assert_eq!(idx.last_lines("s/s", dec1 - 1, 2).unwrap(), [("20121130".to_string(), 34), ("20121130".to_string(), 35)]);
        assert_eq!(idx.last_lines("s/s", dec1, 100).unwrap().len(), 38);
        assert_eq!(idx.last_lines("s/s", dec1, 0).unwrap(), []);
        assert_eq!(idx.last_lines("nobody/here", dec1, 5).unwrap(), []);
    }

    #[test]
    fn small_commits_fill_segments_of_bounded_size() {
        let (site, mut idx) = Site::new("");
        let (logs, day, decoders) = (&site.logs, &site.day, &site.decoders);
        let (total, per_commit) = (3 * SEGMENT_MIN + 100, 7);
        let (mut n, mut reopened) = (0, false);
        while n < total {
            let mut f = std::fs::OpenOptions::new().append(true).open(day).unwrap();
            for _ in 0..per_commit.min(total - n) {
                writeln!(f, "L {:02}:{:02}:{:02}.000 s v={n}", n / 3600, n / 60 % 60, n % 60).unwrap();
                n += 1;
            }
            idx.catch_up(logs, decoders, &mut |_| true).unwrap();
            if n >= 1500 && !reopened {
                reopened = true;
                // A new process: the day's last segment is found in sled.
                drop(idx);
                idx = site.open();
            }
        }
        let sizes = segment_sizes(&idx, "s/s");
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert_eq!(sizes.len(), total.div_ceil(SEGMENT_MIN + per_commit - 1), "segments of {sizes:?}");
        assert!(sizes.iter().all(|&s| s < SEGMENT_MIN + per_commit), "segments of {sizes:?}");
        // A short segment always takes the next readings, also after the restart.
        assert!(sizes[..sizes.len() - 1].iter().all(|&s| s >= SEGMENT_MIN), "segments of {sizes:?}");
        assert_eq!(values(&idx, "s/s/v"), (0..total as i64).map(Value::Int).collect::<Vec<_>>());
    }

    /// A commit that brings many rows of a device (a bulk catch-up) starts a
    /// segment of its own instead of merging them into a short last one, so
    /// no row is decoded and encoded again; a few rows after it still merge.
    #[test]
    fn bulk_commits_start_their_own_segments() {
        let (site, mut idx) = Site::new("");
        let (logs, day, decoders) = (&site.logs, &site.day, &site.decoders);
        let mut n = 0;
        for chunk in [10, store::MERGE_MAX, 5, store::MERGE_MAX + 1] {
            let mut f = std::fs::OpenOptions::new().append(true).open(day).unwrap();
            for _ in 0..chunk {
                writeln!(f, "L {:02}:{:02}:{:02}.000 s v={n}", n / 3600, n / 60 % 60, n % 60).unwrap();
                n += 1;
            }
            idx.catch_up(logs, decoders, &mut |_| true).unwrap();
        }
        let sizes = segment_sizes(&idx, "s/s");
        assert_eq!(sizes, [10, store::MERGE_MAX + 5, store::MERGE_MAX + 1]);
        assert_eq!(values(&idx, "s/s/v"), (0..n as i64).map(Value::Int).collect::<Vec<_>>());
    }
}
