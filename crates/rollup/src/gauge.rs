//! A gauge's hour: count, min, max, first, last, the times of min and max,
//! and an exact sum for the mean.

use decode::{as_decimal, Value};
use serde::{Deserialize, Serialize};

/// A sum of readings. Readings are decimals as sensors print them (21.37,
/// 230.5): summed as integers at their common scale they add up exactly,
/// so a period's sum does not depend on how it was cut into hours or in
/// which order those were added (in doubles, 0.1 ten times is not 1). A
/// reading that is no short decimal (or a sum too large for 38 digits)
/// turns the sum into a double.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sum {
    /// `m / 10^k`.
    Exact {
        m: i128,
        k: u8,
    },
    Float(f64),
}

impl Default for Sum {
    fn default() -> Self {
        Sum::Exact { m: 0, k: 0 }
    }
}

fn pow10(k: u8) -> i128 {
    10i128.pow(u32::from(k))
}

impl Sum {
    /// The sum of one value: exact when it is an integer or a short decimal.
    pub fn of(v: &Value, x: f64) -> Sum {
        match v {
            Value::Int(i) => Sum::Exact { m: i128::from(*i), k: 0 },
            _ => match as_decimal(x) {
                Some((m, k)) => Sum::Exact { m: i128::from(m), k },
                None => Sum::Float(x),
            },
        }
    }

    pub fn value(&self) -> f64 {
        match *self {
            // Both are exact doubles when m has at most 15 digits, so the
            // quotient is the double nearest to the decimal.
            Sum::Exact { m, k } => m as f64 / pow10(k) as f64,
            Sum::Float(f) => f,
        }
    }

    pub fn add(&mut self, other: Sum) {
        *self = match (*self, other) {
            (Sum::Exact { m: a, k: ka }, Sum::Exact { m: b, k: kb }) => {
                let k = ka.max(kb);
                let exact = a.checked_mul(pow10(k - ka)).zip(b.checked_mul(pow10(k - kb))).and_then(|(a, b)| a.checked_add(b));
                match exact {
                    Some(m) => Sum::Exact { m, k },
                    None => Sum::Float(self.value() + other.value()),
                }
            }
            (a, b) => Sum::Float(a.value() + b.value()),
        };
    }
}

/// One period of a gauge. Its first and last are the readings first and
/// last in line order; of equal minimums (maximums) the earlier counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gauge {
    pub count: u64,
    pub min: Value,
    pub max: Value,
    pub first: Value,
    pub last: Value,
    pub sum: Sum,
    /// When the min and the max were read (ms since the epoch).
    pub t_min: i64,
    pub t_max: i64,
}

impl Default for Gauge {
    fn default() -> Self {
        Gauge {
            count: 0,
            min: Value::Int(0),
            max: Value::Int(0),
            first: Value::Int(0),
            last: Value::Int(0),
            sum: Sum::default(),
            t_min: 0,
            t_max: 0,
        }
    }
}

fn num(v: &Value) -> f64 {
    crate::number(v).unwrap_or(f64::NAN)
}

impl Gauge {
    /// Adds a reading `v` (whose number is `x`) read at `t`.
    pub fn add(&mut self, t: i64, v: &Value, x: f64) {
        if self.count == 0 {
            *self = Gauge {
                count: 1,
                min: v.clone(),
                max: v.clone(),
                first: v.clone(),
                last: v.clone(),
                sum: Sum::of(v, x),
                t_min: t,
                t_max: t,
            };
            return;
        }
        self.count += 1;
        if x < num(&self.min) {
            self.min = v.clone();
            self.t_min = t;
        }
        if x > num(&self.max) {
            self.max = v.clone();
            self.t_max = t;
        }
        self.last = v.clone();
        self.sum.add(Sum::of(v, x));
    }

    /// Adds a later period.
    pub fn merge(&mut self, later: &Gauge) {
        if later.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = later.clone();
            return;
        }
        self.count += later.count;
        if num(&later.min) < num(&self.min) {
            self.min = later.min.clone();
            self.t_min = later.t_min;
        }
        if num(&later.max) > num(&self.max) {
            self.max = later.max.clone();
            self.t_max = later.t_max;
        }
        self.last = later.last.clone();
        self.sum.add(later.sum);
    }

    /// The mean, rounded once: an exact sum `m / 10^k` of `n` readings is
    /// `m / (n·10^k)`, one division.
    pub fn mean(&self) -> f64 {
        match self.sum {
            Sum::Exact { m, k } => {
                let d = i128::from(self.count).checked_mul(pow10(k)).filter(|d| *d < 1 << 53);
                match d {
                    Some(d) if m.unsigned_abs() < 1 << 53 => m as f64 / d as f64,
                    _ => self.sum.value() / self.count as f64,
                }
            }
            Sum::Float(f) => f / self.count as f64,
        }
    }
}

impl Sum {
    /// `self - other`.
    pub fn minus(self, other: Sum) -> Sum {
        let neg = match other {
            Sum::Exact { m, k } => match m.checked_neg() {
                Some(m) => Sum::Exact { m, k },
                None => Sum::Float(-other.value()),
            },
            Sum::Float(f) => Sum::Float(-f),
        };
        let mut s = self;
        s.add(neg);
        s
    }

    /// `self × factor`, exact when both are decimals.
    pub fn times(self, factor: Sum) -> Sum {
        match (self, factor) {
            (Sum::Exact { m: a, k: ka }, Sum::Exact { m: b, k: kb }) if u32::from(ka) + u32::from(kb) <= 30 => match a.checked_mul(b) {
                Some(m) => Sum::Exact { m, k: ka + kb },
                None => Sum::Float(self.value() * factor.value()),
            },
            (a, b) => Sum::Float(a.value() * b.value()),
        }
    }

    /// The sum of a number (an integer or a short decimal exactly).
    pub fn number(x: f64) -> Sum {
        Sum::of(&Value::Float(x), x)
    }
}
