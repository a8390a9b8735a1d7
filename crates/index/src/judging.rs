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
    /// The commit's columns, device batch after device batch (from
    /// `batches[batch].base`).
    columns: Vec<ColumnRead>,
    batches: Vec<BatchRead>,
    /// The data clock at each new row as the judge will have moved it
    /// (rows and events in line order), device batch after device batch
    /// from `clock_bases[batch]`.
    clocks: Vec<i64>,
    clock_bases: Vec<u32>,
}

/// Where the judging of a column of a device batch stands.
#[derive(Clone, Copy)]
struct ColumnRead {
    sensor: SensorRef,
    /// The place of the next row's value in the column, when the row has
    /// one (for a column that is not dense: the rows of a dense column
    /// that runs take are passed over).
    next: usize,
    /// A value in each new row (nearly every column): value k is row k's
    /// (at `next` plus k), and the sensor's calm values are taken in runs
    /// (`CalmRun`).
    dense: bool,
    /// The new rows before this are taken by the column's run of calm values.
    run_end: usize,
}

/// Where the judging of a device batch stands.
#[derive(Clone, Copy)]
struct BatchRead {
    /// Its first column in `Scratch::columns`, its first row's clock in `Scratch::clocks`.
    base: usize,
    clock_base: usize,
    /// The new rows before this hold no value to judge (the runs of its
    /// checked columns took them; the first of their `run_end`s).
    plain_from: usize,
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
        // The data clock at each row (see `CalmRun`).
        sc.clock_bases.clear();
        let mut total = 0u32;
        for (b, d) in acc.devices.iter().enumerate() {
            sc.clock_bases.push(total);
            total += (d.rows.len() - start(b)) as u32;
        }
        sc.clocks.clear();
        sc.clocks.resize(total as usize, 0);
        let mut clock = self.health.clock_ms();
        for &(_, b, r) in &sc.order {
            if b == EVENT {
                clock = clock.max(acc.events[r as usize].1.time_ms);
            } else {
                let (bi, r) = (b as usize, r as usize);
                clock = clock.max(acc.devices[bi].rows.times[r]);
                sc.clocks[sc.clock_bases[bi] as usize + r - start(bi)] = clock;
            }
        }
        // Each column of a checked sensor with a value in each new row
        // begins with a run of calm values (`CalmRun`: on a healthy site
        // nearly all of them), read one column after another (a stream
        // each), that the judging in line order below passes over; a value
        // it judges ends a run, and a new one begins after it.
        sc.columns.clear();
        sc.batches.clear();
        for (b, d) in acc.devices.iter().enumerate() {
            let rows = &d.rows;
            let from = start(b);
            let n = rows.len() - from;
            let counts = mark.rows.get(b).map_or(&[][..], |m| &m.1[..]);
            let (base, clock_base) = (sc.columns.len(), sc.clock_bases[b] as usize);
            let clocks = &sc.clocks[clock_base..][..n];
            let mut plain_from = n;
            for (c, column) in rows.columns.iter().enumerate() {
                let sensor = self.sensor(column.sensor);
                let next = counts.get(c).copied().unwrap_or(0);
                let dense = sensor.checked && column.values.len() - next == n;
                let run_end =
                    if dense { calm_run(&mut self.health, sensor, &column.values[next..], &rows.times[from..], clocks) } else { 0 };
                if sensor.checked {
                    plain_from = plain_from.min(run_end);
                }
                sc.columns.push(ColumnRead { sensor, next, dense, run_end });
            }
            sc.batches.push(BatchRead { base, clock_base, plain_from });
        }
        // Then the judging, in line order.
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
                let batch = sc.batches[bi];
                let k = r - start(bi);
                let t = rows.times[r];
                self.health.heard(sc.columns[batch.base].sensor, t);
                // Nearly every row has nothing more to judge.
                if k >= batch.plain_from {
                    // The row's values, in the line's order.
                    let mut restarted = false;
                    for &c in &rows.layouts[rows.row_layout[r] as usize] {
                        let col = &mut sc.columns[batch.base + c as usize];
                        let at = if col.dense { col.next + k } else { col.next };
                        col.next += usize::from(!col.dense);
                        if !col.sensor.checked || k < col.run_end {
                            continue;
                        }
                        let values = &rows.columns[c as usize].values;
                        if let Some(v) = number(&values[at]) {
                            self.health.value(col.sensor, t, v, line);
                        }
                        if col.dense {
                            let clocks = &sc.clocks[batch.clock_base + k + 1..][..rows.len() - r - 1];
                            col.run_end = k + 1 + calm_run(&mut self.health, col.sensor, &values[at + 1..], &rows.times[r + 1..], clocks);
                            restarted = true;
                        }
                    }
                    if restarted {
                        let columns = &sc.columns[batch.base..][..rows.columns.len()];
                        sc.batches[bi].plain_from =
                            columns.iter().filter(|c| c.sensor.checked).map(|c| c.run_end).min().unwrap_or(usize::MAX);
                    }
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

/// Takes the run of calm values of `sensor` that opens `values` (each of
/// a row at `times`, at which the judge's clock will be at `clocks`; see
/// `CalmRun`), and says how many it took. Text is not judged: a run takes it.
fn calm_run(health: &mut Health, sensor: SensorRef, values: &[Value], times: &[i64], clocks: &[i64]) -> usize {
    let Some(mut run) = health.calm_run(sensor) else { return 0 };
    // Of one length, so that the loop reads them unchecked.
    let n = clocks.len().min(values.len()).min(times.len());
    let (values, times, clocks) = (&values[..n], &times[..n], &clocks[..n]);
    let mut taken = 0;
    while taken < n && number(&values[taken]).is_none_or(|v| run.take(clocks[taken], times[taken], v)) {
        taken += 1;
    }
    health.end_calm_run(run);
    taken
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
