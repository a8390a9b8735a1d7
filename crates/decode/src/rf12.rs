//! RF12demo: `OK HDR B1 B2 ...` packets, `?` bad-CRC packets, `DF` dataflash
//! status, `-> ack`, and the `[RF12demo.12] _ i31* g5 @ 868 MHz` banner.

use crate::bits::Driver;
use crate::value::{Field, Outcome, Value};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
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
        let mut payload = Vec::with_capacity(rest.len() / 2);
        let (header, rssi) = packet(rest, |b| {
            payload.push(b);
            true
        })?;
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

/// The parts of a packet after `OK `: its header byte and RSSI suffix,
/// handing each payload byte to `byte_out` (which returns false to give up).
fn packet(rest: &str, mut byte_out: impl FnMut(u8) -> bool) -> Option<(u8, Option<i32>)> {
    // Only a line that ends with `)` can have an RSSI suffix: look for its `(` then.
    let (rest, rssi) = match rest.ends_with(')').then(|| rest.rfind('(')).flatten() {
        Some(i) => (rest[..i].trim_end(), rest[i + 1..rest.len() - 1].trim().parse().ok()),
        None => (rest, None),
    };
    let mut bytes = rest.split_ascii_whitespace();
    let header = byte(bytes.next()?)?;
    for b in bytes {
        if !byte_out(byte(b)?) {
            return None;
        }
    }
    Some((header, rssi))
}

/// The most payload bytes [`Packet`] holds: RF12 packets carry at most 66.
const PACKET_MAX: usize = 72;

/// A packet parsed without allocating, for the indexer's hot path.
pub(crate) struct Packet {
    pub header: u8,
    pub rssi: Option<i32>,
    len: usize,
    bytes: [u8; PACKET_MAX],
}

impl Packet {
    /// The packet of an `OK` line, if it is one and fits ([`parse`] takes the rest).
    pub fn parse(text: &str) -> Option<Packet> {
        match Packet::parse_plain(text.as_bytes()) {
            Plain::Packet(p) => Some(p),
            Plain::Not => None,
            Plain::Unsure => Packet::parse_any(text),
        }
    }

    /// One pass over the bytes of a plain packet line, as RF12demo writes
    /// them: `OK`, then decimal bytes separated by spaces, then an optional
    /// `(RSSI)`. Anything else it is unsure of (tabs, other whitespace, a
    /// line that needs trimming), and [`Packet::parse_any`] decides, so the
    /// two always agree (a property test checks it).
    fn parse_plain(b: &[u8]) -> Plain {
        let Some(rest) = b.strip_prefix(b"OK ") else {
            // Not a packet unless whitespace trimmed from its start would make it one.
            return match b.first() {
                Some(c) if c.is_ascii_graphic() => Plain::Not,
                _ => Plain::Unsure,
            };
        };
        // A line that ends in whitespace is trimmed by `parse_any`.
        if !rest.last().is_some_and(u8::is_ascii_graphic) {
            return Plain::Unsure;
        }
        let (body, rssi) = match rest.last() {
            Some(b')') => match memchr::memrchr(b'(', rest) {
                Some(i) => match plain_int(&rest[i + 1..rest.len() - 1]) {
                    Some(r) => (&rest[..i], Some(r)),
                    None => return Plain::Unsure,
                },
                None => (rest, None),
            },
            _ => (rest, None),
        };
        let mut p = Packet { header: 0, rssi, len: 0, bytes: [0; PACKET_MAX] };
        let mut header = None;
        let n = body.len();
        let mut i = 0;
        while i < n {
            if body[i] == b' ' {
                i += 1;
                continue;
            }
            i += usize::from(body[i] == b'+');
            let start = i;
            let mut v = 0u32;
            while i < n {
                let d = body[i].wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                v = v * 10 + u32::from(d);
                if v > 255 {
                    // Whatever follows, the word is no byte.
                    return Plain::Not;
                }
                i += 1;
            }
            if i < n && body[i] != b' ' {
                // A word with something else in it: not a byte, or whitespace `parse_any` splits on.
                return Plain::Unsure;
            }
            if i == start {
                return Plain::Not;
            }
            if header.is_none() {
                header = Some(v as u8);
            } else {
                let Some(slot) = p.bytes.get_mut(p.len) else { return Plain::Not };
                *slot = v as u8;
                p.len += 1;
            }
        }
        match header {
            Some(h) => {
                p.header = h;
                Plain::Packet(p)
            }
            None => Plain::Not,
        }
    }

    /// Any packet line: trimmed, words split at any ASCII whitespace.
    fn parse_any(text: &str) -> Option<Packet> {
        let rest = text.trim().strip_prefix("OK ")?;
        let mut p = Packet { header: 0, rssi: None, len: 0, bytes: [0; PACKET_MAX] };
        let (header, rssi) = packet(rest, |b| match p.bytes.get_mut(p.len) {
            Some(slot) => {
                *slot = b;
                p.len += 1;
                true
            }
            None => false,
        })?;
        p.header = header;
        p.rssi = rssi;
        Some(p)
    }

    pub fn payload(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What [`Packet::parse_plain`] made of a line.
enum Plain {
    Packet(Packet),
    Not,
    Unsure,
}

/// An RSSI as RF12demo writes it: an optional `-` and up to nine digits
/// (what `str::parse::<i32>` reads the same); `None` for anything else.
fn plain_int(b: &[u8]) -> Option<i32> {
    let (neg, digits) = match b.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, b),
    };
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i32, |v, d| v * 10 + i32::from(d - b'0'));
    Some(if neg { -v } else { v })
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
    match text.as_bytes().first() {
        Some(b'[') => text.starts_with("[RF12"),
        // Nothing to trim (the usual case: `OK ...`): not a banner.
        Some(c) if c.is_ascii_graphic() => false,
        _ => text.trim_start().starts_with("[RF12"),
    }
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
    /// By node id (every packet looks its node up: an index, not a hash).
    nodes: Vec<Vec<NodeRule>>,
}

impl NodeMap {
    pub fn new(mask: u8) -> NodeMap {
        NodeMap { mask, nodes: Vec::new() }
    }

    /// Sets the rules of node `id`.
    pub fn set(&mut self, id: u8, rules: Vec<NodeRule>) {
        let i = usize::from(id);
        if self.nodes.len() <= i {
            self.nodes.resize(i + 1, Vec::new());
        }
        self.nodes[i] = rules;
    }

    fn rule(&self, node: u8, source: &str, time_ms: i64) -> Option<&NodeRule> {
        self.nodes.get(usize::from(node))?.iter().find(|r| {
            r.source.as_deref().is_none_or(|s| s == source) && r.from.is_none_or(|f| time_ms >= f) && r.to.is_none_or(|t| time_ms < t)
        })
    }

    /// Decodes a packet, appending its fields to `out`: the device, or
    /// `None` for a packet without fields (recognised, not decoded).
    pub(crate) fn decode_packet_into<'a>(
        &'a self,
        header: u8,
        payload: &[u8],
        rssi: Option<i32>,
        source: &str,
        time_ms: i64,
        out: &mut Vec<Field<'a>>,
    ) -> Option<Cow<'a, str>> {
        let start = out.len();
        let node = header & self.mask;
        let device = match self.rule(node, source, time_ms) {
            Some(rule) => {
                // No driver, or a packet too short for its driver: keep the bytes, do not guess.
                if !rule.driver.as_ref().is_some_and(|d| d.decode_into(payload, out)) {
                    out.extend(raw_fields(payload));
                }
                Cow::Borrowed(&*rule.device)
            }
            None => {
                out.extend(raw_fields(payload));
                Cow::Borrowed(NODE_NAMES[usize::from(node)].as_str())
            }
        };
        if let Some(rssi) = rssi {
            out.push(Field::new("rssi", Value::Int(i64::from(rssi)), Some("dB")));
        }
        (out.len() > start).then_some(device)
    }

    /// Decodes an RF12demo line.
    pub fn decode(&self, line: &Rf12Line, source: &str, time_ms: i64, state: &mut ReceiverState) -> Outcome<'_> {
        match line {
            Rf12Line::Packet { header, payload, rssi } => {
                let mut fields = Vec::with_capacity(payload.len() + 1);
                match self.decode_packet_into(*header, payload, *rssi, source, time_ms, &mut fields) {
                    Some(device) => Outcome::Decoded { device, fields },
                    None => Outcome::Recognised { kind: "empty packet" },
                }
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

fn raw_fields<'a>(payload: &[u8]) -> impl Iterator<Item = Field<'a>> + '_ {
    payload.iter().enumerate().map(|(i, &b)| {
        let name = match BYTE_NAMES.get(i) {
            Some(n) => Cow::Borrowed(n.as_str()),
            None => Cow::Owned(format!("b{}", i + 1)),
        };
        Field { name, value: Value::Int(i64::from(b)), unit: None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass parse of plain packet lines says what the general
        /// one says, on lines made of the characters that matter to either.
        #[test]
        fn plain_packets_parse_as_any(text in "[OK0-9+() \t\x0b\u{a0}-]{0,40}|OK [0-9 ]{0,30}( \\(-?[0-9]{1,11}\\))?") {
            let plain = match Packet::parse_plain(text.as_bytes()) {
                Plain::Packet(p) => Some(Some((p.header, p.rssi, p.payload().to_vec()))),
                Plain::Not => Some(None),
                Plain::Unsure => None,
            };
            let any = Packet::parse_any(&text).map(|p| (p.header, p.rssi, p.payload().to_vec()));
            if let Some(plain) = plain {
                prop_assert_eq!(plain, any, "{:?}", text);
            }
        }
    }

    #[test]
    fn plain_lines_take_the_one_pass() {
        for text in ["OK 3 215 96 219 0 (-76)", "OK 2 1 115 179 0", "OK 9", "OK 2 +3 007 (-0)"] {
            assert!(matches!(Packet::parse_plain(text.as_bytes()), Plain::Packet(_)), "{text:?}");
        }
        for text in ["OK 2 300", "OK", "? 4 254", "OK 2 +"] {
            assert!(matches!(Packet::parse_plain(text.as_bytes()), Plain::Not), "{text:?}");
        }
        // 72 payload bytes fit, 73 do not (the general parser agrees, and `parse` takes those).
        let full = format!("OK 1{}", " 5".repeat(PACKET_MAX));
        assert!(matches!(Packet::parse_plain(full.as_bytes()), Plain::Packet(p) if p.payload().len() == PACKET_MAX));
        let over = format!("{full} 5");
        assert!(matches!(Packet::parse_plain(over.as_bytes()), Plain::Not));
        assert!(Packet::parse_any(&over).is_none());
        assert_eq!(Packet::parse("OK 3 1 2 (-76)").map(|p| (p.header, p.rssi, p.payload().to_vec())), Some((3, Some(-76), vec![1, 2])));
        assert_eq!(Packet::parse(" OK 3 1\t2 ").map(|p| (p.header, p.rssi, p.payload().to_vec())), Some((3, None, vec![1, 2])));
    }

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
