//! Turns arguments and `blackbox.toml` into validated settings before any
//! work starts. Precedence: command line, then configuration, then defaults.

use crate::args::{CaptureArgs, Global};
use crate::error::{setup_error, CliError, SetupExt};
use capture::{Backoff, CaptureOptions, Framing, Poll, SourceKind, SourceSpec};
use config::{Config, Place};
use logfile::{SyncPolicy, WriterOptions};
use std::path::{Path, PathBuf};

pub const DEFAULT_BAUD: u32 = 57600;

/// The configuration file, if any: `--config` must exist; `./blackbox.toml` is optional.
/// The configuration file read from the working directory when `--config` is not given.
pub const CONFIG_FILE: &str = "blackbox.toml";

pub fn load_config(global: &Global) -> Result<Config, CliError> {
    match &global.config {
        Some(path) => Config::load(path).setup(),
        None => {
            let path = Path::new(CONFIG_FILE);
            if path.exists() {
                Config::load(path).setup()
            } else {
                Ok(Config::default())
            }
        }
    }
}

pub fn cache_dir(global: &Global, config: &Config) -> PathBuf {
    global.cache.clone().or_else(|| config.cache.clone()).unwrap_or_else(|| PathBuf::from("cache"))
}

/// The SOURCE name of each `[[source]]`, as capture writes it.
pub fn source_names(config: &Config) -> Vec<String> {
    config
        .sources
        .iter()
        .map(|s| {
            s.name.clone().unwrap_or_else(|| match (&s.port, &s.tcp) {
                (Some(p), _) => capture::default_port_name(p),
                (None, Some(addr)) => capture::default_tcp_name(addr),
                (None, None) => "stdin".into(),
            })
        })
        .collect()
}

/// The decoders and the fingerprint of their configuration. Commands that
/// decode then say what is doubtful in it with [`warn_about`].
pub fn decoders(config: &Config) -> Result<(decode::Decoders, String), CliError> {
    let names = source_names(config);
    let decoders = decode::Decoders::new(config, &names).setup()?;
    Ok((decoders, index::fingerprint(config, &names)))
}

/// What the indexer derives the cache with: decoders, checks, and the fingerprint of both.
#[derive(Debug, Clone)]
pub struct Deriving {
    pub decoders: decode::Decoders,
    pub checks: health::Checks,
    pub rollups: rollup::Rollups,
    pub fingerprint: String,
    /// For the places of the checks in messages.
    pub config: Config,
}

/// The decoders and checks of the configuration; warnings about them are printed.
pub fn deriving(config: &Config) -> Result<Deriving, CliError> {
    let (decoders, fingerprint) = decoders(config)?;
    warn_about(&decoders);
    let checks = health::Checks::new(config, &source_names(config)).map_err(setup_error)?;
    let rollups = rollup::Rollups::new(config).map_err(setup_error)?;
    Ok(Deriving { decoders, checks, rollups, fingerprint, config: config.clone() })
}

/// Warns about check globs that match no sensor (or source) of the cache
/// yet: a typo, or a device that has not spoken.
pub fn warn_about_checks(derive: &Deriving, idx: &index::Index) {
    let sensors = idx.sensor_names();
    let mut sources: Vec<String> = sensors.iter().filter_map(|s| s.split('/').next()).map(str::to_string).collect();
    sources.extend(source_names(&derive.config));
    let sensors: Vec<&str> = sensors.iter().map(String::as_str).collect();
    let unmatched = |sources: &mut Vec<String>| {
        sources.sort_unstable();
        sources.dedup();
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        derive.checks.unmatched(&derive.config, &sensors, &sources)
    };
    for w in derive.rollups.unmatched(&derive.config, &sensors) {
        note!("blackbox: warning: {w}");
    }
    let mut warnings = unmatched(&mut sources);
    if !warnings.is_empty() {
        // Only then read which sources logged lines (one judged by its
        // events alone has no sensors): every day's records of the cache.
        sources.extend(idx.stats().map(|st| st.sources.into_iter().map(|s| s.source).collect::<Vec<_>>()).unwrap_or_default());
        warnings = unmatched(&mut sources);
    }
    for w in warnings {
        note!("blackbox: warning: {w}");
    }
}

/// Prints the configuration's warnings (a node type without a driver), each
/// naming the file and line.
pub fn warn_about(decoders: &decode::Decoders) {
    for w in decoders.warnings() {
        note!("blackbox: warning: {w}");
    }
}

/// Parses `--from`/`--to`.
/// Wall time now, in milliseconds (shifted for tests by `BLACKBOX_CLOCK_FILE`).
pub fn now_ms() -> i64 {
    logfile::OffsetClock::from_env().now().wall_ms
}

pub fn time_arg(s: Option<&str>, what: &str) -> Result<Option<i64>, CliError> {
    let now = now_ms();
    s.map(|s| logfile::time::parse_time(s, Some(now)).map_err(|e| setup_error(format!("{what}: {e}")))).transpose()
}

/// The log directory, which must exist (commands that read logs).
pub fn existing_logs_dir(global: &Global, config: &Config) -> Result<PathBuf, CliError> {
    let logs = logs_dir(global, config);
    if !logs.is_dir() {
        return Err(setup_error(format!("{} is not a directory (give the log directory with --logs DIR)", logs.display())));
    }
    Ok(logs)
}

/// The state directory: `state` in the configuration, else `state` beside the log directory.
pub fn state_dir(global: &Global, config: &Config) -> PathBuf {
    if let Some(s) = &config.state {
        return s.clone();
    }
    let logs = logs_dir(global, config);
    match logs.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("state"),
        _ => PathBuf::from("state"),
    }
}

/// The `[[notify]]` routes, checked.
pub fn routes(global: &Global, config: &Config) -> Result<alert::Routes, CliError> {
    alert::Routes::new(config, &state_dir(global, config)).map_err(setup_error)
}

pub fn logs_dir(global: &Global, config: &Config) -> PathBuf {
    global.logs.clone().or_else(|| config.logs.clone()).unwrap_or_else(|| PathBuf::from("logs"))
}

/// How capture writes: the sync policy (`--sync`, else `[capture] sync`),
/// the hold limit, the longest line (`--max-line`, else `[capture] max_line`)
/// and the reconnection backoff, as the configuration gives them.
#[derive(Debug)]
pub struct Writing {
    pub writer: WriterOptions,
    pub max_line: usize,
    pub backoff: Backoff,
}

pub fn writing(sync: Option<&str>, max_line: Option<usize>, config: &Config) -> Result<Writing, CliError> {
    let c = &config.capture;
    let sync: SyncPolicy = match sync.or(c.sync.as_deref()) {
        Some(s) => s.parse().map_err(setup_error)?,
        None => SyncPolicy::default(),
    };
    let max_line = max_line.or(c.max_line).unwrap_or(logfile::DEFAULT_MAX_LINE);
    if max_line == 0 {
        return Err(setup_error("max_line must be at least 1"));
    }
    let mut writer = WriterOptions { sync, ..WriterOptions::default() };
    if let Some(limit) = c.hold_limit {
        writer.hold_limit = limit;
    }
    let mut backoff = Backoff::default();
    if let Some(d) = c.reconnect_min {
        backoff.min = d.0.max(std::time::Duration::from_millis(1));
    }
    if let Some(d) = c.reconnect_max {
        backoff.max = d.0.max(backoff.min);
    }
    Ok(Writing { writer, max_line, backoff })
}

/// Everything `capture` needs, checked.
pub fn capture_options(global: &Global, args: &CaptureArgs, config: &Config) -> Result<CaptureOptions, CliError> {
    let Writing { writer, max_line, backoff } = writing(args.sync.as_deref(), args.max_line, config)?;
    let mut sources = Vec::new();
    let single = if let Some(port) = &args.port {
        let framing = parse_framing(args.framing.as_deref())?;
        Some(SourceKind::Serial { path: port.clone(), baud: args.baud.unwrap_or(DEFAULT_BAUD), framing })
    } else if let Some(addr) = &args.tcp {
        Some(SourceKind::Tcp { addr: addr.clone() })
    } else if args.stdin {
        Some(SourceKind::Stdin)
    } else {
        None
    };
    let from_config = single.is_none();
    if let Some(kind) = single {
        let name = args.source.clone().unwrap_or_else(|| default_name(&kind));
        let mut spec = SourceSpec::new(name, kind);
        spec.max_line = max_line;
        sources.push(spec);
    } else {
        if args.source.is_some() {
            return Err(setup_error("--source names the source given by --port, --tcp or --stdin; none was given"));
        }
        for (i, s) in config.sources.iter().enumerate() {
            let at = |m: String| setup_error(config.at(Place::Source(i), format!("[[source]] number {}: {m}", i + 1)));
            let kinds = usize::from(s.port.is_some()) + usize::from(s.tcp.is_some()) + usize::from(s.stdin);
            if kinds != 1 {
                return Err(at("give exactly one of port, tcp or stdin = true".into()));
            }
            let kind = if let Some(port) = &s.port {
                SourceKind::Serial {
                    path: port.clone(),
                    baud: s.baud.unwrap_or(DEFAULT_BAUD),
                    framing: s.framing.as_deref().map_or(Ok(Framing::default()), str::parse).map_err(at)?,
                }
            } else if let Some(addr) = &s.tcp {
                SourceKind::Tcp { addr: addr.clone() }
            } else {
                SourceKind::Stdin
            };
            let mut spec = SourceSpec::new(s.name.clone().unwrap_or_else(|| default_name(&kind)), kind);
            spec.init = s.init.clone();
            spec.init_delay = s.init_delay.map(|d| d.0).unwrap_or_default();
            spec.polls = s.polls.iter().map(|p| Poll { command: p.command.clone(), every: p.every.0 }).collect();
            if spec.polls.iter().any(|p| p.every.is_zero()) {
                return Err(at("a poll interval must be longer than zero".into()));
            }
            if let Some(eol) = &s.command_eol {
                spec.command_eol = eol.clone();
            }
            spec.max_line = s.max_line.unwrap_or(max_line);
            if let Some(problem) = s.dataflash_problem() {
                return Err(at(problem.into()));
            }
            spec.dataflash = s.dataflash;
            sources.push(spec);
        }
    }
    if sources.is_empty() {
        return Err(setup_error(
            "no source to capture: give --port PATH, --tcp HOST:PORT or --stdin, or add [[source]] tables to blackbox.toml",
        ));
    }
    // Sources from the configuration are named with the file and line of their table.
    let at = |i: usize, m: String| if from_config { setup_error(config.at(Place::Source(i), m)) } else { setup_error(m) };
    for (i, s) in sources.iter().enumerate() {
        capture::validate_name(&s.name).map_err(|m| at(i, m))?;
        if sources[..i].iter().any(|o| o.name == s.name) {
            return Err(at(i, format!("two sources are named {:?}; give each a distinct name", s.name)));
        }
    }
    if sources.iter().filter(|s| s.kind == SourceKind::Stdin).count() > 1 {
        return Err(setup_error("only one source can read standard input"));
    }
    Ok(CaptureOptions { logs: logs_dir(global, config), writer, sources, backoff })
}

fn parse_framing(s: Option<&str>) -> Result<Framing, CliError> {
    s.map_or(Ok(Framing::default()), |s| s.parse().map_err(setup_error))
}

fn default_name(kind: &SourceKind) -> String {
    match kind {
        SourceKind::Serial { path, .. } => capture::default_port_name(path),
        SourceKind::Tcp { addr } => capture::default_tcp_name(addr),
        SourceKind::Stdin => "stdin".into(),
    }
}
