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
    /// What [`Judge::feed`] builds for each batch, kept for the next one
    /// (a batch's worth of allocations less each time).
    scratch: Scratch,
}

/// [`Judge::feed`]'s working space: cleared, never shrunk.
#[derive(Default)]
struct Scratch {
    order: Vec<(u64, u32, u32)>,
    steps: Vec<Step>,
    values: Vec<(SensorRef, f64)>,
    /// Per device batch, where its columns start in `columns` and `next`.
    base: Vec<usize>,
    /// Each column's sensor handle.
    columns: Vec<SensorRef>,
    /// Each column's next value, as an index into `numbers`.
    next: Vec<usize>,
    /// The values of checked columns, column after column, as numbers.
    numbers: Vec<Option<f64>>,
    /// Per device batch, whether any of its columns is checked.
    checked: Vec<bool>,
}

impl Judge {
    pub fn new(health: Health) -> Judge {
        Judge { health, refs: Vec::new(), scratch: Scratch::default() }
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
        let mut sc = std::mem::take(&mut self.scratch);
        sc.order.clear();
        for (b, d) in acc.devices.iter().enumerate() {
            let from = start(b);
            sc.order.extend(d.rows.lines[from..].iter().enumerate().map(|(r, &line)| (line, b as u32, (from + r) as u32)));
        }
        const EVENT: u32 = u32::MAX;
        sc.order.extend(acc.events[mark.events..].iter().enumerate().map(|(e, (_, ev))| (ev.line, EVENT, (mark.events + e) as u32)));
        sc.order.sort_unstable();
        // First the batch's steps in line order, with the values of checked
        // sensors as numbers, in a pass that only reads (rows hop between
        // devices and columns, and reading their values waits on memory:
        // with nothing else to do, those reads overlap); then the judging,
        // reading the steps in order.
        sc.steps.clear();
        sc.values.clear();
        {
            // Per device batch: its sensors' handles by column, whether any is
            // checked, and where each column's next value is.
            // The values of checked columns are read column by column first
            // (one stream at a time, which the processor fetches ahead), as
            // numbers.
            sc.base.clear();
            sc.columns.clear();
            sc.next.clear();
            sc.numbers.clear();
            sc.checked.clear();
            for (b, d) in acc.devices.iter().enumerate() {
                sc.base.push(sc.columns.len());
                let from = mark.rows.get(b).map_or(&[][..], |m| &m.1[..]);
                let mut any = false;
                for (c, column) in d.rows.columns.iter().enumerate() {
                    let r = self.sensor(column.sensor, sensors);
                    sc.columns.push(r);
                    sc.next.push(sc.numbers.len());
                    if r.checked {
                        any = true;
                        sc.numbers.extend(column.values[from.get(c).copied().unwrap_or(0)..].iter().map(number));
                    }
                }
                sc.checked.push(any);
            }
            for &(line, b, r) in &sc.order {
                if b == EVENT {
                    sc.steps.push(Step::Event(line, r));
                    continue;
                }
                let (bi, r) = (b as usize, r as usize);
                let rows = &acc.devices[bi].rows;
                let base = sc.base[bi];
                if rows.columns.is_empty() {
                    continue;
                }
                let first = sc.columns[base];
                let from = sc.values.len();
                if sc.checked[bi] {
                    // Column numbers of the row's values, in the layout's order.
                    for &c in &rows.layouts[rows.row_layout[r] as usize] {
                        let c = base + c as usize;
                        let s = sc.columns[c];
                        if s.checked {
                            let at = sc.next[c];
                            sc.next[c] += 1;
                            if let Some(v) = sc.numbers[at] {
                                sc.values.push((s, v));
                            }
                        }
                    }
                }
                sc.steps.push(Step::Row { line, t: rows.times[r], first, values: (sc.values.len() - from) as u32 });
            }
        }
        let mut values = sc.values.iter().copied();
        let (mut last_line, mut n) = (u64::MAX, 0u16);
        for &step in &sc.steps {
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
        self.scratch = sc;
    }
}

/// What the evaluator is fed, in line order.
#[derive(Clone, Copy)]
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
