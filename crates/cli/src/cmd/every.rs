//! `query --every` and `export --every`: rollups per period, combined from
//! the hours the cache keeps (or makes from the readings of a day that is
//! not over).

use crate::args::{ExportArgs, Format, QueryArgs};
use crate::cmd::read::Notes;
use crate::error::{setup_error, CliError};
use index::{value_json, Index, SensorHours};
use logfile::time::rfc3339_millis;
use rollup::{combine, period_start, Period, Summary, HOUR_MS};
use std::io::Write;

/// `--every`: a positive multiple of an hour, in ms.
pub fn parse_every(text: &str) -> Result<i64, CliError> {
    let d = config::parse_duration(text).map_err(|e| setup_error(format!("--every {text}: {e}")))?;
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms <= 0 || ms % HOUR_MS != 0 {
        return Err(setup_error(format!(
            "--every {text}: rollups are kept per hour, so a period is a whole number of hours or days (1h, 6h, 1d, 7d)"
        )));
    }
    Ok(ms)
}

fn now_ms() -> i64 {
    logfile::OffsetClock::from_env().now().wall_ms
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

/// A number for a program: the shortest text that reads back as the same double.
fn exact(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The cells of one period, by column name, for every format.
struct Row {
    start: i64,
    end: i64,
    summary: Option<Summary>,
    partial: bool,
}

const GAUGE_COLUMNS: [&str; 9] = ["count", "min", "max", "mean", "first", "last", "min_time", "max_time", "partial"];
const COUNTER_COLUMNS: [&str; 5] = ["increment", "unit", "count", "flags", "partial"];

impl Row {
    fn of(p: &Period) -> Row {
        Row { start: p.start, end: p.end, summary: Some(p.summary.clone()), partial: p.partial }
    }

    /// The cells of `columns`, as text (`json`: as JSON values).
    fn cells(&self, columns: &[&str], unit: &str, json: bool, table: bool) -> Vec<String> {
        let num = |x: f64| if table { short(x) } else { exact(x) };
        let text = |s: String| if json { serde_json::Value::String(s).to_string() } else { s };
        let value = |v: &decode::Value| if json { value_json(v) } else { v.to_string() };
        columns
            .iter()
            .map(|&c| match (&self.summary, c) {
                (_, "partial") if table => {
                    if self.partial {
                        "partial".into()
                    } else {
                        String::new()
                    }
                }
                (_, "partial") => self.partial.to_string(),
                (None, _) => String::new(),
                (Some(s), "count") => s.count().to_string(),
                (Some(Summary::Gauge(g)), c) => match c {
                    "min" => value(&g.min),
                    "max" => value(&g.max),
                    "mean" => num(g.mean()),
                    "first" => value(&g.first),
                    "last" => value(&g.last),
                    "min_time" => text(rfc3339_millis(g.t_min)),
                    "max_time" => text(rfc3339_millis(g.t_max)),
                    _ if json => "null".into(),
                    _ => String::new(),
                },
                (Some(Summary::Counter(inc)), c) => match c {
                    "increment" => num(inc.total.value()),
                    "unit" if json && unit.is_empty() => "null".into(),
                    "unit" => text(unit.to_string()),
                    "flags" if json => serde_json::to_string(&inc.flags.names()).unwrap_or_default(),
                    "flags" => inc.flags.names().join("+"),
                    _ if json => "null".into(),
                    _ => String::new(),
                },
            })
            .collect()
    }
}

/// The periods of one sensor's hours, and the unit of a counter's increments.
fn periods(idx: &Index, sensor: &str, h: &SensorHours, every: i64) -> Result<(Vec<Period>, String), CliError> {
    let unit = match &h.counter {
        Some(p) => p.unit.clone().or(idx.unit(sensor)?).unwrap_or_default(),
        None => idx.unit(sensor)?.unwrap_or_default(),
    };
    Ok((combine(&h.hours, every, h.counter.as_ref(), now_ms()), unit))
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
    let from = from.map(|t| period_start(t, every));
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
    let (periods, unit) = periods(idx, &args.sensor, &hours, every)?;
    let counter = hours.counter.is_some();
    let columns: &[&str] = if counter { &COUNTER_COLUMNS } else { &GAUGE_COLUMNS };
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
                    _ => filled.push(Row { start: t, end: t + every, summary: None, partial: t <= now_ms() && now_ms() < t + every }),
                }
                t += every;
            }
            rows = filled;
        }
    }
    match args.format {
        Format::Table => {
            let mut header = vec!["start".to_string()];
            header.extend(columns.iter().map(|c| match *c {
                "min_time" => "min at".to_string(),
                "max_time" => "max at".to_string(),
                "partial" => String::new(),
                "unit" => String::new(),
                c => c.to_string(),
            }));
            let mut table = vec![header];
            for r in &rows {
                let mut cells = vec![rfc3339_millis(r.start)];
                cells.extend(r.cells(columns, &unit, false, true));
                table.push(cells);
            }
            write_table(out, &table)?;
        }
        Format::Csv => {
            writeln!(out, "start,end,sensor,{}", columns.join(","))?;
            for r in &rows {
                let cells: Vec<String> = r.cells(columns, &unit, false, false).iter().map(|c| csv_field(c)).collect();
                writeln!(out, "{},{},{},{}", rfc3339_millis(r.start), rfc3339_millis(r.end), csv_field(&args.sensor), cells.join(","))?;
            }
        }
        Format::Jsonl => {
            for r in &rows {
                writeln!(out, "{}", json_row(r, &args.sensor, columns, &unit))?;
            }
        }
    }
    if periods.is_empty() {
        notes(format!("blackbox: no readings of {} in that range", args.sensor));
    }
    Ok(())
}

fn json_row(r: &Row, sensor: &str, columns: &[&str], unit: &str) -> String {
    let mut s = format!(
        "{{\"start\":\"{}\",\"end\":\"{}\",\"sensor\":{}",
        rfc3339_millis(r.start),
        rfc3339_millis(r.end),
        serde_json::Value::String(sensor.into())
    );
    for (c, v) in columns.iter().zip(r.cells(columns, unit, true, false)) {
        s.push_str(&format!(",\"{c}\":{v}"));
    }
    s.push('}');
    s
}

/// Aligned columns: numbers to the right, text to the left, trailing spaces trimmed.
fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let numeric = |s: &str| s.parse::<f64>().is_ok();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            if numeric(cell) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
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
    let from = from.map(|t| period_start(t, every));
    const ALL: [&str; 13] =
        ["kind", "count", "min", "max", "mean", "first", "last", "min_time", "max_time", "increment", "unit", "flags", "partial"];
    if args.format == Format::Csv {
        writeln!(out, "start,end,sensor,{}", ALL.join(","))?;
    }
    let mut table = vec![];
    let mut any = false;
    for sensor in idx.rollup_sensors() {
        let Some(Some(hours)) = idx.rollup_hours(&sensor, from, to)? else { continue };
        let (periods, unit) = periods(idx, &sensor, &hours, every)?;
        let kind = if hours.counter.is_some() { "counter" } else { "gauge" };
        let columns: &[&str] = if hours.counter.is_some() { &COUNTER_COLUMNS } else { &GAUGE_COLUMNS };
        for p in &periods {
            any = true;
            let r = Row::of(p);
            match args.format {
                Format::Jsonl => {
                    let mut line = json_row(&r, &sensor, columns, &unit);
                    line.insert_str(line.len() - 1, &format!(",\"kind\":\"{kind}\""));
                    writeln!(out, "{line}")?;
                }
                Format::Csv => {
                    let cells: Vec<String> = ALL
                        .iter()
                        .map(|&c| if c == "kind" { kind.to_string() } else { r.cells(&[c], &unit, false, false).remove(0) })
                        .map(|c| csv_field(&c))
                        .collect();
                    writeln!(out, "{},{},{},{}", rfc3339_millis(p.start), rfc3339_millis(p.end), csv_field(&sensor), cells.join(","))?;
                }
                Format::Table => {
                    let mut cells = vec![rfc3339_millis(p.start), sensor.clone()];
                    cells.extend(r.cells(columns, &unit, false, true).into_iter().zip(columns).map(|(v, c)| match *c {
                        "partial" | "unit" => v,
                        "min_time" | "max_time" => String::new(),
                        c => format!("{c}={v}"),
                    }));
                    table.push(cells);
                }
            }
        }
    }
    if args.format == Format::Table {
        write_table(out, &table)?;
    }
    if !any {
        notes("blackbox: no rollups in that range".into());
    }
    Ok(())
}
