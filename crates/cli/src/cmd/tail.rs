//! `blackbox tail`: the log files directly, never the cache.

use crate::args::{Global, TailArgs};
use crate::cmd::watch::{Wake, Watch};
use crate::error::{setup_error, CliError};
use crate::settings;
use logfile::tail::{last_lines, lines_since, TailLine};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Rescan interval while following: a safety net for missed file events.
const RESCAN: Duration = Duration::from_secs(1);

pub fn run(global: &Global, args: TailArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let logs = settings::existing_logs_dir(global, &config)?;
    let grep = args.grep.as_deref().map(regex::Regex::new).transpose().map_err(|e| setup_error(format!("--grep: {e}")))?;
    let source = args.source.clone();
    let keep = move |line: &str| -> bool {
        if let Some(re) = &grep {
            if !re.is_match(line) {
                return false;
            }
        }
        match &source {
            None => true,
            Some(name) => match logfile::parse_line(line) {
                Ok(logfile::Line::Reading { source, .. }) => source == name,
                // Metadata about this source, or about capture as a whole.
                Ok(logfile::Line::Meta { args, .. }) => args.get("source").is_none_or(|s| s == name),
                Err(_) => false,
            },
        }
    };
    // Watch before reading, so that nothing appended in between is missed.
    let watch = if args.follow { Some(Watch::new(&logs)?) } else { None };
    let start = match settings::time_arg(args.since.as_deref(), "--since")? {
        Some(t) => lines_since(&logs, t, &keep),
        None => last_lines(&logs, args.lines, &keep),
    };
    let (first, mut follower) = start.map_err(|e| anyhow::Error::new(e).context(format!("reading {}", logs.display())))?;
    let headers = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut shown_day = None;
    let mut print = |line: TailLine, out: &mut dyn Write| -> std::io::Result<()> {
        // On a terminal, say which day the lines belong to (they carry only the time).
        if headers && shown_day != Some(line.day) {
            writeln!(out, "==> {} <==", line.day)?;
            shown_day = Some(line.day);
        }
        writeln!(out, "{}", line.text)
    };
    for line in first {
        print(line, &mut out)?;
    }
    out.flush()?;
    let Some(watch) = watch else { return Ok(ExitCode::SUCCESS) };
    loop {
        follower
            .poll(&mut |line| {
                if keep(&line.text) {
                    print(line, &mut out)?;
                }
                Ok(())
            })
            .map_err(|e| anyhow::Error::new(e).context(format!("following {}", logs.display())))?;
        out.flush()?;
        if watch.wait(RESCAN, Duration::ZERO) == Wake::Stop {
            return Ok(ExitCode::SUCCESS);
        }
    }
}
