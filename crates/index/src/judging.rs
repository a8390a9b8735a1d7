//! Feeding the health evaluator: a commit's rows (per device) and events,
//! put back in line order. The evaluator's state and the transitions go into
//! the same atomic batch as the commit's cursor, so results are exactly as
//! consistent as the readings.
//!
//! Where it runs: with no checks (devices only go grey or black), judging
//! is little work, done batch by batch in the stage that gathers rows;
//! with checks, it is a stage of its own between gathering and committing
//! (on two cores, the gathering stage judging every value became the
//! pipeline's slowest). The judge then runs apart from [`Sensors`], so it
//! learns the names of the sensors it meets from the commits themselves
//! ([`Announcer`]).

use crate::sensors::{Accumulator, Sensors};
use crate::{codec, keys};
use decode::Value;
use health::{Cause, Health, SensorRef};

/// Where a commit's rows and events stood before a batch was gathered into
/// it: the batch's rows and events are the ones after ([`Mark::default`]:
/// the whole commit).
#[derive(Default)]
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

/// Puts in each commit the names of the sensors of its rows that the
/// judge has not been told of yet (`Accumulator::names`), once per day.
#[derive(Default)]
pub(crate) struct Announcer {
    told: Vec<bool>,
}

impl Announcer {
    pub fn announce(&mut self, acc: &mut Accumulator, sensors: &Sensors) {
        for d in &acc.devices {
            for column in &d.rows.columns {
                let i = column.sensor as usize;
                if self.told.len() <= i {
                    self.told.resize(i + 1, false);
                }
                if !self.told[i] {
                    self.told[i] = true;
                    let device = sensors.devices[sensors.device_of[i] as usize].clone();
                    acc.names.push((column.sensor, device, sensors.names[i].clone()));
                }
            }
        }
    }
}

/// The evaluator of a day being indexed, and its handles by sensor id.
pub(crate) struct Judge {
    pub health: Health,
    refs: Vec<Option<SensorRef>>,
    /// What [`Judge::feed`] builds for each batch, kept for the next one
    /// (a batch's worth of allocations less each time).
    scratch: Scratch,
    packer: codec::Packer,
}

/// [`Judge::feed`]'s working space: cleared, never shrunk.
#[derive(Default)]
struct Scratch {
    order: Vec<(u64, u32, u32)>,
    /// [`sort_by_line`]'s counts and output.
    counts: Vec<u32>,
    sorted: Vec<(u64, u32, u32)>,
    /// The values of checked sensors, device batch after device batch, row
    /// after row, each with its column's place in `column_refs` (small: a
    /// commit's values are read from memory twice).
    flat: Vec<(u32, f64)>,
    /// The handles of the commit's columns, device batch after device batch.
    column_refs: Vec<SensorRef>,
    /// Per device batch, where its columns start in `column_refs` and its
    /// rows' ends in `ends`.
    bases: Vec<(u32, u32)>,
    /// Per device batch: where its values start in `flat`, then where each
    /// of its rows' values end.
    ends: Vec<u32>,
    /// The device batch being read: each column's next value.
    next: Vec<usize>,
}

impl Judge {
    pub fn new(health: Health) -> Judge {
        Judge { health, refs: Vec::new(), scratch: Scratch::default(), packer: codec::Packer::default() }
    }

    /// The evaluator's state, packed for a commit.
    pub fn packed_state(&mut self) -> Vec<u8> {
        self.packer.pack(self.health.state())
    }

    /// Makes the handles of the sensors a commit announces ([`Announcer`]).
    fn learn(&mut self, names: Vec<(u32, String, String)>) {
        for (id, device, name) in names {
            let i = id as usize;
            if self.refs.len() <= i {
                self.refs.resize(i + 1, None);
            }
            let source = device.split_once('/').map_or(device.as_str(), |(s, _)| s);
            self.refs[i] = Some(self.health.sensor_ref(source, &device, &name));
        }
    }

    fn sensor(&self, id: u32) -> SensorRef {
        // Every sensor of a commit's rows is announced in that commit or an
        // earlier one of the day (`Announcer::announce` runs before each
        // feed), and learnt before it is judged.
        self.refs[id as usize].expect("a sensor judged before it was announced")
    }

    /// Judges the rows and events gathered into `acc` since `mark`, in line
    /// order, and adds their transitions to the commit, keyed by the day
    /// and line that decided them.
    pub fn feed(&mut self, acc: &mut Accumulator, mark: &Mark, day_no: i64) {
        self.learn(std::mem::take(&mut acc.names));
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
        sort_by_line(&mut sc.order, &mut sc.counts, &mut sc.sorted);
        // First each device batch's values of checked sensors, as numbers,
        // in row order (reading its columns side by side: a few streams
        // the processor fetches ahead) into `flat`, row k of the device
        // batch's new rows at `flat[ends[e]..ends[e + 1]]` with `e` its
        // base in `ends` plus k; then the judging in line order, each
        // row reading its values there (a stream per device). (Gathering the values in line order
        // straight from the columns hops between a hundred streams on a site
        // of twenty devices, and waits on memory; so did a list of steps
        // written in between.)
        sc.flat.clear();
        sc.ends.clear();
        sc.bases.clear();
        sc.column_refs.clear();
        for (b, d) in acc.devices.iter().enumerate() {
            let rows = &d.rows;
            let from = start(b);
            let counts = mark.rows.get(b).map_or(&[][..], |m| &m.1[..]);
            let base = sc.column_refs.len();
            sc.bases.push((base as u32, sc.ends.len() as u32));
            sc.next.clear();
            let mut any = false;
            for (c, column) in rows.columns.iter().enumerate() {
                let r = self.sensor(column.sensor);
                any |= r.checked;
                sc.column_refs.push(r);
                sc.next.push(counts.get(c).copied().unwrap_or(0));
            }
            sc.ends.push(sc.flat.len() as u32);
            for r in from..rows.len() {
                if any {
                    // Column numbers of the row's values, in the layout's order.
                    for &c in &rows.layouts[rows.row_layout[r] as usize] {
                        let (c, at) = (c as usize, base + c as usize);
                        if sc.column_refs[at].checked {
                            if let Some(v) = number(&rows.columns[c].values[sc.next[c]]) {
                                sc.flat.push((at as u32, v));
                            }
                        }
                        sc.next[c] += 1;
                    }
                }
                sc.ends.push(sc.flat.len() as u32);
            }
        }
        let (mut last_line, mut n) = (u64::MAX, 0u16);
        for &(line, b, r) in &sc.order {
            if b == EVENT {
                let ev = &acc.events[r as usize].1;
                self.health.event(
                    &ev.source,
                    &ev.code,
                    &ev.level,
                    ev.time_ms,
                    &ev.description,
                    Cause { day: ev.file.trim_end_matches(".gz").trim_end_matches(".txt").to_string(), line, time_ms: ev.time_ms },
                );
            } else {
                let (bi, r) = (b as usize, r as usize);
                let rows = &acc.devices[bi].rows;
                // A device batch without columns has no readings to judge.
                if rows.columns.is_empty() {
                    continue;
                }
                let (base, ends) = sc.bases[bi];
                let at = ends as usize + (r - start(bi));
                let t = rows.times[r];
                self.health.heard(sc.column_refs[base as usize], t);
                for &(s, v) in &sc.flat[sc.ends[at] as usize..sc.ends[at + 1] as usize] {
                    self.health.value(sc.column_refs[s as usize], t, v, line);
                }
            }
            let made = self.health.take_transitions();
            if !made.is_empty() {
                if line != last_line {
                    (last_line, n) = (line, 0);
                }
                if acc.transitions.is_empty() {
                    acc.transitions_key = Some(keys::transition(day_no, line, n));
                }
                n = n.saturating_add(made.len().min(u16::MAX as usize) as u16);
                acc.transitions.extend(made);
            }
        }
        self.scratch = sc;
    }
}

/// Sorts `(line, batch, row)` entries as `sort_unstable` would, given that
/// entries of the same line come in `(batch, row)` order already (rows of
/// each device batch in order, then events): by counting, since a commit's
/// lines are a run of the day file (linear, where sorting 10,000 entries a
/// commit was a tenth of the judge's time). `counts` and `sorted` are
/// working space.
fn sort_by_line(order: &mut Vec<(u64, u32, u32)>, counts: &mut Vec<u32>, sorted: &mut Vec<(u64, u32, u32)>) {
    let (lo, hi) = order.iter().fold((u64::MAX, 0), |(lo, hi), o| (lo.min(o.0), hi.max(o.0)));
    if order.len() < 2 || hi - lo > 4 * order.len() as u64 + 4096 {
        // Few entries, or lines far apart (not a commit's run): compare.
        order.sort_unstable();
        return;
    }
    let span = (hi - lo) as usize + 1;
    counts.clear();
    counts.resize(span + 1, 0);
    for o in order.iter() {
        counts[(o.0 - lo) as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    sorted.clear();
    sorted.resize(order.len(), (0, 0, 0));
    for &o in order.iter() {
        let at = &mut counts[(o.0 - lo) as usize];
        sorted[*at as usize] = o;
        *at += 1;
    }
    std::mem::swap(order, sorted);
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

#[cfg(test)]
mod tests {
    use super::sort_by_line;
    use proptest::prelude::*;

    proptest! {
        /// Counting gives what comparing gives, whether the lines are a
        /// run or far apart.
        #[test]
        fn sorting_by_line_is_sorting(rows in proptest::collection::vec((0u64..3, 0u32..500), 0..300), events in proptest::collection::vec(0u64..3, 0..20), far in any::<bool>()) {
            // Per batch, rows in line order (a batch is one device's rows).
            let mut order = Vec::new();
            for b in 0..3u32 {
                let mut lines: Vec<u64> = rows.iter().filter(|r| r.0 == u64::from(b)).map(|r| u64::from(r.1) * if far { 1_000_003 } else { 1 }).collect();
                lines.sort_unstable();
                order.extend(lines.into_iter().enumerate().map(|(r, line)| (line, b, r as u32)));
            }
            let mut ev: Vec<u64> = events.iter().map(|e| e * 97).collect();
            ev.sort_unstable();
            order.extend(ev.into_iter().enumerate().map(|(e, line)| (line, u32::MAX, e as u32)));
            let mut expected = order.clone();
            expected.sort_unstable();
            sort_by_line(&mut order, &mut Vec::new(), &mut Vec::new());
            prop_assert_eq!(order, expected);
        }
    }
}
