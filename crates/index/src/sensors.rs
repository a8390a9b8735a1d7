//! Sensor and device ids, and the batch that decoded readings are gathered
//! into before a commit.
//!
//! A sensor is `SOURCE/DEVICE/FIELD`; its device is `SOURCE/DEVICE`. Both
//! get small numeric ids, stored in the cache. Readings are gathered per
//! device (one row per line, one column per field, [`Rows`]), because a
//! device's fields share the line's time and number: stored once per row,
//! not once per value.

use crate::decoding::{ColumnStats, Decoded, DeviceRows};
use crate::fx::FxMap;
use crate::segment::Rows;
use crate::{EventRecord, SourceCounts};
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
    /// Numbers handed to commits, so a device finds its rows in the current one without a hash.
    batches: u64,
}

/// The ids of one device, found without building `SOURCE/DEVICE/FIELD`
/// once they are known.
struct DeviceIds {
    device: u32,
    /// Every field met.
    all: FxMap<Box<str>, u32>,
    /// The commit this device last added rows to, and where they are in it.
    batch: u64,
    slot: usize,
}

/// What a commit adds for one device.
pub(crate) struct DeviceBatch {
    pub device: u32,
    pub rows: Rows,
    /// Per column of `rows`: what the commit adds to the sensor's day record.
    pub stats: Vec<ColumnStats>,
}

impl DeviceBatch {
    /// Adds a batch's rows of the device; `sensor_of` gives its fields' sensor ids.
    fn add(&mut self, d: DeviceRows<'_>, sensor_of: &[u32]) {
        let mut rows = d.rows;
        for column in &mut rows.columns {
            // Columns were numbered by field in the batch (see `DeviceRows`).
            column.sensor = sensor_of[column.sensor as usize];
        }
        self.rows.append(rows);
        for ((_, stats), &sensor) in d.fields.iter().zip(sensor_of) {
            let c = self.rows.column(sensor) as usize;
            if c >= self.stats.len() {
                self.stats.resize_with(c + 1, ColumnStats::default);
            }
            self.stats[c].merge(stats);
        }
    }
}

/// What a batch of lines adds to the cache, committed atomically with the cursor after it.
#[derive(Default)]
pub(crate) struct Accumulator {
    /// Lines it accounts for.
    pub lines: u64,
    /// This commit's number (see [`Sensors::batches`]).
    number: u64,
    pub devices: Vec<DeviceBatch>,
    /// Rows replayed from a dataflash, at the receiver's time (see [`crate::decoding::Decoded::late`]).
    pub late: Vec<DeviceBatch>,
    pub sources: BTreeMap<String, SourceCounts>,
    pub event_counts: BTreeMap<String, u64>,
    pub events: Vec<(Vec<u8>, EventRecord)>,
    pub day_meta: crate::DayMeta,
    pub new_sensors: Vec<(u32, u32, String)>,
    pub new_devices: Vec<(u32, String)>,
    /// Sensors of its rows the health judge meets for the first time today:
    /// id, device and sensor name (see `judging::Announcer`).
    pub names: Vec<(u32, String, String)>,
    /// Health transitions the commit's lines decided, in order, and the
    /// key of the first (the key of the commit's block of them).
    pub transitions: Vec<health::Transition>,
    pub transitions_key: Option<Vec<u8>>,
    /// The health evaluator's state after the commit's lines, encoded.
    pub health: Option<Vec<u8>>,
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

    /// Gives a batch's devices and fields their ids, in the order the batch
    /// met them (so ids depend on the logs only), and adds its rows to
    /// `acc` (several decoded batches make one commit).
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
        for d in decoded.devices {
            let source = &decoded.sources[d.source].0;
            let (at, sensor_of) = self.sensor_ids(acc, source, &d);
            let ids = &mut self.ids[at];
            if ids.batch != acc.number {
                ids.batch = acc.number;
                ids.slot = acc.devices.len();
                acc.devices.push(DeviceBatch { device: ids.device, rows: Rows::default(), stats: Vec::new() });
            }
            acc.devices[ids.slot].add(d, &sensor_of);
        }
        // Replayed rows are rare: a search finds their device's batch.
        for d in decoded.late {
            let source = &decoded.sources[d.source].0;
            let (at, sensor_of) = self.sensor_ids(acc, source, &d);
            let device = self.ids[at].device;
            let slot = match acc.late.iter().position(|b| b.device == device) {
                Some(slot) => slot,
                None => {
                    acc.late.push(DeviceBatch { device, rows: Rows::default(), stats: Vec::new() });
                    acc.late.len() - 1
                }
            };
            acc.late[slot].add(d, &sensor_of);
        }
        for (name, counts) in decoded.sources {
            acc.sources.entry(name).or_default().merge(&counts);
        }
    }

    /// The ids of a batch's device (where they are in `ids`) and of its
    /// fields, by their number in the batch; new ones are made in the order
    /// met (so ids depend on the logs only).
    fn sensor_ids(&mut self, acc: &mut Accumulator, source: &str, d: &DeviceRows<'_>) -> (usize, Vec<u32>) {
        let at = self.device_ids(acc, source, &d.device);
        let Sensors { by_name, names, device_of, ids, .. } = self;
        let ids = &mut ids[at];
        let device_id = ids.device;
        let sensor_of = d
            .fields
            .iter()
            .map(|(field, _)| match ids.all.get(&**field) {
                Some(&id) => id,
                None => {
                    let sensor = format!("{source}/{}/{field}", d.device);
                    let id = match by_name.get(&sensor) {
                        Some(&id) => id,
                        None => {
                            let id = names.len() as u32;
                            names.push(sensor.clone());
                            device_of.push(device_id);
                            by_name.insert(sensor.clone(), id);
                            acc.new_sensors.push((id, device_id, sensor));
                            id
                        }
                    };
                    ids.all.insert((**field).into(), id);
                    id
                }
            })
            .collect();
        (at, sensor_of)
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
        ids.push(DeviceIds { device: id, all: FxMap::default(), batch: 0, slot: 0 });
        per_source.insert(device.to_string(), ids.len() - 1);
        ids.len() - 1
    }
}
