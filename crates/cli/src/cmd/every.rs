//! `query --every` and `export --every`: rollups per period, combined from
//! the hours the cache keeps (or makes from the readings of a day that is
//! not over).

use crate::args::{ExportArgs, Format, QueryArgs};
use crate::cmd::read::{push_csv, Notes};
use crate::error::{setup_error, CliError};
use index::{value_json, Index, SensorHours};
use logfile::time::{push_rfc3339_millis, rfc3339_millis};
use rollup::{combine, period_start, Period, Summary, HOUR_MS};
use std::io::Write;

/// `--every`: a positive multiple of an hour, in ms.
pub fn parse_every(text: &str) -> Result<i64, CliError> {
    let wrong = || {
        setup_error(format!(
            "--every {text}: rollups are kept per hour, so a period is a whole number of hours, days or weeks (1h, 6h, 1d, 7d, 1w)"
        ))
    };
    let t = text.trim();
    // Weeks too: `1w` is 7d.
    let ms = match t.strip_suffix('w') {
        Some(n) => n.parse::<i64>().map_err(|_| wrong())?.checked_mul(7 * rollup::DAY_MS).ok_or_else(wrong)?,
        None => i64::try_from(config::parse_duration(t).map_err(|_| wrong())?.as_millis()).unwrap_or(i64::MAX),
    };
    if ms % HOUR_MS != 0 {
        return Err(wrong());
    }
    if ms <= 0 {
        return Err(setup_error(format!("--every {text}: a period is at least an hour (1h)")));
    }
    Ok(ms)
}

/// `--from` and `--to` widened to whole periods: the periods that hold
/// them are given whole (a row is never a part of its period).
fn whole_periods(from: Option<i64>, to: Option<i64>, every: i64) -> (Option<i64>, Option<i64>) {
    (from.map(|t| period_start(t, every)), to.map(|t| period_start(t - 1, every) + every))
}

/// A number for a person: at most three decimals.
fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Appends an integer's decimal digits (the fmt machinery costs more than the digits, a row at a time).
fn push_int(out: &mut String, v: i64) {
    let mut digits = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push('-');
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// A number for a program: the shortest text that reads back as the same double.
fn exact(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// The cells of one period, by column name, for every format.
struct Row<'a> {
    start: i64,
    end: i64,
    summary: Option<&'a Summary>,
    partial: bool,
}

/// The columns of a period's row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Col {
    Kind,
    Count,
    Min,
    Max,
    Mean,
    First,
    Last,
    MinTime,
    MaxTime,
    Increment,
    Unit,
    Flags,
    Partial,
}

impl Col {
    /// Its name in CSV headers and JSON.
    fn name(self) -> &'static str {
        match self {
            Col::Kind => "kind",
            Col::Count => "count",
            Col::Min => "min",
            Col::Max => "max",
            Col::Mean => "mean",
            Col::First => "first",
            Col::Last => "last",
            Col::MinTime => "min_time",
            Col::MaxTime => "max_time",
            Col::Increment => "increment",
            Col::Unit => "unit",
            Col::Flags => "flags",
            Col::Partial => "partial",
        }
    }

    /// Its heading in a table.
    fn heading(self) -> &'static str {
        match self {
            Col::MinTime => "min at",
            Col::MaxTime => "max at",
            Col::Partial | Col::Unit => "",
            c => c.name(),
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Col::Count | Col::Min | Col::Max | Col::Mean | Col::First | Col::Last | Col::Increment)
    }
}

fn names(columns: &[Col]) -> String {
    columns.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

const GAUGE_COLUMNS: [Col; 9] =
    [Col::Count, Col::Min, Col::Max, Col::Mean, Col::First, Col::Last, Col::MinTime, Col::MaxTime, Col::Partial];
const COUNTER_COLUMNS: [Col; 5] = [Col::Increment, Col::Unit, Col::Count, Col::Flags, Col::Partial];
const GAUGE_KIND_COLUMNS: [Col; 10] =
    [Col::Kind, Col::Count, Col::Min, Col::Max, Col::Mean, Col::First, Col::Last, Col::MinTime, Col::MaxTime, Col::Partial];

/// How cells are written: for a person (numbers shortened, empty cells
/// for what does not apply), in CSV (quoted where needed) or as JSON values.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Table,
    Csv,
    Json,
}

impl<'a> Row<'a> {
    fn of(p: &'a Period) -> Row<'a> {
        Row { start: p.start, end: p.end, summary: Some(&p.summary), partial: p.partial }
    }

    /// Appends the cell of column `c` to `out`.
    fn cell(&self, c: Col, unit: &str, style: Style, out: &mut String) {
        use std::fmt::Write as _;
        let num = |x: f64, out: &mut String| match style {
            Style::Table => out.push_str(&short(x)),
            _ => out.push_str(&exact(x)),
        };
        let text = |s: &str, out: &mut String| match style {
            Style::Json => out.push_str(&serde_json::Value::String(s.into()).to_string()),
            Style::Csv => push_csv(out, s),
            Style::Table => out.push_str(s),
        };
        let time = |t: i64, out: &mut String| match style {
            Style::Json => {
                out.push('"');
                push_rfc3339_millis(out, t);
                out.push('"');
            }
            _ => push_rfc3339_millis(out, t),
        };
        let value = |v: &decode::Value, out: &mut String| match (style, v) {
            (_, decode::Value::Int(i)) => push_int(out, *i),
            (Style::Json, v) => out.push_str(&value_json(v)),
            // Numbers need no quoting; text may.
            (Style::Csv, decode::Value::Text(t)) => text(t, out),
            (_, v) => {
                let _ = write!(out, "{v}");
            }
        };
        let none = |out: &mut String| {
            if style == Style::Json {
                out.push_str("null");
            }
        };
        match (self.summary, c) {
            (Some(s), Col::Kind) => text(if matches!(s, Summary::Counter(_)) { "counter" } else { "gauge" }, out),
            (_, Col::Partial) if style == Style::Table => {
                if self.partial {
                    out.push_str("partial");
                }
            }
            (_, Col::Partial) => {
                let _ = write!(out, "{}", self.partial);
            }
            (None, _) => none(out),
            (Some(s), Col::Count) => push_int(out, i64::try_from(s.count()).unwrap_or(i64::MAX)),
            (Some(Summary::Gauge(g)), c) => match c {
                Col::Min => value(&g.min, out),
                Col::Max => value(&g.max, out),
                Col::Mean => num(g.mean(), out),
                Col::First => value(&g.first, out),
                Col::Last => value(&g.last, out),
                Col::MinTime => time(g.t_min, out),
                Col::MaxTime => time(g.t_max, out),
                _ => none(out),
            },
            (Some(Summary::Counter(inc)), c) => match c {
                Col::Increment => num(inc.total.value(), out),
                Col::Unit if unit.is_empty() => none(out),
                Col::Unit => text(unit, out),
                Col::Flags if style == Style::Json => out.push_str(&serde_json::to_string(&inc.flags.names()).unwrap_or_default()),
                Col::Flags => text(&inc.flags.names().join("+"), out),
                _ => none(out),
            },
        }
    }

    /// The cells of `columns`, each as text.
    fn cells(&self, columns: &[Col], unit: &str, style: Style) -> Vec<String> {
        columns
            .iter()
            .map(|&c| {
                let mut s = String::new();
                self.cell(c, unit, style, &mut s);
                s
            })
            .collect()
    }

    /// A CSV line: start, end, sensor, then `columns`.
    fn csv(&self, sensor: &str, columns: &[Col], unit: &str, out: &mut String) {
        out.clear();
        push_rfc3339_millis(out, self.start);
        out.push(',');
        push_rfc3339_millis(out, self.end);
        out.push(',');
        push_csv(out, sensor);
        for &c in columns {
            out.push(',');
            self.cell(c, unit, Style::Csv, out);
        }
    }

    /// A JSON object: start, end, sensor, then `columns`.
    fn json(&self, sensor: &str, columns: &[Col], unit: &str, out: &mut String) {
        out.clear();
        out.push_str("{\"start\":\"");
        push_rfc3339_millis(out, self.start);
        out.push_str("\",\"end\":\"");
        push_rfc3339_millis(out, self.end);
        out.push_str("\",\"sensor\":");
        out.push_str(&serde_json::Value::String(sensor.into()).to_string());
        for &c in columns {
            out.push_str(",\"");
            out.push_str(c.name());
            out.push_str("\":");
            self.cell(c, unit, Style::Json, out);
        }
        out.push('}');
    }
}

/// The periods of one sensor's hours, and the unit of a counter's increments.
fn periods(idx: &Index, sensor: &str, h: SensorHours, every: i64, now: i64) -> Result<(Vec<Period>, String), CliError> {
    // Only a counter's rows name a unit: its own, else its readings'.
    let unit = match &h.counter {
        Some(p) => p.increments_unit(idx.unit(sensor)?).unwrap_or_default(),
        None => String::new(),
    };
    Ok((combine(h.hours, every, h.counter.as_ref(), now), unit))
}

pub fn query_every(
    idx: &Index,
    args: &QueryArgs,
    from: Option<i64>,
    to: Option<i64>,
    out: &mut dyn Write,
    notes: Notes<'_>,
) -> Result<(), CliError> {
    let every = parse_every(args.every.as_deref().unwrap_or("1h"))?;
    // Periods that hold --from and --to are whole: rollups are not cut within an hour.
    let (from, to) = whole_periods(from, to, every);
    let hours = match idx.rollup_hours(&args.sensor, from, to)? {
        None => return Err(crate::cmd::read::no_such_sensor(idx, &args.sensor)),
        Some(None) => {
            return Err(setup_error(format!(
                "{} has no rollups: gauges are off ([rollup] gauges = false) and it matches no [[counter]]",
                args.sensor
            )))
        }
        Some(Some(h)) => h,
    };
    let counter = hours.counter.is_some();
    let now = crate::settings::now_ms();
    let (periods, unit) = periods(idx, &args.sensor, hours, every, now)?;
    let columns: &[Col] = if counter { &COUNTER_COLUMNS } else { &GAUGE_COLUMNS };
    let mut rows: Vec<Row> = periods.iter().map(Row::of).collect();
    if args.fill && args.format == Format::Table {
        let first = from.or(rows.first().map(|r| r.start));
        let last = to.or(rows.last().map(|r| r.end));
        if let (Some(a), Some(b)) = (first, last) {
            let mut filled = Vec::new();
            let mut have = rows.into_iter().peekable();
            let mut t = period_start(a, every);
            while t < b {
                match have.peek() {
                    Some(r) if r.start == t => filled.extend(have.next()),
                    _ => filled.push(Row { start: t, end: t + every, summary: None, partial: t <= now && now < t + every }),
                }
                t += every;
            }
            rows = filled;
        }
    }
    let mut line = String::new();
    match args.format {
        Format::Table => {
            let mut header = vec!["start".to_string()];
            header.extend(columns.iter().map(|c| c.heading().to_string()));
            let mut table = vec![header];
            for r in &rows {
                let mut cells = vec![rfc3339_millis(r.start)];
                cells.extend(r.cells(columns, &unit, Style::Table));
                table.push(cells);
            }
            write_table(out, &table, &numeric(1, columns))?;
        }
        Format::Csv => {
            writeln!(out, "start,end,sensor,{}", names(columns))?;
            for r in &rows {
                r.csv(&args.sensor, columns, &unit, &mut line);
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
        }
        Format::Jsonl => {
            for r in &rows {
                r.json(&args.sensor, columns, &unit, &mut line);
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
        }
    }
    if periods.is_empty() {
        notes(format!("blackbox: no readings of {} in that range", args.sensor));
    }
    Ok(())
}

/// Aligned columns: those `right` says hold numbers to the right, others
/// to the left, trailing spaces trimmed.
fn write_table(out: &mut dyn Write, rows: &[Vec<String>], right: &[bool]) -> std::io::Result<()> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |s: &str| if s.is_ascii() { s.len() } else { s.chars().count() };
    let widths: Vec<usize> = (0..n).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| width(s)).max().unwrap_or(0)).collect();
    let mut line = String::new();
    for (i, r) in rows.iter().enumerate() {
        line.clear();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - width(cell);
            // The header's names go where their column's values do.
            if right.get(c).copied().unwrap_or(false) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i == 0 || c + 1 < r.len() {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        let end = line.trim_end().len();
        line.truncate(end);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Which of `columns` (after a first, left-aligned one) hold numbers.
fn numeric(first: usize, columns: &[Col]) -> Vec<bool> {
    let mut v = vec![false; first];
    v.extend(columns.iter().map(|c| c.numeric()));
    v
}

/// Every rolled-up sensor's periods, sensor by sensor.
pub fn export_every(
    idx: &Index,
    args: &ExportArgs,
    from: Option<i64>,
    to: Option<i64>,
    out: &mut dyn Write,
    notes: Notes<'_>,
) -> Result<(), CliError> {
    let every = parse_every(args.every.as_deref().unwrap_or("1h"))?;
    let (from, to) = whole_periods(from, to, every);
    const ALL: [Col; 13] = [
        Col::Kind,
        Col::Count,
        Col::Min,
        Col::Max,
        Col::Mean,
        Col::First,
        Col::Last,
        Col::MinTime,
        Col::MaxTime,
        Col::Increment,
        Col::Unit,
        Col::Flags,
        Col::Partial,
    ];
    if args.format == Format::Csv {
        writeln!(out, "start,end,sensor,{}", names(&ALL))?;
    }
    let mut table = vec![];
    let mut any = false;
    let mut line = String::new();
    let now = crate::settings::now_ms();
    for sensor in idx.rollup_sensors() {
        let Some(Some(hours)) = idx.rollup_hours(&sensor, from, to)? else { continue };
        let counter = hours.counter.is_some();
        let (periods, unit) = periods(idx, &sensor, hours, every, now)?;
        // jsonl: the kind, then the columns of that kind; csv: every column.
        let columns: &[Col] =
            if counter { &[Col::Kind, Col::Increment, Col::Unit, Col::Count, Col::Flags, Col::Partial] } else { &GAUGE_KIND_COLUMNS };
        for p in &periods {
            any = true;
            let r = Row::of(p);
            match args.format {
                Format::Jsonl => {
                    r.json(&sensor, columns, &unit, &mut line);
                    writeln!(out, "{line}")?;
                }
                Format::Csv => {
                    r.csv(&sensor, &ALL, &unit, &mut line);
                    writeln!(out, "{line}")?;
                }
                Format::Table => {
                    let mut cells = vec![rfc3339_millis(p.start), sensor.clone()];
                    cells.extend(r.cells(columns, &unit, Style::Table).into_iter().zip(columns).map(|(v, c)| match c {
                        Col::Partial | Col::Unit | Col::Kind => v,
                        Col::MinTime | Col::MaxTime => String::new(),
                        // An hour with no flags (nearly every one) shows none.
                        Col::Flags if v.is_empty() => String::new(),
                        c => format!("{}={v}", c.name()),
                    }));
                    table.push(cells);
                }
            }
        }
    }
    if args.format == Format::Table {
        write_table(out, &table, &[])?;
    }
    if !any {
        notes("blackbox: no rollups in that range".into());
    }
    Ok(())
}
