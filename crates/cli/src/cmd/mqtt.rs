//! `blackbox forward --from` (history to MQTT again, on purpose) and
//! `blackbox mirror` (the central copy of every site's logs), docs/mqtt.md.

use crate::args::{ForwardArgs, Global, MirrorArgs};
use crate::cmd::cache::{cache_settings, mqtt_settings};
use crate::error::{setup_error, CliError, SetupExt};
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `YYYYMMDD` or `YYYY-MM-DD`, as `YYYYMMDD`.
fn day(text: &str, what: &str) -> Result<String, CliError> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y%m%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .map_err(|_| setup_error(format!("{what} {text:?}: expected a day, YYYYMMDD or YYYY-MM-DD")))?;
    Ok(date.format("%Y%m%d").to_string())
}

pub fn forward(global: &Global, args: ForwardArgs) -> Result<ExitCode, CliError> {
    let (derive, logs, _cache) = cache_settings(global)?;
    let Some((settings, _state)) = mqtt_settings(global, &derive.config)? else {
        return Err(setup_error("forward needs an [mqtt] table in the configuration (docs/mqtt.md)"));
    };
    if args.rate == 0 {
        return Err(setup_error("--rate must be at least 1 line a second"));
    }
    let replay =
        forward::Replay { from: day(&args.from, "--from")?, to: args.to.as_deref().map(|t| day(t, "--to")).transpose()?, rate: args.rate };
    if replay.to.as_ref().is_some_and(|to| *to < replay.from) {
        return Err(setup_error("--to is before --from"));
    }
    let span = match &replay.to {
        Some(to) => format!("from {} to {}", replay.from, to),
        None => format!("from {} on", replay.from),
    };
    note!(
        "blackbox: publishing the lines {span} again to {}:{} as {}/{}, at most {} lines/s",
        settings.host,
        settings.port,
        settings.prefix,
        settings.site,
        replay.rate
    );
    let started = Instant::now();
    let mut last = Instant::now();
    // The configs of the fields are sent as each is first seen in the lines.
    let schema = Arc::new(Vec::new);
    let sent = forward::replay(settings, &logs, derive.decoders.clone(), schema, &replay, &mut |n, at| {
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            note!("blackbox: {n} lines sent, at {} byte {}", at.day, at.offset);
        }
    })
    .map_err(|e| CliError::from(anyhow::anyhow!(e)))?;
    note!("blackbox: {} published again in {:.1} s", lines(sent), started.elapsed().as_secs_f64());
    if sent == 0 {
        note!("blackbox: (no lines in {}: `blackbox stats` lists the days the logs hold)", span.trim_start_matches("from "));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn mirror(_global: &Global, args: MirrorArgs) -> Result<ExitCode, CliError> {
    let mut broker = forward::broker(&args.mqtt, args.user.as_deref(), args.password_file.as_deref(), args.ca_file.as_deref())
        .map_err(|e| setup_error(format!("--mqtt: {e}")))?;
    if args.prefix.is_empty() || args.prefix.contains(['/', '+', '#']) {
        return Err(setup_error(format!("--prefix {:?}: must be non-empty, without / + #", args.prefix)));
    }
    broker.prefix = args.prefix.clone();
    if let Some(bad) = args.sites.iter().find(|s| !forward::mirror::site_ok(s)) {
        return Err(setup_error(format!("--site {bad:?}: a site name is letters, digits and - _ . : @ +, not starting with a dot")));
    }
    std::fs::create_dir_all(&args.dir).map_err(|e| setup_error(format!("cannot create {}: {e}", args.dir.display())))?;
    // One writer per directory: two mirrors would append the same lines twice.
    let _lock = logfile::lock::DirLock::acquire(&args.dir).map_err(|e| match e {
        logfile::lock::LockError::Held { pid, .. } => setup_error(format!(
            "another mirror{} already writes {}: one mirror per directory (give this one another --dir, or stop the other)",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            args.dir.display()
        )),
        e => setup_error(e),
    })?;
    let settings = forward::mirror::MirrorSettings {
        broker,
        dir: args.dir.clone(),
        client_id: args.client_id.clone().unwrap_or_else(|| format!("blackbox-mirror-{}", alert::route::host_name())),
        sites: args.sites.clone(),
    };
    // SIGTERM, SIGINT and SIGHUP stop the mirror (no file watch: it would
    // wake on every line the mirror itself appends).
    let stop = capture::Stop::new().context("cannot create the stop pipe").setup()?;
    stop.on_signals().context("cannot install signal handlers").setup()?;
    note!(
        "blackbox: mirroring {} from {} into {} (client id {}); Ctrl-C or SIGTERM stops",
        if args.sites.is_empty() { "every site".to_string() } else { args.sites.join(", ") },
        args.mqtt,
        args.dir.display(),
        settings.client_id
    );
    let worker = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("mirror".into())
            .spawn(move || {
                let mut told = (0, 0);
                let mut said: Option<Instant> = None;
                let mut progress = |c: &forward::mirror::Copies| {
                    if (c.appended, c.repeats) != told {
                        told = (c.appended, c.repeats);
                        tracing::info!(appended = c.appended, repeats = c.repeats, "mirror: lines");
                        // The first lines at once, then at most a line a minute.
                        if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                            said = Some(Instant::now());
                            note!("blackbox: mirror: {} appended, {} dropped so far", lines(c.appended), repeats(c.repeats));
                        }
                    }
                };
                forward::mirror::mirror(&settings, &|| stop.is_set(), &mut progress)
            })
            .setup()?
    };
    match worker.join() {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(CliError::from(anyhow::anyhow!("mirror: {e}"))),
        Err(_) => Err(CliError::from(anyhow::anyhow!("mirror: the mirror thread panicked"))),
    }
}

/// "1 line", "2 lines".
fn lines(n: u64) -> String {
    if n == 1 {
        "1 line".into()
    } else {
        format!("{n} lines")
    }
}

/// "1 repeat", "2 repeats".
fn repeats(n: u64) -> String {
    if n == 1 {
        "1 repeat".into()
    } else {
        format!("{n} repeats")
    }
}
