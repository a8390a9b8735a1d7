//! The first stages of indexing: lines read in order ([`Lines`]), then
//! decoded and gathered in rows per device, with the counts and events of
//! the batch ([`Decoded`]). Fields are numbered within the batch; sensor ids
//! are given in the next stage ([`crate::sensors`]).
//!
//! Reading is sequential: it carries what flows from line to line (cut
//! lines, and the decoder state of the few lines that use it, such as an
//! RF12demo banner, which it decodes itself). Every other line decodes the
//! same whatever came before it ([`Decoders::uses_state`]), so batches are
//! decoded on several threads and put back in order afterwards.

use crate::fx::FxMap;
use crate::segment::Rows;
use crate::{keys, Cursor, DayMeta, EventRecord, FieldDay, SourceCounts, BATCH_LINES, COMMIT_LINES};
use decode::{Decoders, Field, Found, Outcome, SourceState};
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
    /// How many batches the rows of this one will be gathered with into a
    /// commit when it is the first of them (else 0): its vectors are made
    /// big enough for all, so gathering them copies no row twice.
    pub first_of: usize,
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

/// Rows a device's vectors have room for when a batch first meets it and
/// no earlier batch told how many it has: they grow by doubling from there.
const ROWS_AT_FIRST: usize = 64;

/// The rows each device had in the last batch a decoder decoded: batches
/// are alike, so the next one's vectors are made that big at once instead
/// of growing row by row (each decoder thread keeps its own).
#[derive(Debug, Default)]
pub(crate) struct RowHints(FxMap<Box<str>, usize>);

impl RowHints {
    /// Room for the rows of `device`: what it had last time, and a quarter
    /// more, as batches differ a little.
    fn get(&self, device: &str) -> usize {
        self.0.get(device).map_or(ROWS_AT_FIRST, |&n| n + n / 4 + 8)
    }

    fn set(&mut self, device: &str, rows: usize) {
        match self.0.get_mut(device) {
            Some(n) => *n = rows,
            None => {
                self.0.insert(device.into(), rows);
            }
        }
    }
}

impl<'d> Lines<'d> {
    /// Tells the batch it is the `n`th of its day: every batch but a day's
    /// last has [`BATCH_LINES`] lines, so commits gather a fixed number,
    /// and the first of each knows it is ([`Lines::first_of`]).
    pub fn number(&mut self, n: usize) {
        let per_commit = COMMIT_LINES.div_ceil(BATCH_LINES) as usize;
        self.first_of = if n.is_multiple_of(per_commit) { per_commit } else { 0 };
    }

    /// Takes the batch, leaving an empty one with room for as much as it
    /// held: batches are alike, so the next one's vectors do not grow line by line.
    pub fn take(&mut self) -> Lines<'d> {
        let next = Lines { items: Vec::with_capacity(self.items.len()), text: String::with_capacity(self.text.len()), ..Lines::default() };
        std::mem::replace(self, next)
    }

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

/// A batch's rows of one device, with fields numbered in order of
/// appearance in the batch (`Column::sensor` holds that number until the
/// next stage gives the fields their sensor ids).
#[derive(Debug)]
pub(crate) struct DeviceRows<'d> {
    /// An index into [`Decoded::sources`].
    pub source: usize,
    pub device: Cow<'d, str>,
    pub rows: Rows,
    /// The batch's fields of the device, by their local number, with what
    /// the batch adds to their day records.
    pub fields: Vec<(Cow<'d, str>, ColumnStats)>,
    /// Field names to local numbers (used when the previous row does not tell).
    by_name: FxMap<Box<str>, u32>,
    /// The address and length of each of the previous row's field names: a
    /// driver hands out the same `&str` for every packet, so equal addresses
    /// mean equal names without comparing them.
    last_at: Vec<(usize, usize)>,
    last_columns: Vec<u32>,
    /// The previous row's layout; none before the first row.
    last_layout: Option<u32>,
}

/// A batch of decoded lines.
#[derive(Debug, Default)]
pub(crate) struct Decoded<'d> {
    pub lines: u64,
    /// The sources of the batch, in order of appearance, with their counts.
    pub sources: Vec<(String, SourceCounts)>,
    /// The batch's devices, in order of appearance.
    pub devices: Vec<DeviceRows<'d>>,
    /// Rows of packets replayed from a dataflash, at the time the receiver
    /// got them (earlier than their lines): stored apart, by their own day.
    pub late: Vec<DeviceRows<'d>>,
    pub event_counts: BTreeMap<String, u64>,
    pub events: Vec<(Vec<u8>, EventRecord)>,
    pub day_meta: DayMeta,
}

/// Where a batch's devices are in [`Decoded::devices`].
#[derive(Default)]
struct DeviceIndex {
    /// By source and the address and length of a borrowed name (a driver's
    /// device name is the same `&str` for every packet of a node).
    by_address: FxMap<(usize, usize, usize), usize>,
    /// By source and name, for names made from the line.
    by_name: FxMap<(usize, Box<str>), usize>,
}

impl<'d> Decoded<'d> {
    /// Decodes a batch of lines of the day file named `file` (`YYYYMMDD.txt`
    /// or `.txt.gz`, day number `day_no`).
    pub fn new(lines: Lines<'d>, decoders: &'d Decoders, day_no: i64, file: &str, hints: &mut RowHints) -> Decoded<'d> {
        let Lines { lines, day_meta, sources, text, items, decoded, first_of, .. } = lines;
        let room = first_of.max(1);
        let mut counts = vec![SourceCounts::default(); sources.len()];
        let mut out = Decoded { lines, day_meta, ..Decoded::default() };
        let mut index = DeviceIndex::default();
        let mut late_index = DeviceIndex::default();
        let mut decoded: Vec<Option<Outcome<'d>>> = decoded.into_iter().map(Some).collect();
        // Lines that do not use the state neither read nor change it: any state will do.
        let mut scratch = SourceState::default();
        // The fields of one line: one vector for the whole batch.
        let mut fields = Vec::new();
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
                        file: file.to_string(),
                        line: item.line,
                        text: text.into(),
                    },
                ));
            }
            fields.clear();
            let mut late = None;
            let found = match item.how {
                How::Piece => {
                    sd.partial += 1;
                    continue;
                }
                How::Decode => decoders.decode_into(source, ts, text, &mut scratch, &mut fields),
                // Each is taken once, by the item that made it.
                How::Decoded(i) => match decoded.get_mut(i).and_then(Option::take) {
                    Some(Outcome::Decoded { device, fields: f }) => {
                        fields.extend(f);
                        Found::Decoded { device }
                    }
                    Some(Outcome::Replayed { time_ms, approximate, device, fields: f }) => {
                        fields.extend(f);
                        late = Some(time_ms);
                        sd.replayed += 1;
                        sd.replay_approximate += u64::from(approximate);
                        Found::Decoded { device }
                    }
                    Some(Outcome::Recognised { kind }) => {
                        match kind {
                            decode::REPLAY_KNOWN => sd.replay_known += 1,
                            decode::REPLAY_UNPLACED => sd.replay_unplaced += 1,
                            decode::FLASH_DAMAGED => sd.flash_damaged += 1,
                            _ => {}
                        }
                        Found::Recognised { kind }
                    }
                    Some(Outcome::Undecoded) | None => Found::Undecoded,
                },
            };
            match found {
                Found::Decoded { device } => {
                    sd.decoded += 1;
                    sd.values += fields.len() as u64;
                    match late {
                        Some(t) => {
                            let at = late_index.find(&mut out.late, item.source, device, &RowHints::default(), 1);
                            out.late[at].push(item.line, t, &mut fields);
                        }
                        None => {
                            let at = index.find(&mut out.devices, item.source, device, hints, room);
                            out.devices[at].push(item.line, ts, &mut fields);
                        }
                    }
                }
                Found::Recognised { .. } => sd.recognised += 1,
                Found::Undecoded => sd.undecoded += 1,
            }
        }
        out.sources = sources.into_iter().zip(counts).collect();
        for d in &out.devices {
            hints.set(&d.device, d.rows.len());
        }
        out
    }
}

impl DeviceIndex {
    /// Where the rows of `device` of source `source` are, added if new.
    fn find<'d>(
        &mut self,
        devices: &mut Vec<DeviceRows<'d>>,
        source: usize,
        device: Cow<'d, str>,
        hints: &RowHints,
        batches: usize,
    ) -> usize {
        let found = match &device {
            Cow::Borrowed(d) => self.by_address.get(&(source, d.as_ptr() as usize, d.len())).copied(),
            Cow::Owned(_) => None,
        };
        if let Some(at) = found {
            return at;
        }
        let key = (source, Box::<str>::from(&*device));
        let at = match self.by_name.get(&key) {
            Some(&at) => at,
            None => {
                let room = hints.get(&device) * batches;
                devices.push(DeviceRows {
                    source,
                    device: device.clone(),
                    rows: Rows::with_capacity(room),
                    fields: Vec::new(),
                    by_name: FxMap::default(),
                    last_at: Vec::new(),
                    last_columns: Vec::new(),
                    last_layout: None,
                });
                self.by_name.insert(key, devices.len() - 1);
                devices.len() - 1
            }
        };
        if let Cow::Borrowed(d) = device {
            self.by_address.insert((source, d.as_ptr() as usize, d.len()), at);
        }
        at
    }
}

impl<'d> DeviceRows<'d> {
    /// Adds a row: its time, line and fields (taken out of `fields`).
    fn push(&mut self, line: u64, ts: i64, fields: &mut Vec<Field<'d>>) {
        let same = self.last_layout.is_some()
            && fields.len() == self.last_at.len()
            && fields.len() == self.last_columns.len()
            && fields.iter().zip(&self.last_at).all(|(f, &at)| (f.name.as_ptr() as usize, f.name.len()) == at);
        let layout = match self.last_layout {
            Some(l) if same => l,
            _ => {
                self.last_at.clear();
                self.last_columns.clear();
                for f in fields.iter() {
                    self.last_at.push((f.name.as_ptr() as usize, f.name.len()));
                    let n = match self.by_name.get(&*f.name) {
                        Some(&n) => n,
                        None => {
                            let n = self.fields.len() as u32;
                            self.fields.push((f.name.clone(), ColumnStats::default()));
                            self.by_name.insert((*f.name).into(), n);
                            n
                        }
                    };
                    let c = self.rows.column(n);
                    let values = &mut self.rows.columns[c as usize].values;
                    if values.capacity() == 0 {
                        // As much room as the rows were given (see `RowHints`).
                        values.reserve(self.rows.times.capacity());
                    }
                    self.last_columns.push(c);
                }
                // An owned name has a new address every time: compare names next time.
                if fields.iter().any(|f| matches!(f.name, Cow::Owned(_))) {
                    self.last_at.clear();
                }
                let l = self.rows.layout(&self.last_columns);
                self.last_layout = Some(l);
                l
            }
        };
        self.rows.times.push(ts);
        self.rows.lines.push(line);
        self.rows.row_layout.push(layout);
        for (f, &c) in fields.drain(..).zip(&self.last_columns) {
            let column = &mut self.rows.columns[c as usize];
            // Columns are numbered by field here (`column` above), so the column's `sensor` is the field's number.
            let stats = &mut self.fields[column.sensor as usize].1;
            stats.add(ts, &f);
            column.values.push(f.value);
        }
    }
}

/// What a batch adds to a sensor's day record ([`FieldDay`]).
#[derive(Debug, Default)]
pub(crate) struct ColumnStats {
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub kind: &'static str,
    pub unit: Option<String>,
    /// The address and length of the unit last seen: a driver's units are
    /// the same `&str` every time, so most values need no comparison.
    unit_at: (usize, usize),
}

impl ColumnStats {
    fn add(&mut self, ts: i64, f: &Field<'_>) {
        if self.count == 0 {
            self.first_ms = ts;
        }
        self.count += 1;
        self.last_ms = ts;
        self.kind = f.value.type_name();
        if let Some(u) = &f.unit {
            let at = (u.as_ptr() as usize, u.len());
            if self.unit_at != at {
                self.unit_at = at;
                if self.unit.as_deref() != Some(&**u) {
                    self.unit = Some(u.to_string());
                }
            }
        }
    }

    /// Adds what a later batch saw.
    pub fn merge(&mut self, later: &ColumnStats) {
        if self.count == 0 {
            self.first_ms = later.first_ms;
        }
        self.count += later.count;
        self.last_ms = later.last_ms;
        self.kind = later.kind;
        if later.unit.is_some() {
            self.unit.clone_from(&later.unit);
        }
    }

    pub fn to_field_day(&self) -> FieldDay {
        FieldDay { count: self.count, first_ms: self.first_ms, last_ms: self.last_ms, kind: self.kind.to_string(), unit: self.unit.clone() }
    }
}
