//! Rollups: per-hour summaries of every numeric sensor, and the increments
//! of cumulative meters, as a pure function of readings in line order (no
//! I/O, no clock). The indexer stores a day's hours once the day is over
//! and computes the current day's from its readings when asked, with the
//! same code, so both agree to the bit.
//!
//! A *gauge* (a temperature, a power) gets per hour its count, min, max,
//! sum (for the mean), first and last value, and the times of its min and
//! max. A *counter* (a cumulative meter, `[[counter]]`) gets per hour the
//! increment its readings add up to, after the rules of [`CounterState`],
//! with flags saying which rules applied. Longer periods combine hours
//! exactly ([`combine`]): min of mins, sum of sums, sum of increments.

mod counter;
mod gauge;

pub use counter::{CounterParams, CounterState, Flags, Increment, Reset};
pub use gauge::{Gauge, Sum};

use config::{Config, Place};
use decode::Value;
use health::glob::Glob;
use serde::{Deserialize, Serialize};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The compiled `[rollup]` and `[[counter]]` tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollups {
    gauges: bool,
    counters: Vec<(Vec<Glob>, CounterParams)>,
}

impl Default for Rollups {
    fn default() -> Self {
        Rollups { gauges: true, counters: Vec::new() }
    }
}

/// What a sensor is rolled up as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Gauge,
    /// The counter's parameters, by its index in the configuration.
    Counter(usize),
}

impl Rollups {
    /// Compiles the configuration's rollup tables. Errors name the file and line.
    pub fn new(config: &Config) -> Result<Rollups, String> {
        let mut counters = Vec::new();
        for (i, c) in config.counters.iter().enumerate() {
            let at = |e: String| config.at(Place::Counter(i), e);
            if c.sensors.is_empty() {
                return Err(at("a [[counter]] needs sensors = [\"SOURCE/DEVICE/FIELD\", ...] (globs)".into()));
            }
            let globs = c.sensors.iter().map(|g| Glob::new(g)).collect::<Result<Vec<_>, _>>().map_err(at)?;
            let params = CounterParams::new(c).map_err(at)?;
            counters.push((globs, params));
        }
        Ok(Rollups { gauges: config.rollup.gauges.unwrap_or(true), counters })
    }

    /// How `sensor` (`SOURCE/DEVICE/FIELD`) is rolled up: as the first
    /// counter whose globs match it, else as a gauge (unless gauges are off).
    pub fn kind(&self, sensor: &str) -> Option<Kind> {
        match self.counters.iter().position(|(globs, _)| globs.iter().any(|g| g.matches(sensor))) {
            Some(i) => Some(Kind::Counter(i)),
            None => self.gauges.then_some(Kind::Gauge),
        }
    }

    pub fn counter(&self, i: usize) -> &CounterParams {
        &self.counters[i].1
    }

    pub fn gauges(&self) -> bool {
        self.gauges
    }

    /// What decides the stored rollups: a cache whose rollups were made
    /// with another fingerprint makes them again. (`low` and `high` are
    /// applied when periods are read, so they are not part of it.)
    pub fn fingerprint(&self) -> String {
        let mut s = format!("gauges={};", self.gauges);
        for (globs, p) in &self.counters {
            let g: Vec<&str> = globs.iter().map(Glob::as_str).collect();
            s.push_str(&format!("counter {g:?} wrap={:?} reset={:?} scale={:?};", p.wrap, p.reset, p.scale));
        }
        s
    }

    /// Warnings for counter globs that match none of `sensors` (devices may
    /// appear later, so not errors) and for a `scale` without a `unit` (the
    /// increments are then shown without one).
    pub fn unmatched(&self, config: &Config, sensors: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (globs, p)) in self.counters.iter().enumerate() {
            if p.scale != 1.0 && p.unit.is_none() {
                let s = p.scale;
                out.push(config.at(
                    Place::Counter(i),
                    format!("counter: scale = {s} without a unit: the increments are no longer in the readings' unit, so they are shown without one (set unit = \"Wh\", say)"),
                ));
            }
            for g in globs {
                if !sensors.iter().any(|s| g.matches(s)) {
                    out.push(config.at(Place::Counter(i), format!("counter: {:?} matches no sensor yet", g.as_str())));
                }
            }
        }
        out
    }
}

/// One hour of one sensor: the hour's start (ms since the epoch, UTC) and its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    pub start: i64,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Summary {
    Gauge(Gauge),
    Counter(Increment),
}

impl Summary {
    pub fn count(&self) -> u64 {
        match self {
            Summary::Gauge(g) => g.count,
            Summary::Counter(c) => c.count,
        }
    }
}

/// The hours of a sensor's readings, fed in line order.
#[derive(Debug)]
pub struct Roller {
    counter: Option<(CounterParams, CounterState)>,
    hours: Vec<Hour>,
    /// Where the last reading went: readings come in time order, nearly always.
    at: usize,
}

impl Roller {
    pub fn gauge() -> Roller {
        Roller { counter: None, hours: Vec::new(), at: 0 }
    }

    /// A counter that goes on from `state` (the end of its previous day).
    pub fn counter(params: CounterParams, state: CounterState) -> Roller {
        Roller { counter: Some((params, state)), hours: Vec::new(), at: 0 }
    }

    /// Adds a reading at `t` (ms). Values that are not numbers (text,
    /// booleans) are not rolled up.
    pub fn add(&mut self, t: i64, v: &Value) {
        let Some(x) = number(v) else { return };
        let start = t.div_euclid(HOUR_MS) * HOUR_MS;
        let i = self.hour(start);
        let hour = &mut self.hours[i];
        match (&mut self.counter, &mut hour.summary) {
            (Some((params, state)), Summary::Counter(inc)) => {
                let (add, flags) = state.step(params, x);
                let add = if params.scale == 1.0 { add } else { add.times(Sum::number(params.scale)) };
                inc.add(add, flags);
            }
            (None, Summary::Gauge(g)) => g.add(t, v, x),
            // The hour was made by this roller, of its own kind.
            _ => {}
        }
    }

    /// Adds readings that are integers (`int`) or exact decimals `m / 10^k`
    /// (as a packed column holds them), with their times: the same as
    /// adding each as a value (`Value::Int(m)`, or `Value::Float(m as f64 /
    /// 10^k)`), at a fraction of the cost. A gauge sums a run of readings
    /// within one hour as integers and merges it into the hour.
    pub fn add_scaled(&mut self, times: &[i64], ms: &[i64], k: u8, int: bool) {
        let p = 10f64.powi(i32::from(k));
        let value = |m: i64| if int { Value::Int(m) } else { Value::Float(m as f64 / p) };
        let n = times.len().min(ms.len());
        if let Some((params, state)) = &self.counter {
            let Some(mut scaled) = counter::Scaled::new(state, params, k) else {
                // A state or wrap with more decimals than the readings: one by one.
                for (&t, &m) in times.iter().zip(ms) {
                    self.add(t, &value(m));
                }
                return;
            };
            let (reset, scale) = (params.reset, params.scale);
            let mut i = 0;
            while i < n {
                let start = times[i].div_euclid(HOUR_MS) * HOUR_MS;
                let end = start + HOUR_MS;
                let (mut sum, mut flags, first) = (0i128, 0u8, i);
                while i < n && times[i] >= start && times[i] < end {
                    let (add, f) = scaled.step(reset, ms[i]);
                    sum += add;
                    flags |= f;
                    i += 1;
                }
                let mut total = Sum::Exact { m: sum, k };
                if scale != 1.0 {
                    total = total.times(Sum::number(scale));
                }
                let run = Increment { count: (i - first) as u64, total, flags: Flags(flags) };
                let h = self.hour(start);
                if let Summary::Counter(inc) = &mut self.hours[h].summary {
                    inc.merge(&run);
                }
            }
            if let Some((_, state)) = &mut self.counter {
                *state = scaled.state();
            }
            return;
        }
        let mut i = 0;
        while i < n {
            let start = times[i].div_euclid(HOUR_MS) * HOUR_MS;
            let end = start + HOUR_MS;
            let (mut lo, mut hi, mut t_lo, mut t_hi) = (ms[i], ms[i], times[i], times[i]);
            let mut sum = 0i128;
            let first = i;
            while i < n && times[i] >= start && times[i] < end {
                let (t, m) = (times[i], ms[i]);
                if m < lo {
                    (lo, t_lo) = (m, t);
                }
                if m > hi {
                    (hi, t_hi) = (m, t);
                }
                sum += i128::from(m);
                i += 1;
            }
            let run = Gauge {
                count: (i - first) as u64,
                min: value(lo),
                max: value(hi),
                first: value(ms[first]),
                last: value(ms[i - 1]),
                sum: Sum::Exact { m: sum, k },
                t_min: t_lo,
                t_max: t_hi,
            };
            let h = self.hour(start);
            if let Summary::Gauge(g) = &mut self.hours[h].summary {
                g.merge(&run);
            }
        }
    }

    /// The index of the hour starting at `start`, added (in time order) if new.
    fn hour(&mut self, start: i64) -> usize {
        if self.hours.get(self.at).is_some_and(|h| h.start == start) {
            return self.at;
        }
        let i = match self.hours.binary_search_by_key(&start, |h| h.start) {
            Ok(i) => i,
            Err(i) => {
                let summary = match self.counter {
                    Some(_) => Summary::Counter(Increment::default()),
                    None => Summary::Gauge(Gauge::default()),
                };
                self.hours.insert(i, Hour { start, summary });
                i
            }
        };
        self.at = i;
        i
    }

    /// The hours in time order, and a counter's state after the last reading.
    pub fn finish(self) -> (Vec<Hour>, Option<CounterState>) {
        (self.hours, self.counter.map(|(_, s)| s))
    }
}

/// A reading as rolled up: integers and floats (booleans and text are not).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

/// A period of `--every`: its start and end (ms, UTC) and what its hours add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub start: i64,
    pub end: i64,
    pub summary: Summary,
    /// The period is not over yet (it holds the current time).
    pub partial: bool,
}

/// Where the period of length `every` that holds `t` starts: periods of
/// whole days start at midnight UTC, multiples of a week on Mondays (ISO
/// weeks), others at multiples of `every` since the epoch.
pub fn period_start(t: i64, every: i64) -> i64 {
    // 1970-01-01 was a Thursday: Mondays are 4 days after it.
    let offset = if every % (7 * DAY_MS) == 0 { 4 * DAY_MS } else { 0 };
    (t - offset).div_euclid(every) * every + offset
}

/// Combines hours (in time order) into periods of `every` (a multiple of an
/// hour), exactly: a gauge's min of mins (the earlier on a tie), max of
/// maxes, sum of sums, first of the first hour and last of the last; a
/// counter's increments after `low` and `high` (applied per hour, to whole
/// hours: the hour holding `now` is not over, so only `high` applies to it)
/// summed. A period that holds `now` is partial.
pub fn combine(hours: Vec<Hour>, every: i64, counter: Option<&CounterParams>, now: i64) -> Vec<Period> {
    let mut out: Vec<Period> = Vec::with_capacity(hours.len() / (every / HOUR_MS).max(1) as usize + 2);
    for h in hours {
        let start = period_start(h.start, every);
        let mut summary = h.summary;
        if let (Summary::Counter(inc), Some(p)) = (&mut summary, counter) {
            p.limit(inc, h.start + HOUR_MS > now);
        }
        match out.last_mut() {
            Some(p) if p.start == start => match (&mut p.summary, &summary) {
                (Summary::Gauge(a), Summary::Gauge(b)) => a.merge(b),
                (Summary::Counter(a), Summary::Counter(b)) => a.merge(b),
                // A sensor's hours are all of one kind (its configuration's).
                _ => {}
            },
            _ => out.push(Period { start, end: start + every, summary, partial: false }),
        }
    }
    for p in &mut out {
        p.partial = p.start <= now && now < p.end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge_hours(readings: &[(i64, f64)]) -> Vec<Hour> {
        let mut r = Roller::gauge();
        for &(t, v) in readings {
            r.add(t, &Value::Float(v));
        }
        r.finish().0
    }

    #[test]
    fn gauges_summarise_each_hour() {
        let hours = gauge_hours(&[(10, 21.5), (20, 20.0), (30, 23.25), (HOUR_MS + 5, 19.0), (40, 20.0)]);
        assert_eq!(hours.len(), 2);
        let Summary::Gauge(g) = &hours[0].summary else { panic!("a gauge") };
        assert_eq!((g.count, g.min.clone(), g.max.clone()), (4, Value::Float(20.0), Value::Float(23.25)));
        assert_eq!((g.t_min, g.t_max), (20, 30), "the earlier of two equal minimums");
        assert_eq!((g.first.clone(), g.last.clone()), (Value::Float(21.5), Value::Float(20.0)));
        assert_eq!(g.sum.value(), 84.75);
        assert_eq!(g.mean(), 84.75 / 4.0);
    }

    #[test]
    fn sums_of_decimals_are_exact() {
        // 0.1 added ten times in doubles is 0.9999999999999999.
        let hours = gauge_hours(&(0..10).map(|i| (i, 0.1)).collect::<Vec<_>>());
        let Summary::Gauge(g) = &hours[0].summary else { panic!("a gauge") };
        assert_eq!(g.sum.value(), 1.0);
    }

    #[test]
    fn longer_periods_combine_hours_exactly() {
        let readings: Vec<(i64, f64)> = (0..48 * 6).map(|i| (i * 10 * 60_000, ((i * 7) % 23) as f64 / 10.0)).collect();
        let hours = gauge_hours(&readings);
        let days = combine(hours, DAY_MS, None, i64::MAX);
        assert_eq!(days.len(), 2);
        for (d, day) in days.iter().enumerate() {
            let part: Vec<(i64, f64)> = readings.iter().copied().filter(|(t, _)| t / DAY_MS == d as i64).collect();
            let whole = gauge_hours(&part.iter().map(|&(_, v)| (d as i64 * DAY_MS, v)).collect::<Vec<_>>());
            let (Summary::Gauge(a), Summary::Gauge(b)) = (&day.summary, &whole[0].summary) else { panic!("gauges") };
            assert_eq!((a.count, &a.min, &a.max, a.sum.value()), (b.count, &b.min, &b.max, b.sum.value()));
            assert_eq!((&a.first, &a.last), (&b.first, &b.last));
        }
    }

    #[test]
    fn weeks_start_on_mondays_and_days_at_midnight() {
        // 2012-11-30 was a Friday; its week began on Monday 2012-11-26.
        let friday = 15674 * DAY_MS + 5 * HOUR_MS;
        assert_eq!(period_start(friday, 7 * DAY_MS), 15670 * DAY_MS);
        assert_eq!(period_start(friday, DAY_MS), 15674 * DAY_MS);
        assert_eq!(period_start(friday, 6 * HOUR_MS), 15674 * DAY_MS);
        assert_eq!(period_start(-1, HOUR_MS), -HOUR_MS);
    }

    #[test]
    fn the_period_holding_now_is_partial() {
        let hours = gauge_hours(&[(10, 1.0), (HOUR_MS + 10, 2.0)]);
        let p = combine(hours, HOUR_MS, None, HOUR_MS + 17 * 60_000);
        assert_eq!(p.iter().map(|p| p.partial).collect::<Vec<_>>(), [false, true]);
    }

    #[test]
    fn scaled_runs_equal_adding_each_value() {
        let times: Vec<i64> = (0..500).map(|i| i * 17_000 + (i % 7) * 3).collect();
        let ms: Vec<i64> = (0..500).map(|i| (i * 37 % 101) - 50).collect();
        for (k, int) in [(0, true), (0, false), (1, false), (3, false)] {
            let mut a = Roller::gauge();
            a.add_scaled(&times[..200], &ms[..200], k, int);
            a.add_scaled(&times[200..], &ms[200..], k, int);
            let mut b = Roller::gauge();
            let p = 10f64.powi(i32::from(k));
            for (&t, &m) in times.iter().zip(&ms) {
                b.add(t, &if int { Value::Int(m) } else { Value::Float(m as f64 / p) });
            }
            let (a, b) = (a.finish().0, b.finish().0);
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                let (Summary::Gauge(x), Summary::Gauge(y)) = (&x.summary, &y.summary) else { panic!("gauges") };
                assert_eq!(
                    (x.count, &x.min, &x.max, &x.first, &x.last, x.t_min, x.t_max),
                    (y.count, &y.min, &y.max, &y.first, &y.last, y.t_min, y.t_max)
                );
                assert_eq!((x.sum.value(), x.mean()), (y.sum.value(), y.mean()));
            }
        }
    }

    #[test]
    fn scaled_counters_equal_adding_each_value() {
        let times: Vec<i64> = (0..600).map(|i| i * 23_000).collect();
        // Rising with a wrap, a zero, a reset and a plateau.
        let mut ms = Vec::new();
        let mut m = 65_000i64;
        for i in 0..600 {
            m = match i {
                100 => 0,
                101 => m + 40,
                300 => 17,
                _ if m + 9 >= 65_536 => m + 9 - 65_536,
                _ => m + i % 9,
            };
            ms.push(m);
        }
        for (k, int, wrap, reset) in
            [(0, true, Some(65_536.0), Reset::Rebase), (1, false, Some(6_553.6), Reset::Max), (2, false, None, Reset::Rebase)]
        {
            let params = CounterParams { low: None, high: None, wrap, reset, scale: 0.5, unit: None };
            let mut a = Roller::counter(params.clone(), CounterState::default());
            a.add_scaled(&times[..250], &ms[..250], k, int);
            a.add_scaled(&times[250..], &ms[250..], k, int);
            let mut b = Roller::counter(params, CounterState::default());
            let p = 10f64.powi(i32::from(k));
            for (&t, &m) in times.iter().zip(&ms) {
                b.add(t, &if int { Value::Int(m) } else { Value::Float(m as f64 / p) });
            }
            let (a, b) = (a.finish(), b.finish());
            assert_eq!(a.1, b.1, "the states after");
            assert_eq!(a.0.len(), b.0.len());
            for (x, y) in a.0.iter().zip(&b.0) {
                let (Summary::Counter(x), Summary::Counter(y)) = (&x.summary, &y.summary) else { panic!("counters") };
                assert_eq!((x.count, x.flags, x.total.value()), (y.count, y.flags, y.total.value()));
            }
        }
    }

    #[test]
    fn text_and_booleans_are_not_rolled_up() {
        let mut r = Roller::gauge();
        r.add(0, &Value::Text("x".into()));
        r.add(0, &Value::Bool(true));
        assert!(r.finish().0.is_empty());
    }
}
