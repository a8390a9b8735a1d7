//! Feeding the health evaluator: each batch's rows (per device) and events,
//! put back in line order, as the indexer gathers them into a commit. The
//! evaluator's state and the transitions go into the same atomic batch as
//! the commit's cursor, so results are exactly as consistent as the readings.

use crate::keys;
use crate::sensors::{Accumulator, Sensors};
use decode::Value;
use health::{Cause, Health, SensorRef};

/// Where a commit's rows and events stood before a batch was gathered into
/// it: the batch's rows and events are the ones after.
pub(crate) struct Mark {
    /// Per device batch of the commit: its rows, and each column's values.
    rows: Vec<(usize, Vec<usize>)>,
    events: usize,
}

impl Mark {
    pub fn of(acc: &Accumulator) -> Mark {
        Mark {
            rows: acc.devices.iter().map(|d| (d.rows.len(), d.rows.columns.iter().map(|c| c.values.len()).collect())).collect(),
            events: acc.events.len(),
        }
    }
}

/// The evaluator of a day being indexed, in the stage that gathers rows
/// (it judges a batch's rows while they are in that processor's cache),
/// and its handles by sensor id.
pub(crate) struct Judge {
    pub health: Health,
    refs: Vec<Option<SensorRef>>,
}

impl Judge {
    pub fn new(health: Health) -> Judge {
        Judge { health, refs: Vec::new() }
    }

    fn sensor(&mut self, id: u32, sensors: &Sensors) -> SensorRef {
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

    /// Judges the rows and events gathered into `acc` since `mark`, in line
    /// order, and adds their transitions to the commit, keyed by the day
    /// and line that decided them.
    pub fn feed(&mut self, acc: &mut Accumulator, mark: &Mark, sensors: &Sensors, day_no: i64) {
        // Rows replayed from a dataflash (`acc.late`) are not judged: they come
        // after the data clock has passed their time (docs/configuration.md).
        // (line, what): rows before the events of the same line.
        let start = |b: usize| mark.rows.get(b).map_or(0, |m| m.0);
        let mut order: Vec<(u64, u32, u32)> = Vec::new();
        for (b, d) in acc.devices.iter().enumerate() {
            let from = start(b);
            order.extend(d.rows.lines[from..].iter().enumerate().map(|(r, &line)| (line, b as u32, (from + r) as u32)));
        }
        const EVENT: u32 = u32::MAX;
        order.extend(acc.events[mark.events..].iter().enumerate().map(|(e, (_, ev))| (ev.line, EVENT, (mark.events + e) as u32)));
        order.sort_unstable();
        // First the batch's steps in line order, with the values of checked
        // sensors as numbers, in a pass that only reads (rows hop between
        // devices and columns, and reading their values waits on memory:
        // with nothing else to do, those reads overlap); then the judging,
        // reading the steps in order.
        let mut steps: Vec<Step> = Vec::with_capacity(order.len());
        let mut values: Vec<(SensorRef, f64)> = Vec::new();
        {
            // Per device batch: its sensors' handles by column, whether any is
            // checked, and where each column's next value is.
            // The values of checked columns are read column by column first
            // (one stream at a time, which the processor fetches ahead), as
            // numbers.
            let mut columns: Vec<Vec<SensorRef>> = Vec::with_capacity(acc.devices.len());
            let mut numbers: Vec<Vec<Vec<Option<f64>>>> = Vec::with_capacity(acc.devices.len());
            let mut next: Vec<Vec<usize>> = Vec::with_capacity(acc.devices.len());
            for (b, d) in acc.devices.iter().enumerate() {
                let refs: Vec<SensorRef> = d.rows.columns.iter().map(|c| self.sensor(c.sensor, sensors)).collect();
                let from = mark.rows.get(b).map_or(&[][..], |m| &m.1[..]);
                let column_numbers = d.rows.columns.iter().zip(&refs).enumerate().map(|(c, (column, r))| match r.checked {
                    true => column.values[from.get(c).copied().unwrap_or(0)..].iter().map(number).collect(),
                    false => Vec::new(),
                });
                numbers.push(column_numbers.collect());
                columns.push(refs);
                next.push(vec![0; d.rows.columns.len()]);
            }
            let checked: Vec<bool> = columns.iter().map(|refs| refs.iter().any(|r| r.checked)).collect();
            for &(line, b, r) in &order {
                if b == EVENT {
                    steps.push(Step::Event(line, r));
                    continue;
                }
                let (bi, r) = (b as usize, r as usize);
                let rows = &acc.devices[bi].rows;
                let Some(&first) = columns[bi].first() else { continue };
                let from = values.len();
                if checked[bi] {
                    // Column numbers of the row's values, in the layout's order.
                    for &c in &rows.layouts[rows.row_layout[r] as usize] {
                        let c = c as usize;
                        let s = columns[bi][c];
                        if s.checked {
                            let at = next[bi][c];
                            next[bi][c] += 1;
                            if let Some(v) = numbers[bi][c][at] {
                                values.push((s, v));
                            }
                        }
                    }
                }
                steps.push(Step::Row { line, t: rows.times[r], first, values: (values.len() - from) as u32 });
            }
        }
        let mut values = values.into_iter();
        let (mut last_line, mut n) = (u64::MAX, 0u16);
        for step in steps {
            let line = match step {
                Step::Event(line, e) => {
                    let ev = &acc.events[e as usize].1;
                    self.health.event(
                        &ev.source,
                        &ev.code,
                        &ev.level,
                        ev.time_ms,
                        &ev.description,
                        Cause { day: ev.file.trim_end_matches(".txt").to_string(), line, time_ms: ev.time_ms },
                    );
                    line
                }
                Step::Row { line, t, first, values: k } => {
                    self.health.heard(first, t);
                    for (s, v) in values.by_ref().take(k as usize) {
                        self.health.value(s, t, v, line);
                    }
                    line
                }
            };
            let made = self.health.take_transitions();
            if !made.is_empty() {
                if line != last_line {
                    (last_line, n) = (line, 0);
                }
                for tr in made {
                    acc.transitions.push((keys::transition(day_no, line, n), tr));
                    n = n.saturating_add(1);
                }
            }
        }
    }
}

/// What the evaluator is fed, in line order.
enum Step {
    /// A device's row: the device is heard, and the next `values` values
    /// (of its checked sensors) are judged.
    Row { line: u64, t: i64, first: SensorRef, values: u32 },
    /// An event occurrence on a line: its index in the commit's events.
    Event(u64, u32),
}

/// A value as the evaluator judges it (text is not judged).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Text(_) => None,
    }
}
