//! `query`, `export`, `schema`, `stats`: read the cache, never write it.

use crate::args::{ExportArgs, ExportFormat, Global, QueryArgs, QueryFormat, SchemaArgs, StatsArgs};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use index::{value_json, Index, Reset};
use logfile::time::rfc3339_millis;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn open(global: &Global) -> Result<Index, CliError> {
    let config = settings::load_config(global)?;
    let (_, fingerprint) = settings::decoders(&config)?;
    let cache = settings::cache_dir(global, &config);
    let (idx, stale) = Index::open_read(&cache, &fingerprint).map_err(anyhow::Error::new).setup()?;
    if let Some(Reset::Config | Reset::Version { .. }) = stale {
        eprintln!(
            "blackbox: warning: {} was built with another configuration or version; run `blackbox index` to rebuild it",
            cache.display()
        );
    }
    Ok(idx)
}

fn out() -> BufWriter<std::io::StdoutLock<'static>> {
    BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn json_line(t: i64, sensor: &str, v: &decode::Value) -> String {
    format!("{{\"time\":\"{}\",\"sensor\":{},\"value\":{}}}", rfc3339_millis(t), serde_json::Value::String(sensor.into()), value_json(v))
}

pub fn query(global: &Global, args: QueryArgs) -> Result<ExitCode, CliError> {
    let from = settings::time_arg(args.from.as_deref(), "--from")?;
    let to = settings::time_arg(args.to.as_deref(), "--to")?;
    let idx = open(global)?;
    let unit = if args.format == QueryFormat::Table {
        idx.schema()?.into_iter().find(|r| r.sensor == args.sensor).and_then(|r| r.unit).map(|u| format!(" {u}")).unwrap_or_default()
    } else {
        String::new()
    };
    let mut out = out();
    if args.format == QueryFormat::Csv {
        writeln!(out, "time,sensor,value")?;
    }
    let sensor = args.sensor.clone();
    let found = idx.query(&args.sensor, from, to, &mut |t, v| match args.format {
        QueryFormat::Table => writeln!(out, "{}  {v}{unit}", rfc3339_millis(t)),
        QueryFormat::Csv => writeln!(out, "{},{},{}", rfc3339_millis(t), csv_field(&sensor), csv_field(&v.to_string())),
        QueryFormat::Json => writeln!(out, "{}", json_line(t, &sensor, v)),
    })?;
    out.flush()?;
    if !found {
        let needle = args.sensor.to_lowercase();
        let last = needle.rsplit('/').next().unwrap_or(&needle).to_string();
        let similar: Vec<String> = idx.sensor_names().into_iter().filter(|s| s.to_lowercase().contains(&last)).take(8).collect();
        let hint = if similar.is_empty() {
            "`blackbox schema` lists every sensor".to_string()
        } else {
            format!("similar: {}", similar.join(", "))
        };
        return Err(setup_error(format!("no sensor {:?} in the cache; {hint}", args.sensor)));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(global: &Global, args: ExportArgs) -> Result<ExitCode, CliError> {
    let from = settings::time_arg(args.from.as_deref(), "--from")?;
    let to = settings::time_arg(args.to.as_deref(), "--to")?;
    let idx = open(global)?;
    let mut out = out();
    if args.format == ExportFormat::Csv {
        writeln!(out, "time,sensor,value")?;
    }
    idx.export(from, to, &mut |t, s, v| match args.format {
        ExportFormat::Jsonl => writeln!(out, "{}", json_line(t, s, v)),
        ExportFormat::Csv => writeln!(out, "{},{},{}", rfc3339_millis(t), csv_field(s), csv_field(&v.to_string())),
    })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn schema(global: &Global, _args: SchemaArgs) -> Result<ExitCode, CliError> {
    let idx = open(global)?;
    let rows = idx.schema()?;
    let width = rows.iter().map(|r| r.sensor.chars().count()).max().unwrap_or(6).max(6);
    let mut out = out();
    writeln!(out, "{:<width$}  {:<7}  {:<5}  {:>9}  {:<24}  LAST", "SENSOR", "TYPE", "UNIT", "COUNT", "FIRST")?;
    for r in &rows {
        let unit = r.unit.as_deref().unwrap_or("-");
        let pad = 5usize.saturating_sub(unit.chars().count());
        writeln!(
            out,
            "{:<width$}  {:<7}  {unit}{}  {:>9}  {:<24}  {}",
            r.sensor,
            r.kind,
            " ".repeat(pad),
            r.count,
            rfc3339_millis(r.first_ms),
            rfc3339_millis(r.last_ms)
        )?;
    }
    writeln!(out, "{} sensors", rows.len())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn stats(global: &Global, _args: StatsArgs) -> Result<ExitCode, CliError> {
    let idx = open(global)?;
    let s = idx.stats()?;
    let mut out = out();
    match (s.first_ms, s.last_ms) {
        (Some(a), Some(b)) => {
            let hours = (b - a) as f64 / 3.6e6;
            writeln!(
                out,
                "collected from {} to {} ({:.1} days, {} daily files)",
                rfc3339_millis(a),
                rfc3339_millis(b),
                hours / 24.0,
                s.days
            )?;
        }
        _ => writeln!(out, "nothing indexed yet ({} daily files)", s.days)?,
    }
    writeln!(out, "{} sensors; {} metadata lines; {} lines that are not valid records", s.sensors, s.meta_lines, s.bad_lines)?;
    writeln!(out)?;
    let width = s.sources.iter().map(|x| x.source.len()).max().unwrap_or(6).max(6);
    writeln!(
        out,
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>10}  {:>9}  {:>7}",
        "SOURCE", "LINES", "DECODED", "READINGS", "RECOGNISED", "UNDECODED", "PARTIAL"
    )?;
    for x in &s.sources {
        writeln!(
            out,
            "{:<width$}  {:>9}  {:>9}  {:>9}  {:>10}  {:>9}  {:>7}",
            x.source, x.lines, x.decoded, x.values, x.recognised, x.undecoded, x.partial
        )?;
    }
    if !s.events.is_empty() {
        writeln!(out, "\nmost frequent events:")?;
        for (code, n) in s.events.iter().take(10) {
            writeln!(out, "  {code:<12} {n:>9}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
