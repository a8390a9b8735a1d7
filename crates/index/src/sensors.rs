//! Sensor and device ids, and the batch that decoded readings are gathered
//! into before a commit.
//!
//! A sensor is `SOURCE/DEVICE/FIELD`; its device is `SOURCE/DEVICE`. Both
//! get small numeric ids, stored in the cache. Readings are gathered per
//! device (one row per line, one column per field, [`Rows`]), because a
//! device's fields share the line's time and number: stored once per row,
//! not once per value.

use crate::decoding::{Decoded, Reading};
use crate::fx::FxMap;
use crate::segment::Rows;
use crate::{EventRecord, FieldDay, SourceCounts};
use decode::{Field, Value};
use std::collections::{BTreeMap, HashMap};

/// Sensor and device names and their ids.
#[derive(Default)]
pub(crate) struct Sensors {
    pub by_name: HashMap<String, u32>,
    pub names: Vec<String>,
    /// The device of each sensor.
    pub device_of: Vec<u32>,
    pub devices: Vec<String>,
    pub device_by_name: HashMap<String, u32>,
    /// source → device → where its ids are in `ids`, filled as devices are met.
    lookup: FxMap<String, FxMap<String, usize>>,
    ids: Vec<DeviceIds>,
    /// The devices of the batch's readings, by source number and the address
    /// and length of their names: a driver hands out the same `&str` for
    /// every packet of a node, so this answers most readings without hashing
    /// or comparing a name.
    recent: FxMap<(usize, usize, usize), usize>,
    /// The sensor ids of the line being added (kept to reuse its allocation).
    scratch: Vec<u32>,
    /// Numbers handed to batches, so a device finds its rows in the current batch without a hash.
    batches: u64,
}

/// The ids of one device, found without building `SOURCE/DEVICE/FIELD`
/// once they are known.
struct DeviceIds {
    device: u32,
    /// The fields of the device's last reading, in order: a device sends the
    /// same fields in the same order line after line, so this usually answers
    /// with one short comparison.
    last: Vec<(Box<str>, u32)>,
    /// The address and length of each of the last reading's field names
    /// (see [`Sensors::recent`]): equal means the same name.
    last_at: Vec<(usize, usize)>,
    /// Every field met.
    all: FxMap<Box<str>, u32>,
    /// The batch this device last added rows to, and where they are in it.
    batch: u64,
    slot: usize,
}

/// What a batch adds to a sensor's day record ([`FieldDay`]).
#[derive(Default)]
pub(crate) struct ColumnStats {
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub kind: &'static str,
    pub unit: Option<String>,
    /// The address and length of the unit last compared (see [`Sensors::recent`]).
    unit_at: (usize, usize),
}

impl ColumnStats {
    pub fn to_field_day(&self) -> FieldDay {
        FieldDay { count: self.count, first_ms: self.first_ms, last_ms: self.last_ms, kind: self.kind.to_string(), unit: self.unit.clone() }
    }
}

/// What a batch adds for one device.
pub(crate) struct DeviceBatch {
    pub device: u32,
    pub rows: Rows,
    /// Per column of `rows`: the batch's count, first and last time, type and unit.
    pub stats: Vec<ColumnStats>,
    /// The sensor ids of the last row added, and their layout and columns.
    last_sensors: Vec<u32>,
    last_layout: u32,
    last_columns: Vec<u32>,
}

/// What a batch of lines adds to the cache, committed atomically with the cursor after it.
#[derive(Default)]
pub(crate) struct Accumulator {
    /// Lines it accounts for.
    pub lines: u64,
    /// This batch's number (see [`Sensors::batches`]).
    number: u64,
    pub devices: Vec<DeviceBatch>,
    pub sources: BTreeMap<String, SourceCounts>,
    pub event_counts: BTreeMap<String, u64>,
    pub events: Vec<(Vec<u8>, EventRecord)>,
    pub day_meta: crate::DayMeta,
    pub new_sensors: Vec<(u32, u32, String)>,
    pub new_devices: Vec<(u32, String)>,
}

impl Sensors {
    /// Registers a sensor read from the cache.
    pub fn insert(&mut self, id: u32, device: u32, name: String) {
        let i = id as usize;
        if self.names.len() <= i {
            self.names.resize(i + 1, String::new());
            self.device_of.resize(i + 1, u32::MAX);
        }
        self.names[i] = name.clone();
        self.device_of[i] = device;
        self.by_name.insert(name, id);
    }

    /// Registers a device read from the cache.
    pub fn insert_device(&mut self, id: u32, name: String) {
        let i = id as usize;
        if self.devices.len() <= i {
            self.devices.resize(i + 1, String::new());
        }
        self.devices[i] = name.clone();
        self.device_by_name.insert(name, id);
    }

    /// Gives a batch of decoded readings their sensor ids and gathers them
    /// in rows per device, into `acc` (several decoded batches make one commit).
    pub fn gather(&mut self, decoded: Decoded<'_>, acc: &mut Accumulator) {
        if acc.number == 0 {
            self.batches += 1;
            acc.number = self.batches;
        }
        acc.lines += decoded.lines;
        for (code, n) in decoded.event_counts {
            *acc.event_counts.entry(code).or_default() += n;
        }
        acc.events.extend(decoded.events);
        acc.day_meta.meta_lines += decoded.day_meta.meta_lines;
        acc.day_meta.bad_lines += decoded.day_meta.bad_lines;
        // Source numbers are the decoded batch's own.
        self.recent.clear();
        let mut fields = decoded.fields;
        for r in decoded.readings {
            let range = r.fields.clone();
            self.add(acc, &decoded.sources[r.source].0, r, &mut fields[range]);
        }
        for (name, counts) in decoded.sources {
            acc.sources.entry(name).or_default().merge(&counts);
        }
    }

    /// Adds one reading; its values are taken out of `fields`.
    fn add(&mut self, acc: &mut Accumulator, source: &str, r: Reading<'_>, fields: &mut [Field<'_>]) {
        let Reading { line, time_ms: ts, device, source: source_no, .. } = r;
        let key = (source_no, device.as_ptr() as usize, device.len());
        let at = match &device {
            // Only a borrowed name keeps its address from reading to reading.
            std::borrow::Cow::Borrowed(_) => self.recent.get(&key).copied(),
            std::borrow::Cow::Owned(_) => None,
        };
        let at = match at {
            Some(at) => at,
            None => {
                let at = self.device_ids(acc, source, &device);
                if matches!(device, std::borrow::Cow::Borrowed(_)) {
                    self.recent.insert(key, at);
                }
                at
            }
        };
        let Sensors { by_name, names, device_of, ids, scratch, .. } = self;
        let ids = &mut ids[at];
        let device_id = ids.device;
        scratch.clear();
        for (i, f) in fields.iter().enumerate() {
            scratch.push(ids.id(i, &f.name, || {
                let sensor = format!("{source}/{device}/{}", f.name);
                match by_name.get(&sensor) {
                    Some(&id) => id,
                    None => {
                        let id = names.len() as u32;
                        names.push(sensor.clone());
                        device_of.push(device_id);
                        by_name.insert(sensor.clone(), id);
                        acc.new_sensors.push((id, device_id, sensor));
                        id
                    }
                }
            }));
        }
        if ids.batch != acc.number {
            ids.batch = acc.number;
            ids.slot = acc.devices.len();
            acc.devices.push(DeviceBatch::new(device_id));
        }
        let batch = &mut acc.devices[ids.slot];
        if *scratch != batch.last_sensors {
            batch.set_layout(scratch);
        }
        let rows = &mut batch.rows;
        rows.times.push(ts);
        rows.lines.push(line);
        rows.row_layout.push(batch.last_layout);
        for (f, &c) in fields.iter_mut().zip(&batch.last_columns) {
            let stat = &mut batch.stats[c as usize];
            if stat.count == 0 {
                stat.first_ms = ts;
            }
            stat.count += 1;
            stat.last_ms = ts;
            stat.kind = f.value.type_name();
            if let Some(u) = &f.unit {
                let at = (u.as_ptr() as usize, u.len());
                if stat.unit_at != at {
                    stat.unit_at = at;
                    if stat.unit.as_deref() != Some(&**u) {
                        stat.unit = Some(u.to_string());
                    }
                }
            }
            rows.columns[c as usize].values.push(std::mem::replace(&mut f.value, Value::Bool(false)));
        }
    }

    /// Where the ids of a device are, made the first time it is met.
    fn device_ids(&mut self, acc: &mut Accumulator, source: &str, device: &str) -> usize {
        let Sensors { devices, device_by_name, lookup, ids, .. } = self;
        let per_source = match lookup.get_mut(source) {
            Some(d) => d,
            None => lookup.entry(source.to_string()).or_default(),
        };
        if let Some(&at) = per_source.get(device) {
            return at;
        }
        let name = format!("{source}/{device}");
        let id = match device_by_name.get(&name) {
            Some(&id) => id,
            None => {
                let id = devices.len() as u32;
                devices.push(name.clone());
                device_by_name.insert(name.clone(), id);
                acc.new_devices.push((id, name));
                id
            }
        };
        ids.push(DeviceIds { device: id, last: Vec::new(), last_at: Vec::new(), all: FxMap::default(), batch: 0, slot: 0 });
        per_source.insert(device.to_string(), ids.len() - 1);
        ids.len() - 1
    }
}

impl DeviceBatch {
    fn new(device: u32) -> Self {
        DeviceBatch { device, rows: Rows::default(), stats: Vec::new(), last_sensors: Vec::new(), last_layout: 0, last_columns: Vec::new() }
    }

    /// Makes `sensors` (a row's sensor ids in the line's order) the current layout.
    fn set_layout(&mut self, sensors: &[u32]) {
        self.last_columns.clear();
        for &s in sensors {
            let c = self.rows.column(s);
            if c as usize == self.stats.len() {
                self.stats.push(ColumnStats::default());
            }
            self.last_columns.push(c);
        }
        self.last_layout = self.rows.layout(&self.last_columns);
        self.last_sensors.clear();
        self.last_sensors.extend_from_slice(sensors);
    }
}

impl DeviceIds {
    /// The id of the `i`th field of a reading, named `name`; `new` finds or
    /// makes it the first time.
    fn id(&mut self, i: usize, name: &str, new: impl FnOnce() -> u32) -> u32 {
        let at = (name.as_ptr() as usize, name.len());
        if let (Some((n, id)), Some(last_at)) = (self.last.get(i), self.last_at.get_mut(i)) {
            if *last_at == at {
                return *id;
            }
            if **n == *name {
                *last_at = at;
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
            self.last_at[i] = at;
        } else if i == self.last.len() {
            self.last.push((name.into(), id));
            self.last_at.push(at);
        }
        id
    }
}
