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

    /// Warnings for counter globs that match none of `sensors`: devices may
    /// appear later, so not errors.
    pub fn unmatched(&self, config: &Config, sensors: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (globs, _)) in self.counters.iter().enumerate() {
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
pub fn combine(hours: &[Hour], every: i64, counter: Option<&CounterParams>, now: i64) -> Vec<Period> {
    let mut out: Vec<Period> = Vec::new();
    for h in hours {
        let start = period_start(h.start, every);
        let mut summary = h.summary.clone();
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
        let days = combine(&hours, DAY_MS, None, i64::MAX);
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
        let p = combine(&hours, HOUR_MS, None, HOUR_MS + 17 * 60_000);
        assert_eq!(p.iter().map(|p| p.partial).collect::<Vec<_>>(), [false, true]);
    }

    #[test]
    fn text_and_booleans_are_not_rolled_up() {
        let mut r = Roller::gauge();
        r.add(0, &Value::Text("x".into()));
        r.add(0, &Value::Bool(true));
        assert!(r.finish().0.is_empty());
    }
}
