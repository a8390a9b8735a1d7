//! Notifications from the command line: the follower's notifier, `ack`,
//! `silence`, `notify test`, `notify log`, and what `status` says of them.

use crate::args::{AckArgs, Global, NotifyLogArgs, NotifyTestArgs, SilenceArgs, StatusFormat};
use crate::cmd::read::{run, Request};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use crate::view::printable;
use alert::{Change, Entry, Kind, Message, Notifier, Observation, Outcome, Records, Routes, Silence};
use anyhow::Context;
use health::Subject;
use index::Index;
use logfile::time::rfc3339_millis;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

/// Starts the follower's notifier when routes are configured. `on_record`
/// sees every ledger record (the demo shows them in its live view).
pub fn start(idx: &Arc<Mutex<Index>>, routes: &Routes, on_record: Arc<alert::OnRecord>) -> Result<Option<Notifier>, CliError> {
    if routes.is_empty() {
        return Ok(None);
    }
    let idx = idx.clone();
    let look = move |now: i64| -> Result<Observation, String> {
        let (health, transitions) = {
            let idx = idx.lock().unwrap_or_else(PoisonError::into_inner);
            (idx.health().map_err(|e| e.to_string())?, idx.transitions(Some(now - alert::LIVE_MS), None).map_err(|e| e.to_string())?)
        };
        // The check behind a device's change: a result that changed to the same level at the same time.
        let checks: std::collections::HashMap<(String, i64, health::Level), String> = transitions
            .iter()
            .filter_map(|t| match &t.subject {
                Subject::Result { check, sensor } => {
                    Some(((sensor.rsplit_once('/').map_or(sensor.as_str(), |(d, _)| d).to_string(), t.at_ms, t.to), check.clone()))
                }
                _ => None,
            })
            .collect();
        let changes = transitions
            .into_iter()
            .filter_map(|t| match t.subject {
                Subject::Device(device) => Some(Change {
                    source: device.split_once('/').map_or(device.as_str(), |(s, _)| s).to_string(),
                    check: checks.get(&(device.clone(), t.at_ms, t.to)).cloned(),
                    device,
                    from: t.from,
                    to: t.to,
                    at_ms: t.at_ms,
                    why: t.message,
                    value: t.value,
                }),
                _ => None,
            })
            .collect();
        Ok(Observation { now_ms: now, changes, status: health.status_at(now) })
    };
    let (notifier, warnings) = Notifier::start(routes, logfile::OffsetClock::from_env(), Arc::new(look), on_record)
        .with_context(|| format!("cannot start notifications (state directory {})", routes.state.display()))
        .setup()?;
    for w in warnings {
        note!("blackbox: warning: {w}");
    }
    note!(
        "blackbox: notifications on ({}), ledger in {}",
        routes
            .routes
            .iter()
            .map(|r| format!("{:?} by {}", r.name, r.channels.iter().map(|c| c.word()).collect::<Vec<_>>().join(", then ")))
            .collect::<Vec<_>>()
            .join("; "),
        routes.state.join(alert::LEDGER).display()
    );
    Ok(Some(notifier))
}

/// One line about a ledger record, for a person.
pub fn record_line(e: &Entry) -> String {
    match (&e.outcome, &e.channel) {
        (Outcome::Sent, Some(c)) => format!("notified {:?} by {c}: {}", e.message.route, e.message.headline()),
        _ => format!(
            "could not notify {:?} ({}): {}",
            e.message.route,
            e.failures.last().map_or("no channel".into(), |f| format!("{}: {}", f.channel, f.error)),
            e.message.headline()
        ),
    }
}

/// A path that means the same to the follower, which may run elsewhere.
fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

pub fn ack(global: &Global, mut args: AckArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    if let Some(d) = &args.for_ {
        if config::parse_duration(d).map_err(|e| setup_error(format!("--for: {e}")))?.is_zero() {
            return Err(setup_error("--for 0 would end at once: give a duration, or leave --for out (until the device's level changes)"));
        }
    }
    args.state = Some(absolute(settings::state_dir(global, &config)));
    run(global, Request::Ack(args))
}

/// `ack`, against an open cache: the device's episode now is what is acknowledged.
pub fn ack_on(idx: &Index, args: &AckArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let now = settings::now_ms();
    let status = idx.health()?.status_at(now);
    let d = crate::cmd::status::matching(&status, &args.device)?;
    let for_ms = match &args.for_ {
        Some(t) => Some(config::parse_duration(t).map_err(|e| setup_error(format!("--for: {e}")))?.as_millis() as i64),
        None => None,
    };
    let Some(state) = &args.state else { return Err(setup_error("no state directory")) };
    let record = alert::state::ack_of(d, for_ms, args.note.clone(), now).map_err(|e| setup_error(printable(&e).into_owned()))?;
    let until = record.until_ms;
    Records::new(state, alert::ACKS)
        .append(&record)
        .with_context(|| format!("cannot record the acknowledgement in {}", state.display()))
        .setup()?;
    let how_long = match until {
        Some(u) => format!("until it changes or until {}", rfc3339_millis(u)),
        None => "until it changes".into(),
    };
    writeln!(
        out,
        "acknowledged {} ({} since {}): no repeated notifications {how_long}",
        printable(&d.device),
        d.level,
        rfc3339_millis(d.since_ms)
    )?;
    Ok(0)
}

pub fn silence(global: &Global, args: SilenceArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let state = settings::state_dir(global, &config);
    let records = Records::new(&state, alert::SILENCES);
    let now = settings::now_ms();
    let mut out = std::io::stdout().lock();
    if args.list {
        let (all, warnings) = records.read::<Silence>().with_context(|| format!("cannot read {}", records.path().display())).setup()?;
        warnings.iter().for_each(|w| note!("blackbox: warning: {w}"));
        let active = alert::state::active_silences(&all, now);
        if active.is_empty() {
            note!("blackbox: no silence in force");
        }
        for (_, s) in active {
            writeln!(out, "{}", silence_line(&s))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // clap requires the glob unless --list.
    let glob = args.glob.unwrap_or_default();
    health::glob::Glob::new(&glob).map_err(|e| setup_error(format!("{glob:?}: {e}")))?;
    if args.clear {
        let (all, _) = records.read::<Silence>().with_context(|| format!("cannot read {}", records.path().display())).setup()?;
        if !alert::state::active_silences(&all, now).iter().any(|(_, s)| s.glob == glob) {
            return Err(setup_error(format!("no silence of {glob} is in force (`blackbox silence --list` shows them)")));
        }
    }
    let record = if args.clear {
        Silence { at_ms: now, glob: glob.clone(), until_ms: now, note: args.note, cleared: true }
    } else {
        // clap requires --for unless --clear or --list.
        let d = config::parse_duration(args.for_.as_deref().unwrap_or_default()).map_err(|e| setup_error(format!("--for: {e}")))?;
        if d.is_zero() {
            return Err(setup_error("--for 0 would end at once: give how long, such as 2h"));
        }
        Silence { at_ms: now, glob: glob.clone(), until_ms: now + d.as_millis() as i64, note: args.note, cleared: false }
    };
    records.append(&record).with_context(|| format!("cannot record the silence in {}", state.display())).setup()?;
    if record.cleared {
        writeln!(out, "silences of {glob} ended")?;
    } else {
        writeln!(out, "{}", silence_line(&record))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn silence_line(s: &Silence) -> String {
    let note = s.note.as_deref().map(|n| format!(" ({})", printable(n))).unwrap_or_default();
    format!("silenced {} until {}{note}", printable(&s.glob), rfc3339_millis(s.until_ms))
}

fn routes_or_say(global: &Global) -> Result<Routes, CliError> {
    let config = settings::load_config(global)?;
    let routes = settings::routes(global, &config)?;
    if routes.is_empty() {
        let file = global.config.clone().unwrap_or_else(|| settings::CONFIG_FILE.into());
        return Err(setup_error(format!(
            "{} has no [[notify]] table: nothing to send through (docs/configuration.md, \"[[notify]]\")",
            file.display()
        )));
    }
    Ok(routes)
}

pub fn test(global: &Global, args: NotifyTestArgs) -> Result<ExitCode, CliError> {
    let routes = routes_or_say(global)?;
    let chosen: Vec<&alert::Route> = routes.routes.iter().filter(|r| args.route.as_ref().is_none_or(|n| *n == r.name)).collect();
    if chosen.is_empty() {
        let names: Vec<String> = routes.routes.iter().map(|r| format!("{:?}", r.name)).collect();
        return Err(setup_error(format!("no [[notify]] is named {:?} (there are {})", args.route.unwrap_or_default(), names.join(", "))));
    }
    let ledger = Records::new(&routes.state, alert::LEDGER);
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for route in chosen {
        for channel in &route.channels {
            let now = settings::now_ms();
            let m = Message::new(Kind::Test, &route.name, &routes.site, now, Vec::new(), now as u64);
            note!("blackbox: sending a test message to {:?} by {}...", route.name, channel.word());
            let mut failures = Vec::new();
            let said = alert::try_channel(channel, &m, &mut failures);
            for f in &failures {
                writeln!(out, "{:<12} {:<8} try failed: {}", route.name, channel.word(), printable(&f.error))?;
            }
            match &said {
                Some(s) => writeln!(out, "{:<12} {:<8} sent: {}", route.name, channel.word(), printable(s))?,
                None => {
                    failed = true;
                    let tries = if failures.len() == 1 { "1 try".to_string() } else { format!("{} tries", failures.len()) };
                    writeln!(out, "{:<12} {:<8} FAILED after {tries}", route.name, channel.word())?;
                }
            }
            let outcome = if said.is_some() { Outcome::Sent } else { Outcome::Failed };
            let entry = Entry { at_ms: settings::now_ms(), outcome, channel: Some(channel.word().into()), failures, message: m };
            if let Err(e) = ledger.append(&entry) {
                note!("blackbox: warning: cannot record the test in {}: {e}", ledger.path().display());
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn log(global: &Global, args: NotifyLogArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let state = settings::state_dir(global, &config);
    let ledger = Records::new(&state, alert::LEDGER);
    let (entries, warnings) = ledger.read::<Entry>().with_context(|| format!("cannot read {}", ledger.path().display())).setup()?;
    warnings.iter().for_each(|w| note!("blackbox: warning: {w}"));
    if entries.is_empty() {
        note!("blackbox: nothing was sent yet (no records in {})", ledger.path().display());
    }
    let skip = args.last.map_or(0, |n| entries.len().saturating_sub(n));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.format == StatusFormat::Table && !entries.is_empty() {
        writeln!(out, "{:<24}  {:<6}  {:<7}  {:<12}  {:<7}  {:<16}  MESSAGE", "TIME", "OUTCOME", "CHANNEL", "ROUTE", "KIND", "ID")?;
    }
    for e in &entries[skip..] {
        match args.format {
            StatusFormat::Json => writeln!(out, "{}", serde_json::to_string(e).map_err(anyhow::Error::new)?)?,
            StatusFormat::Table => {
                let outcome = match e.outcome {
                    Outcome::Sent => "sent",
                    Outcome::Failed => "FAILED",
                };
                writeln!(
                    out,
                    "{}  {:<7}  {:<7}  {:<12}  {:<7}  {}  {}",
                    rfc3339_millis(e.at_ms),
                    outcome,
                    e.channel.as_deref().unwrap_or("-"),
                    printable(&e.message.route),
                    e.message.kind.word(),
                    &e.message.id,
                    printable(&e.message.headline())
                )?;
                for f in &e.failures {
                    writeln!(out, "    after {} failed: {}", f.channel, printable(&f.error))?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The table form of [`alert::state::summary`].
pub fn write_status_part(part: &serde_json::Value, out: &mut dyn Write) -> std::io::Result<()> {
    let s = |v: &serde_json::Value| v.as_str().map(|t| printable(t).into_owned()).unwrap_or_default();
    writeln!(out)?;
    writeln!(out, "notifications: {} sent, {} failed on every channel, {} tests", part["sent"], part["failed"], part["tests"])?;
    for e in part["last"].as_array().into_iter().flatten() {
        let how = if e["outcome"] == "sent" { format!("by {}", s(&e["channel"])) } else { "FAILED".into() };
        writeln!(out, "  {}  {:<10} {}", s(&e["at"]), how, s(&e["text"]))?;
    }
    for a in part["acks"].as_array().into_iter().flatten() {
        let until = if a["until"].is_null() { "until it changes".to_string() } else { format!("until it changes or {}", s(&a["until"])) };
        let note = if a["note"].is_null() { String::new() } else { format!(" ({})", s(&a["note"])) };
        writeln!(out, "  acknowledged {} ({}) {until}{note}", s(&a["device"]), s(&a["level"]))?;
    }
    for x in part["silences"].as_array().into_iter().flatten() {
        let note = if x["note"].is_null() { String::new() } else { format!(" ({})", s(&x["note"])) };
        writeln!(out, "  silenced {} until {}{note}", s(&x["glob"]), s(&x["until"]))?;
    }
    Ok(())
}
