//! The sled database, and the one atomic batch that writes a batch of
//! derived data together with the cursor that accounts for it.

use crate::fx::FxMap;
use crate::segment::{self, Rows};
use crate::sensors::{Accumulator, DeviceBatch};
use crate::{codec, keys, Cursor, DayMeta, FieldDay, IndexError, SourceCounts};
use logfile::time::DAY_MS;
use std::path::PathBuf;

/// A device's readings of a day are stored in segments ([`segment`]); new
/// rows are merged into the day's last segment while it holds fewer than
/// this many, and start a new segment after. So a commit re-encodes at most
/// this many old rows per device (following a live log commits a few lines
/// at a time), a bulk catch-up (thousands of lines a batch) rarely any, and
/// a device's day is a handful of keys.
pub(crate) const SEGMENT_MIN: usize = 1024;
/// Only a commit bringing fewer rows than this for a device merges them
/// into its short last segment; more start a segment of their own. A bulk
/// catch-up of a site with many devices brings a few hundred rows per device
/// and commit: merging them would decode, copy and encode each row two or
/// three times for segments only a little longer.
pub(crate) const MERGE_MAX: usize = SEGMENT_MIN / 4;

#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub path: PathBuf,
    pub db: sled::Db,
}

/// Each device's last segment of the day being indexed, as committed.
#[derive(Default)]
pub(crate) struct Segments {
    pub day: i64,
    pub last: FxMap<u32, LastSegment>,
}

pub(crate) struct LastSegment {
    pub seq: u32,
    /// Its rows, while it is short enough to take more.
    pub rows: Option<Rows>,
}

impl Store {
    pub fn db_err(&self) -> impl Fn(sled::Error) -> IndexError + '_ {
        move |source| IndexError::Db { path: self.path.clone(), source }
    }

    pub fn damaged(&self, what: &str) -> IndexError {
        IndexError::Damaged { path: self.path.clone(), what: what.into() }
    }

    /// Writes the accumulated data and the cursor in one atomic batch.
    /// `segments` remembers each device's last segment of the day as
    /// committed (its number, and its rows while it is short), so that it
    /// is looked up in sled once per day and process.
    pub fn commit(&self, day: &str, cur: &Cursor, acc: Accumulator, segments: &mut FxMap<u32, LastSegment>) -> Result<(), IndexError> {
        let mut batch = sled::Batch::default();
        for (id, name) in &acc.new_devices {
            batch.insert(keys::device_id(*id), name.as_bytes());
        }
        for (id, device, name) in &acc.new_sensors {
            batch.insert(keys::sensor_id(*id), keys::sensor_record(*device, name));
        }
        let day_no = keys::parse_day_name(day);
        for (source, add) in acc.sources {
            let key = keys::day_key(day_no, keys::DAY_SOURCE, source.as_bytes());
            let mut merged = self.get::<SourceCounts>(&key)?.unwrap_or_default();
            merged.merge(&add);
            batch.insert(key, codec::encode(&merged));
        }
        for d in &acc.late {
            self.field_days(day_no, d, true, &mut batch)?;
            // Replayed readings go with the day they were read: each commit
            // adds a segment to that day (a replay is rare and short).
            for (reading_day, rows) in d.rows.split_by(|t| t.div_euclid(DAY_MS)) {
                let mut seq = 0;
                for item in self.db.scan_prefix(keys::late_prefix(d.device, reading_day, day_no)) {
                    let (k, _) = item.map_err(self.db_err())?;
                    seq = keys::parse_late_seq(&k).ok_or_else(|| self.damaged("replayed segment key"))? + 1;
                }
                batch.insert(keys::late_chunk(d.device, reading_day, day_no, seq), segment::encode(&rows));
                batch.insert(keys::day_key(day_no, keys::DAY_LATE, &keys::late_record(d.device, reading_day)), &[][..]);
            }
        }
        for d in acc.devices {
            self.field_days(day_no, &d, false, &mut batch)?;
            // The day's last segment takes the new rows while it is short.
            let mut rows = d.rows;
            let merge = rows.len() < MERGE_MAX;
            let seq = match segments.remove(&d.device) {
                Some(LastSegment { seq, rows: Some(mut old) }) if merge => {
                    old.append(rows);
                    rows = old;
                    seq
                }
                Some(last) => last.seq + 1,
                None if !merge => self.last_segment(d.device, day_no)?.map_or(0, |(seq, _)| seq + 1),
                None => match self.last_segment(d.device, day_no)? {
                    Some((seq, Some(mut old))) => {
                        old.append(rows);
                        rows = old;
                        seq
                    }
                    Some((seq, None)) => seq + 1,
                    None => 0,
                },
            };
            batch.insert(keys::chunk(d.device, day_no, seq), segment::encode(&rows));
            // A short segment is kept decoded: the next commit appends to it without reading it back.
            segments.insert(d.device, LastSegment { seq, rows: (rows.len() < SEGMENT_MIN).then_some(rows) });
        }
        for (code, n) in acc.event_counts {
            let key = keys::day_key(day_no, keys::DAY_EVENT, code.as_bytes());
            let old = self.get::<u64>(&key)?.unwrap_or(0);
            batch.insert(key, codec::encode(&(old + n)));
        }
        for (key, e) in acc.events {
            batch.insert(key, codec::encode(&e));
        }
        // A commit's transitions are one record, under the key of its first:
        // a flapping check makes thousands a day, and one key each cost sled
        // a copy of its leaf per key (half the time of a commit).
        if let Some(key) = acc.transitions_key.filter(|_| !acc.transitions.is_empty()) {
            batch.insert(key, codec::encode_packed(&acc.transitions));
        }
        if let Some(state) = acc.health {
            batch.insert(keys::health(day), state);
        }
        let mkey = keys::day_key(day_no, keys::DAY_META, b"");
        let mut dm = self.get::<DayMeta>(&mkey)?.unwrap_or_default();
        dm.meta_lines += acc.day_meta.meta_lines;
        dm.bad_lines += acc.day_meta.bad_lines;
        batch.insert(mkey, codec::encode(&dm));
        batch.insert(keys::cursor(day), codec::encode(cur));
        self.db.apply_batch(batch).map_err(self.db_err())
    }

    /// Adds what a device's batch adds to its sensors' day records.
    /// Replayed (`late`) readings can be older than the day's first.
    fn field_days(&self, day_no: i64, d: &DeviceBatch, late: bool, batch: &mut sled::Batch) -> Result<(), IndexError> {
        for (column, add) in d.rows.columns.iter().zip(d.stats.iter().map(|s| s.to_field_day())) {
            let key = keys::day_key(day_no, keys::DAY_FIELD, &column.sensor.to_be_bytes());
            let merged = match self.get::<FieldDay>(&key)? {
                Some(mut f) => {
                    f.count += add.count;
                    if late {
                        f.first_ms = f.first_ms.min(add.first_ms);
                        f.last_ms = f.last_ms.max(add.last_ms);
                    } else {
                        f.last_ms = add.last_ms;
                    }
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
        Ok(())
    }

    /// The number of the last segment of a device's day, if any, with its
    /// rows if it is short enough to take more.
    fn last_segment(&self, device: u32, day: i64) -> Result<Option<(u32, Option<Rows>)>, IndexError> {
        // Forward: a day has a handful of segments, and sled's `next_back`
        // (which its `last` uses too) brings a 1 MiB constant into the binary.
        let mut last = None;
        for item in self.db.range(keys::chunk_prefix(device, day)..keys::chunk_end(device, day)) {
            last = Some(item.map_err(self.db_err())?);
        }
        let Some((k, v)) = last else { return Ok(None) };
        let seq = keys::parse_chunk_seq(&k).ok_or_else(|| self.damaged("reading segment key"))?;
        // Only a short segment takes more rows: a long one need not be decoded.
        let len = segment::row_count(&v).ok_or_else(|| self.damaged("reading segment"))?;
        if len >= SEGMENT_MIN {
            return Ok(Some((seq, None)));
        }
        Ok(Some((seq, Some(segment::decode(&v).ok_or_else(|| self.damaged("reading segment"))?))))
    }

    /// A record made by [`codec::encode_packed`].
    pub fn get_packed<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, IndexError> {
        match self.db.get(key).map_err(self.db_err())? {
            None => Ok(None),
            Some(v) => codec::decode_packed(&v).map(Some).ok_or_else(|| self.damaged("record")),
        }
    }

    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, IndexError> {
        match self.db.get(key).map_err(self.db_err())? {
            None => Ok(None),
            Some(v) => codec::decode(&v).map(Some).ok_or_else(|| self.damaged("record")),
        }
    }
}
