//! Feeding the health evaluator: a commit's rows (per device) and events,
//! put back in line order, as the indexer gathers them. The evaluator's
//! state goes into the commit's cursor and its transitions into the same
//! batch, so results are exactly as consistent as the readings.

use crate::keys;
use crate::sensors::{Accumulator, Sensors};
use decode::Value;
use health::{Cause, Health, SensorRef, Transition};

/// The evaluator of a day being indexed, on its own thread: its handles by
/// sensor id, and the names of the ids (copied at the start of the day,
/// then added from each commit's new ones, since ids are handed out by the
/// stage before it).
pub(crate) struct Judge {
    pub health: Health,
    refs: Vec<Option<SensorRef>>,
    names: Vec<String>,
    device_of: Vec<u32>,
    devices: Vec<String>,
}

impl Judge {
    pub fn new(health: Health, sensors: &Sensors) -> Judge {
        Judge {
            health,
            refs: Vec::new(),
            names: sensors.names.clone(),
            device_of: sensors.device_of.clone(),
            devices: sensors.devices.clone(),
        }
    }

    fn learn(&mut self, acc: &Accumulator) {
        for (id, name) in &acc.new_devices {
            let i = *id as usize;
            if self.devices.len() <= i {
                self.devices.resize(i + 1, String::new());
            }
            self.devices[i].clone_from(name);
        }
        for (id, device, name) in &acc.new_sensors {
            let i = *id as usize;
            if self.names.len() <= i {
                self.names.resize(i + 1, String::new());
                self.device_of.resize(i + 1, u32::MAX);
            }
            self.names[i].clone_from(name);
            self.device_of[i] = *device;
        }
    }

    fn sensor(&mut self, id: u32) -> SensorRef {
        let i = id as usize;
        if self.refs.len() <= i {
            self.refs.resize(i + 1, None);
        }
        if let Some(r) = self.refs[i] {
            return r;
        }
        let name = &self.names[i];
        let device = &self.devices[self.device_of[i] as usize];
        let source = device.split_once('/').map_or(device.as_str(), |(s, _)| s);
        let r = self.health.sensor_ref(source, device, name);
        self.refs[i] = Some(r);
        r
    }

    /// Judges a commit's rows and events in line order; returns its
    /// transitions keyed by the day and line that decided them.
    pub fn feed(&mut self, acc: &Accumulator, day_no: i64) -> Vec<(Vec<u8>, Transition)> {
        self.learn(acc);
        // Rows replayed from a dataflash (`acc.late`) are not judged: they come
        // after the data clock has passed their time (docs/configuration.md).
        // (line, what): rows before the events of the same line.
        let mut order: Vec<(u64, u32, u32)> = Vec::new();
        for (b, d) in acc.devices.iter().enumerate() {
            order.extend(d.rows.lines.iter().enumerate().map(|(r, &line)| (line, b as u32, r as u32)));
        }
        const EVENT: u32 = u32::MAX;
        order.extend(acc.events.iter().enumerate().map(|(e, (_, ev))| (ev.line, EVENT, e as u32)));
        order.sort_unstable();
        // Per device batch: its sensors' handles by column, whether any is
        // checked, and where each column's next value is.
        let mut columns: Vec<Vec<SensorRef>> = Vec::with_capacity(acc.devices.len());
        let mut checked = Vec::with_capacity(acc.devices.len());
        for d in &acc.devices {
            let refs: Vec<SensorRef> = d.rows.columns.iter().map(|c| self.sensor(c.sensor)).collect();
            checked.push(refs.iter().any(|r| r.checked));
            columns.push(refs);
        }
        let mut next: Vec<Vec<usize>> = acc.devices.iter().map(|d| d.rows.cursors()).collect();
        let mut out = Vec::new();
        let (mut last_line, mut n) = (u64::MAX, 0u16);
        for (line, b, r) in order {
            if b == EVENT {
                let ev = &acc.events[r as usize].1;
                self.health.event(
                    &ev.source,
                    &ev.code,
                    &ev.level,
                    ev.time_ms,
                    &ev.description,
                    Cause { day: ev.file.trim_end_matches(".txt").to_string(), line, time_ms: ev.time_ms },
                );
            } else {
                let (bi, r) = (b as usize, r as usize);
                let rows = &acc.devices[bi].rows;
                let t = rows.times[r];
                if let Some(&first) = columns[bi].first() {
                    self.health.heard(first, t);
                }
                if checked[bi] {
                    // Column numbers of the row's values, in the layout's order.
                    let layout = &rows.layouts[rows.row_layout[r] as usize];
                    for &c in layout {
                        let c = c as usize;
                        let v = &rows.columns[c].values[next[bi][c]];
                        next[bi][c] += 1;
                        let s = columns[bi][c];
                        let value = match v {
                            Value::Int(i) => *i as f64,
                            Value::Float(f) => *f,
                            Value::Bool(b) => f64::from(u8::from(*b)),
                            Value::Text(_) => continue,
                        };
                        self.health.value(s, t, value, line);
                    }
                }
            }
            let made = self.health.take_transitions();
            if !made.is_empty() {
                if line != last_line {
                    (last_line, n) = (line, 0);
                }
                for tr in made {
                    out.push((keys::transition(day_no, line, n), tr));
                    n = n.saturating_add(1);
                }
            }
        }
        out
    }
}
