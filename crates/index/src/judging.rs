//! Feeding the health evaluator: a commit's rows (per device) and events,
//! put back in line order, as the indexer gathers them. The evaluator's
//! state goes into the commit's cursor and its transitions into the same
//! batch, so results are exactly as consistent as the readings.

use crate::keys;
use crate::sensors::{Accumulator, Sensors};
use decode::Value;
use health::{Cause, Health, SensorRef, Transition};

/// The evaluator of a day being indexed, with its handles by sensor id.
pub(crate) struct Judge {
    pub health: Health,
    refs: Vec<Option<SensorRef>>,
}

impl Judge {
    pub fn new(health: Health) -> Judge {
        Judge { health, refs: Vec::new() }
    }

    fn sensor(&mut self, sensors: &Sensors, id: u32) -> SensorRef {
        let i = id as usize;
        if self.refs.len() <= i {
            self.refs.resize(i + 1, None);
        }
        if let Some(r) = self.refs[i] {
            return r;
        }
        let name = &sensors.names[i];
        let device = &sensors.devices[sensors.device_of[i] as usize];
        let source = device.split_once('/').map_or(device.as_str(), |(s, _)| s);
        let r = self.health.sensor_ref(source, device, name);
        self.refs[i] = Some(r);
        r
    }

    /// Judges a commit's rows and events in line order; returns its
    /// transitions keyed by the day and line that decided them.
    pub fn feed(&mut self, sensors: &Sensors, acc: &Accumulator, day_no: i64) -> Vec<(Vec<u8>, Transition)> {
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
            let refs: Vec<SensorRef> = d.rows.columns.iter().map(|c| self.sensor(sensors, c.sensor)).collect();
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
