//! A segment: some of one device's readings of one day, stored column by
//! column as one sled value.
//!
//! A device sends the same fields line after line, so a segment keeps the
//! time and line number of each row once (not once per field), the list of
//! fields each row carries (its *layout*: usually one for the whole segment,
//! several when firmware versions or optional JSON keys mix), and one column
//! of values per field. Columns are packed by [`pack`]: integers and exact
//! decimals as deltas in frame-of-reference blocks, booleans as bits, text
//! with repeats elided. A query of one sensor reads the times, the layouts
//! and its own column, and skips the others by their stored length.
//!
//! Encoding (part of the cache format version): a format byte (0), varint
//! row count, column count and layout count; each layout as a varint length
//! and column numbers; the row layouts (frame-of-reference packed, only when
//! there are several layouts); the times and the line numbers as packed
//! deltas; then per column its sensor id, its byte length and its bytes: a
//! kind byte and the values.

use crate::pack::{self, put_varint, zigzag, Reader};
use decode::{as_decimal, Value};

/// One device's rows, in the order they were added (line order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub times: Vec<i64>,
    pub lines: Vec<u64>,
    /// The layout of each row (an index into `layouts`).
    pub row_layout: Vec<u32>,
    /// Each layout: the columns of a row's fields, in the line's order.
    pub layouts: Vec<Vec<u32>>,
    pub columns: Vec<Column>,
}

/// One field of the device: its sensor id and the values of the rows that carry it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Column {
    pub sensor: u32,
    pub values: Vec<Value>,
}

impl Rows {
    /// Rows with room for `n` rows' times, lines and layouts.
    pub fn with_capacity(n: usize) -> Rows {
        Rows { times: Vec::with_capacity(n), lines: Vec::with_capacity(n), row_layout: Vec::with_capacity(n), ..Rows::default() }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Appends `other`'s rows (another batch of the same device), matching
    /// its columns and layouts to these by sensor id.
    pub fn append(&mut self, other: Rows) {
        if self.is_empty() && self.columns.is_empty() && self.layouts.is_empty() {
            // Nothing to match: the first batch of a device in a commit.
            *self = other;
            return;
        }
        let col_map: Vec<u32> = other.columns.iter().map(|c| self.column(c.sensor)).collect();
        let layout_map: Vec<u32> = other
            .layouts
            .iter()
            .map(|l| {
                let mapped: Vec<u32> = l.iter().map(|&c| col_map[c as usize]).collect();
                self.layout(&mapped)
            })
            .collect();
        self.times.extend_from_slice(&other.times);
        self.lines.extend_from_slice(&other.lines);
        self.row_layout.extend(other.row_layout.iter().map(|&l| layout_map[l as usize]));
        for (c, column) in other.columns.into_iter().enumerate() {
            self.columns[col_map[c] as usize].values.extend(column.values);
        }
    }

    /// The column of `sensor`, added if new.
    pub fn column(&mut self, sensor: u32) -> u32 {
        match self.columns.iter().position(|c| c.sensor == sensor) {
            Some(i) => i as u32,
            None => {
                self.columns.push(Column { sensor, values: Vec::new() });
                (self.columns.len() - 1) as u32
            }
        }
    }

    /// The layout made of these columns, added if new.
    pub fn layout(&mut self, columns: &[u32]) -> u32 {
        match self.layouts.iter().position(|l| l == columns) {
            Some(i) => i as u32,
            None => {
                self.layouts.push(columns.to_vec());
                (self.layouts.len() - 1) as u32
            }
        }
    }

    /// The rows grouped by `key` of their time (a day number), each group in
    /// the order the rows were added.
    pub fn split_by(&self, key: impl Fn(i64) -> i64) -> std::collections::BTreeMap<i64, Rows> {
        let mut out: std::collections::BTreeMap<i64, Rows> = std::collections::BTreeMap::new();
        let mut next = self.cursors();
        let mut columns = Vec::new();
        for r in 0..self.len() {
            let part = out.entry(key(self.times[r])).or_default();
            columns.clear();
            let mut values = Vec::new();
            for (sensor, v) in self.row(r, &mut next) {
                columns.push(part.column(sensor));
                values.push(v.clone());
            }
            let layout = part.layout(&columns);
            part.times.push(self.times[r]);
            part.lines.push(self.lines[r]);
            part.row_layout.push(layout);
            for (&c, v) in columns.iter().zip(values) {
                part.columns[c as usize].values.push(v);
            }
        }
        out
    }

    /// Where each column's values start: the position [`Rows::row`] takes values from.
    pub fn cursors(&self) -> Vec<usize> {
        vec![0; self.columns.len()]
    }

    /// The (sensor, value) pairs of row `r` in the line's order, taking each
    /// column's value at `next` and moving it on: rows are read in order, each once.
    pub fn row<'a>(&'a self, r: usize, next: &'a mut [usize]) -> impl Iterator<Item = (u32, &'a Value)> + 'a {
        self.layouts[self.row_layout[r] as usize].iter().map(move |&c| {
            let column = &self.columns[c as usize];
            // Rows are consistent by construction (built row by row, or
            // decoded with each column's count taken from the layouts).
            let v = &column.values[next[c as usize]];
            next[c as usize] += 1;
            (column.sensor, v)
        })
    }
}

// Column kinds.
const INT: u8 = 0;
const DECIMAL: u8 = 1;
const BOOL: u8 = 2;
const TEXT: u8 = 3;
const MIXED: u8 = 4;

// Value tags of a mixed column.
const TAG_INT: u8 = 0;
const TAG_DEC: u8 = 1;
const TAG_F64: u8 = 2;
const TAG_FALSE: u8 = 3;
const TAG_TRUE: u8 = 4;
const TAG_TEXT: u8 = 5;

/// The most rows, columns or layouts a segment may claim: far beyond what
/// the indexer writes, it only keeps damaged bytes from asking for huge
/// allocations.
const LIMIT: usize = 1 << 24;

pub fn encode(rows: &Rows) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rows.len() * (4 + rows.columns.len() * 2));
    out.push(0);
    put_varint(&mut out, rows.len() as u64);
    put_varint(&mut out, rows.columns.len() as u64);
    put_varint(&mut out, rows.layouts.len() as u64);
    for l in &rows.layouts {
        put_varint(&mut out, l.len() as u64);
        for &c in l {
            put_varint(&mut out, u64::from(c));
        }
    }
    if rows.layouts.len() > 1 {
        pack::put_deltas(&mut out, rows.row_layout.iter().map(|&l| i64::from(l)));
    }
    pack::put_deltas(&mut out, rows.times.iter().copied());
    pack::put_deltas(&mut out, rows.lines.iter().map(|&l| l as i64));
    let mut col = Vec::new();
    for c in &rows.columns {
        col.clear();
        encode_column(&mut col, &c.values);
        put_varint(&mut out, u64::from(c.sensor));
        put_varint(&mut out, col.len() as u64);
        out.extend_from_slice(&col);
    }
    out
}

pub(crate) fn encode_column(out: &mut Vec<u8>, values: &[Value]) {
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        out.push(INT);
        pack::put_deltas(out, values.iter().map(|v| if let Value::Int(i) = v { *i } else { 0 }));
    } else if let Some((scale, ms)) = decimal_column(values) {
        out.push(DECIMAL);
        out.push(scale);
        pack::put_deltas(out, ms.into_iter());
    } else if values.iter().all(|v| matches!(v, Value::Bool(_))) {
        out.push(BOOL);
        pack::put_deltas(out, values.iter().map(|v| i64::from(matches!(v, Value::Bool(true)))));
    } else if values.iter().all(|v| matches!(v, Value::Text(_))) {
        out.push(TEXT);
        let mut prev: Option<&str> = None;
        for v in values {
            let Value::Text(s) = v else { continue };
            if prev == Some(s.as_str()) {
                put_varint(out, 0);
            } else {
                put_varint(out, s.len() as u64 + 1);
                out.extend_from_slice(s.as_bytes());
            }
            prev = Some(s);
        }
    } else {
        out.push(MIXED);
        for v in values {
            match v {
                Value::Int(i) => {
                    out.push(TAG_INT);
                    put_varint(out, zigzag(*i));
                }
                Value::Float(f) => match as_decimal(*f) {
                    Some((m, k)) => {
                        out.push(TAG_DEC);
                        out.push(k);
                        put_varint(out, zigzag(m));
                    }
                    None => {
                        out.push(TAG_F64);
                        out.extend_from_slice(&f.to_le_bytes());
                    }
                },
                Value::Bool(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
                Value::Text(s) => {
                    out.push(TAG_TEXT);
                    put_varint(out, s.len() as u64);
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }
}

/// A decimal column's scale ([`common_scale`]) and its values as integers
/// at that scale (`(f * 10^scale).round()`), found with one product, one
/// rounding and one division a value where the values keep to one scale
/// (a value exact at a scale has no more decimals than it: only one that
/// is not asks for its own, [`as_decimal`]). A test holds it to
/// [`common_scale`].
fn decimal_column(values: &[Value]) -> Option<(u8, Vec<i64>)> {
    let mut scale = 0u8;
    let mut p = 1f64;
    let mut ms = Vec::with_capacity(values.len());
    // Whether `ms` holds every value so far at `scale`.
    let mut whole = true;
    for v in values {
        let Value::Float(f) = *v else { return None };
        let m = (f * p).round();
        // As `as_decimal` at this scale (negative zero is not a decimal).
        if m.abs() < 9.0e15 && m / p == f && !(f == 0.0 && f.is_sign_negative()) {
            ms.push(m as i64);
            continue;
        }
        let (_, k) = as_decimal(f)?;
        if k > scale {
            scale = k;
            p = 10f64.powi(i32::from(scale));
        }
        // Checked again at the final scale below (as `common_scale` does).
        whole = false;
        ms.push(0);
    }
    if !whole {
        // The scale grew: every value again at the final scale, as `common_scale` checks them.
        ms.clear();
        for v in values {
            let Value::Float(f) = *v else { return None };
            let m = (f * p).round();
            if !(m.abs() < 9.0e15 && m / p == f) {
                return None;
            }
            ms.push(m as i64);
        }
    }
    Some((scale, ms))
}

/// The number of decimals that turns every value into an integer exactly,
/// if every value is a float that is an exact decimal (17.9, -3.5, 230.0).
/// `m / 10^k` is correctly rounded, so a value that is the double nearest
/// to `m / 10^k` is also the one nearest to `m·10^j / 10^(k+j)`: one scale
/// for the column reads every value back as exactly the same double.
#[cfg(test)]
fn common_scale(values: &[Value]) -> Option<u8> {
    let mut scale = 0u8;
    for v in values {
        let Value::Float(f) = v else { return None };
        scale = scale.max(as_decimal(*f)?.1);
    }
    // Checked again at the common scale: the mantissas must stay exact integers in a double.
    let p = 10f64.powi(i32::from(scale));
    let exact = |f: f64| {
        let m = (f * p).round();
        m.abs() < 9.0e15 && m / p == f
    };
    values.iter().all(|v| matches!(v, Value::Float(f) if exact(*f))).then_some(scale)
}

/// The parts of a segment before its columns.
struct Head<'a> {
    columns: usize,
    layouts: Vec<Vec<u32>>,
    row_layout: Vec<u32>,
    times: Vec<i64>,
    rest: Reader<'a>,
}

fn head<'a>(bytes: &'a [u8], want_lines: bool, lines: &mut Vec<u64>) -> Option<Head<'a>> {
    let mut r = Reader(bytes);
    if r.byte()? != 0 {
        return None;
    }
    let rows = r.count(LIMIT)?;
    // Each row costs at least a bit of the times that follow: no allocation beyond what the bytes can hold.
    if rows > 1 + 64 * r.0.len() {
        return None;
    }
    let columns = r.count(LIMIT)?;
    let n_layouts = r.count(LIMIT)?;
    let mut layouts = Vec::with_capacity(n_layouts.min(r.0.len()));
    for _ in 0..n_layouts {
        let len = r.count(columns)?;
        let mut l = Vec::with_capacity(len);
        for _ in 0..len {
            let c = r.count(LIMIT)?;
            if c >= columns {
                return None;
            }
            l.push(c as u32);
        }
        layouts.push(l);
    }
    let mut row_layout = Vec::new();
    if n_layouts > 1 {
        let mut v = Vec::new();
        r.deltas(rows, &mut v)?;
        row_layout = v.into_iter().map(|l| u32::try_from(l).ok().filter(|&l| (l as usize) < n_layouts)).collect::<Option<_>>()?;
    } else if rows > 0 {
        if n_layouts == 0 {
            return None;
        }
        row_layout = vec![0; rows];
    }
    let mut times = Vec::new();
    r.deltas(rows, &mut times)?;
    if want_lines {
        let mut l = Vec::new();
        r.deltas(rows, &mut l)?;
        lines.extend(l.into_iter().map(|l| l as u64));
    } else {
        r.skip_deltas(rows)?;
    }
    Some(Head { columns, layouts, row_layout, times, rest: r })
}

/// The number of rows of a segment, read from its start.
pub fn row_count(bytes: &[u8]) -> Option<usize> {
    let mut r = Reader(bytes);
    if r.byte()? != 0 {
        return None;
    }
    r.count(LIMIT)
}

/// Every row of a segment; `None` when the bytes are damaged.
pub fn decode(bytes: &[u8]) -> Option<Rows> {
    let mut lines = Vec::new();
    let mut h = head(bytes, true, &mut lines)?;
    let counts = value_counts(&h);
    let mut columns = Vec::with_capacity(h.columns);
    for count in counts {
        let sensor = u32::try_from(h.rest.varint()?).ok()?;
        let len = h.rest.count(h.rest.0.len())?;
        let values = decode_column(h.rest.take(len)?, count)?;
        columns.push(Column { sensor, values });
    }
    Some(Rows { times: h.times, lines, row_layout: h.row_layout, layouts: h.layouts, columns })
}

/// A column's values as [`each_column`] gives them.
#[derive(Debug)]
pub enum ColumnValues<'a> {
    /// Integers (`int`), or exact decimals `m / 10^k`, as packed.
    Scaled {
        ms: &'a [i64],
        k: u8,
        int: bool,
    },
    Values(&'a [Value]),
}

/// Calls `f` with the times and values of every column of a segment whose
/// sensor `want`s it, in the segment's order of columns; integer and
/// decimal columns come as the integers they are packed as (no `Value` is
/// made for them). `None` when the segment is damaged.
pub fn each_column(bytes: &[u8], want: impl Fn(u32) -> bool, mut f: impl FnMut(u32, &[i64], ColumnValues<'_>)) -> Option<()> {
    let mut h = head(bytes, false, &mut Vec::new())?;
    let counts = value_counts(&h);
    let mut ints = Vec::new();
    for (c, count) in counts.into_iter().enumerate() {
        let id = u32::try_from(h.rest.varint()?).ok()?;
        let len = h.rest.count(h.rest.0.len())?;
        let bytes = h.rest.take(len)?;
        if !want(id) {
            continue;
        }
        let times = value_times(&h, c);
        if times.len() != count {
            return None;
        }
        let mut r = Reader(bytes);
        match r.byte()? {
            kind @ (INT | DECIMAL) => {
                let k = if kind == DECIMAL { r.byte()?.min(30) } else { 0 };
                ints.clear();
                r.deltas(count, &mut ints)?;
                f(id, &times, ColumnValues::Scaled { ms: &ints, k, int: kind == INT });
            }
            _ => {
                let values = decode_column(bytes, count)?;
                f(id, &times, ColumnValues::Values(&values));
            }
        }
    }
    Some(())
}

/// The times and values of one sensor in a segment, in row order: `Some`
/// empty when the segment has no such column, `None` when it is damaged.
pub fn sensor(bytes: &[u8], sensor: u32) -> Option<Vec<(i64, Value)>> {
    let mut h = head(bytes, false, &mut Vec::new())?;
    let counts = value_counts(&h);
    for (c, count) in counts.into_iter().enumerate() {
        let id = u32::try_from(h.rest.varint()?).ok()?;
        let len = h.rest.count(h.rest.0.len())?;
        let bytes = h.rest.take(len)?;
        if id != sensor {
            continue;
        }
        let values = decode_column(bytes, count)?;
        return Some(value_times(&h, c).iter().copied().zip(values).collect());
    }
    Some(Vec::new())
}

/// The time of each value of column `c`: the times of the rows whose
/// layout names it, as often as it names it (once, unless a line repeats a
/// field); the segment's times when every layout names it once.
fn value_times<'h>(h: &'h Head<'_>, c: usize) -> std::borrow::Cow<'h, [i64]> {
    let times_in: Vec<usize> = h.layouts.iter().map(|l| l.iter().filter(|&&x| x as usize == c).count()).collect();
    if times_in.iter().all(|&n| n == 1) {
        return std::borrow::Cow::Borrowed(&h.times);
    }
    h.row_layout.iter().zip(&h.times).flat_map(|(&l, &t)| std::iter::repeat_n(t, times_in[l as usize])).collect()
}

/// How many values each column holds: the rows whose layout names it.
fn value_counts(h: &Head<'_>) -> Vec<usize> {
    let mut per_layout = vec![0usize; h.layouts.len()];
    for &l in &h.row_layout {
        per_layout[l as usize] += 1;
    }
    let mut counts = vec![0usize; h.columns];
    for (l, layout) in h.layouts.iter().enumerate() {
        for &c in layout {
            counts[c as usize] += per_layout[l];
        }
    }
    counts
}

pub(crate) fn decode_column(bytes: &[u8], count: usize) -> Option<Vec<Value>> {
    let mut r = Reader(bytes);
    let kind = r.byte()?;
    let mut out = Vec::with_capacity(count.min(64 * bytes.len() + 1));
    match kind {
        INT | DECIMAL | BOOL => {
            let p = if kind == DECIMAL { 10f64.powi(i32::from(r.byte()?.min(30))) } else { 1.0 };
            let mut ints = Vec::new();
            r.deltas(count, &mut ints)?;
            out.extend(ints.into_iter().map(|i| match kind {
                INT => Value::Int(i),
                DECIMAL => Value::Float(i as f64 / p),
                _ => Value::Bool(i != 0),
            }));
        }
        TEXT => {
            let mut prev: Option<String> = None;
            for _ in 0..count {
                let s = match r.varint()? {
                    0 => prev.clone()?,
                    n => String::from_utf8(r.take(usize::try_from(n - 1).ok()?)?.to_vec()).ok()?,
                };
                prev = Some(s.clone());
                out.push(Value::Text(s));
            }
        }
        MIXED => {
            for _ in 0..count {
                out.push(match r.byte()? {
                    TAG_INT => Value::Int(pack::unzigzag(r.varint()?)),
                    TAG_DEC => {
                        let k = r.byte()?.min(30);
                        Value::Float(pack::unzigzag(r.varint()?) as f64 / 10f64.powi(i32::from(k)))
                    }
                    TAG_F64 => Value::Float(f64::from_le_bytes(r.take(8)?.try_into().ok()?)),
                    TAG_FALSE => Value::Bool(false),
                    TAG_TRUE => Value::Bool(true),
                    TAG_TEXT => {
                        let len = r.count(r.0.len())?;
                        Value::Text(String::from_utf8(r.take(len)?.to_vec()).ok()?)
                    }
                    _ => return None,
                });
            }
        }
        _ => return None,
    }
    r.0.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Row = (i64, u64, Vec<(u32, Value)>);

    /// Every row: time, line and (sensor, value) pairs in the line's order.
    fn all_rows(rows: &Rows) -> Vec<Row> {
        let mut next = rows.cursors();
        (0..rows.len()).map(|r| (rows.times[r], rows.lines[r], rows.row(r, &mut next).map(|(s, v)| (s, v.clone())).collect())).collect()
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            (-100_000i64..100_000).prop_map(|t| Value::Float(t as f64 / 10.0)),
            (-100_000i64..100_000).prop_map(|t| Value::Float(t as f64 / 1000.0)),
            any::<f64>().prop_map(Value::Float),
            Just(Value::Float(-0.0)),
            any::<bool>().prop_map(Value::Bool),
            "[ -~°]{0,12}".prop_map(Value::Text),
        ]
    }

    /// Rows of a device whose fields come from a few layouts, each column of
    /// one kind (as most are) or mixed.
    fn rows() -> impl Strategy<Value = Rows> {
        let layouts = proptest::collection::vec(proptest::sample::subsequence((0u32..6).collect::<Vec<_>>(), 0..6), 1..4);
        let kinds = proptest::collection::vec(0u8..6, 6);
        (layouts, kinds, proptest::collection::vec((0i64..3_600_000, 0u64..5, any::<prop::sample::Index>()), 0..300), any::<u64>())
            .prop_flat_map(|(layouts, kinds, steps, seed)| {
                let n: usize = steps.iter().map(|(_, _, i)| layouts[i.index(layouts.len())].len()).sum();
                (Just((layouts, kinds, steps, seed)), proptest::collection::vec(value(), n))
            })
            .prop_map(|((layouts, kinds, steps, _), values)| {
                let mut rows = Rows { layouts: Vec::new(), ..Rows::default() };
                let mut t = 1_354_233_600_000i64;
                let mut line = 1u64;
                let mut values = values.into_iter();
                for (dt, dl, i) in steps {
                    t += dt;
                    line += dl;
                    let layout = &layouts[i.index(layouts.len())];
                    let cols: Vec<u32> = layout.iter().map(|&s| rows.column(100 + s)).collect();
                    let l = rows.layout(&cols);
                    rows.times.push(t);
                    rows.lines.push(line);
                    rows.row_layout.push(l);
                    for &c in &cols {
                        let v = values.next().unwrap();
                        // Columns 0 and 1 keep one kind, as a device's fields do.
                        let v = match (kinds[c as usize % 6], &v) {
                            (0, _) => Value::Int(line as i64 * 3 - t % 1000),
                            (1, _) => Value::Float((t % 1000) as f64 / 10.0),
                            _ => v,
                        };
                        rows.columns[c as usize].values.push(v);
                    }
                }
                rows
            })
    }

    proptest! {
        /// Split by day, the parts hold every row once, in the order added, each in its day.
        #[test]
        fn split_by_day_keeps_every_row_in_its_day(rows in rows()) {
            let hour = 3_600_000;
            let parts = rows.split_by(|t| t.div_euclid(hour));
            let mut back: Vec<Row> = Vec::new();
            for (h, part) in &parts {
                let part_rows = all_rows(part);
                prop_assert!(part_rows.iter().all(|r| r.0.div_euclid(hour) == *h));
                back.extend(part_rows);
            }
            let mut want = all_rows(&rows);
            // Rows keep their order within a part; parts come by key.
            want.sort_by_key(|r| r.0.div_euclid(hour));
            prop_assert_eq!(back, want);
        }

        #[test]
        fn segments_round_trip(rows in rows()) {
            let bytes = encode(&rows);
            prop_assert_eq!(row_count(&bytes), Some(rows.len()));
            let back = decode(&bytes).unwrap();
            // Bit for bit: -0.0 and 0.0 compare equal as floats.
            prop_assert_eq!(format!("{back:?}"), format!("{rows:?}"));
            for c in &rows.columns {
                let expected: Vec<(i64, Value)> = all_rows(&rows)
                    .into_iter()
                    .flat_map(|(t, _, fields)| fields.into_iter().filter(|(s, _)| *s == c.sensor).map(move |(_, v)| (t, v)))
                    .collect();
                prop_assert_eq!(sensor(&bytes, c.sensor).unwrap(), expected);
            }
            prop_assert_eq!(sensor(&bytes, 7).unwrap(), Vec::new());
        }

        /// One rounding a value gives what `common_scale` and a rounding at its scale give.
        #[test]
        fn decimal_columns_as_common_scale(values in proptest::collection::vec(prop_oneof![
            (-100_000i64..100_000, 0u32..4).prop_map(|(m, k)| Value::Float(m as f64 / 10f64.powi(k as i32))),
            any::<f64>().prop_map(Value::Float),
            Just(Value::Float(-0.0)),
            Just(Value::Float(f64::NAN)),
            (0i64..10).prop_map(Value::Int),
        ], 0..40)) {
            let expected = common_scale(&values).map(|scale| {
                let p = 10f64.powi(i32::from(scale));
                (scale, values.iter().map(|v| if let Value::Float(f) = v { (f * p).round() as i64 } else { 0 }).collect::<Vec<_>>())
            });
            prop_assert_eq!(decimal_column(&values), expected);
        }

        #[test]
        fn appending_equals_building_at_once(a in rows(), b in rows()) {
            let mut joined = a.clone();
            joined.append(b.clone());
            let mut expected = all_rows(&a);
            expected.extend(all_rows(&b));
            let got = all_rows(&decode(&encode(&joined)).unwrap());
            prop_assert_eq!(format!("{got:?}"), format!("{expected:?}"));
        }

        #[test]
        fn damaged_segments_are_none_or_something_never_a_panic(rows in rows(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
            let bytes = encode(&rows);
            if !bytes.is_empty() {
                let _ = decode(&bytes[..cut.index(bytes.len())]);
                let mut damaged = bytes.clone();
                let i = flip.0.index(damaged.len());
                damaged[i] ^= flip.1 | 1;
                let _ = decode(&damaged);
                let _ = sensor(&damaged, 100);
            }
        }
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(as_decimal(17.9), Some((179, 1)));
        assert_eq!(as_decimal(-3.5), Some((-35, 1)));
        assert_eq!(as_decimal(0.1 + 0.2), None);
        assert_eq!(as_decimal(-0.0), None);
        let values = [Value::Float(17.9), Value::Float(0.25), Value::Float(-3.0)];
        assert_eq!(common_scale(&values), Some(2));
    }

    /// A roomNode's day: about three bytes a row for five fields, time and line.
    #[test]
    fn a_room_node_segment_is_small() {
        let mut rows = Rows::default();
        let cols: Vec<u32> = (0..5).map(|s| rows.column(s)).collect();
        let l = rows.layout(&cols);
        let (mut temp, mut humi, mut light) = (179i64, 55i64, 40i64);
        for i in 0..1024i64 {
            rows.times.push(1_354_233_600_000 + i * 60_000 + (i * 7919) % 500);
            rows.lines.push(i as u64 * 5 + (i as u64 % 3));
            rows.row_layout.push(l);
            temp += i % 5 - 2;
            humi += i % 3 - 1;
            light = (light + i % 7 - 3) & 255;
            for (c, v) in
                [Value::Int(light), Value::Int(i64::from(i % 9 == 0)), Value::Int(humi), Value::Float(temp as f64 / 10.0), Value::Int(0)]
                    .into_iter()
                    .enumerate()
            {
                rows.columns[c].values.push(v);
            }
        }
        let bytes = encode(&rows);
        assert!(bytes.len() < 1024 * 4, "{} bytes for 1024 rows", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), rows);
    }
}
