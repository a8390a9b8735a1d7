//! The fleet: the sites a mirror keeps under one directory
//! (`DIR/<site>/logs`), each with a cache of its own (`DIR/<site>/cache`,
//! and its state in `DIR/<site>/state`), indexed from its mirrored logs
//! with the site's own `DIR/<site>/blackbox.toml` when there is one, else
//! with the central configuration. `status --sites` and `serve --sites`.
//!
//! One cache per site rather than one with a site dimension: a site's cache
//! is then exactly what the site itself would build from the same logs (the
//! same code, the same results, rebuilt or deleted on its own), a site with
//! another configuration of decoders and checks is no special case, and
//! sled's lock and memory stay per site.

use crate::args::{Global, ServeArgs, StatusArgs, StatusFormat};
use crate::cmd::cache;
use crate::cmd::read::Request;
use crate::cmd::watch::{Stopper, Watch};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use anyhow::Context;
use health::Level;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One site of the fleet.
#[derive(Debug, Clone)]
pub struct SiteDir {
    pub name: String,
    pub dir: PathBuf,
}

/// The sites under `dir`: directories with a site's name and a `logs` directory, by name.
pub fn sites(dir: &Path) -> Result<Vec<SiteDir>, CliError> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read the sites directory {}", dir.display())).setup()?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if forward::mirror::site_ok(&name) && e.path().join("logs").is_dir() {
            out.push(SiteDir { name, dir: e.path() });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The global options for one site: its logs, cache and configuration.
fn site_global(global: &Global, site: &SiteDir) -> Global {
    let mut g = global.clone();
    let own = site.dir.join("blackbox.toml");
    if own.is_file() {
        g.config = Some(own);
    }
    g.logs = Some(site.dir.join("logs"));
    g.cache = Some(site.dir.join("cache"));
    g
}

/// A site's status as `status --format json --all` gives it, from its cache
/// caught up first (or from the follower that holds it, `serve --sites`).
fn site_status(global: &Global, site: &SiteDir) -> Result<Value, CliError> {
    let g = site_global(global, site);
    let (derive, logs, cache_dir) = cache::cache_settings(&g)?;
    let args = StatusArgs {
        device: None,
        sites: None,
        all: true,
        nagios: false,
        format: StatusFormat::Json,
        at: None,
        logs: Some(std::path::absolute(&logs).unwrap_or(logs.clone())),
        color: false,
        state: Some(settings::state_dir(&g, &derive.config)),
    };
    let mut out = Vec::new();
    match index::Index::open_read(&cache_dir, &derive.fingerprint) {
        Err(index::IndexError::Busy { .. }) => {
            let code = crate::cmd::serve::ask_into(&cache_dir, &Request::Status(args), &mut out).setup()?;
            if code != 0 {
                return Err(setup_error(format!("the follower holding {} answered with status {code}", cache_dir.display())));
            }
        }
        opened => {
            drop(opened);
            let (mut idx, _) = cache::open_current(&cache_dir, &logs, &derive)?;
            idx.catch_up(&logs, &derive.decoders, &mut |_| true).with_context(|| format!("indexing {}", logs.display()))?;
            idx.flush()?;
            crate::cmd::status::status_on(&idx, &args, &mut out)?;
        }
    }
    serde_json::from_slice(&out).context("the site's status is not JSON").setup()
}

/// `status --sites DIR`: a line per site, worst level first in the heading.
pub fn status(global: &Global, args: &StatusArgs, dir: &Path) -> Result<ExitCode, CliError> {
    let sites = sites(dir)?;
    let mut rows = Vec::new();
    let mut worst = Level::Ok;
    for site in &sites {
        let row = match site_status(global, site) {
            Ok(s) => {
                let devices = s["devices"].as_array().map_or(0, Vec::len);
                let level: Level =
                    if devices == 0 { Level::Grey } else { serde_json::from_value(s["level"].clone()).unwrap_or(Level::Black) };
                let last = s["devices"].as_array().and_then(|d| d.iter().filter_map(|d| d["last_seen"].as_str()).max().map(str::to_string));
                json!({"site": site.name, "level": level, "colour": level.colour(), "devices": devices, "counts": s["counts"], "last_seen": last})
            }
            // A site whose status cannot be read is as good as silent: black, with why.
            Err(e) => json!({"site": site.name, "level": Level::Black, "colour": Level::Black.colour(), "error": e.message()}),
        };
        worst = worst.max(serde_json::from_value(row["level"].clone()).unwrap_or(Level::Black));
        rows.push(row);
    }
    let mut out = std::io::stdout().lock();
    if args.format == StatusFormat::Json {
        writeln!(
            out,
            "{}",
            json!({"at": logfile::time::rfc3339_millis(settings::now_ms()), "level": worst, "colour": worst.colour(), "sites": rows})
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let color = crate::view::use_color(global.color);
    let sites = if rows.len() == 1 { "1 site".to_string() } else { format!("{} sites", rows.len()) };
    writeln!(out, "{}  fleet: {sites} in {}", crate::cmd::status::badge(worst, color), dir.display())?;
    if rows.is_empty() {
        writeln!(out, "(no site yet: `blackbox mirror --mqtt URL --dir {}` makes <site>/logs in it)", dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows.iter().filter_map(|r| r["site"].as_str()).map(|s| s.chars().count()).max().unwrap_or(4).max(4);
    writeln!(out, "{:<12}  {:<width$}  {:<16}  DEVICES", "LEVEL", "SITE", "LAST SEEN")?;
    for r in &rows {
        let level: Level = serde_json::from_value(r["level"].clone()).unwrap_or(Level::Black);
        let what = match r["error"].as_str() {
            Some(e) => e.replace('\n', " "),
            None => {
                let counts: Vec<String> = Level::ALL
                    .iter()
                    .rev()
                    .filter_map(|l| r["counts"][l.word()].as_u64().filter(|n| *n > 0).map(|n| format!("{n} {}", l.word())))
                    .collect();
                if counts.is_empty() {
                    "no devices yet".to_string()
                } else {
                    counts.join(", ")
                }
            }
        };
        let last = r["last_seen"].as_str().map_or("-".to_string(), |t| t.get(..16).unwrap_or(t).replace('T', " "));
        writeln!(
            out,
            "{}  {:<width$}  {:<16}  {}",
            crate::cmd::status::badge(level, color),
            crate::view::printable(r["site"].as_str().unwrap_or_default()),
            last,
            what
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `serve --sites DIR`: the fleet's page, and each site's dashboard under
/// `/sites/<site>/`, each site followed by a thread of its own; sites the
/// mirror adds later are picked up within [`RESCAN`].
pub fn serve(global: &Global, args: ServeArgs, dir: &Path) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    if !dir.is_dir() {
        return Err(setup_error(format!(
            "cannot read the sites directory {}: not a directory (`blackbox mirror --dir` makes it)",
            dir.display()
        )));
    }
    let listen = args.listen.clone().or_else(|| config.web.listen.clone()).unwrap_or_else(|| crate::cmd::dashboard::DEFAULT_LISTEN.into());
    let addr = crate::cmd::dashboard::listen_addr(&listen, &config)?;
    let fleet = web::fleet::Fleet::new(crate::cmd::dashboard::auth(&config)?, config.web.max_connections.unwrap_or(512));
    let server = web::fleet::start(addr, fleet.clone()).with_context(|| format!("cannot listen on {addr}")).setup()?;
    note!("blackbox: serving the fleet of {} on http://{} (Ctrl-C to stop)", dir.display(), server.addr);
    // Signals only: a watch of DIR would wake on every line any site's copy takes.
    let stop = capture::Stop::new().context("cannot create the stop pipe").setup()?;
    stop.on_signals().context("cannot install signal handlers").setup()?;
    let mut followers: Vec<(String, Stopper, std::thread::JoinHandle<()>)> = Vec::new();
    // Sites that could not be started, and why: tried again at every rescan
    // (the configuration may be mended), told again only when the reason changes.
    let mut failed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    loop {
        for site in sites(dir)? {
            if followers.iter().any(|(n, _, _)| *n == site.name) {
                continue;
            }
            match follow_site(global, &config, &site, &fleet) {
                Ok((stopper, thread)) => {
                    failed.remove(&site.name);
                    followers.push((site.name.clone(), stopper, thread));
                }
                Err(e) => {
                    let why = e.message();
                    if failed.get(&site.name) != Some(&why) {
                        note!("blackbox: site {}: {why}; shown black until it can be read", site.name);
                    }
                    fleet.fail(&site.name, why.clone());
                    failed.insert(site.name.clone(), why);
                }
            }
        }
        if stop.wait(RESCAN) {
            break;
        }
    }
    for (_, stopper, _) in &followers {
        stopper.stop();
    }
    for (_, _, thread) in followers {
        let _ = thread.join();
    }
    drop(server);
    note!("blackbox: stopped serving the fleet");
    Ok(ExitCode::SUCCESS)
}

/// How often `serve --sites` looks for new sites.
const RESCAN: Duration = Duration::from_secs(10);

/// Adds `site` to the fleet and follows it on a thread: its cache is caught
/// up (the site's pages show the progress), then kept current.
fn follow_site(
    global: &Global,
    central: &config::Config,
    site: &SiteDir,
    fleet: &Arc<web::fleet::Fleet>,
) -> Result<(Stopper, std::thread::JoinHandle<()>), CliError> {
    let g = site_global(global, site);
    let (derive, logs, cache_dir) = cache::cache_settings(&g)?;
    let watch = Watch::new(&logs)?;
    let stopper = watch.stopper();
    let idx_cell: Arc<std::sync::OnceLock<Arc<Mutex<index::Index>>>> = Arc::default();
    let phase = Arc::new(web::Phase::default());
    let hub = web::Hub::default();
    fleet.add(web::Site {
        idx: idx_cell.clone(),
        name: site.name.clone(),
        logs: logs.clone(),
        state: settings::state_dir(&g, &derive.config),
        phase: phase.clone(),
        hub: hub.clone(),
        auth: crate::cmd::dashboard::auth(central)?,
        max_live: central.web.max_live.unwrap_or(256),
        max_connections: central.web.max_connections.unwrap_or(512),
    });
    let name = site.name.clone();
    let fleet = fleet.clone();
    let routes = alert::Routes { routes: Vec::new(), site: name.clone(), state: settings::state_dir(&g, &derive.config) };
    let thread = std::thread::Builder::new()
        .name(format!("site {name}"))
        .spawn(move || {
            let run = || -> Result<(), CliError> {
                let tell = |what: &str, p: &index::Progress| phase.progress(what, p);
                let (idx, _) = cache::open_current_with(&cache_dir, &logs, &derive, &mut |p| tell("rebuilding the cache", p))?;
                let idx = Arc::new(Mutex::new(idx));
                let _ = idx_cell.set(idx.clone());
                idx.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .catch_up(&logs, &derive.decoders, &mut |p| {
                        tell("catching up", p);
                        !watch.stopping()
                    })
                    .with_context(|| format!("indexing {}", logs.display()))?;
                phase.ready();
                hub.progress(&phase);
                let on_record: Arc<alert::OnRecord> = Arc::new(|_: &alert::Entry| {});
                crate::cmd::dashboard::follow_serving(&idx, &cache_dir, &logs, &derive.decoders, &watch, &hub, &routes, on_record, None)
            };
            if let Err(e) = run() {
                note!("blackbox: site {name}: {}; shown black", e.message());
                fleet.fail(&name, e.message());
            }
        })
        .context("cannot start a site's follower")
        .setup()?;
    Ok((stopper, thread))
}
