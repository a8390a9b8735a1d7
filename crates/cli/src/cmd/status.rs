//! `status` and `health`: what is wrong at the site, from the health
//! evaluator's state and transitions in the cache.

use crate::args::{EventsArgs, Global, HealthArgs, StatusArgs, StatusFormat};
use crate::cmd::read::{run, Request};
use crate::error::{setup_error, CliError};
use crate::settings;
use crate::view::printable;
use health::{DeviceStatus, Level, Status, Subject, Transition};
use index::Index;
use logfile::time::rfc3339_millis;
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

pub fn status(global: &Global, mut args: StatusArgs) -> Result<ExitCode, CliError> {
    if let Some(dir) = args.sites.clone() {
        return crate::cmd::fleet::status(global, &args, &dir);
    }
    let config = settings::load_config(global)?;
    // The follower may answer: it needs to know where the lines behind a result are, and whether to colour.
    args.logs = Some(std::fs::canonicalize(settings::logs_dir(global, &config)).unwrap_or_else(|_| settings::logs_dir(global, &config)));
    args.color = crate::view::use_color(global.color);
    let state = settings::state_dir(global, &config);
    args.state = Some(std::path::absolute(&state).unwrap_or(state));
    run(global, Request::Status(args))
}

pub fn health(global: &Global, mut args: HealthArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    // The follower may answer: it needs to know where the files are.
    args.logs = Some(std::fs::canonicalize(settings::logs_dir(global, &config)).unwrap_or_else(|_| settings::logs_dir(global, &config)));
    run(global, Request::Health(args))
}

pub fn events(global: &Global, args: EventsArgs) -> Result<ExitCode, CliError> {
    run(global, Request::Events(args))
}

/// `events`, against an open cache.
pub fn events_on(idx: &Index, args: &EventsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let from = settings::time_arg(args.from.as_deref(), "--from")?;
    let to = settings::time_arg(args.to.as_deref(), "--to")?;
    if let Some(l) = &args.level {
        if !["info", "warning", "error", "critical"].contains(&l.as_str()) {
            return Err(setup_error(format!("unknown event level {l:?}: event levels are info, warning, error and critical")));
        }
    }
    for e in idx.events(from, to)? {
        if args.code.as_ref().is_some_and(|c| *c != e.code)
            || args.level.as_ref().is_some_and(|l| *l != e.level)
            || args.source.as_ref().is_some_and(|s| *s != e.source)
        {
            continue;
        }
        match args.format {
            StatusFormat::Json => writeln!(
                out,
                "{}",
                json!({
                    "time": rfc3339_millis(e.time_ms),
                    "source": e.source,
                    "code": e.code,
                    "level": e.level,
                    "description": e.description,
                    "file": e.file,
                    "line": e.line,
                    "text": e.text,
                })
            )?,
            StatusFormat::Table => writeln!(
                out,
                "{}  {:<8}  {:<10}  {}  {}:{}  {}",
                rfc3339_millis(e.time_ms),
                printable(&e.code),
                e.level,
                printable(&e.source),
                e.file,
                e.line,
                printable(&e.text)
            )?,
        }
    }
    Ok(())
}

/// ANSI colours of the levels (24-bit would be nicer; 8 colours work everywhere).
fn paint(level: Level) -> &'static str {
    match level {
        Level::Ok => "\x1b[32m",
        Level::Warning => "\x1b[33m",
        Level::Error => "\x1b[38;5;208m",
        Level::Critical => "\x1b[31m",
        Level::Grey => "\x1b[90m",
        Level::Black => "\x1b[30;47m",
    }
}

/// The level as a coloured block and a word: it reads without colour too.
pub(crate) fn badge(level: Level, color: bool) -> String {
    let word = format!("{:<8}", level.word());
    if color {
        format!("{}■\x1b[0m {word}", paint(level))
    } else {
        // A shape per colour for a terminal or printout without colour.
        let mark = match level {
            Level::Ok => "·",
            Level::Warning => "!",
            Level::Error => "!!",
            Level::Critical => "!!!",
            Level::Grey => "?",
            Level::Black => "??",
        };
        format!("{mark:<3} {word}")
    }
}

/// `2012-11-30 14:02`, or `-` before any data.
fn when(ms: i64) -> String {
    let t = rfc3339_millis(ms);
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h}"),
        _ => t,
    }
}

/// The device whose id is `want`, or the one device whose id (or name without its source) begins with it.
pub(crate) fn matching<'a>(status: &'a Status, want: &str) -> Result<&'a DeviceStatus, CliError> {
    let name = |d: &DeviceStatus| d.device.split_once('/').map_or(d.device.clone(), |(_, n)| n.to_string());
    if let Some(d) = status.devices.iter().find(|d| d.device == want) {
        return Ok(d);
    }
    let exact: Vec<&DeviceStatus> = status.devices.iter().filter(|d| name(d) == want).collect();
    if let [one] = exact.as_slice() {
        return Ok(one);
    }
    // A prefix of the id, or of the device's name without its source.
    let found: Vec<&DeviceStatus> = status
        .devices
        .iter()
        .filter(|d| d.device.starts_with(want) || d.device.split_once('/').is_some_and(|(_, name)| name.starts_with(want)))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(setup_error(format!("no device {want:?}: `blackbox status --all` lists them"))),
        many => Err(setup_error(format!(
            "{want:?} matches {} devices ({}): give more of the id",
            many.len(),
            many.iter().take(5).map(|d| d.device.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn summary(counts: &[usize; 6]) -> String {
    let parts: Vec<String> =
        Level::ALL.iter().zip(counts).rev().filter(|(_, &n)| n > 0).map(|(l, n)| format!("{n} {}", l.word())).collect();
    if parts.is_empty() {
        "no devices yet".into()
    } else {
        parts.join(", ")
    }
}

/// `status`, against an open cache; the exit status is the site's
/// monitoring-plugin code with `--nagios`, else 0.
pub fn status_on(idx: &Index, args: &StatusArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let health = idx.health()?;
    let at = settings::time_arg(args.at.as_deref(), "--at")?.unwrap_or_else(settings::now_ms);
    let status = health.status_at(at);
    let counts = status.counts();
    if args.nagios {
        if status.devices.is_empty() {
            // Nothing to judge (no logs yet, or a wrong log directory): not "OK".
            writeln!(out, "BLACKBOX UNKNOWN - no devices in the cache yet")?;
            return Ok(3);
        }
        let state = match status.level.exit_code() {
            0 => "OK",
            1 => "WARNING",
            2 => "CRITICAL",
            _ => "UNKNOWN",
        };
        let perf: Vec<String> = Level::ALL.iter().zip(counts).map(|(l, n)| format!("{}={n};;;", l.word())).collect();
        writeln!(out, "BLACKBOX {state} - {} | {}", summary(&counts), perf.join(" "))?;
        return Ok(status.level.exit_code() as u8);
    }
    let color = args.color && args.format == StatusFormat::Table;
    if let Some(want) = &args.device {
        let d = matching(&status, want)?;
        // The log directory is scanned once for every line shown.
        let days = args.logs.as_deref().and_then(|logs| logfile::scan(logs).ok()).map(|s| s.days).unwrap_or_default();
        if args.format == StatusFormat::Json {
            writeln!(out, "{}", web::device_json(d, &days))?;
            return Ok(0);
        }
        writeln!(out, "{}  {}", badge(d.level, color), printable(&d.device))?;
        writeln!(out, "  since     {}", when(d.since_ms))?;
        writeln!(out, "  why       {}", printable(&d.why))?;
        writeln!(out, "  last seen {}", when(d.last_seen_ms))?;
        if d.results.is_empty() {
            writeln!(out, "  every check passes")?;
        }
        let last = idx.last_lines(&d.device, d.last_seen_ms, 5)?;
        for r in &d.results {
            writeln!(out)?;
            writeln!(out, "  {}  {}  on {}, since {}", badge(r.level, color), printable(&r.check), printable(&r.sensor), when(r.since_ms))?;
            writeln!(out, "      {}", printable(&r.message))?;
            if let Some(c) = r.cause.as_ref().filter(|c| !c.day.is_empty()) {
                let text = logfile::day_lines(&days, &c.day, &[c.line]).pop().flatten();
                let file = logfile::layout::shown_name(&days, &c.day);
                writeln!(out, "      {file}:{} {}", c.line, text.as_deref().map(printable).unwrap_or_default())?;
            }
        }
        if !last.is_empty() && !days.is_empty() {
            writeln!(out)?;
            writeln!(out, "  last lines from the device:")?;
            for (file, line, text) in logfile::lines_at(&days, &last) {
                writeln!(out, "      {file}:{line} {}", text.as_deref().map(printable).unwrap_or_default())?;
            }
        }
        return Ok(0);
    }
    if args.format == StatusFormat::Json {
        // The files' names of the causes (`.txt.gz` for a gzipped day).
        let days = args.logs.as_deref().and_then(|logs| logfile::scan(logs).ok()).map(|s| s.days).unwrap_or_default();
        let v = json!({
            "at": rfc3339_millis(status.at_ms),
            "level": status.level,
            "colour": status.level.colour(),
            "counts": Level::ALL.iter().zip(counts).map(|(l, n)| (l.word().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "devices": status.devices.iter().filter(|d| args.all || d.level != Level::Ok).map(|d| web::device_json(d, &days)).collect::<Vec<_>>(),
            "notifications": args.state.as_deref().and_then(|s| alert::state::summary(s, at, &status)),
        });
        writeln!(out, "{v}")?;
        return Ok(0);
    }
    writeln!(out, "{}  site: {} devices: {}", badge(status.level, color), status.devices.len(), summary(&counts))?;
    let shown: Vec<&DeviceStatus> = status.devices.iter().filter(|d| args.all || d.level != Level::Ok).collect();
    let width = shown.iter().map(|d| d.device.chars().count()).max().unwrap_or(6).max(6);
    if !shown.is_empty() {
        writeln!(out, "{:<12}  {:<width$}  {:<16}  {:<16}  WHY", "LEVEL", "DEVICE", "SINCE", "LAST SEEN")?;
    }
    for d in shown {
        writeln!(
            out,
            "{}  {:<width$}  {:<16}  {:<16}  {}",
            badge(d.level, color),
            printable(&d.device),
            when(d.since_ms),
            when(d.last_seen_ms),
            printable(&d.why)
        )?;
    }
    if at < health.clock_ms() {
        // The stored results are those of the last line indexed: an earlier
        // --at judges only silence, so say so, and where the past is.
        writeln!(
            out,
            "(results as of the last line indexed, {}; an earlier --at judges silence only: `blackbox health --to T` lists what changed before)",
            when(health.clock_ms())
        )?;
    }
    if let Some(part) = args.state.as_deref().and_then(|s| alert::state::summary(s, at, &status)) {
        crate::cmd::notify::write_status_part(&part, out)?;
    }
    Ok(0)
}

fn subject(t: &Transition) -> String {
    match &t.subject {
        Subject::Result { check, sensor } => format!("{sensor} [{check}]"),
        Subject::Device(d) => d.clone(),
        Subject::Source(s) => format!("source {s}"),
        Subject::Site => "site".into(),
    }
}

/// `health`, against an open cache.
pub fn health_on(idx: &Index, args: &HealthArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let from = settings::time_arg(args.from.as_deref(), "--from")?;
    let to = settings::time_arg(args.to.as_deref(), "--to")?;
    let level = match &args.level {
        Some(w) => Some(
            Level::parse(w)
                .ok_or_else(|| setup_error(format!("unknown level {w:?}: the levels are ok, warning, error, critical, grey, black")))?,
        ),
        None => None,
    };
    // --device: a source (all of its devices), or a device as `status DEVICE` takes it.
    let device = match &args.device {
        None => None,
        Some(want) => {
            let status = idx.health()?.status_at(settings::now_ms());
            if status.devices.iter().any(|d| d.source == *want) {
                Some(want.clone())
            } else {
                Some(matching(&status, want)?.device.clone())
            }
        }
    };
    // The files' names (`.txt.gz` for a gzipped day), in json.
    let days = match (&args.logs, args.format) {
        (Some(logs), StatusFormat::Json) => logfile::scan(logs).map(|s| s.days).unwrap_or_default(),
        _ => Vec::new(),
    };
    for t in idx.transitions(from, to)? {
        if level.is_some_and(|l| t.from != l && t.to != l) {
            continue;
        }
        if let Some(want) = &device {
            let about = match &t.subject {
                Subject::Result { sensor, .. } => sensor.as_str(),
                Subject::Device(d) => d.as_str(),
                Subject::Source(_) | Subject::Site => continue,
            };
            // The device itself, or one of its sensors.
            let own = about == want || about.strip_prefix(want.as_str()).is_some_and(|rest| rest.starts_with('/'));
            if !own {
                continue;
            }
        }
        match args.format {
            StatusFormat::Json => writeln!(
                out,
                "{}",
                json!({
                    "time": rfc3339_millis(t.at_ms),
                    "decided": rfc3339_millis(t.decided_ms),
                    "subject": subject(&t),
                    "from": t.from,
                    "to": t.to,
                    "value": t.value,
                    "message": t.message,
                    "cause": t.cause.as_ref().filter(|c| !c.day.is_empty()).map(|c| json!({"file": logfile::layout::shown_name(&days, &c.day), "line": c.line})),
                })
            )?,
            StatusFormat::Table => writeln!(
                out,
                "{}  {:<8} -> {:<8}  {}  {}",
                rfc3339_millis(t.at_ms),
                t.from.word(),
                t.to.word(),
                printable(&subject(&t)),
                printable(&t.message)
            )?,
        }
    }
    Ok(())
}
