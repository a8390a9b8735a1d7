//! Catching up: days in order, each from its cursor, through the decoders
//! into the cache.

use crate::decoding::{Decoded, Lines, RowHints};
use crate::fx::FxMap;
use crate::judging::{Announcer, Judge, Mark};
use crate::rollups::{DayRoller, SensorTable};
use crate::sensors::Accumulator;
use crate::store::Segments;
use crate::{codec, keys, mtime_ns, CatchUp, Cursor, Index, IndexError, Progress, BATCH_LINES, COMMIT_LINES};
use decode::{Decoders, SourceState};
use health::Health;
use logfile::{DayFile, DayReader, Line};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A day to roll up, with the sensors' names as they were once it was indexed.
type DayToRoll = (i64, Arc<SensorTable>);

/// The thread that rolls up the days a catch-up indexed, started with the first.
#[derive(Default)]
pub(crate) struct Rolling {
    thread: Option<RollThread>,
}

struct RollThread {
    days: SyncSender<DayToRoll>,
    handle: JoinHandle<Result<DayRoller, IndexError>>,
}

impl Rolling {
    /// Hands `day` (indexed, and over) to the rolling thread.
    fn send(&mut self, idx: &mut Index, day: i64) -> Result<(), IndexError> {
        let table = Arc::new(idx.sensor_table());
        if self.thread.is_none() {
            // Two days may wait: the indexer never waits for rollups unless they fall that far behind.
            let (tx, rx) = sync_channel::<DayToRoll>(2);
            let mut roller = idx.day_roller();
            let handle = std::thread::Builder::new()
                .name("rollups".into())
                .spawn(move || {
                    for (day, table) in rx {
                        roller.roll(day, &table)?;
                    }
                    Ok(roller)
                })
                .map_err(|source| IndexError::Io { path: idx.path().into(), source })?;
            self.thread = Some(RollThread { days: tx, handle });
        }
        if let Some(t) = &self.thread {
            // A send fails only when the thread ended on an error, which `finish` reports.
            let _ = t.days.send((day, table));
        }
        Ok(())
    }

    /// Waits for the days handed over to be rolled up; the roller to put back.
    fn finish(self) -> Result<Option<DayRoller>, IndexError> {
        let Some(RollThread { days, handle }) = self.thread else { return Ok(None) };
        drop(days);
        match handle.join() {
            Ok(r) => r.map(Some),
            // The roller does not panic on data (damaged records are errors); a panic is a bug, shown as one.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Threads that decode batches of lines: decoding is most of the work of
/// indexing, and a small board has two to four cores.
const DECODERS: usize = 2;

impl Index {
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
        // Rollups made with another configuration go: this catch-up makes them again.
        self.sync_rollups(true)?;
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
        // The days indexed go to a thread that rolls each up while the next is indexed.
        let mut rolling = Rolling::default();
        let indexed = self.index_days(&scan.days, decoders, progress, &mut result, &mut p, &mut rolling);
        if let Some(roller) = rolling.finish()? {
            self.put_back(roller);
        }
        indexed?;
        if !result.stopped {
            p.days_done = scan.days.len();
            progress(&p);
        }
        Ok(result)
    }

    /// Indexes `days` in order (the body of [`Index::catch_up`]), handing
    /// each day that is over to `rolling` once it is indexed.
    fn index_days(
        &mut self,
        days: &[DayFile],
        decoders: &Decoders,
        progress: &mut dyn FnMut(&Progress) -> bool,
        result: &mut CatchUp,
        p: &mut Progress,
        rolling: &mut Rolling,
    ) -> Result<(), IndexError> {
        // Decoder state flows from day to day; once a day is re-indexed, every later day is too.
        let mut carried: BTreeMap<String, SourceState> = BTreeMap::new();
        // The day before, whose health state a day indexed from its start
        // goes on from (read only then: a follower's catch-up reads none).
        let mut previous: Option<String> = None;
        let mut redo_rest = false;
        for (i, day) in days.iter().enumerate() {
            let name = keys::day_name(day.date);
            p.day = name.clone();
            p.days_done = i;
            if !progress(p) {
                result.stopped = true;
                return Ok(());
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
                // Health goes on from where this day's cursor left it, or from the day before.
                let from = if start.offset > 0 { Some(&name) } else { previous.as_ref() };
                let health = match from {
                    Some(d) => self.store.get_packed::<health::State>(&keys::health(d))?.unwrap_or_default(),
                    None => health::State::default(),
                };
                match self.index_day(day, start, health, &file_meta, decoders, result, p, progress)? {
                    Some(end) => end,
                    None => {
                        result.stopped = true;
                        return Ok(());
                    }
                }
            };
            p.bytes_done += file_meta.len();
            p.bytes_in_day = 0;
            carried = end.states;
            // A day before the newest will not grow any more: it is rolled up.
            let day_no = keys::parse_day_name(&name);
            if i + 1 < days.len() && self.rolled.is_none_or(|r| day_no > r) {
                rolling.send(self, day_no)?;
            }
            previous = Some(name);
            result.days += 1;
        }
        Ok(())
    }

    fn cursor_valid(&self, day: &DayFile, c: &Cursor, meta: &std::fs::Metadata) -> Result<bool, IndexError> {
        if c.size == meta.len() && c.mtime_ns == mtime_ns(meta) && c.compressed == day.compressed {
            return Ok(true);
        }
        if !day.compressed && meta.len() < c.offset {
            return Ok(false);
        }
        // The file changed in some way (most often: it grew): the bytes
        // before the cursor must be the same. Read in large blocks, not line
        // by line: this is most of the cost of catching up with a few lines.
        use std::io::Read;
        let io_err = |source| IndexError::Io { path: day.path.clone(), source };
        let file = std::fs::File::open(&day.path).map_err(io_err)?;
        let mut reader: Box<dyn Read> = if day.compressed { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
        let mut reader = reader.by_ref().take(c.offset);
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut seen = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            hasher.update(&buf[..n]);
            seen += n as u64;
        }
        Ok(seen == c.offset && hasher.finalize() == c.crc)
    }

    /// Indexes one day from its cursor, in stages on their own threads, each
    /// batch passing from one to the next through queues one batch deep (so
    /// memory stays bounded): this thread reads lines in order ([`Lines`]);
    /// [`DECODERS`] threads decode batches in turn ([`Decoded`]); one gives
    /// the fields their sensor ids in line order and gathers them in rows
    /// per device; one judges their health (that same one when there are no
    /// checks, see [`crate::judging`]); one encodes the rows and commits
    /// them. Batches leave the decoders in the order they entered, and only
    /// one stage hands out ids, so the cache is the same whatever the
    /// timing. Each commit's batches are committed atomically with its
    /// cursor, in order.
    #[allow(clippy::too_many_arguments)]
    fn index_day(
        &mut self,
        day: &DayFile,
        mut cur: Cursor,
        health: health::State,
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
        // The file's size and time go into the day's last cursor only: they
        // say "this file was indexed to its end", and a cursor committed
        // halfway (then the process killed) must not skip the rest.
        let (size, mtime) = (meta.len(), mtime_ns(meta));
        cur.size = 0;
        cur.mtime_ns = 0;
        cur.compressed = day.compressed;
        let Index { store, sensors, segments, checks, .. } = self;
        let mut judge = Judge::new(Health::with_state(checks.clone(), health));
        judge.health.set_day(&name);
        // The file's own name (`.txt.gz` for a gzipped day), for the events' `file`.
        let file = day.name();
        let (store, name, file) = (&*store, &name, &file);
        // Only this day's segments are written from now on; a day indexed
        // from its start has none yet (new, or removed to be re-indexed).
        if segments.day != day_no || cur.offset == 0 {
            *segments = Segments { day: day_no, last: FxMap::default() };
        }
        std::thread::scope(|scope| {
            let spawn_err = |e| IndexError::Io { path: day.path.clone(), source: e };
            let mut to_decoders = Vec::new();
            let mut from_decoders = Vec::new();
            for i in 0..DECODERS {
                let (tx, rx) = sync_channel::<(Lines<'_>, Cursor)>(1);
                let (out_tx, out_rx) = sync_channel::<(Decoded<'_>, Cursor)>(1);
                std::thread::Builder::new()
                    .name(format!("index decode {i}"))
                    .spawn_scoped(scope, move || {
                        let mut hints = RowHints::default();
                        for (lines, cur) in rx {
                            if out_tx.send((Decoded::new(lines, decoders, day_no, file, &mut hints), cur)).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(spawn_err)?;
                to_decoders.push(tx);
                from_decoders.push(out_rx);
            }
            let (to_commit, commit_rx) = sync_channel::<(Accumulator, Cursor)>(0);
            // With checks, the judge is a stage of its own: the gatherer's
            // commits go to it, and it passes them on to the committer.
            let (gathered, mut judge_here) = if judge.health.checks().checks.is_empty() {
                (to_commit, Some(judge))
            } else {
                let (to_judge, judge_rx) = sync_channel::<(Accumulator, Cursor)>(0);
                let mut judge = judge;
                std::thread::Builder::new()
                    .name("index judge".into())
                    .spawn_scoped(scope, move || {
                        for (mut acc, cur) in judge_rx {
                            judge.feed(&mut acc, &Mark::default(), day_no);
                            acc.health = Some(judge.packed_state());
                            if to_commit.send((acc, cur)).is_err() {
                                break; // the committer failed: its error is returned below
                            }
                        }
                    })
                    .map_err(spawn_err)?;
                (to_judge, None)
            };
            let gatherer = std::thread::Builder::new()
                .name("index ids".into())
                .spawn_scoped(scope, move || {
                    // Batch k went to decoder k % DECODERS: take them back in that
                    // order, several to a commit (fewer, larger segments). Without
                    // checks, each batch is judged here as soon as it is gathered,
                    // while its rows are in this processor's cache, and the
                    // evaluator's state goes with the commit.
                    let mut acc = Accumulator::default();
                    let mut last = None;
                    let mut announcer = Announcer::default();
                    let commit = |mut acc: Accumulator, cur: Cursor, judge: &mut Option<Judge>| {
                        if let Some(judge) = judge {
                            acc.health = Some(judge.packed_state());
                        }
                        gathered.send((acc, cur)).is_ok()
                    };
                    for k in 0.. {
                        let Ok((decoded, cur)) = from_decoders[k % DECODERS].recv() else { break };
                        let mark = judge_here.as_ref().map(|_| Mark::of(&acc));
                        sensors.gather(decoded, &mut acc);
                        announcer.announce(&mut acc, sensors);
                        if let (Some(judge), Some(mark)) = (&mut judge_here, &mark) {
                            judge.feed(&mut acc, mark, day_no);
                        }
                        last = Some(cur);
                        if acc.lines >= COMMIT_LINES {
                            let cur = last.take().unwrap_or_default();
                            if !commit(std::mem::take(&mut acc), cur, &mut judge_here) {
                                return; // a later stage failed: its error is returned below
                            }
                        }
                    }
                    if let Some(cur) = last {
                        commit(acc, cur, &mut judge_here);
                    }
                })
                .map_err(spawn_err)?;
            let committer = std::thread::Builder::new()
                .name("index commit".into())
                .spawn_scoped(scope, move || -> Result<(), IndexError> {
                    for (acc, cur) in commit_rx {
                        if let Err(e) = store.commit(name, &cur, acc, &mut segments.last) {
                            // What it remembers may not have been written.
                            segments.last.clear();
                            return Err(e);
                        }
                    }
                    Ok(())
                })
                .map_err(spawn_err)?;
            let mut sent = 0usize;
            let mut send = move |mut lines, cur| -> bool {
                Lines::number(&mut lines, sent);
                let ok = to_decoders[sent % DECODERS].send((lines, cur)).is_ok();
                sent += 1;
                ok
            };
            let read = (|| -> Result<Option<Cursor>, IndexError> {
                let mut batch = Lines::default();
                loop {
                    let Some(line) = reader.next_line().map_err(io_err)? else { break };
                    hasher.update(line.raw);
                    batch.lines += 1;
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
                            let text: std::borrow::Cow<'_, str> = if memchr::memchr(b'\\', text.as_bytes()).is_some() {
                                String::from_utf8_lossy(&logfile::unescape(text)).into_owned().into()
                            } else {
                                text.into()
                            };
                            batch.reading(&mut cur, decoders, line_no, ts, source, &text);
                        }
                        Ok(Line::Meta { event: "cut", args, .. }) => {
                            if let (Some(src), Some(reason)) = (args.get("source"), args.get("reason")) {
                                cur.cuts.announce(src, reason);
                            }
                            batch.day_meta.meta_lines += 1;
                        }
                        Ok(Line::Meta { event: "connect", args, .. }) => {
                            if let Some(src) = args.get("source").filter(|s| decoders.dataflash(s)) {
                                decoders.connected(src, cur.states.entry(src.to_string()).or_default());
                            }
                            batch.day_meta.meta_lines += 1;
                        }
                        Ok(Line::Meta { .. }) => batch.day_meta.meta_lines += 1,
                        Err(_) => batch.day_meta.bad_lines += 1,
                    }
                    if batch.lines >= BATCH_LINES {
                        cur.offset = reader.offset();
                        cur.lines = reader.line_no();
                        cur.crc = hasher.clone().finalize();
                        if !send(batch.take(), cur.clone()) {
                            return Ok(None); // a later stage failed: its error is returned below
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
                cur.size = size;
                cur.mtime_ns = mtime;
                if !send(batch, cur.clone()) {
                    return Ok(None);
                }
                Ok(Some(cur))
            })();
            // Closing the queues ends the decoders, then the later stages.
            drop(send);
            // A panic in another stage is a bug: let it go on as a panic.
            gatherer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            committer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            read
        })
    }

    /// Adds to `batch` the removal of everything derived from one day.
    fn remove_day(&mut self, day: &str, batch: &mut sled::Batch) -> Result<(), IndexError> {
        let day_no = keys::parse_day_name(day);
        self.rollup_generation += 1;
        // Its rollups, and every later day's (a counter's state flows from day to day).
        for item in self.store.db.scan_prefix(keys::day_key(day_no, keys::DAY_FIELD, b"")) {
            let (k, _) = item.map_err(self.store.db_err())?;
            let id = u32::from_be_bytes(k[k.len() - 4..].try_into().map_err(|_| self.store.damaged("field key"))?);
            batch.remove(keys::rollup(id, day_no));
        }
        if self.rolled.is_some_and(|r| r >= day_no) {
            self.rolled = Some(day_no - 1);
            batch.insert(keys::meta("rolled"), codec::encode(&(day_no - 1)));
        }
        batch.remove(keys::cursor(day));
        batch.remove(keys::health(day));
        for item in self.store.db.scan_prefix(keys::day_key(day_no, keys::DAY_LATE, b"")) {
            let (k, _) = item.map_err(self.store.db_err())?;
            let (device, read_day) = keys::parse_late_record(&k[10..]).ok_or_else(|| self.store.damaged("replayed readings record"))?;
            for c in self.store.db.scan_prefix(keys::late_prefix(device, read_day, day_no)) {
                batch.remove(c.map_err(self.store.db_err())?.0);
            }
        }
        for prefix in [keys::day_prefix(day_no), keys::event_prefix(day_no), keys::transition_prefix(day_no)] {
            for item in self.store.db.scan_prefix(prefix) {
                batch.remove(item.map_err(self.store.db_err())?.0);
            }
        }
        for id in 0..self.sensors.devices.len() as u32 {
            for item in self.store.db.range(keys::chunk_prefix(id, day_no)..keys::chunk_end(id, day_no)) {
                batch.remove(item.map_err(self.store.db_err())?.0);
            }
        }
        Ok(())
    }
}
