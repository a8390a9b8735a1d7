//! The evaluator: readings, events and the data clock in, results and
//! transitions out.
//!
//! Everything is decided in data time. A condition that must hold `for` a
//! while, a `stale` sensor, an event's `hold` and a silent device (grey,
//! black) each set a deadline; [`Health::advance`] fires the deadlines the
//! data clock has passed, in time order, at the deadline's own time. So the
//! transitions and their times depend only on the feed, not on how it is
//! cut into batches or when the process was killed and restarted (its
//! [`State`] is committed with the indexer's cursor).
//!
//! Hysteresis: a `range` result that fails clears only when a value is back
//! inside the limit by `hysteresis` (default 1 % of the limit), so a value
//! wobbling at a limit does not flap on every reading. `for` applies to
//! failing only; a result clears at the first reading that passes.

use crate::check::{fill, Checks, Kind, Params};
use crate::Level;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where a line is in the logs: the day file (`YYYYMMDD`), the line number and its time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub day: String,
    pub line: u64,
    pub time_ms: i64,
}

/// One decoded numeric value.
#[derive(Clone, Debug)]
pub struct Reading<'a> {
    pub source: &'a str,
    /// `SOURCE/DEVICE`.
    pub device: &'a str,
    /// `SOURCE/DEVICE/FIELD`.
    pub sensor: &'a str,
    pub time_ms: i64,
    pub value: f64,
    pub cause: Cause,
}

/// A sensor known to the evaluator ([`Health::sensor_ref`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SensorRef {
    index: u32,
    device: u32,
    /// Its cells: `cells[first..first + count]` of [`Health`]'s flat list.
    first: u32,
    count: u32,
    /// Whether any check applies to it.
    pub checked: bool,
}

/// What a transition is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Subject {
    /// A check's result on a sensor (or on a source, for event checks).
    Result {
        check: String,
        sensor: String,
    },
    Device(String),
    Source(String),
    Site,
}

/// A change of level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The data time of the change (a deadline's own time, or a reading's).
    pub at_ms: i64,
    /// The time of the line that decided it.
    pub decided_ms: i64,
    pub subject: Subject,
    pub from: Level,
    pub to: Level,
    pub value: Option<f64>,
    pub message: String,
    /// The reading or event that caused it, when one did.
    pub cause: Option<Cause>,
}

/// A cause, made only when a result changes: a line of the current day, or given.
enum At {
    Line(u64, i64),
    Given(Cause),
}

/// Why a value fails, formatted only when a result changes (kept as it
/// is while a result waits for `for`: most never become one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Why {
    Above(f64, f64),
    Below(f64, f64),
    Rate { rate: f64, max: f64, per_ms: i64 },
    Spread { spread: f64, max: f64 },
    Anomaly { value: f64, dev: f64, mean: f64, days: i64, sigma: f64 },
    Text(String),
}

/// A failing result, as it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultNow {
    pub check: String,
    pub sensor: String,
    pub level: Level,
    pub since_ms: i64,
    pub value: Option<f64>,
    pub message: String,
    pub cause: Option<Cause>,
}

/// The evaluator's state: committed with the cursor, restored on restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    clock_ms: i64,
    /// The day file the lines come from.
    day: String,
    sensors: Vec<SensorState>,
    /// Derived from `sensors` and `devices` (not stored: the state is
    /// packed with every commit, and these would be a quarter of it).
    #[serde(skip)]
    sensor_ids: BTreeMap<String, usize>,
    devices: Vec<DeviceState>,
    #[serde(skip)]
    device_ids: BTreeMap<String, usize>,
    sources: BTreeMap<String, Level>,
    site: Level,
    cells: Vec<Cell>,
    /// The cell of each agree check, by check index.
    agree_cells: BTreeMap<usize, usize>,
    deadlines: BTreeSet<(i64, Timer)>,
    /// Devices back from silence at a time, whose level waits for the rest
    /// of that line: its values end the results that the silence caused
    /// (`stale`), so the device goes from black to what its values say
    /// and not through the stale results' level first. Empty between lines.
    settling: Vec<(usize, i64)>,
}

/// A cell's condition that holds, waiting for `for` to become a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Pending {
    since_ms: i64,
    /// The latest value.
    value: f64,
    /// Why it failed first, and the sensor that did (an index in
    /// `State::sensors`): the message is made from them if it becomes a result.
    why: Why,
    sensor: Option<usize>,
    cause: Cause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Timer {
    Cell(usize),
    Device(usize),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SensorState {
    name: String,
    device: usize,
    cells: Vec<usize>,
    last: Option<(i64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct DeviceState {
    name: String,
    source: String,
    cells: Vec<usize>,
    last_ms: i64,
    /// Ok, grey or black: from silence alone.
    silence: Level,
    /// Whether it sent readings (a source judged by event checks alone
    /// never goes grey: it speaks only when something is wrong).
    reads: bool,
    deadline: Option<i64>,
    level: Level,
    since_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Cell {
    check: usize,
    /// The sensor the result is about (an index in `State::sensors`); for
    /// agree checks the member that last decided it; for event checks the
    /// source (an index in `State::devices`). Indices, not names: the
    /// state is packed with every commit, and names were half of it.
    subject: u32,
    /// The device whose parameters (overrides) apply (in `State::devices`).
    device: u32,
    /// Devices whose level it counts in.
    devices: Vec<usize>,
    // Boxed: a cell is judged for every value of its sensor, and a small
    // cell keeps the cells of a site in the processor's cache.
    active: Option<Box<ResultNow>>,
    /// The condition holds since then, waiting for `for`.
    pending: Option<Box<Pending>>,
    /// A failing result passes since then, waiting for `clear_for`, and why.
    clearing: Option<Box<(i64, Cause)>>,
    deadline: Option<i64>,
    /// `agree`: each member's latest value.
    latest: BTreeMap<String, f64>,
    /// `anomaly`: per hour of day, per day (sum, sum of squares, count).
    hours: Vec<VecDeque<(i64, f64, f64, u32)>>,
}

/// What a cell's result is sure to stay for a value of its sensor, without
/// a look at the cell: derived from the cell and its check (not stored),
/// and refreshed whenever the cell changes. Nearly every value of a site
/// passes checks that pass already, or fails checks that fail already; this
/// keeps them to a comparison.
#[derive(Clone, Copy, Debug)]
enum Quick {
    /// `range`, passing (nothing active, pending or clearing) or clearing
    /// (active, passing since, waiting for `clear_for`): stays while the
    /// value is within; failing (active, not clearing): stays, with the
    /// value as its latest, while the value is outside (limits of a result
    /// that is active, clearing or not, moved in by the hysteresis).
    Range { lo: f64, hi: f64, failing: bool },
    /// `rate`, the same with the change from the previous value.
    Rate { max_change: f64, per_ms: i64, failing: bool },
    /// Passing with its deadline set: a value changes nothing now.
    Calm,
    /// The cell must be judged.
    Judge,
}

/// What a value does to a cell, by its [`Quick`].
enum Outcome {
    Stays,
    /// Still failing, with this latest value.
    StillFails(f64),
    Judge,
}

impl Quick {
    fn outcome(self, t: i64, v: f64, prev: Option<(i64, f64)>) -> Outcome {
        match self {
            // Written as in `judge`, so NaN is treated alike.
            Quick::Range { lo, hi, failing } => match (v > hi || v < lo, failing) {
                (false, false) => Outcome::Stays,
                (true, true) => Outcome::StillFails(v),
                _ => Outcome::Judge,
            },
            Quick::Rate { max_change, per_ms, failing } => {
                let Some((pt, pv)) = prev else {
                    return if failing { Outcome::Judge } else { Outcome::Stays };
                };
                let span = (t - pt).max(per_ms) as f64;
                let change = (v - pv).abs();
                match (change * per_ms as f64 > max_change * span, failing) {
                    (false, false) => Outcome::Stays,
                    (true, true) => Outcome::StillFails(change / span * per_ms as f64),
                    _ => Outcome::Judge,
                }
            }
            Quick::Calm => Outcome::Stays,
            Quick::Judge => Outcome::Judge,
        }
    }
}

/// What a value of a sensor may be for every one of its cells to stay as it
/// is, when each is a passing `range`, a passing `rate` or a calm `stale`:
/// within `[lo, hi]`, and changed by at most `max_step` (the smallest
/// `max_change`) from the previous value (a rate allows at least its
/// `max_change` between readings however far apart). Derived from the
/// cells' [`Quick`]s, so that most values skip all of their cells at once.
#[derive(Clone, Copy, Debug)]
struct Calm {
    /// Whether the shortcut applies at all.
    on: bool,
    lo: f64,
    hi: f64,
    max_step: f64,
}

impl Calm {
    const OFF: Calm = Calm { on: false, lo: 0.0, hi: 0.0, max_step: 0.0 };

    fn stays(&self, v: f64, prev: Option<(i64, f64)>) -> bool {
        // Written as in `Quick::outcome`, so NaN is treated alike.
        let jumps = prev.is_some_and(|(_, pv)| (v - pv).abs() > self.max_step);
        self.on && !(v > self.hi || v < self.lo || jumps)
    }
}

/// The calm values of one sensor that a batch's reader may keep from the
/// judge ([`Health::calm_run`]): a run, from the first value of the batch,
/// of values that [`Health::value`] would only make the sensor's latest.
/// Its sensor's [`Calm`] cannot change before the run ends: only a value of
/// the sensor that is judged, or a deadline of one of its cells, changes
/// its cells (cells shared with other sensors, `agree`, keep the shortcut
/// off, and `event` cells are a device's, not a sensor's). So a value
/// belongs to the run while every value before it did, it is calm, and the
/// data clock, as the judge will have moved it at that value's row, is
/// before the first deadline of the sensor's cells that may change one.
/// The deadline of a calm `stale` cell nearly always comes only to be put
/// off (the sensor was read since it was set): the run puts it off as
/// [`Health::advance`] would, at the first of the sensor's rows at which
/// the clock has passed it, from the latest value before that row (the
/// latest when the clock passed it: every value of the sensor before
/// it is in the run), and ends where the sensor really is stale. The run's
/// values are not given to [`Health::value`]; [`Health::end_calm_run`]
/// sets the latest value and the put-off deadlines, and the values after
/// the run are given to it in line order. The state is then the same as
/// if each value had been given to it.
#[derive(Clone, Copy, Debug)]
pub struct CalmRun {
    calm: Calm,
    /// The clock at which a deadline of the sensor's cells comes (the
    /// first of `ends_ms` and the stale cells' deadlines): nearly every
    /// value is before it, and a comparison is all that is asked of them.
    check_ms: i64,
    /// No value belongs to the run with the clock at or after this (or
    /// ever, once one did not).
    ends_ms: i64,
    last: Option<(i64, f64)>,
    index: u32,
    /// Its calm `stale` cells: the cell, its deadline, and its `after` and
    /// `for` together (the deadline a reading at `t` sets is `t` plus that).
    stales: [(u32, i64, i64); CalmRun::STALES],
    stale_count: u8,
}

impl CalmRun {
    /// A sensor with more calm `stale` checks than this has no run.
    const STALES: usize = 4;

    /// Whether the value `v` at time `t` (of a row at which the judge's
    /// data clock will be `clock_ms`) belongs to the run: then it is the
    /// latest, and is not to be judged.
    #[inline]
    pub fn take(&mut self, clock_ms: i64, t: i64, v: f64) -> bool {
        if clock_ms >= self.check_ms && !self.deadlines(clock_ms) || !self.calm.stays(v, self.last) {
            self.ends_ms = i64::MIN;
            self.check_ms = i64::MIN;
            return false;
        }
        self.last = Some((t, v));
        true
    }

    /// The clock has passed a deadline of the sensor's cells: puts off the
    /// stale cells' deadlines as `cell_deadline` does, over and over (as
    /// `fire_due`), and says whether the run goes on.
    #[inline(never)]
    fn deadlines(&mut self, clock_ms: i64) -> bool {
        if clock_ms >= self.ends_ms {
            return false;
        }
        let mut check_ms = self.ends_ms;
        for (_, deadline, span) in &mut self.stales[..usize::from(self.stale_count)] {
            while clock_ms >= *deadline {
                let due = stale_due(self.last, *deadline, *span);
                if due <= *deadline {
                    // Stale: the judge fires it.
                    return false;
                }
                *deadline = due;
            }
            check_ms = check_ms.min(*deadline);
        }
        self.check_ms = check_ms;
        true
    }
}

/// When a `stale` cell whose deadline came at `at` is stale: `span` (its
/// `after` and `for`) after the sensor's latest reading, or now if it has none.
/// Later than `at`: the deadline is put off to then.
fn stale_due(last: Option<(i64, f64)>, at: i64, span: i64) -> i64 {
    last.map_or(at, |(t, _)| t.saturating_add(span))
}

/// The evaluator: compiled checks and their state.
#[derive(Debug)]
pub struct Health {
    checks: Checks,
    state: State,
    /// Per cell: see [`Quick`].
    quick: Vec<Quick>,
    /// The cells of every sensor, one after another (see [`SensorRef`]).
    cell_list: Vec<u32>,
    /// The handle of each sensor, by its index in the state.
    handles: Vec<Option<SensorRef>>,
    /// Per sensor: see [`Calm`].
    calm: Vec<Calm>,
    /// The sensor of each cell that belongs to one (not `agree` or `event`
    /// cells, which are always judged), or `u32::MAX`.
    cell_sensor: Vec<u32>,
    /// Judge every value in full (to test that [`Quick`] changes nothing).
    exhaustive: bool,
    out: Vec<Transition>,
    /// No deadline is before this (a lower bound): most lines need no look at them.
    next_due: i64,
}

/// A device's standing at a moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device: String,
    pub source: String,
    pub level: Level,
    pub since_ms: i64,
    /// The worst result's message, or why it is grey or black.
    pub why: String,
    pub last_seen_ms: i64,
    /// Failing results, worst first.
    pub results: Vec<ResultNow>,
}

/// One check of a device and where it stands ([`Health::device_checks`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckStanding {
    pub check: String,
    /// Its kind (`range`, `stale`, ...).
    pub kind: &'static str,
    /// The sensor it judges (the source, for an event check; the member
    /// that last decided it, for an agree check).
    pub sensor: String,
    /// Its level for this device (an override's, when one applies).
    pub level: Level,
    /// `passes`; `fails`; `waits` (the condition holds, not yet for its
    /// `for`); `clears` (failing, passing again, not yet for its `clear_for`).
    pub state: &'static str,
    /// Since when it fails, waits or clears.
    pub since_ms: Option<i64>,
}

/// The site at a moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub at_ms: i64,
    pub level: Level,
    pub devices: Vec<DeviceStatus>,
}

impl Status {
    /// How many devices are at each level, in the order of [`Level::ALL`].
    pub fn counts(&self) -> [usize; 6] {
        let mut n = [0; 6];
        for d in &self.devices {
            n[d.level as usize] += 1;
        }
        n
    }
}

fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A duration in milliseconds as `15m`, `1h30m`, `2d`.
pub fn show_duration(ms: i64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        format!("{ms}ms")
    } else {
        out
    }
}

impl Health {
    pub fn new(checks: Checks) -> Health {
        Health::with_state(checks, State::default())
    }

    /// Goes on from a committed state (made with the same checks: a change
    /// to the checks changes the cache's fingerprint, and results are recomputed).
    pub fn with_state(checks: Checks, state: State) -> Health {
        // A state made with other checks (a cache read with another
        // configuration) cannot be judged with these: start afresh rather
        // than index cells by checks that are not theirs.
        let fits = state
            .cells
            .iter()
            .all(|cell| checks.checks.get(cell.check).is_some_and(|c| (c.kind == Kind::Anomaly) == (cell.hours.len() == 24)));
        let mut state = if fits { state } else { State::default() };
        state.sensor_ids = state.sensors.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        state.device_ids = state.devices.iter().enumerate().map(|(i, d)| (d.name.clone(), i)).collect();
        let next_due = state.deadlines.first().map_or(i64::MAX, |d| d.0);
        let mut health = Health {
            checks,
            state,
            quick: Vec::new(),
            cell_list: Vec::new(),
            handles: Vec::new(),
            calm: Vec::new(),
            cell_sensor: Vec::new(),
            exhaustive: false,
            out: Vec::new(),
            next_due,
        };
        for c in 0..health.state.cells.len() {
            health.refresh(c);
        }
        for s in 0..health.state.sensors.len() {
            health.handle(s);
        }
        health
    }

    /// Makes the handle of sensor `s`, adding its cells to the flat list
    /// (once per sensor and [`Health`]).
    fn handle(&mut self, s: usize) -> SensorRef {
        let sensor = &self.state.sensors[s];
        let first = self.cell_list.len() as u32;
        self.cell_list.extend(sensor.cells.iter().map(|&c| c as u32));
        let count = sensor.cells.len() as u32;
        if self.handles.len() <= s {
            self.handles.resize(s + 1, None);
        }
        let r = SensorRef { index: s as u32, device: sensor.device as u32, first, count, checked: count > 0 };
        self.handles[s] = Some(r);
        for i in 0..sensor.cells.len() {
            let c = self.state.sensors[s].cells[i];
            if self.cell_sensor.len() <= c {
                self.cell_sensor.resize(c + 1, u32::MAX);
            }
            if !matches!(self.checks.checks[self.state.cells[c].check].kind, Kind::Agree | Kind::Event) {
                self.cell_sensor[c] = s as u32;
            }
        }
        self.recalm(s);
        r
    }

    /// Derives the [`Calm`] of sensor `s` from its cells' [`Quick`]s.
    fn recalm(&mut self, s: usize) {
        let mut calm = Calm { on: true, lo: f64::NEG_INFINITY, hi: f64::INFINITY, max_step: f64::INFINITY };
        for &c in &self.state.sensors[s].cells {
            let shared = self.cell_sensor.get(c).is_none_or(|&owner| owner != s as u32);
            match self.quick[c] {
                _ if shared => calm.on = false,
                Quick::Range { lo, hi, failing: false } => {
                    calm.lo = calm.lo.max(lo);
                    calm.hi = calm.hi.min(hi);
                }
                Quick::Rate { max_change, failing: false, .. } => calm.max_step = calm.max_step.min(max_change),
                Quick::Calm => {}
                _ => calm.on = false,
            }
        }
        if self.calm.len() <= s {
            self.calm.resize(s + 1, Calm::OFF);
        }
        self.calm[s] = if calm.on { calm } else { Calm::OFF };
    }

    /// Judges every value in full, as if no result were known to stay: the
    /// same results, slower (for tests).
    #[doc(hidden)]
    pub fn judge_every_value(&mut self) {
        self.exhaustive = true;
        for c in 0..self.state.cells.len() {
            self.refresh(c);
        }
    }

    /// Derives the [`Quick`] of cell `c` from its state (after any change to it).
    fn refresh(&mut self, c: usize) {
        let cell = &self.state.cells[c];
        let idle = cell.active.is_none() && cell.pending.is_none() && cell.clearing.is_none();
        let failing = cell.active.is_some() && cell.pending.is_none() && cell.clearing.is_none();
        // Failing, and passing since, waiting for `clear_for`: a value that
        // passes changes nothing (`passes` keeps the clearing as it is), so
        // such a cell is as quick as a passing one, with the limits of a
        // failing one (hysteresis). A sensor back from a limit spends
        // `clear_for` (5 minutes) there.
        let clearing = cell.active.is_some() && cell.pending.is_none() && cell.clearing.is_some();
        let quick = match self.for_cell(c).1 {
            _ if self.exhaustive || !(idle || failing || clearing) => Quick::Judge,
            &Params::Range { min, max, hysteresis } => {
                let h = if failing || clearing { hysteresis } else { 0.0 };
                let lo = min.map_or(f64::NEG_INFINITY, |m| m + h);
                let hi = max.map_or(f64::INFINITY, |m| m - h);
                Quick::Range { lo, hi, failing }
            }
            &Params::Rate { max_change, per_ms } => Quick::Rate { max_change, per_ms, failing },
            Params::Stale { .. } if idle && cell.deadline.is_some() => Quick::Calm,
            _ => Quick::Judge,
        };
        if self.quick.len() <= c {
            self.quick.resize(c + 1, Quick::Judge);
        }
        self.quick[c] = quick;
        if let Some(&owner) = self.cell_sensor.get(c).filter(|&&o| o != u32::MAX) {
            self.recalm(owner as usize);
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The level and parameters of cell `c`'s check for its device (overrides applied).
    fn for_cell(&self, c: usize) -> (Level, &Params) {
        let cell = &self.state.cells[c];
        self.checks.checks[cell.check].for_device(&self.state.devices[cell.device as usize].name)
    }

    /// The name of what cell `c`'s result is about (see `Cell::subject`).
    fn subject(&self, c: usize) -> &str {
        let cell = &self.state.cells[c];
        match self.checks.checks[cell.check].kind {
            Kind::Event => &self.state.devices[cell.subject as usize].name,
            _ => &self.state.sensors[cell.subject as usize].name,
        }
    }

    pub fn checks(&self) -> &Checks {
        &self.checks
    }

    /// The latest data time fed.
    pub fn clock_ms(&self) -> i64 {
        self.state.clock_ms
    }

    /// The transitions made since the last call, in order.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        self.settle();
        std::mem::take(&mut self.out)
    }

    /// The levels of the devices back from silence (see `State::settling`),
    /// now that their line is judged.
    fn settle(&mut self) {
        let settling = std::mem::take(&mut self.state.settling);
        for (d, at) in settling {
            self.recompute_device(d, at);
        }
    }

    /// Moves the data clock to `time_ms` (a line's time; it never goes
    /// back) and fires every deadline it passes, in time order.
    #[inline]
    pub fn advance(&mut self, time_ms: i64) {
        if time_ms > self.state.clock_ms && !self.state.settling.is_empty() {
            // A later line: the one before is judged.
            self.settle();
        }
        self.state.clock_ms = self.state.clock_ms.max(time_ms);
        // Nearly every line: nothing is due.
        if self.next_due <= self.state.clock_ms {
            self.fire_due();
        }
    }

    /// Fires every deadline up to the data clock, in time order.
    #[inline(never)]
    fn fire_due(&mut self) {
        let clock = self.state.clock_ms;
        while let Some(&(at, timer)) = self.state.deadlines.first() {
            if at > clock {
                break;
            }
            self.state.deadlines.remove(&(at, timer));
            match timer {
                Timer::Cell(c) => {
                    self.cell_deadline(c, at);
                    self.refresh(c);
                }
                Timer::Device(d) => self.device_deadline(d, at),
            }
        }
        self.next_due = self.state.deadlines.first().map_or(i64::MAX, |d| d.0);
    }

    fn set_deadline(&mut self, timer: Timer, at: Option<i64>) {
        let slot = match timer {
            Timer::Cell(c) => &mut self.state.cells[c].deadline,
            Timer::Device(d) => &mut self.state.devices[d].deadline,
        };
        if let Some(old) = std::mem::replace(slot, at) {
            self.state.deadlines.remove(&(old, timer));
        }
        if let Some(at) = at {
            self.state.deadlines.insert((at, timer));
            self.next_due = self.next_due.min(at);
        }
    }

    fn device(&mut self, source: &str, device: &str) -> usize {
        if let Some(&d) = self.state.device_ids.get(device) {
            return d;
        }
        let d = self.state.devices.len();
        self.state.devices.push(DeviceState {
            name: device.to_string(),
            source: source.to_string(),
            cells: Vec::new(),
            last_ms: self.state.clock_ms,
            silence: Level::Ok,
            reads: false,
            deadline: None,
            level: Level::Ok,
            // Set when first heard.
            since_ms: i64::MIN,
        });
        self.state.device_ids.insert(device.to_string(), d);
        self.state.sources.entry(source.to_string()).or_insert(Level::Ok);
        d
    }

    fn new_cell(&mut self, check: usize, subject: usize, device: usize) -> usize {
        let hours = if self.checks.checks[check].kind == Kind::Anomaly { vec![VecDeque::new(); 24] } else { Vec::new() };
        self.state.cells.push(Cell {
            check,
            subject: subject as u32,
            device: device as u32,
            devices: Vec::new(),
            active: None,
            pending: None,
            clearing: None,
            deadline: None,
            latest: BTreeMap::new(),
            hours,
        });
        let c = self.state.cells.len() - 1;
        self.refresh(c);
        c
    }

    /// The handle of a sensor (`SOURCE/DEVICE/FIELD` of device
    /// `SOURCE/DEVICE`), made the first time: the checks that apply to it are
    /// found then, once. Handles stay valid for this state and the states
    /// that follow from it.
    pub fn sensor_ref(&mut self, source: &str, device: &str, sensor: &str) -> SensorRef {
        if let Some(&s) = self.state.sensor_ids.get(sensor) {
            return match self.handles.get(s) {
                Some(&Some(r)) => r,
                _ => self.handle(s),
            };
        }
        let device = self.device(source, device);
        // The sensor's index, once it is pushed below.
        let s = self.state.sensors.len();
        let mut cells = Vec::new();
        for k in 0..self.checks.checks.len() {
            let check = &self.checks.checks[k];
            if check.kind == Kind::Event || !check.applies_to(sensor) {
                continue;
            }
            let c = if check.kind == Kind::Agree {
                match self.state.agree_cells.get(&k) {
                    Some(&c) => c,
                    None => {
                        let c = self.new_cell(k, s, device);
                        self.state.agree_cells.insert(k, c);
                        c
                    }
                }
            } else {
                self.new_cell(k, s, device)
            };
            if !self.state.cells[c].devices.contains(&device) {
                self.state.cells[c].devices.push(device);
                self.state.devices[device].cells.push(c);
            }
            cells.push(c);
        }
        self.state.sensors.push(SensorState { name: sensor.to_string(), device, cells, last: None });
        self.state.sensor_ids.insert(sensor.to_string(), s);
        self.handle(s)
    }

    /// The device of `s` was heard at `t` (a row of it was read): back
    /// from grey or black. Its silence deadline is moved lazily: when it
    /// comes, it is put off if the device was heard since.
    pub fn heard(&mut self, s: SensorRef, t: i64) {
        self.advance(t);
        let d = s.device as usize;
        let dev = &mut self.state.devices[d];
        dev.last_ms = dev.last_ms.max(t);
        dev.reads = true;
        if dev.since_ms == i64::MIN {
            dev.since_ms = t;
        }
        if dev.silence != Level::Ok {
            dev.silence = Level::Ok;
            self.set_deadline(Timer::Device(d), None);
            // Its level once the line's values are judged.
            self.state.settling.push((d, t));
        }
        if self.state.devices[d].deadline.is_none() {
            let dev = &self.state.devices[d];
            let (grey, _) = self.checks.silence_limits(&dev.source);
            let at = dev.last_ms.saturating_add(grey);
            self.set_deadline(Timer::Device(d), Some(at));
        }
    }

    fn device_deadline(&mut self, d: usize, at: i64) {
        let dev = &self.state.devices[d];
        let (grey, black) = self.checks.silence_limits(&dev.source);
        let (level, next) = if at < dev.last_ms.saturating_add(grey) {
            // Heard since the deadline was set: put off.
            (Level::Ok, Some(dev.last_ms.saturating_add(grey)))
        } else if at >= dev.last_ms.saturating_add(black) {
            (Level::Black, None)
        } else {
            (Level::Grey, Some(dev.last_ms.saturating_add(black)))
        };
        self.set_deadline(Timer::Device(d), next);
        if level != Level::Ok {
            self.state.devices[d].silence = level;
            self.recompute_device(d, at);
        }
    }

    /// The day file (`YYYYMMDD`) the next lines come from, for the causes of results.
    pub fn set_day(&mut self, day: &str) {
        if self.state.day != day {
            self.state.day = day.to_string();
        }
    }

    /// Feeds one value of a sensor (in line order): `line` is its line in
    /// the current day file ([`Health::set_day`]). Only sensors with checks
    /// need it; every row needs [`Health::heard`].
    #[inline]
    pub fn value(&mut self, s: SensorRef, t: i64, value: f64, line: u64) {
        if !s.checked {
            return;
        }
        self.advance(t);
        let index = s.index as usize;
        let prev = self.state.sensors[index].last.replace((t, value));
        if self.calm[index].stays(value, prev) {
            return;
        }
        self.value_cells(s, t, value, line, prev);
    }

    /// A run of calm values of sensor `s` from now on (see [`CalmRun`]), or
    /// `None` when none can be: its checks are not all passing ranges,
    /// passing rates and calm stales of its own.
    pub fn calm_run(&self, s: SensorRef) -> Option<CalmRun> {
        let i = s.index as usize;
        let calm = *self.calm.get(i)?;
        if !s.checked || !calm.on {
            return None;
        }
        let sensor = &self.state.sensors[i];
        let mut run = CalmRun {
            calm,
            check_ms: i64::MAX,
            ends_ms: i64::MAX,
            last: sensor.last,
            index: s.index,
            stales: [(0, 0, 0); CalmRun::STALES],
            stale_count: 0,
        };
        for &c in &sensor.cells {
            let cell = &self.state.cells[c];
            let Some(deadline) = cell.deadline else { continue };
            match (self.quick[c], self.for_cell(c)) {
                (Quick::Calm, (_, &Params::Stale { after_ms })) => {
                    let at = run.stales.get_mut(usize::from(run.stale_count))?;
                    let span = after_ms.saturating_add(self.checks.checks[cell.check].for_ms);
                    *at = (c as u32, deadline, span);
                    run.stale_count += 1;
                }
                _ => run.ends_ms = run.ends_ms.min(deadline),
            }
            run.check_ms = run.check_ms.min(deadline);
        }
        Some(run)
    }

    /// The run's values are read: its latest is the sensor's, its stale
    /// cells' deadlines are put off (the values after it go to
    /// [`Health::value`], in line order, once this is called).
    pub fn end_calm_run(&mut self, run: CalmRun) {
        self.state.sensors[run.index as usize].last = run.last;
        for &(c, deadline, _) in &run.stales[..usize::from(run.stale_count)] {
            let c = c as usize;
            if self.state.cells[c].deadline != Some(deadline) {
                self.set_deadline(Timer::Cell(c), Some(deadline));
            }
        }
    }

    /// A value that is not calm, through its sensor's cells: apart from the
    /// calm path above, so that path stays small (most values take it).
    #[inline(never)]
    fn value_cells(&mut self, s: SensorRef, t: i64, value: f64, line: u64, prev: Option<(i64, f64)>) {
        let index = s.index as usize;
        for i in s.first..s.first + s.count {
            let c = self.cell_list[i as usize] as usize;
            match self.quick[c].outcome(t, value, prev) {
                Outcome::Stays => {}
                Outcome::StillFails(shown) => {
                    if let Some(a) = &mut self.state.cells[c].active {
                        a.value = shown.is_finite().then_some(shown);
                    }
                }
                Outcome::Judge => {
                    self.judge(c, index, t, value, line, prev);
                    self.refresh(c);
                }
            }
        }
    }

    /// Feeds one reading (in line order): [`Health::heard`] and [`Health::value`] by name.
    pub fn reading(&mut self, r: &Reading<'_>) {
        self.advance(r.time_ms);
        let s = self.sensor_ref(r.source, r.device, r.sensor);
        self.heard(s, r.time_ms);
        self.set_day(&r.cause.day);
        self.value(s, r.time_ms, r.value, r.cause.line);
    }

    /// Feeds one event occurrence (an `[[event]]` match) on a line of `source`.
    pub fn event(&mut self, source: &str, code: &str, level: &str, time_ms: i64, message: &str, cause: Cause) {
        self.advance(time_ms);
        for k in 0..self.checks.checks.len() {
            let check = &self.checks.checks[k];
            if check.kind != Kind::Event || !check.applies_to(source) {
                continue;
            }
            let (_, Params::Event { codes, levels, hold_ms, clear }) = check.for_device(source) else { continue };
            let sets = codes.iter().any(|c| c == code) || levels.iter().any(|l| l == level);
            let clears = clear.iter().any(|c| c == code);
            if !sets && !clears {
                continue;
            }
            let hold_ms = *hold_ms;
            let d = self.device(source, source);
            let dev = &mut self.state.devices[d];
            dev.last_ms = dev.last_ms.max(time_ms);
            if dev.since_ms == i64::MIN {
                dev.since_ms = time_ms;
            }
            let c = match self.state.devices[d].cells.iter().copied().find(|&c| self.state.cells[c].check == k) {
                Some(c) => c,
                None => {
                    let c = self.new_cell(k, d, d);
                    self.state.cells[c].devices.push(d);
                    self.state.devices[d].cells.push(c);
                    c
                }
            };
            if clears {
                self.clear(c, time_ms, None, At::Given(cause.clone()));
            } else {
                let check = &self.checks.checks[k];
                let text = match &check.message {
                    Some(t) => fill(t, code, source, &show_duration(hold_ms), &check.name),
                    None => format!("event {code}: {message}"),
                };
                self.fail(c, time_ms, f64::NAN, Why::Text(text), None, At::Given(cause.clone()));
                // The event holds the level for `hold` after its latest occurrence.
                if self.state.cells[c].active.is_some() {
                    self.set_deadline(Timer::Cell(c), Some(time_ms.saturating_add(hold_ms)));
                }
            }
            self.refresh(c);
        }
    }

    /// Judges a value of sensor `s` for one cell.
    fn judge(&mut self, c: usize, s: usize, t: i64, v: f64, line: u64, prev: Option<(i64, f64)>) {
        let cell = &self.state.cells[c];
        let check = &self.checks.checks[cell.check];
        let (_, params) = self.for_cell(c);
        let active = cell.active.is_some();
        // The condition: Some((value shown, why)) when failing.
        let failing: Option<(f64, Why)> = match *params {
            Params::Range { min, max, hysteresis } => {
                let h = if active { hysteresis } else { 0.0 };
                match (min, max) {
                    (_, Some(hi)) if v > hi - h => Some((v, Why::Above(v, hi))),
                    (Some(lo), _) if v < lo + h => Some((v, Why::Below(v, lo))),
                    _ => None,
                }
            }
            Params::Stale { after_ms } => {
                // A reading ends staleness; the deadline is set if none is
                // (one set earlier is put off when it comes, see `cell_deadline`).
                let at = t.saturating_add(after_ms).saturating_add(check.for_ms);
                self.clear(c, t, Some(v), At::Line(line, t));
                if self.state.cells[c].deadline.is_none() {
                    self.set_deadline(Timer::Cell(c), Some(at));
                }
                return;
            }
            Params::Rate { max_change, per_ms } => prev.and_then(|(pt, pv)| {
                // Within `per`, at most max_change; further apart, in proportion.
                let span = (t - pt).max(per_ms) as f64;
                let change = (v - pv).abs();
                let rate = change / span * per_ms as f64;
                (change * per_ms as f64 > max_change * span).then_some((rate, Why::Rate { rate, max: max_change, per_ms }))
            }),
            Params::Agree { max_spread } => {
                let cell = &mut self.state.cells[c];
                cell.latest.insert(self.state.sensors[s].name.clone(), v);
                if cell.latest.len() < 2 {
                    return;
                }
                let lo = cell.latest.values().copied().fold(f64::INFINITY, f64::min);
                let hi = cell.latest.values().copied().fold(f64::NEG_INFINITY, f64::max);
                let spread = hi - lo;
                (spread > max_spread).then_some((spread, Why::Spread { spread, max: max_spread }))
            }
            Params::Anomaly { sigma, days } => {
                let days = i64::from(days);
                let day = t.div_euclid(86_400_000);
                let hour = (t.div_euclid(3_600_000) % 24) as usize;
                let q = &mut self.state.cells[c].hours[hour];
                while q.front().is_some_and(|e| e.0 < day - days) {
                    q.pop_front();
                }
                let (mut sum, mut sq, mut n, mut seen_days) = (0.0, 0.0, 0u32, 0);
                for &(d, s1, s2, k) in q.iter() {
                    if d < day {
                        sum += s1;
                        sq += s2;
                        n += k;
                        seen_days += 1;
                    }
                }
                match q.back_mut() {
                    Some(e) if e.0 == day => {
                        e.1 += v;
                        e.2 += v * v;
                        e.3 += 1;
                    }
                    _ => q.push_back((day, v, v * v, 1)),
                }
                // Enough history: readings in this hour on at least half of the previous days.
                if seen_days * 2 < days || n < 3 {
                    None
                } else {
                    let mean = sum / f64::from(n);
                    let sd = (sq / f64::from(n) - mean * mean).max(0.0).sqrt();
                    let dev = if sd > 0.0 { (v - mean).abs() / sd } else { 0.0 };
                    (sd > 0.0 && dev > sigma).then_some((v, Why::Anomaly { value: v, dev, mean, days, sigma }))
                }
            }
            Params::Event { .. } => None,
        };
        if check.kind == Kind::Agree {
            self.state.cells[c].subject = s as u32;
        }
        match failing {
            Some((value, why)) => {
                self.fail(c, t, value, why, Some(s), At::Line(line, t));
            }
            None => self.passes(c, t, Some(v), At::Line(line, t)),
        }
    }

    /// A value check's condition does not hold at `t`: a failing result
    /// clears once it has passed for `clear_for`.
    fn passes(&mut self, c: usize, t: i64, value: Option<f64>, cause: At) {
        let clear_for = self.checks.checks[self.state.cells[c].check].clear_for_ms;
        let cell = &self.state.cells[c];
        if cell.active.is_none() || clear_for == 0 {
            return self.clear(c, t, value, cause);
        }
        if cell.clearing.is_none() {
            let cause = self.cause(cause);
            self.state.cells[c].clearing = Some(Box::new((t, cause)));
            self.set_deadline(Timer::Cell(c), Some(t.saturating_add(clear_for)));
        }
    }

    fn cause(&self, at: At) -> Cause {
        match at {
            At::Line(line, t) => Cause { day: self.state.day.clone(), line, time_ms: t },
            At::Given(c) => c,
        }
    }

    /// A failing result's message: the check's template, or the kind's own.
    fn render(&self, c: usize, sensor: Option<usize>, why: &Why) -> String {
        let sensor = sensor.map_or("", |s| self.state.sensors[s].name.as_str());
        let check = &self.checks.checks[self.state.cells[c].check];
        let (value, limit) = match why {
            Why::Above(v, l) | Why::Below(v, l) => (show(*v), show(*l)),
            Why::Rate { rate, max, .. } => (show(*rate), show(*max)),
            Why::Spread { spread, max } => (show(*spread), show(*max)),
            Why::Anomaly { value, sigma, .. } => (show(*value), show(*sigma)),
            Why::Text(t) => return t.clone(),
        };
        if let Some(t) = &check.message {
            return fill(t, &value, sensor, &limit, &check.name);
        }
        match why {
            Why::Above(..) => format!("{sensor} reached {value}, above {limit}"),
            Why::Below(..) => format!("{sensor} fell to {value}, below {limit}"),
            Why::Rate { per_ms, .. } => format!("{sensor} changed at {value} per {}, faster than {limit}", show_duration(*per_ms)),
            Why::Spread { .. } => format!("{} sensors disagree by {value}, more than {limit}", check.name),
            Why::Anomaly { dev, mean, days, .. } => {
                format!("{sensor} was {value}, {} σ from the mean {} of this hour over {days} days", show(*dev), show(*mean))
            }
            Why::Text(t) => t.clone(),
        }
    }

    /// The condition of cell `c` holds at `t`: it fails now, or after `for`.
    /// The message is made only when the result changes (most conditions
    /// that wait for `for` pass again before it), the cause when one may.
    fn fail(&mut self, c: usize, t: i64, value: f64, why: Why, sensor: Option<usize>, cause: At) {
        let for_ms = self.checks.checks[self.state.cells[c].check].for_ms;
        let cell = &mut self.state.cells[c];
        let shown = value.is_finite().then_some(value);
        if let Some(a) = &mut cell.active {
            // Still failing: the latest value; the message and cause of the change are kept.
            a.value = shown;
            if cell.clearing.take().is_some() {
                self.set_deadline(Timer::Cell(c), None);
            }
            return;
        }
        if let Some(p) = &mut cell.pending {
            p.value = value;
            return;
        }
        let cause = self.cause(cause);
        if for_ms > 0 {
            self.state.cells[c].pending = Some(Box::new(Pending { since_ms: t, value, why, sensor, cause }));
            self.set_deadline(Timer::Cell(c), Some(t.saturating_add(for_ms)));
        } else {
            let message = self.render(c, sensor, &why);
            self.activate(c, t, value, message, cause);
        }
    }

    fn activate(&mut self, c: usize, at: i64, value: f64, message: String, cause: Cause) {
        let cell = &self.state.cells[c];
        let check = &self.checks.checks[cell.check];
        let (level, _) = self.for_cell(c);
        let result = ResultNow {
            check: check.name.clone(),
            sensor: self.subject(c).to_string(),
            level,
            since_ms: at,
            value: value.is_finite().then_some(value),
            message,
            cause: Some(cause),
        };
        self.transition(Subject::Result { check: result.check.clone(), sensor: result.sensor.clone() }, at, Level::Ok, level, &result);
        self.state.cells[c].active = Some(Box::new(result));
        for i in 0..self.state.cells[c].devices.len() {
            let d = self.state.cells[c].devices[i];
            self.recompute_device(d, at);
        }
    }

    /// The condition of cell `c` does not hold at `t`.
    fn clear(&mut self, c: usize, t: i64, value: Option<f64>, cause: At) {
        let cell = &mut self.state.cells[c];
        if cell.active.is_none() && cell.pending.is_none() {
            // Passing, as before: nearly every value of a healthy site.
            return;
        }
        if cell.pending.take().is_some() {
            self.set_deadline(Timer::Cell(c), None);
        }
        let cell = &mut self.state.cells[c];
        cell.clearing = None;
        let Some(was) = cell.active.take() else { return };
        if self.checks.checks[cell.check].kind == Kind::Event {
            self.set_deadline(Timer::Cell(c), None);
        }
        let now = ResultNow {
            level: Level::Ok,
            value,
            message: format!("{} passes again", was.check),
            cause: Some(self.cause(cause)),
            ..(*was).clone()
        };
        self.transition(Subject::Result { check: was.check.clone(), sensor: was.sensor.clone() }, t, was.level, Level::Ok, &now);
        for i in 0..self.state.cells[c].devices.len() {
            let d = self.state.cells[c].devices[i];
            self.recompute_device(d, t);
        }
    }

    fn cell_deadline(&mut self, c: usize, at: i64) {
        self.state.cells[c].deadline = None;
        let check = &self.checks.checks[self.state.cells[c].check];
        match check.kind {
            Kind::Stale => {
                let cell = &self.state.cells[c];
                let (_, params) = self.for_cell(c);
                let after = if let Params::Stale { after_ms } = params { *after_ms } else { 0 };
                // The cell's own sensor (a stale cell belongs to one).
                let sensor = self.subject(c);
                let last = self.state.sensors[cell.subject as usize].last;
                let due = stale_due(last, at, after.saturating_add(check.for_ms));
                if due > at {
                    // Read since the deadline was set (nearly always): put off.
                    self.set_deadline(Timer::Cell(c), Some(due));
                    return;
                }
                let message = match &check.message {
                    Some(t) => fill(t, "", sensor, &show_duration(after), &check.name),
                    None => format!("no reading from {sensor} for {}", show_duration(after)),
                };
                let cause = Cause { day: String::new(), line: 0, time_ms: last.map_or(at, |(t, _)| t) };
                self.activate(c, at, f64::NAN, message, cause);
            }
            Kind::Event => {
                // The hold ended.
                self.clear(c, at, None, At::Given(Cause { time_ms: at, ..Cause::default() }));
            }
            _ => {
                if let Some(p) = self.state.cells[c].pending.take() {
                    let Pending { value, why, sensor, cause, .. } = *p;
                    let message = self.render(c, sensor, &why);
                    self.activate(c, at, value, message, cause);
                } else if let Some(cl) = self.state.cells[c].clearing.take() {
                    let (_, cause) = *cl;
                    let value = self.state.cells[c].active.as_ref().and_then(|a| a.value);
                    self.clear(c, at, value, At::Given(cause));
                }
            }
        }
    }

    fn transition(&mut self, subject: Subject, at: i64, from: Level, to: Level, r: &ResultNow) {
        self.out.push(Transition {
            at_ms: at,
            decided_ms: self.state.clock_ms,
            subject,
            from,
            to,
            value: r.value,
            message: r.message.clone(),
            cause: r.cause.clone(),
        });
    }

    /// The worst active result of a device.
    fn worst(&self, d: usize) -> Option<&ResultNow> {
        let dev = &self.state.devices[d];
        dev.cells.iter().filter_map(|&c| self.state.cells[c].active.as_deref()).max_by_key(|r| (r.level, std::cmp::Reverse(r.since_ms)))
    }

    fn recompute_device(&mut self, d: usize, at: i64) {
        if self.state.settling.iter().any(|&(x, _)| x == d) {
            // Back from silence: judged when its line is (`settle`).
            return;
        }
        let worst = self.worst(d).cloned();
        let dev = &self.state.devices[d];
        let level = dev.silence.max(worst.as_ref().map_or(Level::Ok, |r| r.level));
        if level == dev.level {
            return;
        }
        let from = dev.level;
        let dev = &mut self.state.devices[d];
        dev.level = level;
        dev.since_ms = at;
        let (name, source) = (dev.name.clone(), dev.source.clone());
        let r = self.record(d, at);
        self.transition(Subject::Device(name), at, from, level, &r);
        // The source and the site: the worst of theirs, each with the why of
        // a device at that level (not this one's, when it got better).
        let worst_of = |h: &Health, source: Option<&str>| {
            let devices = h.state.devices.iter().enumerate().filter(|(_, x)| source.is_none_or(|s| x.source == s));
            devices.max_by_key(|(i, x)| (x.level, *i == d)).map(|(i, x)| (i, x.level))
        };
        let (src_device, src_level) = worst_of(self, Some(&source)).unwrap_or((d, Level::Ok));
        let old = self.state.sources.insert(source.clone(), src_level).unwrap_or(Level::Ok);
        if old != src_level {
            let r = self.record(src_device, at);
            self.transition(Subject::Source(source), at, old, src_level, &r);
            let (site_device, site) = worst_of(self, None).unwrap_or((d, Level::Ok));
            if site != self.state.site {
                let old = std::mem::replace(&mut self.state.site, site);
                let r = self.record(site_device, at);
                self.transition(Subject::Site, at, old, site, &r);
            }
        }
    }

    /// Device `d` as it stands at `at`: its level and why, and the value and
    /// cause of its worst result.
    fn record(&self, d: usize, at: i64) -> ResultNow {
        let worst = self.worst(d);
        let level = self.state.devices[d].level;
        ResultNow {
            check: String::new(),
            sensor: String::new(),
            level,
            since_ms: at,
            value: worst.and_then(|w| w.value),
            message: self.why(d, worst, level, at),
            cause: worst.and_then(|w| w.cause.clone()),
        }
    }

    fn why(&self, d: usize, worst: Option<&ResultNow>, level: Level, at: i64) -> String {
        let dev = &self.state.devices[d];
        match (level, worst) {
            (Level::Grey | Level::Black, _) => format!("no reading from {} for {}", dev.name, show_duration(at - dev.last_ms)),
            (_, Some(w)) => w.message.clone(),
            (_, None) => "every check passes".into(),
        }
    }

    /// The site as it stands at wall time `now_ms`: levels from the data,
    /// and the deadlines that passed since its last line fired as if the
    /// data clock were at `now_ms` (no line since is silence): devices
    /// silent since then grey or black *now*, sensors stale, an event's
    /// `hold` over, a `for` or `clear_for` run out.
    pub fn status_at(&self, now_ms: i64) -> Status {
        match self.as_of(now_ms) {
            Some(later) => later.standing(now_ms),
            None => self.standing(now_ms),
        }
    }

    /// The evaluator as it stands at wall time `now_ms`, when that differs
    /// from how it stands now: deadlines passed since the last line (a stale
    /// sensor, an event's hold, a `for`, a silent device) stand, with no
    /// line since, as the evaluator would fire them; a device back from
    /// silence in a line whose transitions were not taken yet stands as the
    /// line left it. (A caller asking several things at `now_ms` asks them
    /// of this, once, rather than have each of them make it.)
    pub fn as_of(&self, now_ms: i64) -> Option<Health> {
        let due = now_ms > self.state.clock_ms && self.next_due <= now_ms;
        if !due && self.state.settling.is_empty() {
            return None;
        }
        let mut later = Health::with_state(self.checks.clone(), self.state.clone());
        later.settle();
        if due {
            later.advance(now_ms);
        }
        Some(later)
    }

    /// Every check of `device` (`SOURCE/DEVICE`) on each of its sensors,
    /// passing or not, as they stand at wall time `now_ms` (as in
    /// [`Health::status_at`]), by sensor and check.
    pub fn device_checks(&self, device: &str, now_ms: i64) -> Vec<CheckStanding> {
        if let Some(later) = self.as_of(now_ms) {
            return later.device_checks(device, now_ms);
        }
        let Some(&d) = self.state.device_ids.get(device) else { return Vec::new() };
        let mut out: Vec<CheckStanding> = self.state.devices[d]
            .cells
            .iter()
            .map(|&c| {
                let cell = &self.state.cells[c];
                let check = &self.checks.checks[cell.check];
                let (level, _) = self.for_cell(c);
                let (state, since_ms) = match (&cell.active, &cell.pending, &cell.clearing) {
                    (Some(_), _, Some(clearing)) => ("clears", Some(clearing.0)),
                    (Some(active), _, None) => ("fails", Some(active.since_ms)),
                    (None, Some(pending), _) => ("waits", Some(pending.since_ms)),
                    (None, None, _) => ("passes", None),
                };
                CheckStanding {
                    check: check.name.clone(),
                    kind: check.kind.word(),
                    sensor: self.subject(c).to_string(),
                    level,
                    state,
                    since_ms,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.sensor, &a.check).cmp(&(&b.sensor, &b.check)));
        out
    }

    fn standing(&self, now_ms: i64) -> Status {
        let mut devices = Vec::new();
        for dev in &self.state.devices {
            let (grey, black) = self.checks.silence_limits(&dev.source);
            let quiet = now_ms.saturating_sub(dev.last_ms);
            let silence = if !dev.reads {
                Level::Ok
            } else if quiet >= black {
                Level::Black
            } else if quiet >= grey {
                Level::Grey
            } else {
                Level::Ok
            };
            let mut results: Vec<ResultNow> = dev.cells.iter().filter_map(|&c| self.state.cells[c].active.as_deref().cloned()).collect();
            results.sort_by_key(|r| (std::cmp::Reverse(r.level), r.since_ms));
            let worst = results.first();
            let level = dev.level.max(silence);
            let since_ms =
                if silence > dev.level { dev.last_ms + if silence == Level::Black { black } else { grey } } else { dev.since_ms };
            let why = match (level, worst) {
                (Level::Grey | Level::Black, _) => format!("no reading for {}", show_duration(quiet)),
                (_, Some(w)) => w.message.clone(),
                (_, None) => "every check passes".into(),
            };
            devices.push(DeviceStatus {
                device: dev.name.clone(),
                source: dev.source.clone(),
                level,
                since_ms,
                why,
                last_seen_ms: dev.last_ms,
                results,
            });
        }
        devices.sort_by(|a, b| (&a.source, &a.device).cmp(&(&b.source, &b.device)));
        let level = devices.iter().map(|d| d.level).max().unwrap_or(Level::Ok);
        Status { at_ms: now_ms, level, devices }
    }
}
