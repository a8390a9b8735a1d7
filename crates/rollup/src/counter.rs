//! Cumulative meters: the increment each reading adds, with the rules that
//! keep a meter's faults out of the sums.
//!
//! The rules, in the order a reading meets them (the reasons are in
//! docs/configuration.md, `[[counter]]`):
//! 1. The first value a meter ever reports adds nothing: a meter added to
//!    the site already shows everything it counted before (MyEMS: "a new
//!    added used meter"). So does its first value other than 0, when it had
//!    only reported 0 before.
//! 2. A 0 from a meter whose last value was not 0 is a fault (a meter that
//!    lost its power or its link reports 0): it adds nothing, and the meter's
//!    last good value stays what it was (MyEMS: "recovered from bad zeroes").
//! 3. A value at or above the last good one adds the difference (after a
//!    run of zeros too: counting goes on from the last good value).
//! 4. A value below it is a wrap when the counter has a `wrap` and the
//!    increment across the wrap, `wrap - last + value`, is less than half
//!    of `wrap` (a counter that wrapped moved on a little; one that was
//!    reset dropped far): it adds that increment.
//! 5. Otherwise it is a reset (a replaced meter, a node whose counter
//!    restarted): with `reset = "rebase"` counting starts again from the
//!    new value, so the drop adds nothing and what the meter counts after
//!    it does; with `reset = "max"` only values above the highest seen add
//!    (the MyEMS rule), so nothing counts until the meter passes it again.
//!
//! An hour's increments are summed; `low` and `high` are applied to whole
//! hours when they are read ([`CounterParams::limit`]).

use crate::gauge::Sum;
use config::CounterConfig;
use serde::{Deserialize, Serialize};

/// What `[[counter]]` says about a meter.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterParams {
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub wrap: Option<f64>,
    pub reset: Reset,
    pub scale: f64,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    Rebase,
    Max,
}

impl CounterParams {
    pub fn new(c: &CounterConfig) -> Result<CounterParams, String> {
        let finite = |name: &str, v: Option<f64>| match v {
            Some(x) if !x.is_finite() => Err(format!("counter: {name} must be a number, not {x}")),
            _ => Ok(v),
        };
        let (low, high, wrap) = (finite("low", c.low)?, finite("high", c.high)?, finite("wrap", c.wrap)?);
        if let (Some(l), Some(h)) = (low, high) {
            if l > h {
                return Err(format!("counter: low ({l}) is above high ({h})"));
            }
        }
        if wrap.is_some_and(|w| w <= 0.0) {
            return Err("counter: wrap must be more than 0 (65536 for a 16-bit counter)".into());
        }
        let reset = match c.reset.as_deref() {
            None | Some("rebase") => Reset::Rebase,
            Some("max") => Reset::Max,
            Some(other) => return Err(format!("counter: reset = {other:?}: expected \"rebase\" or \"max\"")),
        };
        let scale = finite("scale", c.scale)?.unwrap_or(1.0);
        if scale <= 0.0 {
            return Err(format!("counter: scale must be more than 0, not {scale}"));
        }
        Ok(CounterParams { low, high, wrap, reset, scale, unit: c.unit.clone() })
    }

    /// The unit of the increments: `unit`, else the readings' own
    /// (`readings`) when `scale` leaves them in it; none when a scale
    /// changed them into a unit nobody named (`Wh/2` scaled by 0.5 is no
    /// longer `Wh/2`).
    pub fn increments_unit(&self, readings: Option<String>) -> Option<String> {
        match &self.unit {
            Some(u) => Some(u.clone()),
            None if self.scale == 1.0 => readings,
            None => None,
        }
    }

    /// Applies `low` and `high` to an hour's increment: outside them it
    /// counts as 0 and is flagged. An hour that is not over (`open`) is
    /// not held to `low` yet.
    pub fn limit(&self, inc: &mut Increment, open: bool) {
        let v = inc.total.value();
        if self.high.is_some_and(|h| v > h) {
            inc.total = Sum::default();
            inc.flags.0 |= Flags::HIGH;
        } else if !open && self.low.is_some_and(|l| v < l) {
            inc.total = Sum::default();
            inc.flags.0 |= Flags::LOW;
        }
    }
}

/// Which rules applied in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIRST: u8 = 1;
    pub const ZERO: u8 = 2;
    pub const RESET: u8 = 4;
    pub const WRAP: u8 = 8;
    pub const LOW: u8 = 16;
    pub const HIGH: u8 = 32;
    const NAMES: [(u8, &'static str); 6] = [
        (Self::FIRST, "first"),
        (Self::ZERO, "zero"),
        (Self::RESET, "reset"),
        (Self::WRAP, "wrap"),
        (Self::LOW, "low"),
        (Self::HIGH, "high"),
    ];

    /// The flags' names, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES.iter().filter(|(b, _)| self.0 & b != 0).map(|&(_, n)| n).collect()
    }

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A period of a counter: what it counted, from how many readings, and which rules applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Increment {
    pub count: u64,
    /// Scaled by `scale`.
    pub total: Sum,
    pub flags: Flags,
}

impl Increment {
    pub fn add(&mut self, inc: Sum, flags: Flags) {
        self.count += 1;
        self.total.add(inc);
        self.flags.0 |= flags.0;
    }

    pub fn merge(&mut self, later: &Increment) {
        self.count += later.count;
        self.total.add(later.total);
        self.flags.0 |= later.flags.0;
    }
}

/// Where a meter stands after its readings so far: its last good value,
/// the highest value seen (for `reset = "max"`), and whether it is in a
/// run of zeros. Carried from day to day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterState {
    pub last: Option<f64>,
    pub max: f64,
    pub faulty: bool,
}

impl CounterState {
    /// The increment (not yet scaled) that reading `x` adds, and the rules that applied.
    pub fn step(&mut self, p: &CounterParams, x: f64) -> (Sum, Flags) {
        let none = Sum::default();
        let Some(last) = self.last else {
            *self = CounterState { last: Some(x), max: x, faulty: false };
            return (none, Flags(Flags::FIRST));
        };
        if x == 0.0 && last != 0.0 {
            self.faulty = true;
            return (none, Flags(Flags::ZERO));
        }
        self.faulty = false;
        if last == 0.0 && x != 0.0 {
            *self = CounterState { last: Some(x), max: x, faulty: false };
            return (none, Flags(Flags::FIRST));
        }
        self.last = Some(x);
        if x >= last {
            return match p.reset {
                Reset::Rebase => (Sum::number(x).minus(Sum::number(last)), Flags::default()),
                Reset::Max => {
                    let add = if x > self.max { Sum::number(x).minus(Sum::number(self.max)) } else { none };
                    self.max = self.max.max(x);
                    (add, Flags::default())
                }
            };
        }
        if let Some(w) = p.wrap {
            let across = Sum::number(w).minus(Sum::number(last)).plus(Sum::number(x));
            // 0 < across < w / 2, exactly: as `step_scaled` decides it.
            let half = Sum::number(w).minus(across.times(Sum::Exact { m: 2, k: 0 }));
            if x >= 0.0 && last < w && across.value() > 0.0 && half.value() > 0.0 {
                self.max = x;
                return (across, Flags(Flags::WRAP));
            }
        }
        if p.reset == Reset::Rebase {
            self.max = x;
        }
        (none, Flags(Flags::RESET))
    }
}

/// A counter's readings `m / 10^k` as integers at that scale: the state's
/// values, the wrap, and the arithmetic of [`CounterState::step`] without
/// a double or a decimal in the loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scaled {
    last: Option<i64>,
    max: i64,
    faulty: bool,
    wrap: Option<i64>,
    p: f64,
}

impl Scaled {
    /// The state at scale `k`, if its values (and the wrap) are exact there.
    pub(crate) fn new(state: &CounterState, params: &CounterParams, k: u8) -> Option<Scaled> {
        let p = 10f64.powi(i32::from(k));
        let at = |x: f64| {
            let m = (x * p).round();
            (m.abs() < 9.0e15 && m / p == x).then_some(m as i64)
        };
        let last = match state.last {
            Some(x) => Some(at(x)?),
            None => None,
        };
        let max = if last.is_some() { at(state.max)? } else { 0 };
        let wrap = match params.wrap {
            Some(w) => Some(at(w)?),
            None => None,
        };
        Some(Scaled { last, max, faulty: state.faulty, wrap, p })
    }

    /// [`CounterState::step`] for the reading `m / 10^k`: its increment in the same scale.
    pub(crate) fn step(&mut self, reset: Reset, m: i64) -> (i128, u8) {
        let Some(last) = self.last else {
            (self.last, self.max, self.faulty) = (Some(m), m, false);
            return (0, Flags::FIRST);
        };
        if m == 0 && last != 0 {
            self.faulty = true;
            return (0, Flags::ZERO);
        }
        self.faulty = false;
        if last == 0 && m != 0 {
            (self.last, self.max) = (Some(m), m);
            return (0, Flags::FIRST);
        }
        self.last = Some(m);
        if m >= last {
            return match reset {
                Reset::Rebase => (i128::from(m) - i128::from(last), 0),
                Reset::Max => {
                    let add = if m > self.max { i128::from(m) - i128::from(self.max) } else { 0 };
                    self.max = self.max.max(m);
                    (add, 0)
                }
            };
        }
        if let Some(w) = self.wrap {
            let across = i128::from(w) - i128::from(last) + i128::from(m);
            if m >= 0 && last < w && across > 0 && 2 * across < i128::from(w) {
                self.max = m;
                return (across, Flags::WRAP);
            }
        }
        if reset == Reset::Rebase {
            self.max = m;
        }
        (0, Flags::RESET)
    }

    /// The state as [`CounterState::step`] would have left it.
    pub(crate) fn state(&self) -> CounterState {
        let x = |m: i64| m as f64 / self.p;
        CounterState { last: self.last.map(x), max: if self.last.is_some() { x(self.max) } else { 0.0 }, faulty: self.faulty }
    }
}

impl Sum {
    fn plus(mut self, other: Sum) -> Sum {
        self.add(other);
        self
    }
}
