//! The only code that writes log files.
//!
//! Guarantees (see docs/log-format.md for the user-facing version):
//! - every line (or a `cut` note with its reading) is one `write()` to a file
//!   opened for append, so a killed process never leaves half a record, and a
//!   short write (disk full) is cut back before anything else is written;
//! - timestamps never decrease: a clock that steps back keeps the last
//!   timestamp until it catches up, and a `clock-step` line records the step,
//!   so a closed day is never reopened;
//! - a new day's file starts with `previous NAME SIZE` naming the file before
//!   it, and the file and its directory are synced when created;
//! - `fdatasync` runs according to the [`SyncPolicy`]; when it fails the
//!   writer is poisoned and refuses every later line rather than pretend;
//! - when a write fails (disk full), lines are held in a bounded buffer and
//!   written, after a note of the gap, as soon as a retry succeeds.

use crate::clock::Stamp;
use crate::layout::{self, DayFile};
use crate::lock::{DirLock, LockError};
use crate::record::{format_meta, format_reading, parse_line, MetaBuilder};
use crate::storage::{Storage, StorageFile};
use crate::time::{join_millis, split_millis, TimeOfDay, DAY_MS};
use chrono::NaiveDate;
use std::collections::VecDeque;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A wall-clock change larger than this, relative to the monotonic clock, is
/// recorded as a clock step.
pub const CLOCK_STEP_THRESHOLD_MS: i64 = 1000;
/// How often held lines are retried after a failed write.
pub const RETRY_INTERVAL_MS: i64 = 1000;
/// Default bound on the memory used to hold lines while the disk is full.
pub const DEFAULT_HOLD_LIMIT: usize = 4 << 20;

/// When to call `fdatasync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every line.
    Always,
    /// At most this many milliseconds after a line is written.
    Interval(u32),
    /// Only when a day is closed and at a clean stop.
    Never,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Interval(1000)
    }
}

impl FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => s
                .strip_prefix("interval=")
                .and_then(|ms| ms.parse().ok())
                .filter(|&ms| ms > 0)
                .map(Self::Interval)
                .ok_or_else(|| format!("invalid sync policy {s:?}: expected always, never or interval=MS (MS > 0)")),
        }
    }
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Never => f.write_str("never"),
            Self::Interval(ms) => write!(f, "interval={ms}"),
        }
    }
}

/// Settings of a [`LogWriter`].
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    pub sync: SyncPolicy,
    /// Bytes of lines held in memory while writes fail; beyond it lines are
    /// counted as dropped and the count is written when writing resumes.
    pub hold_limit: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { sync: SyncPolicy::default(), hold_limit: DEFAULT_HOLD_LIMIT }
    }
}

/// Errors that stop the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("fdatasync failed on {}: {source}; lines written since the last successful sync may be lost, so the writer accepts no more lines", path.display())]
    SyncFailed { path: PathBuf, source: io::Error },
    #[error("the writer refuses lines since fdatasync failed on {}", path.display())]
    Poisoned { path: PathBuf },
    /// Lines still held when the writer was closed (a stop while the disk
    /// was full): exactly what was lost.
    #[error("{}", unwritten_message(path, *readings, *lines, span, *dropped, error))]
    Unwritten {
        path: PathBuf,
        /// Readings among the held lines (the rest are capture's own `#` lines).
        readings: usize,
        /// Every held line.
        lines: usize,
        /// Times of the first and last held reading.
        span: Option<(TimeOfDay, TimeOfDay)>,
        /// Lines dropped earlier because the hold buffer was full.
        dropped: u64,
        error: String,
    },
}

/// Counters of what the writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Lines written (readings and metadata).
    pub lines: u64,
    pub bytes: u64,
    /// Lines held in memory now, waiting for a write to succeed.
    pub held: usize,
    /// Lines dropped since the hold buffer was full.
    pub dropped: u64,
    /// Successful `fdatasync` calls.
    pub syncs: u64,
}

/// Called with every line (or pair of lines) once it is written.
pub type Sink = Box<dyn FnMut(&str) + Send>;

struct OpenDay {
    date: NaiveDate,
    path: PathBuf,
    file: Box<dyn StorageFile>,
    size: u64,
    /// A short write left bytes that must be cut before the next write.
    needs_truncate: bool,
}

#[derive(Clone, Debug)]
struct KnownDay {
    date: NaiveDate,
    name: String,
    size: u64,
}

struct HeldLine {
    ts: i64,
    text: String,
}

impl HeldLine {
    /// A reading, possibly after its `cut` note (one record, one `write()`).
    fn is_reading(&self) -> bool {
        self.text.starts_with("L ") || self.text.contains("\nL ")
    }
}

fn unwritten_message(
    path: &Path,
    readings: usize,
    lines: usize,
    span: &Option<(TimeOfDay, TimeOfDay)>,
    dropped: u64,
    error: &str,
) -> String {
    let mut msg = format!("{readings} readings");
    if let Some((first, last)) = span {
        msg.push_str(&format!(" received from {first} to {last} UTC"));
    }
    if lines > readings {
        msg.push_str(&format!(" (and {} of capture's own # lines)", lines - readings));
    }
    msg.push_str(&format!(" were held in memory and are lost: {} could not be written ({error})", path.display()));
    if dropped > 0 {
        msg.push_str(&format!("; {dropped} more lines had been dropped before, when the hold buffer was full"));
    }
    msg
}

struct Failure {
    since: i64,
    disk_full: bool,
    error: String,
    path: PathBuf,
}

enum Fail {
    /// Nothing partial was left; the line can be retried.
    Retry(PathBuf, io::Error),
    Fatal(WriteError),
}

impl From<WriteError> for Fail {
    fn from(e: WriteError) -> Self {
        Fail::Fatal(e)
    }
}

/// What [`LogWriter::open`] found and repaired.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The latest daily file, if any.
    pub latest: Option<PathBuf>,
    /// Bytes cut from a torn last line.
    pub torn_bytes: Option<usize>,
    /// The last timestamp found in the logs (epoch ms).
    pub last_ts: Option<i64>,
}

/// Appends lines to the daily files of one log directory.
pub struct LogWriter {
    root: PathBuf,
    storage: Box<dyn Storage>,
    opts: WriterOptions,
    _lock: DirLock,
    day: Option<OpenDay>,
    /// The last two closed or existing days, for the header chain.
    known: Vec<KnownDay>,
    last_ts: Option<i64>,
    clock_offset: Option<i64>,
    held: VecDeque<HeldLine>,
    held_bytes: usize,
    dropped: u64,
    failure: Option<Failure>,
    retry_at: Option<i64>,
    poisoned: Option<PathBuf>,
    dirty_since: Option<i64>,
    now_mono: i64,
    sink: Option<Sink>,
    stats: WriterStats,
    recovery: Recovery,
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter").field("root", &self.root).field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl LogWriter {
    /// Locks `root` (creating it if needed), repairs a torn last line and
    /// finds the last timestamp, so that no later line goes to an earlier day.
    pub fn open(root: &Path, opts: WriterOptions, storage: Box<dyn Storage>, now: Stamp) -> Result<Self, WriteError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError::Io { path, source }
        };
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let lock = DirLock::acquire(root)?;
        let scan = layout::scan(root).map_err(io_err(root))?;
        let mut w = Self {
            root: root.to_path_buf(),
            storage,
            opts,
            _lock: lock,
            day: None,
            known: Vec::new(),
            last_ts: None,
            clock_offset: None,
            held: VecDeque::new(),
            held_bytes: 0,
            dropped: 0,
            failure: None,
            retry_at: None,
            poisoned: None,
            dirty_since: None,
            now_mono: now.mono_ms,
            sink: None,
            stats: WriterStats::default(),
            recovery: Recovery::default(),
        };
        let n = scan.days.len();
        let mut torn = None;
        for (i, day) in scan.days.iter().enumerate().skip(n.saturating_sub(2)) {
            let latest = i + 1 == n;
            if latest && !day.compressed {
                torn = repair_torn_tail(&day.path).map_err(io_err(&day.path))?;
            }
            let size = if day.compressed { uncompressed_len(day) } else { std::fs::metadata(&day.path).map(|m| m.len()) }
                .map_err(io_err(&day.path))?;
            w.known.push(KnownDay { date: day.date, name: day.name(), size });
            if latest {
                // A compressed day is closed for good: later lines start the next day at the earliest.
                let last = if day.compressed {
                    join_millis(day.date, TimeOfDay::default()) + DAY_MS
                } else {
                    last_timestamp(day).map_err(io_err(&day.path))?
                };
                w.last_ts = Some(last);
                w.recovery = Recovery {
                    latest: Some(day.path.clone()),
                    torn_bytes: torn.as_ref().map(|(_, f): &(u64, Vec<u8>)| f.len()),
                    last_ts: Some(last),
                };
            }
        }
        if let (Some((offset, fragment)), Some(latest)) = (torn, scan.days.last()) {
            tracing::warn!(file = %latest.path.display(), bytes = fragment.len(), "repaired a torn last line");
            let args = MetaBuilder::new().kv("file", latest.name()).kv("offset", offset).kv("bytes", fragment.len()).text(&fragment);
            w.meta(now, "torn", &args)?;
        }
        if let Some(last) = w.last_ts {
            if last - now.wall_ms > CLOCK_STEP_THRESHOLD_MS {
                let args = MetaBuilder::new().kv("delta_ms", now.wall_ms - last).kv("reason", "behind-log").build();
                w.meta(now, "clock-step", &args)?;
            }
        }
        Ok(w)
    }

    /// What opening found: the latest file, a repaired torn line, the last timestamp.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Calls `sink` with every line once it is written.
    pub fn set_sink(&mut self, sink: Sink) {
        self.sink = Some(sink);
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats { held: self.held.len(), dropped: self.dropped, ..self.stats }
    }

    /// Writes a reading: `L HH:MM:SS.mmm SOURCE TEXT`.
    pub fn reading(&mut self, at: Stamp, source: &str, text: &[u8]) -> Result<(), WriteError> {
        let ts = self.stamp(at)?;
        self.emit(ts, |out, tod| format_reading(out, tod, source, text))
    }

    /// Writes a reading that did not end with a terminator from the device,
    /// preceded, in the same `write()`, by `# ... cut source=S reason=R bytes=N`.
    pub fn cut_reading(&mut self, at: Stamp, source: &str, text: &[u8], reason: &str) -> Result<(), WriteError> {
        let ts = self.stamp(at)?;
        let args = MetaBuilder::new().kv("source", source).kv("reason", reason).kv("bytes", text.len()).build();
        self.emit(ts, |out, tod| {
            format_meta(out, tod, "cut", &args);
            format_reading(out, tod, source, text);
        })
    }

    /// Writes a metadata line `# HH:MM:SS.mmm EVENT ARGS`.
    pub fn meta(&mut self, at: Stamp, event: &str, args: &str) -> Result<(), WriteError> {
        let ts = self.stamp(at)?;
        self.emit(ts, |out, tod| format_meta(out, tod, event, args))
    }

    /// Whether lines are held in memory because writing failed (disk full):
    /// [`LogWriter::tick`] retries them at [`LogWriter::next_deadline`].
    pub fn holding(&self) -> bool {
        self.failure.is_some()
    }

    /// Monotonic time (ms) at which [`LogWriter::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<i64> {
        let sync = match self.opts.sync {
            SyncPolicy::Interval(ms) => self.dirty_since.map(|t| t + i64::from(ms)),
            _ => None,
        };
        match (sync, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Syncs when the interval is due and retries held lines.
    pub fn tick(&mut self, now_mono: i64) -> Result<(), WriteError> {
        self.now_mono = self.now_mono.max(now_mono);
        if self.retry_at.is_some_and(|t| t <= self.now_mono) {
            self.retry_held()?;
        }
        if let (SyncPolicy::Interval(ms), Some(t)) = (self.opts.sync, self.dirty_since) {
            if t + i64::from(ms) <= self.now_mono {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// `fdatasync` now if anything is unsynced.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        if self.dirty_since.is_none() {
            return Ok(());
        }
        if let Some(day) = &mut self.day {
            if let Err(source) = day.file.sync_data() {
                tracing::error!(file = %day.path.display(), error = %source, "fdatasync failed; refusing further writes");
                self.poisoned = Some(day.path.clone());
                return Err(WriteError::SyncFailed { path: day.path.clone(), source });
            }
            self.stats.syncs += 1;
        }
        self.dirty_since = None;
        Ok(())
    }

    /// Tries once more to write held lines, then syncs. Fails if lines could
    /// not be written, saying how many.
    pub fn close(mut self) -> Result<WriterStats, WriteError> {
        if self.failure.is_some() {
            self.retry_held()?;
        }
        if let Some(f) = &self.failure {
            let readings: Vec<i64> = self.held.iter().filter(|l| l.is_reading()).map(|l| l.ts).collect();
            let span = readings.first().zip(readings.last()).map(|(&a, &b)| (split_millis(a).1, split_millis(b).1));
            return Err(WriteError::Unwritten {
                path: f.path.clone(),
                readings: readings.len(),
                lines: self.held.len(),
                span,
                dropped: self.dropped,
                error: f.error.clone(),
            });
        }
        self.sync()?;
        Ok(self.stats())
    }

    fn stamp(&mut self, at: Stamp) -> Result<i64, WriteError> {
        if let Some(path) = &self.poisoned {
            return Err(WriteError::Poisoned { path: path.clone() });
        }
        self.now_mono = self.now_mono.max(at.mono_ms);
        let offset = at.wall_ms - at.mono_ms;
        let previous = self.clock_offset.replace(offset);
        let ts = at.wall_ms.max(self.last_ts.unwrap_or(i64::MIN));
        if let Some(prev) = previous {
            let delta = offset - prev;
            if delta.abs() > CLOCK_STEP_THRESHOLD_MS {
                tracing::warn!(delta_ms = delta, "wall clock stepped");
                let args = MetaBuilder::new().kv("delta_ms", delta).build();
                self.emit(ts, |out, tod| format_meta(out, tod, "clock-step", &args))?;
            }
        }
        Ok(ts)
    }

    fn emit(&mut self, ts: i64, build: impl FnOnce(&mut String, TimeOfDay)) -> Result<(), WriteError> {
        self.last_ts = Some(ts);
        let (_, tod) = split_millis(ts);
        let mut text = String::with_capacity(96);
        build(&mut text, tod);
        if self.failure.is_some() {
            self.hold(ts, text);
            return Ok(());
        }
        match self.write_now(ts, &text) {
            Ok(()) => Ok(()),
            Err(Fail::Retry(path, e)) => {
                self.enter_failure(ts, path, e);
                self.hold(ts, text);
                Ok(())
            }
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    fn write_now(&mut self, ts: i64, text: &str) -> Result<(), Fail> {
        let (date, _) = split_millis(ts);
        self.ensure_day(date, ts)?;
        let Some(day) = self.day.as_mut() else { unreachable!("ensure_day leaves a day open when it succeeds") };
        write_once(day, text.as_bytes())?;
        self.stats.lines += text.bytes().filter(|&b| b == b'\n').count() as u64;
        self.stats.bytes += text.len() as u64;
        if self.dirty_since.is_none() {
            self.dirty_since = Some(self.now_mono);
        }
        if let Some(sink) = &mut self.sink {
            sink(text);
        }
        if self.opts.sync == SyncPolicy::Always {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes sure the file for `date` is open, creating it with its header.
    fn ensure_day(&mut self, date: NaiveDate, ts: i64) -> Result<(), Fail> {
        if self.day.as_ref().is_some_and(|d| d.date == date) {
            return Ok(());
        }
        if let Some(old) = self.day.take() {
            // Close the day durably before chaining from it: its size goes in the next header.
            let name = layout::file_name(old.date);
            let (old_date, size) = (old.date, old.size);
            self.day = Some(old);
            self.sync()?;
            self.day = None;
            self.remember(KnownDay { date: old_date, name, size });
        }
        let path = layout::day_path(&self.root, date);
        let year_dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let created_dir = self.storage.create_dir(&year_dir).map_err(|e| Fail::Retry(year_dir.clone(), e))?;
        if created_dir {
            self.sync_dir(&self.root.clone())?;
        }
        let file = self.storage.open_append(&path).map_err(|e| Fail::Retry(path.clone(), e))?;
        let size = file.size().map_err(|e| Fail::Retry(path.clone(), e))?;
        let mut day = OpenDay { date, path, file, size, needs_truncate: false };
        if size == 0 {
            if let Some(prev) = self.known.iter().rev().find(|k| k.date < date).cloned() {
                let mut header = String::new();
                format_meta(&mut header, split_millis(ts).1, "previous", &format!("{} {}", prev.name, prev.size));
                write_once(&mut day, header.as_bytes())?;
                self.stats.lines += 1;
                if let Some(sink) = &mut self.sink {
                    sink(&header);
                }
            }
            // A new file: make its first line and its directory entry durable now.
            if let Err(source) = day.file.sync_data() {
                self.poisoned = Some(day.path.clone());
                return Err(Fail::Fatal(WriteError::SyncFailed { path: day.path, source }));
            }
            self.sync_dir(&year_dir)?;
        }
        self.day = Some(day);
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> Result<(), Fail> {
        self.storage.sync_dir(dir).map_err(|source| {
            self.poisoned = Some(dir.to_path_buf());
            Fail::Fatal(WriteError::SyncFailed { path: dir.to_path_buf(), source })
        })
    }

    fn remember(&mut self, day: KnownDay) {
        self.known.retain(|k| k.date != day.date);
        self.known.push(day);
        if self.known.len() > 2 {
            self.known.remove(0);
        }
    }

    fn enter_failure(&mut self, ts: i64, path: PathBuf, e: io::Error) {
        let disk_full = matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge);
        tracing::error!(file = %path.display(), error = %e, "cannot write the log; holding lines in memory and retrying every second");
        self.failure = Some(Failure { since: ts, disk_full, error: e.to_string(), path });
        self.retry_at = Some(self.now_mono + RETRY_INTERVAL_MS);
    }

    fn hold(&mut self, ts: i64, text: String) {
        if self.held_bytes + text.len() > self.opts.hold_limit {
            if self.dropped == 0 {
                tracing::error!(
                    limit = self.opts.hold_limit,
                    "hold buffer full; new lines are dropped and counted until the log can be written"
                );
            }
            self.dropped += 1;
            return;
        }
        self.held_bytes += text.len();
        self.held.push_back(HeldLine { ts, text });
    }

    fn retry_held(&mut self) -> Result<(), WriteError> {
        let Some(failure) = &self.failure else { return Ok(()) };
        // First a note of the gap, stamped with the time the failure began, so
        // that timestamps stay in order.
        let since = failure.since;
        let event = if failure.disk_full { "disk-full" } else { "write-failed" };
        let (_, tod) = split_millis(since);
        let args =
            MetaBuilder::new().kv("since", tod).kv("held", self.held.len()).kv("dropped", self.dropped).text(failure.error.as_bytes());
        let mut note = String::new();
        format_meta(&mut note, tod, event, &args);
        match self.write_now(since, &note) {
            Ok(()) => {}
            Err(Fail::Retry(..)) => {
                self.retry_at = Some(self.now_mono + RETRY_INTERVAL_MS);
                return Ok(());
            }
            Err(Fail::Fatal(e)) => return Err(e),
        }
        tracing::info!(held = self.held.len(), dropped = self.dropped, "log writable again; writing held lines");
        self.failure = None;
        self.retry_at = None;
        self.dropped = 0;
        while let Some(line) = self.held.pop_front() {
            match self.write_now(line.ts, &line.text) {
                Ok(()) => self.held_bytes -= line.text.len(),
                Err(Fail::Retry(path, e)) => {
                    let ts = line.ts;
                    self.held.push_front(line);
                    self.enter_failure(ts, path, e);
                    return Ok(());
                }
                Err(Fail::Fatal(e)) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One `write()` of a whole record. A short write is cut back so that no
/// partial record stays in the file.
fn write_once(day: &mut OpenDay, bytes: &[u8]) -> Result<(), Fail> {
    let retry = |day: &OpenDay, e| Fail::Retry(day.path.clone(), e);
    if day.needs_truncate {
        day.file.truncate(day.size).map_err(|e| retry(day, e))?;
        day.needs_truncate = false;
    }
    match day.file.write(bytes) {
        Ok(n) if n == bytes.len() => {
            day.size += n as u64;
            Ok(())
        }
        result => {
            let error = match result {
                Err(e) => e,
                Ok(_) => io::Error::new(io::ErrorKind::StorageFull, "short write (no space left on device?)"),
            };
            // Whatever reached the file is cut off again before the next write.
            if day.file.truncate(day.size).is_err() {
                day.needs_truncate = true;
            }
            Err(retry(day, error))
        }
    }
}

/// Cuts a torn last line (no final `\n`) back to the last newline and
/// returns the new length and the bytes that were cut.
fn repair_torn_tail(path: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut end = len;
    let mut cut_at = 0;
    let mut block = vec![0u8; 64 * 1024];
    'search: while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if end == len && block[n - 1] == b'\n' {
            return Ok(None);
        }
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            cut_at = start + i as u64 + 1;
            break 'search;
        }
        end = start;
    }
    let mut fragment = Vec::with_capacity((len - cut_at) as usize);
    file.seek(SeekFrom::Start(cut_at))?;
    file.read_to_end(&mut fragment)?;
    file.set_len(cut_at)?;
    file.sync_data()?;
    Ok(Some((cut_at, fragment)))
}

/// The last timestamp in a plain daily file, or the start of its day.
fn last_timestamp(day: &DayFile) -> io::Result<i64> {
    let mut file = std::fs::File::open(&day.path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let tod = String::from_utf8_lossy(&tail).lines().rev().filter_map(|l| parse_line(l).ok().map(|l| l.time())).next().unwrap_or_default();
    Ok(join_millis(day.date, tod))
}

fn uncompressed_len(day: &DayFile) -> io::Result<u64> {
    let file = std::fs::File::open(&day.path)?;
    io::copy(&mut flate2::read::MultiGzDecoder::new(file), &mut io::sink())
}
