//! Decoded values and what a decoder reports for one line.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A decoded value. Types are inferred from the data (schema on read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Value {
    /// The name of the type, as shown by `schema`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Text(_) => "text",
        }
    }

    /// Infers a value from text: integer, float, bool, else text.
    pub fn infer(s: &str) -> Value {
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Value::Int(i);
        }
        if t.bytes().any(|b| b.is_ascii_digit()) && !t.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
            if let Ok(f) = t.parse::<f64>() {
                if f.is_finite() {
                    return Value::Float(f);
                }
            }
        }
        match t.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" => Value::Bool(true),
            "false" | "off" | "no" => Value::Bool(false),
            _ => Value::Text(s.to_string()),
        }
    }
}

/// `f == m / 10^k` exactly, for the smallest k up to 9. Negative zero is
/// not a decimal (it would read back as zero).
pub fn as_decimal(f: f64) -> Option<(i64, u8)> {
    if !f.is_finite() || (f == 0.0 && f.is_sign_negative()) {
        return None;
    }
    let mut p = 1f64;
    for k in 0..=9u8 {
        let m = (f * p).round();
        if m.abs() >= 9.0e15 {
            return None;
        }
        if m / p == f {
            return Some((m as i64, k));
        }
        p *= 10.0;
    }
    None
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// One decoded field. Names and units are borrowed from the decoders where
/// they can be (a driver hands out the same names for every packet without
/// allocating or counting references) and owned where they come from the line.
#[derive(Clone, Debug, PartialEq)]
pub struct Field<'a> {
    pub name: Cow<'a, str>,
    pub value: Value,
    pub unit: Option<Cow<'a, str>>,
}

impl<'a> Field<'a> {
    pub fn new(name: impl Into<Cow<'a, str>>, value: Value, unit: Option<&'a str>) -> Self {
        Self { name: name.into(), value, unit: unit.map(Cow::Borrowed) }
    }
}

/// An event pattern matched a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMatch {
    pub code: String,
    pub level: Level,
    pub description: String,
}

/// Severity of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "info" => Some(Level::Info),
            "warning" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        })
    }
}

/// What decoding one line gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<'a> {
    /// Values for one device.
    Decoded { device: Cow<'a, str>, fields: Vec<Field<'a>> },
    /// Values for one device that the receiver got at `time_ms`, earlier
    /// than the line: a packet replayed from its dataflash
    /// ([`crate::dataflash`]). `approximate` when the receiver's clock was
    /// not known to the second then.
    Replayed { time_ms: i64, approximate: bool, device: Cow<'a, str>, fields: Vec<Field<'a>> },
    /// A line the decoder knows and that carries no values (`?` bad CRC,
    /// `DF` status, `-> ack`, a banner, a CSV header).
    Recognised { kind: &'static str },
    /// No decoder understood the line (counted, never an error).
    Undecoded,
}

/// What [`crate::Decoders::decode_into`] found in a line; the fields of a
/// decoded line are appended to the caller's vector.
#[derive(Clone, Debug, PartialEq)]
pub enum Found<'a> {
    Decoded { device: Cow<'a, str> },
    Recognised { kind: &'static str },
    Undecoded,
}
