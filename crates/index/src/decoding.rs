//! The first stages of indexing: lines read in order ([`Lines`]), then
//! decoded into fields with the counts and events of the batch
//! ([`Decoded`]). Sensor ids are given in the next stage
//! ([`crate::sensors`]).
//!
//! Reading is sequential: it carries what flows from line to line (cut
//! lines, and the decoder state of the few lines that use it, such as an
//! RF12demo banner, which it decodes itself). Every other line decodes the
//! same whatever came before it ([`Decoders::uses_state`]), so batches are
//! decoded on several threads and put back in order afterwards.

use crate::{keys, Cursor, DayMeta, EventRecord, SourceCounts};
use decode::{Decoders, Field, Outcome, SourceState};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

/// A batch of lines read in order, not yet decoded.
#[derive(Debug, Default)]
pub(crate) struct Lines<'d> {
    pub lines: u64,
    pub day_meta: DayMeta,
    /// The sources of the batch, in order of appearance.
    sources: Vec<String>,
    /// The readings' texts, one after the other.
    text: String,
    items: Vec<Item>,
    /// Lines that use their source's state, decoded when read.
    decoded: Vec<Outcome<'d>>,
    /// The source of the previous reading: most lines come from the same few.
    last_source: usize,
}

#[derive(Debug)]
struct Item {
    line: u64,
    time_ms: i64,
    source: usize,
    text: Range<usize>,
    how: How,
}

#[derive(Debug)]
enum How {
    /// A piece of a line cut by capture: kept in the log, never decoded.
    Piece,
    Decode,
    /// Decoded when read: `Lines::decoded[i]`.
    Decoded(usize),
}

impl<'d> Lines<'d> {
    /// Adds one reading; the decoder state and the cut lines in progress are
    /// carried in the cursor.
    pub fn reading(&mut self, cur: &mut Cursor, decoders: &'d Decoders, line: u64, time_ms: i64, source: &str, text: &str) {
        let s = match self.sources.get(self.last_source) {
            Some(name) if name == source => self.last_source,
            _ => match self.sources.iter().position(|name| name == source) {
                Some(i) => i,
                None => {
                    self.sources.push(source.to_string());
                    self.sources.len() - 1
                }
            },
        };
        self.last_source = s;
        let how = if cur.cuts.is_piece(source) {
            How::Piece
        } else if decoders.uses_state(source, text) {
            if !cur.states.contains_key(source) {
                cur.states.insert(source.to_string(), SourceState::default());
            }
            let Some(state) = cur.states.get_mut(source) else { unreachable!("inserted above") };
            self.decoded.push(decoders.decode(source, time_ms, text, state));
            How::Decoded(self.decoded.len() - 1)
        } else {
            How::Decode
        };
        let start = self.text.len();
        self.text.push_str(text);
        self.items.push(Item { line, time_ms, source: s, text: start..self.text.len(), how });
    }
}

/// One decoded reading.
#[derive(Debug)]
pub(crate) struct Reading<'d> {
    pub line: u64,
    pub time_ms: i64,
    /// An index into [`Decoded::sources`].
    pub source: usize,
    pub device: Cow<'d, str>,
    /// Where its fields are in [`Decoded::fields`].
    pub fields: Range<usize>,
}

/// A batch of decoded lines.
#[derive(Debug, Default)]
pub(crate) struct Decoded<'d> {
    pub lines: u64,
    /// The sources of the batch, in order of appearance, with their counts.
    pub sources: Vec<(String, SourceCounts)>,
    pub readings: Vec<Reading<'d>>,
    /// The fields of every reading, one after the other: handed to the next
    /// stage as one allocation, so that thread frees one block instead of
    /// one per line.
    pub fields: Vec<Field<'d>>,
    pub event_counts: BTreeMap<String, u64>,
    pub events: Vec<(Vec<u8>, EventRecord)>,
    pub day_meta: DayMeta,
}

impl<'d> Decoded<'d> {
    /// Decodes a batch of lines of the day `day` (`YYYYMMDD`, day number `day_no`).
    pub fn new(lines: Lines<'d>, decoders: &'d Decoders, day_no: i64, day: &str) -> Decoded<'d> {
        let Lines { lines, day_meta, sources, text, items, decoded, .. } = lines;
        let mut counts = vec![SourceCounts::default(); sources.len()];
        let mut out = Decoded {
            lines,
            readings: Vec::with_capacity(items.len()),
            fields: Vec::with_capacity(items.len() * 4),
            day_meta,
            ..Decoded::default()
        };
        let mut decoded: Vec<Option<Outcome<'d>>> = decoded.into_iter().map(Some).collect();
        // Lines that do not use the state neither read nor change it: any state will do.
        let mut scratch = SourceState::default();
        for item in items {
            let source = &sources[item.source];
            let text = &text[item.text];
            let ts = item.time_ms;
            let sd = &mut counts[item.source];
            if sd.lines == 0 {
                sd.first_ms = ts;
            }
            sd.lines += 1;
            sd.last_ms = ts;
            for (k, e) in decoders.events(source, text).into_iter().enumerate() {
                *out.event_counts.entry(e.code.clone()).or_default() += 1;
                out.events.push((
                    keys::event(day_no, item.line, k as u8),
                    EventRecord {
                        time_ms: ts,
                        source: source.clone(),
                        code: e.code,
                        level: e.level.to_string(),
                        description: e.description,
                        file: format!("{day}.txt"),
                        line: item.line,
                        text: text.into(),
                    },
                ));
            }
            let outcome = match item.how {
                How::Piece => {
                    sd.partial += 1;
                    continue;
                }
                How::Decode => decoders.decode(source, ts, text, &mut scratch),
                // Each is taken once, by the item that made it.
                How::Decoded(i) => decoded.get_mut(i).and_then(Option::take).unwrap_or(Outcome::Undecoded),
            };
            match outcome {
                Outcome::Decoded { device, fields } => {
                    sd.decoded += 1;
                    sd.values += fields.len() as u64;
                    let start = out.fields.len();
                    out.fields.extend(fields);
                    out.readings.push(Reading {
                        line: item.line,
                        time_ms: ts,
                        source: item.source,
                        device,
                        fields: start..out.fields.len(),
                    });
                }
                Outcome::Recognised { .. } => sd.recognised += 1,
                Outcome::Undecoded => sd.undecoded += 1,
            }
        }
        out.sources = sources.into_iter().zip(counts).collect();
        out
    }
}
