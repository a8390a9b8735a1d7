//! Rollups in the cache: each sensor's hours of a day (`U`, the sensor,
//! the day), made by the `rollup` crate from the day's stored readings once
//! the day is over, and made the same way from the readings when a day is
//! not rolled up yet (the current day, or a cache that has not caught up).
//!
//! A day is rolled up when a later day's file exists: it will not grow any
//! more (if it does, it is re-indexed, and rolled up again). The days rolled
//! up are those up to `M rolled` (all of them, in order: a counter's state
//! flows from day to day), written in the same batch as the day's records;
//! removing a day lowers it. Rollups are made from the readings, not while
//! lines are indexed, so indexing does no more work per line, a crash or a
//! follow cannot make them differ from a rebuild, and a change of
//! `[[counter]]` makes them again without indexing the logs again.
//!
//! A day's record: a format byte (0), a kind byte (0 gauge, 1 counter),
//! the number of hours, the hours (since the epoch) and the counts as
//! packed deltas; a gauge's min, max, first and last as packed columns
//! ([`segment`]), its sums, and the times of its min and max (ms after the
//! hour, packed deltas); a counter's increments, its flags (a byte each)
//! and its state after the day.

use crate::fx::FxMap;
use crate::pack::{put_deltas, put_varint, Reader};
use crate::segment::{self, ColumnValues};
use crate::store::Store;
use crate::{codec, keys, Index, IndexError};
use decode::Value;
use rollup::{CounterParams, CounterState, Flags, Gauge, Hour, Increment, Kind, Roller, Rollups, Sum, Summary, DAY_MS, HOUR_MS};

const FORMAT: u8 = 0;
const GAUGE: u8 = 0;
const COUNTER: u8 = 1;
/// The sums' encodings: integers at a common scale, or doubles.
const SUMS_SCALED: u8 = 0;
const SUMS_F64: u8 = 1;

pub(crate) fn encode_day(hours: &[Hour], state: Option<&CounterState>) -> Vec<u8> {
    let mut out = vec![FORMAT];
    let counter = matches!(hours.first().map(|h| &h.summary), Some(Summary::Counter(_))) || state.is_some();
    out.push(if counter { COUNTER } else { GAUGE });
    put_varint(&mut out, hours.len() as u64);
    put_deltas(&mut out, hours.iter().map(|h| h.start.div_euclid(HOUR_MS)));
    put_deltas(&mut out, hours.iter().map(|h| h.summary.count() as i64));
    let gauges: Vec<&Gauge> = hours.iter().filter_map(|h| if let Summary::Gauge(g) = &h.summary { Some(g) } else { None }).collect();
    let incs: Vec<&Increment> = hours.iter().filter_map(|h| if let Summary::Counter(c) = &h.summary { Some(c) } else { None }).collect();
    if counter {
        put_sums(&mut out, &incs.iter().map(|c| c.total).collect::<Vec<_>>());
        out.extend(incs.iter().map(|c| c.flags.0));
        match state {
            Some(s) => {
                out.push(1 | u8::from(s.faulty) << 1 | u8::from(s.last.is_some()) << 2);
                out.extend_from_slice(&s.last.unwrap_or(0.0).to_le_bytes());
                out.extend_from_slice(&s.max.to_le_bytes());
            }
            None => out.push(0),
        }
    } else {
        for pick in [|g: &Gauge| g.min.clone(), |g: &Gauge| g.max.clone(), |g: &Gauge| g.first.clone(), |g: &Gauge| g.last.clone()] {
            let values: Vec<Value> = gauges.iter().map(|g| pick(g)).collect();
            let mut col = Vec::new();
            segment::encode_column(&mut col, &values);
            put_varint(&mut out, col.len() as u64);
            out.extend_from_slice(&col);
        }
        put_sums(&mut out, &gauges.iter().map(|g| g.sum).collect::<Vec<_>>());
        put_deltas(&mut out, hours.iter().zip(&gauges).map(|(h, g)| g.t_min - h.start));
        put_deltas(&mut out, hours.iter().zip(&gauges).map(|(h, g)| g.t_max - h.start));
    }
    out
}

pub(crate) fn decode_day(bytes: &[u8]) -> Option<(Vec<Hour>, Option<CounterState>)> {
    let mut r = Reader(bytes);
    if r.byte()? != FORMAT {
        return None;
    }
    let kind = r.byte()?;
    let n = r.count(r.0.len())?;
    let (mut starts, mut counts) = (Vec::new(), Vec::new());
    r.deltas(n, &mut starts)?;
    r.deltas(n, &mut counts)?;
    let starts: Vec<i64> = starts.into_iter().map(|h| h.checked_mul(HOUR_MS)).collect::<Option<_>>()?;
    let counts: Vec<u64> = counts.into_iter().map(|c| u64::try_from(c).ok()).collect::<Option<_>>()?;
    match kind {
        COUNTER => {
            let sums = get_sums(&mut r, n)?;
            let flags = r.take(n)?;
            let hours = (0..n)
                .map(|i| Hour {
                    start: starts[i],
                    summary: Summary::Counter(Increment { count: counts[i], total: sums[i], flags: Flags(flags[i]) }),
                })
                .collect();
            let s = r.byte()?;
            let state = if s & 1 == 0 {
                None
            } else {
                let last = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
                let max = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
                Some(CounterState { last: (s & 4 != 0).then_some(last), max, faulty: s & 2 != 0 })
            };
            Some((hours, state))
        }
        GAUGE => {
            let mut columns = Vec::with_capacity(4);
            for _ in 0..4 {
                let len = r.count(r.0.len())?;
                let values = segment::decode_column(r.take(len)?, n)?;
                if values.len() != n {
                    return None;
                }
                columns.push(values);
            }
            let sums = get_sums(&mut r, n)?;
            let (mut t_min, mut t_max) = (Vec::new(), Vec::new());
            r.deltas(n, &mut t_min)?;
            r.deltas(n, &mut t_max)?;
            let mut it = columns.into_iter();
            let (min, max, first, last) = (it.next()?, it.next()?, it.next()?, it.next()?);
            let values = min.into_iter().zip(max).zip(first.into_iter().zip(last));
            let hours = values
                .zip(starts.iter().zip(&counts).zip(sums.into_iter().zip(t_min.iter().zip(&t_max))))
                .map(|(((min, max), (first, last)), ((&start, &count), (sum, (&lo, &hi))))| Hour {
                    start,
                    summary: Summary::Gauge(Gauge { count, min, max, first, last, sum, t_min: start + lo, t_max: start + hi }),
                })
                .collect();
            Some((hours, None))
        }
        _ => None,
    }
}

/// Sums as integers at their common scale when every one is exact and fits, else as doubles.
fn put_sums(out: &mut Vec<u8>, sums: &[Sum]) {
    let scale = sums.iter().try_fold(0u8, |k, s| match s {
        Sum::Exact { k: sk, .. } => Some(k.max(*sk)),
        Sum::Float(_) => None,
    });
    let scaled: Option<Vec<i64>> = scale.and_then(|k| {
        sums.iter()
            .map(|s| match *s {
                Sum::Exact { m, k: sk } => m.checked_mul(10i128.checked_pow(u32::from(k - sk))?).and_then(|m| i64::try_from(m).ok()),
                Sum::Float(_) => None,
            })
            .collect()
    });
    match (scale, scaled) {
        (Some(k), Some(ms)) => {
            out.push(SUMS_SCALED);
            out.push(k);
            put_deltas(out, ms.into_iter());
        }
        _ => {
            out.push(SUMS_F64);
            for s in sums {
                out.extend_from_slice(&s.value().to_le_bytes());
            }
        }
    }
}

fn get_sums(r: &mut Reader<'_>, n: usize) -> Option<Vec<Sum>> {
    match r.byte()? {
        SUMS_SCALED => {
            let k = r.byte()?;
            if k > 38 {
                return None;
            }
            let mut ms = Vec::new();
            r.deltas(n, &mut ms)?;
            Some(ms.into_iter().map(|m| Sum::Exact { m: i128::from(m), k }).collect())
        }
        SUMS_F64 => (0..n).map(|_| Some(Sum::Float(f64::from_le_bytes(r.take(8)?.try_into().ok()?)))).collect(),
        _ => None,
    }
}

/// The stored hours of a sensor as last read: (generation, sensor, first
/// day, end day), and the hours with a counter's state after the last day.
pub(crate) type Memo = ((u64, u32, i64, i64), std::sync::Arc<(Vec<Hour>, Option<CounterState>)>);

/// A sensor's id, its hours of a day, and a counter's state after them.
type DayOfSensor = (u32, Vec<Hour>, Option<CounterState>);

/// A sensor's hours, as `query --every` and `export --every` read them.
#[derive(Debug, Clone)]
pub struct SensorHours {
    /// A counter's parameters, none for a gauge (its limits are applied when periods are made).
    pub counter: Option<CounterParams>,
    pub hours: Vec<Hour>,
}

impl Index {
    /// The rollups to make from now on ([`Rollups::default`]: gauges of
    /// every numeric sensor, no counters). Returns whether the stored
    /// rollups were made with others: the next catch-up removes them and
    /// makes them again (readers make the hours they need from the
    /// readings meanwhile).
    pub fn set_rollups(&mut self, rollups: Rollups) -> Result<bool, IndexError> {
        self.rollups = rollups;
        self.sync_rollups(false)
    }

    /// Reads how far days are rolled up when the stored rollups were made
    /// with these; otherwise treats none as rolled up and, with `remove`
    /// (a catch-up, which makes them again), removes them. Returns whether
    /// stored rollups were made with others.
    pub(crate) fn sync_rollups(&mut self, remove: bool) -> Result<bool, IndexError> {
        let fp = self.rollups.fingerprint();
        let stored = self.store.get::<String>(&keys::meta("rollups"))?;
        if stored.as_deref() == Some(fp.as_str()) {
            self.rolled = self.store.get::<i64>(&keys::meta("rolled"))?;
            return Ok(false);
        }
        self.rollup_generation += 1;
        self.rolled = None;
        self.counter_memo = None;
        // Some were made with others when any day was rolled up.
        let made = self.store.get::<i64>(&keys::meta("rolled"))?.is_some();
        if remove && self.writable {
            let mut batch = sled::Batch::default();
            for item in self.store.db.scan_prefix([keys::ROLLUP]) {
                batch.remove(item.map_err(self.store.db_err())?.0);
            }
            batch.remove(keys::meta("rolled"));
            batch.insert(keys::meta("rollups"), codec::encode(&fp));
            self.store.db.apply_batch(batch).map_err(self.store.db_err())?;
        }
        Ok(made)
    }

    /// What rolling up needs, taken for a catch-up ([`DayRoller`]), and given back after it.
    pub(crate) fn day_roller(&mut self) -> DayRoller {
        DayRoller { store: self.store.clone(), rollups: self.rollups.clone(), rolled: self.rolled, memo: self.counter_memo.take() }
    }

    pub(crate) fn put_back(&mut self, roller: DayRoller) {
        self.rollup_generation += 1;
        self.rolled = roller.rolled;
        self.counter_memo = roller.memo;
    }

    /// The sensors as rolling up a day needs them: name and device by id.
    pub(crate) fn sensor_table(&self) -> SensorTable {
        SensorTable { names: self.sensors.names.clone(), device_of: self.sensors.device_of.clone() }
    }

    /// The hours of `sensor` from the period holding `from` to before `to`:
    /// stored for the days rolled up, made from the readings for the others.
    /// `None` when the sensor is unknown; its kind is `None` when it is not
    /// rolled up (gauges are off, and it is no counter).
    pub fn rollup_hours(&self, sensor: &str, from: Option<i64>, to: Option<i64>) -> Result<Option<Option<SensorHours>>, IndexError> {
        let Some(&id) = self.sensors.by_name.get(sensor) else { return Ok(None) };
        let Some(kind) = self.rollups.kind(sensor) else { return Ok(Some(None)) };
        let counter = match kind {
            Kind::Counter(i) => Some(self.rollups.counter(i).clone()),
            Kind::Gauge => None,
        };
        let first_day = from.map_or(i64::MIN, |t| t.div_euclid(DAY_MS));
        let last_day = to.map_or(i64::MAX, |t| (t - 1).div_euclid(DAY_MS));
        let rolled = self.rolled.unwrap_or(i64::MIN);
        let mut hours = Vec::new();
        // With no day rolled up (none yet, or those stored were made with
        // other [[counter]] tables, which a reader cannot remove), a counter
        // starts afresh: nothing stored can be trusted.
        let mut state = if self.rolled.is_none() { Some(CounterState::default()) } else { None };
        let stored_to = rolled.min(last_day).saturating_add(1);
        if first_day < stored_to {
            let key = (self.rollup_generation, id, first_day, stored_to);
            let mut memo = self.rollup_memo.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let stored = match memo.as_ref() {
                Some((k, stored)) if *k == key => stored.clone(),
                _ => {
                    let (mut read, mut last) = (Vec::new(), None);
                    for item in self.store.db.range(keys::rollup(id, first_day)..keys::rollup(id, stored_to)) {
                        let (_, v) = item.map_err(self.store.db_err())?;
                        let (h, s) = decode_day(&v).ok_or_else(|| self.store.damaged("rollup record"))?;
                        read.extend(h);
                        last = s;
                    }
                    let stored = std::sync::Arc::new((read, last));
                    *memo = Some((key, stored.clone()));
                    stored
                }
            };
            drop(memo);
            hours.extend(stored.0.iter().cloned());
            if stored.1.is_some() {
                state = stored.1;
            }
        }
        // The days not rolled up yet, made from their readings.
        let device = self.sensors.device_of[id as usize];
        for day in self.days()? {
            if day <= rolled || day > last_day {
                continue;
            }
            let has = self.store.db.get(keys::day_key(day, keys::DAY_FIELD, &id.to_be_bytes())).map_err(self.store.db_err())?.is_some();
            if !has {
                continue;
            }
            let mut roller = match &counter {
                None => Roller::gauge(),
                Some(p) => {
                    let s = match state {
                        Some(s) => s,
                        None => counter_state_before(&self.store, id, day)?,
                    };
                    Roller::counter(p.clone(), s)
                }
            };
            feed_day(&self.store, device, day, &[id], std::slice::from_mut(&mut roller))?;
            let (h, s) = roller.finish();
            state = s;
            if day >= first_day {
                hours.extend(h);
            }
        }
        // Hours are in time order within a day; a clock step can put a day's hour among another's.
        hours.sort_by_key(|h| h.start);
        let from_hour = from.map(|t| t.div_euclid(HOUR_MS) * HOUR_MS);
        hours.retain(|h| from_hour.is_none_or(|f| h.start >= f) && to.is_none_or(|t| h.start < t));
        Ok(Some(Some(SensorHours { counter, hours })))
    }

    /// The sensors that are rolled up, in natural order.
    pub fn rollup_sensors(&self) -> Vec<String> {
        self.sensor_names().into_iter().filter(|s| self.rollups.kind(s).is_some()).collect()
    }

    pub fn rollups(&self) -> &Rollups {
        &self.rollups
    }
}

/// The sensors' names and devices by id, as a day roller reads them.
#[derive(Debug, Default)]
pub(crate) struct SensorTable {
    names: Vec<String>,
    device_of: Vec<u32>,
}

/// Rolls up the days a catch-up indexed, in order, on a thread of its own
/// (a day is rolled up while the next one is indexed): it holds what it
/// needs, and gives back how far it got and its counters' states.
#[derive(Debug)]
pub(crate) struct DayRoller {
    store: Store,
    rollups: Rollups,
    /// The last day rolled up (every day before it is too).
    pub rolled: Option<i64>,
    /// Counters' states after the day `.0`.
    memo: Option<(i64, FxMap<u32, CounterState>)>,
}

impl DayRoller {
    /// Rolls up `day` (every day before it is), with `sensors` for the names of its sensors.
    pub fn roll(&mut self, day: i64, sensors: &SensorTable) -> Result<(), IndexError> {
        if self.rolled.is_some_and(|r| r >= day) {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut states = Vec::new();
        for (id, hours, state) in self.make_day(day, sensors)? {
            if let Some(s) = state {
                states.push((id, s));
            }
            if !hours.is_empty() || state.is_some() {
                batch.insert(keys::rollup(id, day), encode_day(&hours, state.as_ref()));
            }
        }
        batch.insert(keys::meta("rolled"), codec::encode(&day));
        self.store.db.apply_batch(batch).map_err(self.store.db_err())?;
        let memo = self.memo.get_or_insert_with(|| (day, FxMap::default()));
        memo.0 = day;
        memo.1.extend(states);
        self.rolled = Some(day);
        Ok(())
    }

    /// The hours of every rolled-up sensor with readings on `day` (and a
    /// counter's state after it), made from the day's readings.
    fn make_day(&mut self, day: i64, table: &SensorTable) -> Result<Vec<DayOfSensor>, IndexError> {
        let store = &self.store;
        // The sensors with readings that day, from the day's field records, by device.
        let mut by_device: std::collections::BTreeMap<u32, Vec<(u32, Kind)>> = std::collections::BTreeMap::new();
        for item in store.db.scan_prefix(keys::day_key(day, keys::DAY_FIELD, b"")) {
            let (k, _) = item.map_err(store.db_err())?;
            let id = u32::from_be_bytes(k[k.len() - 4..].try_into().map_err(|_| store.damaged("field key"))?);
            let name = table.names.get(id as usize).ok_or_else(|| store.damaged("field of an unknown sensor"))?;
            if let Some(kind) = self.rollups.kind(name) {
                by_device.entry(table.device_of[id as usize]).or_default().push((id, kind));
            }
        }
        // A counter's state goes on from the day before it reported, which
        // the previous day rolled up left in memory, or its stored record.
        let memo_ok = self.memo.as_ref().is_some_and(|(d, _)| Some(*d) == self.rolled);
        if !memo_ok {
            self.memo = Some((self.rolled.unwrap_or(i64::MIN), FxMap::default()));
        }
        let mut out = Vec::new();
        for (device, sensors) in by_device {
            let mut rollers = Vec::with_capacity(sensors.len());
            for &(id, kind) in &sensors {
                rollers.push(match kind {
                    Kind::Gauge => Roller::gauge(),
                    Kind::Counter(i) => {
                        let memo = self.memo.as_ref().and_then(|(_, m)| m.get(&id).copied());
                        let state = match memo {
                            Some(s) => s,
                            None => counter_state_before(store, id, day)?,
                        };
                        Roller::counter(self.rollups.counter(i).clone(), state)
                    }
                });
            }
            feed_day(store, device, day, &sensors.iter().map(|s| s.0).collect::<Vec<_>>(), &mut rollers)?;
            for ((id, _), roller) in sensors.into_iter().zip(rollers) {
                let (hours, state) = roller.finish();
                out.push((id, hours, state));
            }
        }
        Ok(out)
    }
}

/// Feeds a device's readings of `day` (its own segments, in line order;
/// readings a dataflash replayed are not rolled up) of `sensors` to their rollers.
fn feed_day(store: &Store, device: u32, day: i64, sensors: &[u32], rollers: &mut [Roller]) -> Result<(), IndexError> {
    for item in store.db.range(keys::chunk_prefix(device, day)..keys::chunk_end(device, day)) {
        let (_, v) = item.map_err(store.db_err())?;
        segment::each_column(
            &v,
            |id| sensors.contains(&id),
            |id, times, values| {
                let Some(s) = sensors.iter().position(|&x| x == id) else { return };
                match values {
                    ColumnValues::Scaled { ms, k, int } => rollers[s].add_scaled(times, ms, k, int),
                    ColumnValues::Values(values) => {
                        for (&t, v) in times.iter().zip(values) {
                            rollers[s].add(t, v);
                        }
                    }
                }
            },
        )
        .ok_or_else(|| store.damaged("reading segment"))?;
    }
    Ok(())
}

/// A counter's state after its last day rolled up before `day`.
fn counter_state_before(store: &Store, id: u32, day: i64) -> Result<CounterState, IndexError> {
    let mut last = None;
    for item in store.db.range(keys::rollup(id, i64::MIN)..keys::rollup(id, day)) {
        last = Some(item.map_err(store.db_err())?.1);
    }
    match last {
        None => Ok(CounterState::default()),
        Some(v) => Ok(decode_day(&v).ok_or_else(|| store.damaged("rollup record"))?.1.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i32>().prop_map(|i| Value::Int(i64::from(i))),
            (-100_000i64..100_000, 0u32..4).prop_map(|(m, k)| Value::Float(m as f64 / 10f64.powi(k as i32))),
        ]
    }

    proptest! {
        /// A day's record reads back as it was made, for gauges and counters.
        #[test]
        fn records_round_trip(readings in prop::collection::vec((0i64..DAY_MS, value()), 0..200), counter in any::<bool>(), wrap in any::<bool>()) {
            let mut readings = readings;
            readings.sort_by_key(|r| r.0);
            let params = CounterParams { low: None, high: None, wrap: wrap.then_some(65536.0), reset: rollup::Reset::Rebase, scale: 1.0, unit: None };
            let mut roller = if counter { Roller::counter(params, CounterState::default()) } else { Roller::gauge() };
            for (t, v) in &readings {
                roller.add(*t, v);
            }
            let (hours, state) = roller.finish();
            let bytes = encode_day(&hours, state.as_ref());
            let (back, back_state) = decode_day(&bytes).expect("decodes");
            prop_assert_eq!(back_state, state);
            prop_assert_eq!(back.len(), hours.len());
            for (a, b) in back.iter().zip(&hours) {
                prop_assert_eq!(a.start, b.start);
                match (&a.summary, &b.summary) {
                    (Summary::Gauge(x), Summary::Gauge(y)) => {
                        prop_assert_eq!((x.count, &x.min, &x.max, &x.first, &x.last, x.t_min, x.t_max), (y.count, &y.min, &y.max, &y.first, &y.last, y.t_min, y.t_max));
                        prop_assert_eq!(x.sum.value(), y.sum.value());
                    }
                    (Summary::Counter(x), Summary::Counter(y)) => {
                        prop_assert_eq!((x.count, x.flags, x.total.value()), (y.count, y.flags, y.total.value()));
                    }
                    _ => prop_assert!(false, "kinds differ"),
                }
            }
        }

        /// Damaged records decode to `None` or something, never a panic.
        #[test]
        fn damaged_records_never_panic(readings in prop::collection::vec((0i64..DAY_MS, value()), 1..50), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
            let mut roller = Roller::gauge();
            for (t, v) in &readings {
                roller.add(*t, v);
            }
            let bytes = encode_day(&roller.finish().0, None);
            let _ = decode_day(&bytes[..cut.index(bytes.len())]);
            let mut flipped = bytes.clone();
            let i = flip.0.index(flipped.len());
            flipped[i] ^= flip.1;
            let _ = decode_day(&flipped);
        }
    }
}
