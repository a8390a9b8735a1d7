//! `index [--follow]` and `rebuild`: the only commands that write the cache.

use crate::args::{Global, IndexArgs, RebuildArgs};
use crate::cmd::serve;
use crate::cmd::watch::{Wake, Watch};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings::{self, Deriving};
use anyhow::Context;
use index::{Index, Progress, Reset};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often `--follow` rescans even without file events (missed events, network file systems).
const RESCAN: Duration = Duration::from_secs(5);
/// After a file event, further events within this time are handled together.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Opens the cache for writing. A cache built with another configuration or
/// format is first rebuilt beside it and swapped in, so it keeps answering
/// queries meanwhile; what that rebuild did is returned.
pub fn open_current(cache: &Path, logs: &Path, derive: &Deriving) -> Result<(Index, Option<index::CatchUp>), CliError> {
    open_current_with(cache, logs, derive, &mut |_| {})
}

/// [`open_current`], telling `progress` how a rebuild goes.
pub fn open_current_with(
    cache: &Path,
    logs: &Path,
    derive: &Deriving,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Index, Option<index::CatchUp>), CliError> {
    let fingerprint = &derive.fingerprint;
    let mut rebuilt = None;
    if let Ok((_, Some(reason @ (Reset::Config | Reset::Version { .. })))) = Index::open_read(cache, fingerprint) {
        let why = match reason {
            Reset::Config => "the configuration of decoders or checks changed".to_string(),
            _ => format!("the cache format changed (this blackbox writes {})", index::FORMAT_VERSION),
        };
        note!("blackbox: {why} since {} was built; building a new one beside it", cache.display());
        rebuilt = Some(rebuild_beside(cache, logs, derive, progress)?);
    }
    Ok((open(cache, derive)?, rebuilt))
}

/// How long `index` waits for a cache another process holds: a reader
/// (`status`, `query`) holds it for milliseconds, a follower for good.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Whether another process holds the cache for good (a follower), not for
/// the milliseconds of a `status` or `query`: held at every look for a second.
pub(crate) fn held_by_a_follower(cache: &Path) -> Result<bool, CliError> {
    let until = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if !index::held_by_another(cache).map_err(anyhow::Error::new).setup()? {
            return Ok(false);
        }
        if std::time::Instant::now() >= until {
            return Ok(true);
        }
        // The pace of the look, not a synchronisation: a reader lets go within milliseconds.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open(cache: &Path, derive: &Deriving) -> Result<Index, CliError> {
    let opened = Index::open_waiting(cache, &derive.fingerprint, BUSY_WAIT, || {
        note!("blackbox: {} is busy (another blackbox reads it?); waiting up to {} s", cache.display(), BUSY_WAIT.as_secs());
    });
    let (mut idx, reset) = match opened {
        Ok(opened) => opened,
        Err(index::IndexError::Busy { .. }) => {
            return Err(setup_error(format!(
                "cannot index into {}: a running `blackbox index --follow` (or `blackbox serve` or `blackbox demo`) holds it, and already keeps it current \
(with the configuration it started with: restart it to apply a changed one)",
                cache.display()
            )))
        }
        Err(e) => return Err(anyhow::Error::new(e)).setup(),
    };
    match reset {
        Some(Reset::Config) => {
            note!(
                "blackbox: the configuration of decoders or checks changed since {} was built; rebuilding it from the logs",
                cache.display()
            )
        }
        Some(Reset::Version { found }) => {
            note!(
                "blackbox: {} has cache format {found}, this blackbox writes {}; rebuilding it from the logs",
                cache.display(),
                index::FORMAT_VERSION
            )
        }
        Some(Reset::MovedAside(p)) => {
            note!("blackbox: {} could not be opened (damaged?); moved it to {} and rebuilding from the logs", cache.display(), p.display())
        }
        None => {}
    }
    idx.set_checks(derive.checks.clone());
    if idx.set_rollups(derive.rollups.clone()).map_err(anyhow::Error::new).setup()? {
        note!("blackbox: [rollup] or [[counter]] changed since the rollups were made; making them again from the cache's readings (the logs are not read again)");
    }
    Ok(idx)
}

/// Decoders and checks, the log directory (which must exist) and the cache directory.
pub fn cache_settings(global: &Global) -> Result<(Deriving, PathBuf, PathBuf), CliError> {
    let config = settings::load_config(global)?;
    let derive = settings::deriving(&config)?;
    // The routes are checked here too: a mistake in [[notify]] shows before a follower needs them.
    settings::routes(global, &config)?;
    let logs = settings::existing_logs_dir(global, &config)?;
    Ok((derive, logs, settings::cache_dir(global, &config)))
}

/// A progress bar on a terminal; nothing otherwise.
fn bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn show(bar: &ProgressBar, p: &Progress) {
    bar.set_length(p.bytes_total);
    bar.set_position(p.bytes_done + p.bytes_in_day);
    bar.set_message(format!("day {} ({}/{}), {} lines", p.day, p.days_done + 1, p.days_total, p.lines));
}

pub fn index(global: &Global, args: IndexArgs) -> Result<ExitCode, CliError> {
    let (derive, logs, cache) = cache_settings(global)?;
    let decoders = &derive.decoders;
    // When following, take over the stop signals first, before any long work:
    // a SIGTERM then stops the follower cleanly at the next batch.
    let watch = if args.follow { Some(Watch::new(&logs)?) } else { None };
    let started = Instant::now();
    let (mut idx, rebuilt) = open_current(&cache, &logs, &derive)?;
    let bar = bar();
    let done = idx
        .catch_up(&logs, decoders, &mut |p| {
            show(&bar, p);
            !watch.as_ref().is_some_and(Watch::stopping)
        })
        .with_context(|| format!("indexing {} into {}", logs.display(), cache.display()))?;
    bar.finish_and_clear();
    idx.flush()?;
    settings::warn_about_checks(&derive, &idx);
    // After a rebuild, the summary counts its work too: it is most of what was done.
    let (what, lines, bytes, days) = match &rebuilt {
        Some(r) => ("lines", r.lines + done.lines, r.bytes + done.bytes, r.days.max(done.days)),
        None => ("new lines", done.lines, done.bytes, done.days),
    };
    note!(
        "blackbox: indexed {lines} {what} ({:.1} MB) of {days} day{} into {}{} in {}{}{}",
        bytes as f64 / 1e6,
        if days == 1 { "" } else { "s" },
        if rebuilt.is_some() { "the new " } else { "" },
        cache.display(),
        took(started.elapsed().as_secs_f64()),
        if done.reindexed.is_empty() {
            String::new()
        } else {
            format!("; re-indexed {} (changed since indexed)", done.reindexed.join(", "))
        },
        if done.removed.is_empty() { String::new() } else { format!("; removed {} (files gone)", done.removed.join(", ")) },
    );
    if done.stopped {
        note!("blackbox: stopped before the end on a signal; everything indexed so far is kept, and the next run continues from there");
    }
    if let Some(watch) = watch {
        note!("blackbox: following {} (Ctrl-C to stop)", logs.display());
        let routes = settings::routes(global, &derive.config)?;
        let on_record: Arc<alert::OnRecord> = Arc::new(|e: &alert::Entry| note!("blackbox: {}", crate::cmd::notify::record_line(e)));
        follow(
            &Arc::new(Mutex::new(idx)),
            &cache,
            &logs,
            decoders,
            &watch,
            Telling { routes: &routes, on_record, indexed: &|| {}, mqtt: mqtt_settings(global, &derive.config)? },
        )?;
        note!("blackbox: stopped following");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whom the follower tells: people (the `[[notify]]` routes; `on_record`
/// sees each ledger record) and `indexed`, called after new lines were indexed.
pub struct Telling<'a> {
    pub routes: &'a alert::Routes,
    pub on_record: Arc<alert::OnRecord>,
    pub indexed: &'a dyn Fn(),
    /// `[mqtt]`, when configured, and the state directory for its cursor.
    pub mqtt: Option<(forward::Settings, PathBuf)>,
}

/// What [`follow`] is told by the configuration: `[mqtt]` and the state directory.
pub fn mqtt_settings(global: &Global, config: &config::Config) -> Result<Option<(forward::Settings, PathBuf)>, CliError> {
    let site = config.site.clone().unwrap_or_else(alert::route::host_name);
    let settings = forward::Settings::new(config, &site).map_err(|e| setup_error(config.at(config::Place::File, e)))?;
    Ok(settings.map(|s| (s, settings::state_dir(global, config))))
}

/// Keeps the cache current, on file events (notify) and every few seconds,
/// until `watch` stops; meanwhile answers other processes' queries and, with
/// `routes`, tells people about status changes (`on_record` sees each
/// ledger record). Call it once the cache has caught up: what the notifier
/// first sees is what stands.
pub fn follow(
    idx: &Arc<Mutex<Index>>,
    cache: &Path,
    logs: &Path,
    decoders: &decode::Decoders,
    watch: &Watch,
    tell: Telling<'_>,
) -> Result<(), CliError> {
    // sled locks the cache: other processes' queries are answered from here.
    let _server =
        serve::start(cache, idx.clone()).with_context(|| format!("cannot listen on {}", cache.join(serve::SOCKET).display())).setup()?;
    let notifier = crate::cmd::notify::start(idx, tell.routes, tell.on_record)?;
    let forwarder = match tell.mqtt {
        Some((s, state)) => {
            let look_idx = idx.clone();
            let look = move || {
                let h = look_idx.lock().unwrap_or_else(PoisonError::into_inner).health().ok()?;
                Some(h.status_at(logfile::OffsetClock::from_env().now().wall_ms))
            };
            let url = format!("{}://{}:{}", if s.tls_ca.is_some() { "mqtts" } else { "mqtt" }, s.host, s.port);
            let to = format!("{}/{}", s.prefix, s.site);
            // The note comes once the starting point is settled: a line
            // written after it is forwarded (scripts and tests wait for it).
            let ready = forward::Forwarder::prepare(s, logs, &state).context("cannot start the MQTT forwarder").setup()?;
            let from = match ready.cursor() {
                c if c.day.is_empty() => "from the first new day".to_string(),
                c => format!("from {} byte {}", c.day, c.offset),
            };
            note!("blackbox: forwarding to {url} as {to} {from}, cursor in {}", state.join(forward::CURSOR).display());
            let schema_idx = idx.clone();
            let schema = move || {
                let idx = schema_idx.lock().unwrap_or_else(PoisonError::into_inner);
                idx.schema().map(|rows| rows.into_iter().map(|r| (r.sensor, r.unit, r.kind)).collect()).unwrap_or_default()
            };
            Some(ready.start(decoders.clone(), Arc::new(look), Arc::new(schema)).context("cannot start the MQTT forwarder").setup()?)
        }
        None => None,
    };
    if let Some(f) = &forwarder {
        // The forwarder reads the logs itself: a new line goes out as soon
        // as it is written, not after the settling and the indexing below.
        watch.on_change(f.waker());
    }
    let lock = || idx.lock().unwrap_or_else(PoisonError::into_inner);
    while !watch.stopping() && watch.wait(RESCAN, DEBOUNCE) != Wake::Stop {
        let done = lock().catch_up(logs, decoders, &mut |_| !watch.stopping()).context("following the logs")?;
        // Only new lines are news: the notifier looks every second anyway
        // (for what the wall clock alone changes), the forwarder too.
        if done.lines > 0 {
            tracing::info!(lines = done.lines, "indexed");
            (tell.indexed)();
            if let Some(n) = &notifier {
                n.wake();
            }
            if let Some(f) = &forwarder {
                f.wake();
            }
        }
    }
    lock().flush()?;
    Ok(())
}

pub fn rebuild(global: &Global, _args: RebuildArgs) -> Result<ExitCode, CliError> {
    let (derive, logs, cache) = cache_settings(global)?;
    // The current cache must not be held by a follower: its writes would go
    // to the old cache. (Checked by its lock: opening the old cache would
    // read it into memory, a third of a rebuild's peak.)
    if cache.exists() && index::held_by_another(&cache).map_err(anyhow::Error::new).setup()? {
        return Err(setup_error(format!(
            "cannot rebuild {}: a running `blackbox index --follow` (or `blackbox serve` or `blackbox demo`) holds it and would go on writing the old cache after the swap. \
Stop the follower (`systemctl stop blackbox-index` on a site), rebuild, and start it again; \
or simply restart the follower, which rebuilds by itself after a change of configuration",
            cache.display()
        )));
    }
    let started = Instant::now();
    let done = rebuild_beside(&cache, &logs, &derive, &mut |_| {})?;
    let secs = started.elapsed().as_secs_f64();
    note!(
        "blackbox: rebuilt {} from {} day{}, {} lines ({:.1} MB) in {} ({:.0} lines/s)",
        cache.display(),
        done.days,
        if done.days == 1 { "" } else { "s" },
        done.lines,
        done.bytes as f64 / 1e6,
        took(secs),
        done.lines as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds a complete cache in `<cache>.rebuild` and swaps it in.
fn rebuild_beside(cache: &Path, logs: &Path, derive: &Deriving, progress: &mut dyn FnMut(&Progress)) -> Result<index::CatchUp, CliError> {
    let mut name = cache.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "cache".into());
    name.push(".rebuild");
    let building = cache.with_file_name(name);
    if building.exists() {
        std::fs::remove_dir_all(&building).with_context(|| format!("cannot remove the unfinished rebuild {}", building.display()))?;
    }
    let (mut idx, _) = Index::open(&building, &derive.fingerprint).map_err(anyhow::Error::new).setup()?;
    idx.set_checks(derive.checks.clone());
    idx.set_rollups(derive.rollups.clone()).map_err(anyhow::Error::new).setup()?;
    let bar = bar();
    let done = idx
        .catch_up(logs, &derive.decoders, &mut |p| {
            show(&bar, p);
            progress(p);
            true
        })
        .with_context(|| format!("rebuilding from {}", logs.display()))?;
    bar.finish_and_clear();
    idx.flush()?;
    drop(idx);
    index::swap_in(&building, cache).context("swapping the new cache in")?;
    Ok(done)
}

/// A duration for a summary: milliseconds under a second, else seconds.
fn took(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else {
        format!("{secs:.1} s")
    }
}
