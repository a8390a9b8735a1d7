//! RF12demo: `OK HDR B1 B2 ...` packets, `?` bad-CRC packets, `DF` dataflash
//! status, `-> ack`, and the `[RF12demo.12] _ i31* g5 @ 868 MHz` banner.

use crate::bits::Driver;
use crate::value::{Field, Outcome, Value};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

/// What a receiver line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rf12Line {
    /// A good packet: header byte, payload, optional RSSI suffix `(-66)`.
    Packet {
        header: u8,
        payload: Vec<u8>,
        rssi: Option<i32>,
    },
    BadCrc,
    DataFlash,
    Ack,
    /// The banner: band in MHz, group, own node id.
    Banner {
        band: Option<u16>,
        group: Option<u8>,
        node: Option<u8>,
    },
    /// The echo of a command (` > 8b`).
    Echo,
}

/// Recognises an RF12demo line, or `None` if it is not one.
pub fn parse(text: &str) -> Option<Rf12Line> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("OK ") {
        let (rest, rssi) = match rest.rfind('(') {
            Some(i) if rest.ends_with(')') => (rest[..i].trim_end(), rest[i + 1..rest.len() - 1].trim().parse().ok()),
            _ => (rest, None),
        };
        let mut bytes = rest.split_ascii_whitespace();
        let header = byte(bytes.next()?)?;
        // At most one byte per two characters ("1 "): one allocation.
        let mut payload = Vec::with_capacity(rest.len() / 2);
        for b in bytes {
            payload.push(byte(b)?);
        }
        return Some(Rf12Line::Packet { header, payload, rssi });
    }
    if t == "?" || t.starts_with("? ") {
        return Some(Rf12Line::BadCrc);
    }
    if t.starts_with("DF ") {
        return Some(Rf12Line::DataFlash);
    }
    if t == "-> ack" || t.starts_with("-> ") {
        return Some(Rf12Line::Ack);
    }
    if t.starts_with("> ") {
        return Some(Rf12Line::Echo);
    }
    if t.starts_with("[RF12demo") || t.starts_with("[RF12") {
        let mut band = None;
        let mut group = None;
        let mut node = None;
        let words: Vec<&str> = t.split_ascii_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if let Some(g) = w.strip_prefix('g') {
                group = g.parse().ok().or(group);
            } else if let Some(n) = w.strip_prefix('i') {
                node = n.trim_end_matches('*').parse().ok().or(node);
            } else if *w == "MHz" && i > 0 {
                band = words[i - 1].parse().ok();
            }
        }
        return Some(Rf12Line::Banner { band, group, node });
    }
    None
}

/// A decimal byte (`0` to `255`, as RF12demo prints them; leading zeros and
/// a `+` accepted as `str::parse` does), without the general parser's cost.
fn byte(word: &str) -> Option<u8> {
    let digits = word.as_bytes();
    let digits = digits.strip_prefix(b"+").unwrap_or(digits);
    if digits.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(d - b'0');
        if v > 255 {
            return None;
        }
    }
    Some(v as u8)
}

/// Whether `text` may be the banner, the one line that changes a receiver's state.
pub(crate) fn may_be_banner(text: &str) -> bool {
    text.trim_start().starts_with("[RF12")
}

/// What the receiver said about itself, carried from line to line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverState {
    pub band: Option<u16>,
    pub group: Option<u8>,
}

/// One node-map entry, resolved.
#[derive(Clone, Debug)]
pub struct NodeRule {
    /// The device name: the entry's `name`, or `DRIVER-N`.
    pub device: String,
    pub driver_name: String,
    /// `None` for a driver blackbox does not have: the bytes are kept raw.
    pub driver: Option<Driver>,
    pub name: Option<String>,
    pub source: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// The node map: node id to rules, first match wins.
#[derive(Clone, Debug, Default)]
pub struct NodeMap {
    pub mask: u8,
    pub nodes: HashMap<u8, Vec<NodeRule>>,
}

impl NodeMap {
    fn rule(&self, node: u8, source: &str, time_ms: i64) -> Option<&NodeRule> {
        self.nodes.get(&node)?.iter().find(|r| {
            r.source.as_deref().is_none_or(|s| s == source) && r.from.is_none_or(|f| time_ms >= f) && r.to.is_none_or(|t| time_ms < t)
        })
    }

    /// Decodes an RF12demo line.
    pub fn decode(&self, line: &Rf12Line, source: &str, time_ms: i64, state: &mut ReceiverState) -> Outcome<'_> {
        match line {
            Rf12Line::Packet { header, payload, rssi } => {
                let node = header & self.mask;
                let (device, mut fields) = match self.rule(node, source, time_ms) {
                    Some(rule) => {
                        let device = Cow::Borrowed(&*rule.device);
                        match rule.driver.as_ref().and_then(|d| d.decode(payload)) {
                            Some(fields) => (device, fields),
                            // No driver, or a packet too short for its driver: keep the bytes, do not guess.
                            None => (device, raw_fields(payload)),
                        }
                    }
                    None => (Cow::Borrowed(NODE_NAMES[usize::from(node)].as_str()), raw_fields(payload)),
                };
                if let Some(rssi) = rssi {
                    fields.push(Field::new("rssi", Value::Int(i64::from(*rssi)), Some("dB")));
                }
                if fields.is_empty() {
                    return Outcome::Recognised { kind: "empty packet" };
                }
                Outcome::Decoded { device, fields }
            }
            Rf12Line::BadCrc => Outcome::Recognised { kind: "bad crc" },
            Rf12Line::DataFlash => Outcome::Recognised { kind: "dataflash" },
            Rf12Line::Ack => Outcome::Recognised { kind: "ack" },
            Rf12Line::Echo => Outcome::Recognised { kind: "command echo" },
            Rf12Line::Banner { band, group, .. } => {
                state.band = band.or(state.band);
                state.group = group.or(state.group);
                Outcome::Recognised { kind: "banner" }
            }
        }
    }
}

// Names handed out for every packet, made once: `node-0` to `node-255`, `b1` to `b66`.
static NODE_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| (0..=255).map(|n| format!("node-{n}")).collect());
static BYTE_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| (1..=66).map(|i| format!("b{i}")).collect());

fn raw_fields(payload: &[u8]) -> Vec<Field<'static>> {
    payload
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let name = match BYTE_NAMES.get(i) {
                Some(n) => Cow::Borrowed(n.as_str()),
                None => Cow::Owned(format!("b{}", i + 1)),
            };
            Field { name, value: Value::Int(i64::from(b)), unit: None }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_recognised() {
        assert_eq!(parse("OK 2 1 115 179 0"), Some(Rf12Line::Packet { header: 2, payload: vec![1, 115, 179, 0], rssi: None }));
        assert_eq!(parse("OK 34 1 115 179 0 (-66)"), Some(Rf12Line::Packet { header: 34, payload: vec![1, 115, 179, 0], rssi: Some(-66) }));
        assert_eq!(parse("? 4 254 249 127"), Some(Rf12Line::BadCrc));
        assert_eq!(parse("DF S 3129 63 222769"), Some(Rf12Line::DataFlash));
        assert_eq!(parse("-> ack"), Some(Rf12Line::Ack));
        assert_eq!(parse("[RF12demo.12] _ i31* g5 @ 868 MHz"), Some(Rf12Line::Banner { band: Some(868), group: Some(5), node: Some(31) }));
        assert_eq!(parse("OK 2 1 300"), None, "not a byte");
        assert_eq!(parse("OK 2 1 -1"), None, "not a byte");
        assert_eq!(parse("OK 2 007 +3 255"), Some(Rf12Line::Packet { header: 2, payload: vec![7, 3, 255], rssi: None }));
        assert_eq!(parse("OK 2 1 2x"), None);
        for word in ["0", "9", "10", "99", "255", "256", "1000", "+", "", "00000000000000000000001", "-0", "+12", "1 2"] {
            assert_eq!(byte(word), word.parse::<u8>().ok(), "{word:?}");
        }
        assert_eq!(parse("OK"), None);
        assert_eq!(parse("temp=21.5"), None);
    }
}
