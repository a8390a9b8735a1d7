//! A segment of one sensor's readings of one day, stored as one value.
//!
//! Encoding (part of the cache format version): a flag byte (0 plain, 1
//! deflate), then a varint count and, per entry, the zigzag varint time delta
//! in ms, the varint line-number delta (lines only grow within a day), the
//! field's position in its line, a type tag and the value. Floats that are
//! exact decimals (17.9, 21.5) are stored as a mantissa and a number of
//! decimals, so they read back as exactly the same double.

use decode::Value;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// One reading of one sensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub time_ms: i64,
    /// Line number within the day's file.
    pub line: u64,
    /// Position of the field within its line's decoded fields.
    pub field: u8,
    pub value: Value,
}

const TAG_INT: u8 = 0;
const TAG_DEC: u8 = 1;
const TAG_F64: u8 = 2;
const TAG_FALSE: u8 = 3;
const TAG_TRUE: u8 = 4;
const TAG_TEXT: u8 = 5;

/// Compress only chunks at least this long: small ones do not shrink.
const COMPRESS_FROM: usize = 96;

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(entries.len() * 6 + 4);
    put_varint(&mut raw, entries.len() as u64);
    let (mut t, mut l) = (0i64, 0u64);
    for e in entries {
        put_varint(&mut raw, zigzag(e.time_ms.wrapping_sub(t)));
        put_varint(&mut raw, e.line.wrapping_sub(l));
        raw.push(e.field);
        t = e.time_ms;
        l = e.line;
        match &e.value {
            Value::Int(i) => {
                raw.push(TAG_INT);
                put_varint(&mut raw, zigzag(*i));
            }
            Value::Float(f) => match as_decimal(*f) {
                Some((m, k)) => {
                    raw.push(TAG_DEC);
                    raw.push(k);
                    put_varint(&mut raw, zigzag(m));
                }
                None => {
                    raw.push(TAG_F64);
                    raw.extend_from_slice(&f.to_le_bytes());
                }
            },
            Value::Bool(b) => raw.push(if *b { TAG_TRUE } else { TAG_FALSE }),
            Value::Text(s) => {
                raw.push(TAG_TEXT);
                put_varint(&mut raw, s.len() as u64);
                raw.extend_from_slice(s.as_bytes());
            }
        }
    }
    if raw.len() >= COMPRESS_FROM {
        if let Some(out) = deflate(&raw) {
            return out;
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    out.push(0);
    out.extend_from_slice(&raw);
    out
}

pub fn decode(bytes: &[u8]) -> Option<Vec<Entry>> {
    let (&flag, rest) = bytes.split_first()?;
    let inflated;
    let raw: &[u8] = match flag {
        0 => rest,
        1 => {
            inflated = inflate(rest)?;
            &inflated
        }
        _ => return None,
    };
    let mut r = Reader(raw);
    let n = r.varint()? as usize;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    let (mut t, mut l) = (0i64, 0u64);
    for _ in 0..n {
        t = t.wrapping_add(unzigzag(r.varint()?));
        l = l.wrapping_add(r.varint()?);
        let field = r.byte()?;
        let value = match r.byte()? {
            TAG_INT => Value::Int(unzigzag(r.varint()?)),
            TAG_DEC => {
                let k = r.byte()?;
                let m = unzigzag(r.varint()?);
                Value::Float(m as f64 / 10f64.powi(i32::from(k)))
            }
            TAG_F64 => Value::Float(f64::from_le_bytes(r.take(8)?.try_into().ok()?)),
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_TEXT => {
                let len = r.varint()? as usize;
                Value::Text(String::from_utf8(r.take(len)?.to_vec()).ok()?)
            }
            _ => return None,
        };
        out.push(Entry { time_ms: t, line: l, field, value });
    }
    Some(out)
}

thread_local! {
    // Building a deflate state costs more than compressing a small chunk, so
    // each thread keeps one of each and resets it.
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    static INFLATE: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// The flag byte 1 and the deflated `raw`, if that is shorter than storing it plain.
fn deflate(raw: &[u8]) -> Option<Vec<u8>> {
    DEFLATE.with(|z| {
        let mut z = z.borrow_mut();
        z.reset();
        let mut out = Vec::with_capacity(raw.len() + 16);
        out.push(1u8);
        match z.compress_vec(raw, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) if out.len() < raw.len() + 1 => Some(out),
            _ => None,
        }
    })
}

fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    INFLATE.with(|z| {
        let mut z = z.borrow_mut();
        z.reset(false);
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            let (read, written) = (z.total_in(), z.total_out());
            let input = data.get(read as usize..)?;
            // `Finish` would demand room for all of the output in one call; `None` streams.
            match z.decompress_vec(input, &mut out, FlushDecompress::None).ok()? {
                Status::StreamEnd => return Some(out),
                // No progress with room to spare: the data is truncated or damaged.
                _ if z.total_in() == read && z.total_out() == written && out.len() < out.capacity() => return None,
                _ => {}
            }
        }
    })
}

/// `f == m / 10^k` exactly, for the smallest k up to 9.
fn as_decimal(f: f64) -> Option<(i64, u8)> {
    if !f.is_finite() {
        return None;
    }
    for k in 0..=9u8 {
        let p = 10f64.powi(i32::from(k));
        let m = (f * p).round();
        if m.abs() < 9.0e15 && m / p == f {
            return Some((m as i64, k));
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            (-100_000i64..100_000).prop_map(|t| Value::Float(t as f64 / 10.0)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            "[ -~°]{0,12}".prop_map(Value::Text),
        ]
    }

    proptest! {
        #[test]
        fn chunks_round_trip(entries in proptest::collection::vec((0i64..3_600_000, 0u64..5, any::<u8>(), value()), 0..200)) {
            let mut t = 1_354_233_600_000;
            let mut l = 1;
            let entries: Vec<Entry> = entries.into_iter().map(|(dt, dl, field, value)| { t += dt; l += dl; Entry { time_ms: t, line: l, field, value } }).collect();
            let bytes = encode(&entries);
            prop_assert_eq!(decode(&bytes), Some(entries));
        }
    }

    #[test]
    fn decimals_are_exact_and_small() {
        assert_eq!(as_decimal(17.9), Some((179, 1)));
        assert_eq!(as_decimal(-3.5), Some((-35, 1)));
        assert_eq!(as_decimal(0.1 + 0.2), None);
        let e: Vec<Entry> = (0..60)
            .map(|i| Entry { time_ms: 1_354_233_600_000 + i * 60_000, line: i as u64 * 5, field: 3, value: Value::Float(17.9) })
            .collect();
        let bytes = encode(&e);
        assert!(bytes.len() < 60 * 3, "{} bytes for 60 readings", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), e);
        assert_eq!(decode(&[7, 1, 2]), None);
    }

    /// A chunk that inflates to more than four times its compressed size
    /// (the first output buffer) must still decode.
    #[test]
    fn highly_compressible_chunks_decode() {
        let e: Vec<Entry> = (0..2000).map(|i| Entry { time_ms: i * 1000, line: i as u64, field: 0, value: Value::Int(7) }).collect();
        let bytes = encode(&e);
        assert_eq!(bytes[0], 1, "expected a deflated chunk");
        assert!(bytes.len() * 4 < 2000 * 4);
        assert_eq!(decode(&bytes).unwrap(), e);
        assert_eq!(decode(&bytes[..bytes.len() / 2]), None, "a truncated chunk is an error, not a loop");
    }
}
