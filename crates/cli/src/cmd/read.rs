//! `query`, `export`, `schema`, `stats`: read the cache, never write it.

use crate::args::{EventsArgs, ExportArgs, Format, Global, HealthArgs, QueryArgs, SchemaArgs, StatsArgs, StatusArgs};
use crate::cmd::{every, serve};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use index::{value_json, Index, IndexError, Reset};
use logfile::time::rfc3339_millis;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// A read command, runnable here or by the follower that holds the cache.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Request {
    Query(QueryArgs),
    Export(ExportArgs),
    Schema(SchemaArgs),
    Stats(StatsArgs),
    Status(StatusArgs),
    Health(HealthArgs),
    Events(EventsArgs),
    Ack(crate::args::AckArgs),
}

/// Where a request says what a person should know beside its output (an
/// empty answer): stderr here, a stderr frame from the follower.
pub type Notes<'a> = &'a mut dyn FnMut(String);

impl Request {
    /// Runs the request against an open cache, writing its output to `out`
    /// and its notes on stderr (unless `-q`); returns the exit status.
    pub fn run(&self, idx: &Index, out: &mut dyn Write) -> Result<u8, CliError> {
        self.answer(idx, out, &mut |n| note!("{n}"))
    }

    /// Runs the request against an open cache, writing its output to `out`
    /// and handing what a person should know about it to `notes`; returns
    /// the exit status (`status --nagios` tells the level by it).
    pub fn answer(&self, idx: &Index, out: &mut dyn Write, notes: Notes<'_>) -> Result<u8, CliError> {
        match self {
            Request::Query(a) => query_on(idx, a, out, notes).map(|()| 0),
            Request::Export(a) => export_on(idx, a, out, notes).map(|()| 0),
            Request::Schema(_) => schema_on(idx, out).map(|()| 0),
            Request::Stats(_) => stats_on(idx, out).map(|()| 0),
            Request::Status(a) => crate::cmd::status::status_on(idx, a, out),
            Request::Health(a) => crate::cmd::status::health_on(idx, a, out).map(|()| 0),
            Request::Events(a) => crate::cmd::status::events_on(idx, a, out).map(|()| 0),
            Request::Ack(a) => crate::cmd::notify::ack_on(idx, a, out),
        }
    }
}

/// Opens the cache and runs `req`; when `index --follow` holds the cache,
/// asks it to run the request instead.
pub(crate) fn run(global: &Global, req: Request) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let (_, fingerprint) = settings::decoders(&config)?;
    let checks = health::Checks::new(&config, &settings::source_names(&config)).map_err(setup_error)?;
    let rollups = rollup::Rollups::new(&config).map_err(setup_error)?;
    let cache = settings::cache_dir(global, &config);
    match Index::open_read(&cache, &fingerprint) {
        Ok((mut idx, stale)) => {
            idx.set_checks(checks);
            idx.set_rollups(rollups).map_err(anyhow::Error::new).setup()?;
            match stale {
                // Another format may not even read back right: no answers from it.
                Some(Reset::Version { found }) => {
                    return Err(setup_error(format!(
                    "{} is in cache format {found}, and this blackbox reads format {}: run `blackbox index` to rebuild it from the logs",
                    cache.display(),
                    index::FORMAT_VERSION
                )))
                }
                // Status judges the stored evaluator with the configuration's
                // checks: with other checks its results mean nothing.
                Some(Reset::Config) if matches!(req, Request::Status(_)) => {
                    return Err(setup_error(format!(
                        "{} was built with another configuration of its decoders or checks, so its health cannot be judged with these: \
run `blackbox index` to rebuild it, or give the --config it was built with",
                        cache.display()
                    )))
                }
                Some(Reset::Config) => note!(
                    "blackbox: warning: {} was built with another configuration of its decoders or checks; run `blackbox index` to rebuild it",
                    cache.display()
                ),
                _ => {}
            }
            let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
            let code = req.run(&idx, &mut out)?;
            out.flush()?;
            Ok(ExitCode::from(code))
        }
        Err(busy @ IndexError::Busy { .. }) => match serve::ask(&cache, &req) {
            Ok(code) => Ok(code),
            Err(e)
                if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) =>
            {
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(anyhow::Error::new(busy).context(format!(
                "the follower holding the cache did not answer ({e:#}); it may be starting or stopping: try again in a moment"
            )))
            .setup(),
        },
        Err(e) => Err(anyhow::Error::new(e)).setup(),
    }
}

/// `s` as a CSV field: quoted when it holds a comma, a quote or a newline.
pub(crate) fn csv_field(s: &str) -> String {
    let mut out = String::new();
    push_csv(&mut out, s);
    out
}

/// Appends [`csv_field`] of `s` to `out`.
pub(crate) fn push_csv(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn json_line(t: i64, sensor: &str, v: &decode::Value) -> String {
    format!("{{\"time\":\"{}\",\"sensor\":{},\"value\":{}}}", rfc3339_millis(t), serde_json::Value::String(sensor.into()), value_json(v))
}

/// `--from` and `--to`, parsed and checked: a range whose start is not
/// before its end can hold nothing, so it is a usage error, not an empty answer.
fn range(from: Option<&str>, to: Option<&str>) -> Result<(Option<i64>, Option<i64>), CliError> {
    let (a, b) = (settings::time_arg(from, "--from")?, settings::time_arg(to, "--to")?);
    if let (Some(a), Some(b), Some(from), Some(to)) = (a, b, from, to) {
        let (at, bt) = (rfc3339_millis(a), rfc3339_millis(b));
        if a > b {
            return Err(setup_error(format!(
                "the range is reversed: --from {from} ({at}) is after --to {to} ({bt}); the earlier time goes in --from"
            )));
        }
        if a == b {
            return Err(setup_error(format!("the range is empty: --from {from} and --to {to} are both {at}, and --to is excluded")));
        }
    }
    Ok((a, b))
}

/// `from 2012-11-30T00:00:00.000Z to ...`, as given, for notes.
fn describe(from: Option<i64>, to: Option<i64>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => format!("from {} to {}", rfc3339_millis(a), rfc3339_millis(b)),
        (Some(a), None) => format!("from {} on", rfc3339_millis(a)),
        (None, Some(b)) => format!("before {}", rfc3339_millis(b)),
        (None, None) => "at all".into(),
    }
}

pub fn query(global: &Global, args: QueryArgs) -> Result<ExitCode, CliError> {
    range(args.from.as_deref(), args.to.as_deref())?;
    if let Some(e) = &args.every {
        every::parse_every(e)?;
    }
    if args.fill && args.format != Format::Table {
        return Err(setup_error(
            "--fill adds empty rows to the table format only: csv and jsonl leave out the periods without readings (a program sees the gaps in the start times)",
        ));
    }
    run(global, Request::Query(args))
}

fn query_on(idx: &Index, args: &QueryArgs, out: &mut dyn Write, notes: Notes<'_>) -> Result<(), CliError> {
    let (from, to) = range(args.from.as_deref(), args.to.as_deref())?;
    if args.every.is_some() {
        return every::query_every(idx, args, from, to, out, notes);
    }
    let unit = match args.format {
        Format::Table => idx.unit(&args.sensor)?.map(|u| format!(" {u}")).unwrap_or_default(),
        _ => String::new(),
    };
    if args.format == Format::Csv {
        writeln!(out, "time,sensor,value")?;
    }
    let sensor = args.sensor.clone();
    let mut rows = 0u64;
    let found = idx.query(&args.sensor, from, to, &mut |t, v| {
        rows += 1;
        match args.format {
            Format::Table => writeln!(out, "{}  {v}{unit}", rfc3339_millis(t)),
            Format::Csv => writeln!(out, "{},{},{}", rfc3339_millis(t), csv_field(&sensor), csv_field(&v.to_string())),
            Format::Jsonl => writeln!(out, "{}", json_line(t, &sensor, v)),
        }
    })?;
    if !found {
        return Err(no_such_sensor(idx, &args.sensor));
    }
    // An empty answer is still an answer (status 0), but one that a person
    // should not mistake for a command that printed nothing by accident.
    if rows == 0 {
        let span = idx
            .schema()?
            .into_iter()
            .find(|r| r.sensor == args.sensor)
            .map(|r| format!("; it has readings from {} to {}", rfc3339_millis(r.first_ms), rfc3339_millis(r.last_ms)));
        notes(format!("blackbox: no readings of {} {}{}", args.sensor, describe(from, to), span.unwrap_or_default()));
    }
    Ok(())
}

/// The error for a sensor the cache does not have, with similar names.
pub(crate) fn no_such_sensor(idx: &Index, sensor: &str) -> CliError {
    let needle = sensor.to_lowercase();
    let last = needle.rsplit('/').next().unwrap_or(&needle).to_string();
    let similar: Vec<String> = idx.sensor_names().into_iter().filter(|s| s.to_lowercase().contains(&last)).take(8).collect();
    let hint =
        if similar.is_empty() { "`blackbox schema` lists every sensor".to_string() } else { format!("similar: {}", similar.join(", ")) };
    setup_error(format!("no sensor {sensor:?} in the cache; {hint}"))
}

pub fn export(global: &Global, args: ExportArgs) -> Result<ExitCode, CliError> {
    range(args.from.as_deref(), args.to.as_deref())?;
    if let Some(e) = &args.every {
        every::parse_every(e)?;
    }
    run(global, Request::Export(args))
}

fn export_on(idx: &Index, args: &ExportArgs, out: &mut dyn Write, notes: Notes<'_>) -> Result<(), CliError> {
    let (from, to) = range(args.from.as_deref(), args.to.as_deref())?;
    if args.every.is_some() {
        return every::export_every(idx, args, from, to, out, notes);
    }
    if args.format == Format::Csv {
        writeln!(out, "time,sensor,value")?;
    }
    // For the table, units by sensor and one width for the sensor column.
    let mut units: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let width = match args.format {
        Format::Table => idx.sensor_names().iter().map(|s| s.chars().count()).max().unwrap_or(0),
        _ => 0,
    };
    let mut rows = 0u64;
    idx.export(from, to, &mut |t, s, v| {
        rows += 1;
        match args.format {
            Format::Jsonl => writeln!(out, "{}", json_line(t, s, v)),
            Format::Csv => writeln!(out, "{},{},{}", rfc3339_millis(t), csv_field(s), csv_field(&v.to_string())),
            Format::Table => {
                if !units.contains_key(s) {
                    let unit = idx.unit(s).ok().flatten().map(|u| format!(" {u}")).unwrap_or_default();
                    units.insert(s.to_string(), unit);
                }
                writeln!(out, "{}  {s:<width$}  {v}{}", rfc3339_millis(t), units[s])
            }
        }
    })?;
    if rows == 0 {
        let span = match idx.stats()? {
            index::Stats { first_ms: Some(a), last_ms: Some(b), .. } => {
                format!("; the cache holds readings from {} to {}", rfc3339_millis(a), rfc3339_millis(b))
            }
            _ => "; the cache holds none yet".into(),
        };
        notes(format!("blackbox: no readings {}{span}", describe(from, to)));
    }
    Ok(())
}

pub fn schema(global: &Global, args: SchemaArgs) -> Result<ExitCode, CliError> {
    run(global, Request::Schema(args))
}

fn schema_on(idx: &Index, out: &mut dyn Write) -> Result<(), CliError> {
    let rows = idx.schema()?;
    let width = rows.iter().map(|r| r.sensor.chars().count()).max().unwrap_or(6).max(6);
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
    Ok(())
}

pub fn stats(global: &Global, args: StatsArgs) -> Result<ExitCode, CliError> {
    run(global, Request::Stats(args))
}

fn stats_on(idx: &Index, out: &mut dyn Write) -> Result<(), CliError> {
    let s = idx.stats()?;
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
            x.source, x.counts.lines, x.counts.decoded, x.counts.values, x.counts.recognised, x.counts.undecoded, x.counts.partial
        )?;
    }
    for x in s.sources.iter().filter(|x| x.counts.replayed + x.counts.replay_known + x.counts.replay_unplaced + x.counts.flash_damaged > 0)
    {
        let c = &x.counts;
        writeln!(
            out,
            "{}: dataflash replays gave {} readings ({} placed approximately), {} logged already, {} without a known time, {} damaged pages (docs/dataflash.md)",
            x.source, c.replayed, c.replay_approximate, c.replay_known, c.replay_unplaced, c.flash_damaged
        )?;
    }
    if !s.events.is_empty() {
        writeln!(out, "\nmost frequent events:")?;
        for (code, n) in s.events.iter().take(10) {
            writeln!(out, "  {code:<12} {n:>9}")?;
        }
    }
    Ok(())
}
