//! `blackbox tail`: the log files directly, never the cache.

use crate::args::{Global, TailArgs};
use crate::cmd::watch::{Wake, Watch};
use crate::error::{setup_error, CliError};
use crate::settings;
use crate::view::{self, DecodedView, RawView};
use logfile::tail::{last_lines, lines_since, Follower, TailLine};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Rescan interval while following: a safety net for missed file events.
const RESCAN: Duration = Duration::from_secs(1);

/// How lines are shown.
pub enum View {
    Raw(RawView),
    Decoded(Box<DecodedView>),
}

impl View {
    pub fn show(&mut self, line: &TailLine, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            View::Raw(v) => v.show(line.day, &line.text, out),
            View::Decoded(v) => v.show(line.day, &line.text, out),
        }
    }
}

pub fn run(global: &Global, args: TailArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let logs = settings::existing_logs_dir(global, &config)?;
    let grep = args.grep.as_deref().map(regex::Regex::new).transpose().map_err(|e| setup_error(format!("--grep: {e}")))?;
    let color = view::use_color(global.color);
    let mut view = if args.decoded {
        let (decoders, _) = settings::decoders(&config)?;
        settings::warn_about(&decoders);
        View::Decoded(Box::new(DecodedView::new(decoders, color)))
    } else {
        // On a terminal, say which day the lines belong to (they carry only the time).
        View::Raw(RawView::new(color, std::io::stdout().is_terminal()))
    };
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
    let mut out = std::io::stdout().lock();
    if let View::Decoded(v) = &mut view {
        v.fit(first.iter().map(|l| (l.day, l.text.as_str())));
    }
    for line in &first {
        view.show(line, &mut out)?;
    }
    out.flush()?;
    if let Some(watch) = watch {
        follow(&logs, &mut follower, &watch, &keep, &mut view, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows the lines `keep` accepts as they are appended after `follower`'s
/// position, until `watch` stops.
pub fn follow(
    logs: &Path,
    follower: &mut Follower,
    watch: &Watch,
    keep: &dyn Fn(&str) -> bool,
    view: &mut View,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    loop {
        poll(logs, follower, keep, view, out)?;
        if watch.wait(RESCAN, Duration::ZERO) == Wake::Stop {
            return Ok(());
        }
    }
}

/// Shows whatever complete lines were appended since the last poll.
pub fn poll(
    logs: &Path,
    follower: &mut Follower,
    keep: &dyn Fn(&str) -> bool,
    view: &mut View,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    follower
        .poll(&mut |line| if keep(&line.text) { view.show(&line, out) } else { Ok(()) })
        .map_err(|e| anyhow::Error::new(e).context(format!("following {}", logs.display())))?;
    out.flush()?;
    Ok(())
}
