//! Answers from the cache: one sensor's readings, every reading in log
//! order, the schema, statistics and events. Output goes through callbacks,
//! so a closed pipe stops the work early.

use crate::{codec, keys, segment, DayMeta, FieldDay, Index, IndexError, SourceCounts};
use decode::Value;
use logfile::time::DAY_MS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;

/// An event pattern matched a line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub time_ms: i64,
    pub source: String,
    pub code: String,
    pub level: String,
    pub description: String,
    /// The daily file and line number of the original message.
    pub file: String,
    pub line: u64,
    pub text: String,
}

/// One sensor in the schema.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemaRow {
    pub sensor: String,
    pub kind: String,
    pub unit: Option<String>,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Lines and readings of one source, over every day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceStats {
    pub source: String,
    pub counts: SourceCounts,
}

/// Everything `stats` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub days: usize,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub sources: Vec<SourceStats>,
    pub sensors: usize,
    pub meta_lines: u64,
    pub bad_lines: u64,
    /// Event codes with their counts, most frequent first.
    pub events: Vec<(String, u64)>,
}

/// Orders names as people read them: runs of digits by their value, so
/// `node-2/b9` comes before `node-2/b10` and `node-19` after `node-2`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                // Compare by value without overflow: strip leading zeros, then length, then digits.
                let strip = |n: &[u8]| -> usize { n.iter().take_while(|&&c| c == b'0').count() };
                let (ta, tb) = (&na[strip(na)..], &nb[strip(nb)..]);
                let by_value = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb)).then_with(|| da.cmp(&db));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

impl Index {
    /// Names of every sensor ever decoded.
    pub fn sensor_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sensors.by_name.keys().cloned().collect();
        v.sort_by(|a, b| natural_cmp(a, b));
        v
    }

    /// Calls `f` with every reading of `sensor` in `[from, to)`, in time
    /// order. Returns false when the sensor is unknown.
    pub fn query(
        &self,
        sensor: &str,
        from: Option<i64>,
        to: Option<i64>,
        f: &mut dyn FnMut(i64, &Value) -> io::Result<()>,
    ) -> Result<bool, IndexError> {
        let Some(&id) = self.sensors.by_name.get(sensor) else { return Ok(false) };
        let device = self.sensors.device_of[id as usize];
        let start = keys::chunk_prefix(device, from.map_or(i64::MIN, |t| t.div_euclid(DAY_MS)));
        let end = match to {
            Some(t) => keys::chunk_prefix(device, (t - 1).div_euclid(DAY_MS) + 1),
            None => keys::chunk_prefix(device + 1, i64::MIN),
        };
        // A day's readings are given together: in the order they were
        // logged, or sorted by time when a dataflash replay added some.
        let mut day_rows: Vec<(i64, Value)> = Vec::new();
        let mut day = None;
        let mut replayed = false;
        let mut flush = |rows: &mut Vec<(i64, Value)>, replayed: bool| -> Result<(), IndexError> {
            if replayed {
                rows.sort_by_key(|r| r.0);
            }
            for (t, v) in rows.drain(..) {
                if from.is_some_and(|from| t < from) || to.is_some_and(|to| t >= to) {
                    continue;
                }
                f(t, &v).map_err(IndexError::Output)?;
            }
            Ok(())
        };
        for item in self.store.db.range(start..end) {
            let (k, v) = item.map_err(self.store.db_err())?;
            let this = k.get(5..13).ok_or_else(|| self.store.damaged("reading segment key"))?;
            if day.as_deref() != Some(this) {
                flush(&mut day_rows, replayed)?;
                day = Some(this.to_vec());
                replayed = false;
            }
            replayed |= keys::is_late(&k);
            day_rows.extend(segment::sensor(&v, id).ok_or_else(|| self.store.damaged("reading segment"))?);
        }
        flush(&mut day_rows, replayed)?;
        Ok(true)
    }

    /// Calls `f` with every decoded reading in `[from, to)`, in log order.
    pub fn export(
        &self,
        from: Option<i64>,
        to: Option<i64>,
        f: &mut dyn FnMut(i64, &str, &Value) -> io::Result<()>,
    ) -> Result<(), IndexError> {
        for day in self.days()? {
            let (d0, d1) = (day * DAY_MS, (day + 1) * DAY_MS);
            // A day out of range can still hold readings a replay brought from another day.
            let replayed = self.store.db.scan_prefix(keys::day_key(day, keys::DAY_LATE, b"")).next().is_some();
            if (from.is_some_and(|t| d1 <= t) || to.is_some_and(|t| d0 >= t)) && !replayed {
                continue;
            }
            // The devices with readings that day, from the day's field records.
            let mut devices = std::collections::BTreeSet::new();
            for item in self.store.db.scan_prefix(keys::day_key(day, keys::DAY_FIELD, b"")) {
                let (k, _) = item.map_err(self.store.db_err())?;
                let id = u32::from_be_bytes(k[k.len() - 4..].try_into().map_err(|_| self.store.damaged("field key"))?);
                devices.insert(*self.sensors.device_of.get(id as usize).ok_or_else(|| self.store.damaged("field of an unknown sensor"))?);
            }
            let mut segments = Vec::new();
            for device in devices {
                for c in self.store.db.range(keys::chunk_prefix(device, day)..keys::chunk_end(device, day)) {
                    let (_, v) = c.map_err(self.store.db_err())?;
                    segments.push(segment::decode(&v).ok_or_else(|| self.store.damaged("reading segment"))?);
                }
            }
            // Readings a dataflash replayed in this day's file, stored by the day they were read.
            for item in self.store.db.scan_prefix(keys::day_key(day, keys::DAY_LATE, b"")) {
                let (k, _) = item.map_err(self.store.db_err())?;
                let (device, read_day) = keys::parse_late_record(&k[10..]).ok_or_else(|| self.store.damaged("replayed readings record"))?;
                for c in self.store.db.scan_prefix(keys::late_prefix(device, read_day, day)) {
                    let (_, v) = c.map_err(self.store.db_err())?;
                    segments.push(segment::decode(&v).ok_or_else(|| self.store.damaged("reading segment"))?);
                }
            }
            // Every row of every segment, in line order (a line is one device's row).
            let mut order: Vec<(u64, u32, u32)> = Vec::new();
            for (s, rows) in segments.iter().enumerate() {
                order.extend(rows.lines.iter().enumerate().map(|(r, &l)| (l, s as u32, r as u32)));
            }
            order.sort_unstable();
            let mut next: Vec<Vec<usize>> = segments.iter().map(|s| s.cursors()).collect();
            for (_, s, r) in order {
                let rows = &segments[s as usize];
                let t = rows.times[r as usize];
                let skip = from.is_some_and(|from| t < from) || to.is_some_and(|to| t >= to);
                for (sensor, v) in rows.row(r as usize, &mut next[s as usize]) {
                    if skip {
                        continue;
                    }
                    let name = self.sensors.names.get(sensor as usize).ok_or_else(|| self.store.damaged("reading of an unknown sensor"))?;
                    f(t, name, v).map_err(IndexError::Output)?;
                }
            }
        }
        Ok(())
    }

    /// Days that have been indexed, oldest first.
    pub fn days(&self) -> Result<Vec<i64>, IndexError> {
        let mut days = Vec::new();
        for item in self.store.db.scan_prefix([keys::CURSOR]) {
            let (k, _) = item.map_err(self.store.db_err())?;
            days.push(keys::parse_day_name(&String::from_utf8_lossy(&k[1..])));
        }
        days.sort_unstable();
        Ok(days)
    }

    fn each_day_record<T: serde::de::DeserializeOwned>(&self, kind: u8, f: &mut dyn FnMut(&[u8], T)) -> Result<(), IndexError> {
        for item in self.store.db.scan_prefix([keys::DAY]) {
            let (k, v) = item.map_err(self.store.db_err())?;
            if k.get(9) == Some(&kind) {
                let rec = codec::decode(&v).ok_or_else(|| self.store.damaged("day record"))?;
                f(&k[10..], rec);
            }
        }
        Ok(())
    }

    /// The unit of `sensor`, as its most recent day recorded it.
    pub fn unit(&self, sensor: &str) -> Result<Option<String>, IndexError> {
        let Some(&id) = self.sensors.by_name.get(sensor) else { return Ok(None) };
        for day in self.days()?.into_iter().rev() {
            let key = keys::day_key(day, keys::DAY_FIELD, &id.to_be_bytes());
            if let Some(fd) = self.store.get::<FieldDay>(&key)? {
                if fd.unit.is_some() {
                    return Ok(fd.unit);
                }
            }
        }
        Ok(None)
    }

    /// Every sensor with its type, unit, count, first and last seen.
    pub fn schema(&self) -> Result<Vec<SchemaRow>, IndexError> {
        let mut rows: BTreeMap<u32, SchemaRow> = BTreeMap::new();
        self.each_day_record::<FieldDay>(keys::DAY_FIELD, &mut |rest, fd| {
            let Ok(b) = <[u8; 4]>::try_from(rest) else { return };
            let id = u32::from_be_bytes(b);
            let row = rows.entry(id).or_insert_with(|| SchemaRow {
                sensor: self.sensors.names.get(id as usize).cloned().unwrap_or_default(),
                kind: fd.kind.clone(),
                unit: None,
                count: 0,
                first_ms: fd.first_ms,
                last_ms: fd.last_ms,
            });
            row.count += fd.count;
            row.first_ms = row.first_ms.min(fd.first_ms);
            if fd.last_ms >= row.last_ms {
                row.last_ms = fd.last_ms;
                row.kind = fd.kind;
            }
            if fd.unit.is_some() {
                row.unit = fd.unit;
            }
        })?;
        let mut out: Vec<SchemaRow> = rows.into_values().collect();
        out.sort_by(|a, b| natural_cmp(&a.sensor, &b.sensor));
        Ok(out)
    }

    /// Collection span, lines per source, undecoded lines, frequent events.
    pub fn stats(&self) -> Result<Stats, IndexError> {
        let mut stats = Stats { days: self.days()?.len(), sensors: self.sensors.by_name.len(), ..Stats::default() };
        let mut sources: BTreeMap<String, SourceStats> = BTreeMap::new();
        self.each_day_record::<SourceCounts>(keys::DAY_SOURCE, &mut |rest, day| {
            let name = String::from_utf8_lossy(rest).into_owned();
            sources.entry(name.clone()).or_insert_with(|| SourceStats { source: name, counts: SourceCounts::default() }).counts.merge(&day);
        })?;
        let mut events: BTreeMap<String, u64> = BTreeMap::new();
        self.each_day_record::<u64>(keys::DAY_EVENT, &mut |rest, n| {
            *events.entry(String::from_utf8_lossy(rest).into_owned()).or_default() += n
        })?;
        self.each_day_record::<DayMeta>(keys::DAY_META, &mut |_, m| {
            stats.meta_lines += m.meta_lines;
            stats.bad_lines += m.bad_lines;
        })?;
        stats.first_ms = sources.values().map(|s| s.counts.first_ms).min();
        stats.last_ms = sources.values().map(|s| s.counts.last_ms).max();
        stats.sources = sources.into_values().collect();
        let mut ev: Vec<(String, u64)> = events.into_iter().collect();
        ev.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        stats.events = ev;
        Ok(stats)
    }

    /// The health evaluator as the newest day's cursor left it (checks from
    /// [`Index::set_checks`]): what stands now, in data time. Decoded once
    /// per state written (a follower answers many `status` requests between
    /// commits).
    pub fn health(&self) -> Result<std::sync::Arc<health::Health>, IndexError> {
        // The newest day's key, without decoding any other.
        let mut newest = None;
        for item in self.store.db.scan_prefix([keys::HEALTH]) {
            newest = Some(item.map_err(self.store.db_err())?.0);
        }
        let bytes = match newest {
            Some(k) => self.store.db.get(k).map_err(self.store.db_err())?.unwrap_or_default(),
            None => sled::IVec::default(),
        };
        // A panic while the memo was held left nothing half-written in it.
        let mut memo = self.health_memo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, health)) = memo.as_ref().filter(|(seen, _)| *seen == bytes) {
            return Ok(health.clone());
        }
        let state = match bytes.is_empty() {
            true => health::State::default(),
            false => codec::decode_packed(&bytes).ok_or_else(|| self.store.damaged("health state"))?,
        };
        let health = std::sync::Arc::new(health::Health::with_state(self.checks.clone(), state));
        *memo = Some((bytes, health.clone()));
        Ok(health)
    }

    /// The day file (`YYYYMMDD`) and line number of the last `n` lines of
    /// `device` (`SOURCE/DEVICE`) logged up to the day of `time_ms`, oldest
    /// first: from earlier days too when that day has fewer (a device heard
    /// once today after a long silence still shows what it said before).
    pub fn last_lines(&self, device: &str, time_ms: i64, n: usize) -> Result<Vec<(String, u64)>, IndexError> {
        let Some(&id) = self.sensors.device_by_name.get(device) else { return Ok(Vec::new()) };
        let last_day = time_ms.div_euclid(DAY_MS);
        let mut out: Vec<(String, u64)> = Vec::new();
        // Its segments newest first: a day's are under its prefix, in order.
        let mut day_lines: Vec<u64> = Vec::new();
        let mut current: Option<i64> = None;
        let flush = |day: Option<i64>, lines: &mut Vec<u64>, out: &mut Vec<(String, u64)>| {
            let Some(day) = day else { return };
            let Some(date) = chrono::DateTime::from_timestamp_millis(day * DAY_MS).map(|t| t.date_naive()) else { return };
            let name = keys::day_name(date);
            let want = n - out.len();
            let skip = lines.len().saturating_sub(want);
            // Newest first, for now: reversed at the end.
            out.extend(lines.drain(..).skip(skip).rev().map(|l| (name.clone(), l)));
        };
        for item in self.store.db.range(keys::chunk_prefix(id, i64::MIN)..keys::chunk_end(id, last_day)).rev() {
            if out.len() >= n {
                break;
            }
            let (k, v) = item.map_err(self.store.db_err())?;
            let Some(day) = keys::parse_chunk_day(&k) else { continue };
            if current != Some(day) {
                flush(current, &mut day_lines, &mut out);
                if out.len() >= n {
                    break;
                }
                current = Some(day);
            }
            if keys::is_late(&k) {
                // Readings a dataflash replayed: not lines of this day's file.
                continue;
            }
            let mut lines = segment::decode(&v).ok_or_else(|| self.store.damaged("reading segment"))?.lines;
            // Segments come newest first: this one's lines go before those read.
            lines.append(&mut day_lines);
            day_lines = lines;
        }
        if out.len() < n {
            flush(current, &mut day_lines, &mut out);
        }
        out.reverse();
        Ok(out)
    }

    /// Health transitions decided in `[from, to)` (data time), in log order.
    pub fn transitions(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<health::Transition>, IndexError> {
        let mut out = Vec::new();
        // Decided at or after their own time, so on the day of `from` or later
        // (a day earlier too, for a line stamped before midnight in the next day's file).
        let start = match from {
            Some(f) => keys::transition_prefix(f.div_euclid(DAY_MS) - 1),
            None => vec![keys::TRANSITION],
        };
        for item in self.store.db.range(start..vec![keys::TRANSITION + 1]) {
            let (_, v) = item.map_err(self.store.db_err())?;
            // A commit's transitions, in log order (see `Store::commit`).
            let block: Vec<health::Transition> = codec::decode_packed(&v).ok_or_else(|| self.store.damaged("transitions"))?;
            out.extend(block.into_iter().filter(|t| !(from.is_some_and(|f| t.at_ms < f) || to.is_some_and(|e| t.at_ms >= e))));
        }
        Ok(out)
    }

    /// Events in `[from, to)`, in log order.
    pub fn events(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<EventRecord>, IndexError> {
        let mut out = Vec::new();
        for item in self.store.db.scan_prefix([keys::EVENT]) {
            let (_, v) = item.map_err(self.store.db_err())?;
            let e: EventRecord = codec::decode(&v).ok_or_else(|| self.store.damaged("event"))?;
            if from.is_some_and(|t| e.time_ms < t) || to.is_some_and(|t| e.time_ms >= t) {
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod natural_tests {
    use super::natural_cmp;

    #[test]
    fn digits_compare_by_value() {
        let mut v = vec!["n/b10", "n/b2", "n/b1", "node-19/x", "node-2/x", "a", "n/b02", "n/b", "z9", "z10"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "n/b", "n/b1", "n/b2", "n/b02", "n/b10", "node-2/x", "node-19/x", "z9", "z10"]);
        assert_eq!(natural_cmp("x99999999999999999999999", "x100000000000000000000000"), std::cmp::Ordering::Less);
    }
}
