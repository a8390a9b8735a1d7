//! `serve`: the follower (catch-up, follow, checks, notifications) and the
//! dashboard in one process, since it holds the cache; and `passwd`, which
//! makes the password hashes `[web] users` takes.

use crate::args::{Global, PasswdArgs, ServeArgs};
use crate::cmd::cache;
use crate::cmd::watch::{Wake, Watch};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use crate::view::DecodedView;
use anyhow::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The authentication `[web]` configures; errors name what is wrong.
pub(crate) fn auth(config: &config::Config) -> Result<web::Auth, CliError> {
    let users = config.web.users.iter().map(|u| (u.name.clone(), u.hash.clone())).collect();
    let token = match &config.web.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the [web] token_file {}", f.display()))
                .setup()?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    web::Auth::new(users, token).map_err(|e| setup_error(format!("[web]: {e}")))
}

pub fn serve(global: &Global, args: ServeArgs) -> Result<ExitCode, CliError> {
    if let Some(dir) = args.sites.clone() {
        return crate::cmd::fleet::serve(global, args, &dir);
    }
    let config = settings::load_config(global)?;
    let (derive, logs, cache_dir) = cache::cache_settings(global)?;
    let routes = settings::routes(global, &config)?;
    let listen = args.listen.or_else(|| config.web.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
    let watch = Watch::new(&logs)?;
    // Another follower keeps this cache: said before listening, not after.
    if cache::held_by_a_follower(&cache_dir)? {
        return Err(setup_error(format!(
            "cannot serve {}: a running `blackbox serve`, `index --follow` or `demo` holds it and keeps it current; \
open that one's dashboard, or stop it first (`systemctl stop blackbox-serve` or `blackbox-index` on a site)",
            cache_dir.display()
        )));
    }
    let idx_cell: Arc<std::sync::OnceLock<Arc<Mutex<index::Index>>>> = Arc::default();
    let web = start_web(global, &config, &logs, idx_cell.clone(), &listen, false)?;
    let (phase, hub) = (web.phase.clone(), web.hub.clone());
    let addr = web.server.addr;
    if addr.ip().is_unspecified() {
        // 0.0.0.0 is where it listens, not an address to open.
        note!(
            "blackbox: serving the dashboard on http://{}:{} (every address of this machine; Ctrl-C to stop)",
            alert::route::host_name(),
            addr.port()
        );
    } else {
        note!("blackbox: serving the dashboard on http://{addr} (Ctrl-C to stop)");
    }
    if !web.server.addr.ip().is_loopback() {
        note!(
            "blackbox: warning: on {} passwords and pages travel in clear over http; put a reverse proxy with TLS in front (docs/GUIDE.md, \"The dashboard\")",
            web.server.addr
        );
    }

    // A rebuild (another configuration or format), then the catch-up: the pages show their progress.
    let mut last_sent = std::time::Instant::now();
    let mut tell = |what: &str, p: &index::Progress| {
        phase.progress(what, p);
        if last_sent.elapsed() >= Duration::from_millis(250) {
            hub.progress(&phase);
            last_sent = std::time::Instant::now();
        }
    };
    let (idx, _) = cache::open_current_with(&cache_dir, &logs, &derive, &mut |p| tell("rebuilding the cache", p))?;
    let idx = Arc::new(Mutex::new(idx));
    let _ = idx_cell.set(idx.clone());
    idx.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .catch_up(&logs, &derive.decoders, &mut |p| {
            tell("catching up", p);
            !watch.stopping()
        })
        .with_context(|| format!("indexing {} into {}", logs.display(), cache_dir.display()))?;
    if watch.stopping() {
        return Ok(ExitCode::SUCCESS);
    }
    if let Ok(stats) = idx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stats() {
        for s in &stats.sources {
            hub.seen(&s.source, s.counts.last_ms);
        }
    }
    phase.ready();
    hub.progress(&phase);
    note!("blackbox: the cache is current; following {}", logs.display());

    let on_record: Arc<alert::OnRecord> = Arc::new(|e: &alert::Entry| note!("blackbox: {}", crate::cmd::notify::record_line(e)));
    let mqtt = cache::mqtt_settings(global, &config)?;
    let followed = follow_serving(&idx, &cache_dir, &logs, &derive.decoders, &watch, &hub, &routes, on_record, mqtt);
    drop(web);
    followed?;
    note!("blackbox: stopped serving");
    Ok(ExitCode::SUCCESS)
}

/// `--listen`, parsed; an address other than loopback needs authentication configured.
pub(crate) fn listen_addr(listen: &str, config: &config::Config) -> Result<SocketAddr, CliError> {
    // An address, or a name this machine resolves (`localhost:8080`): its first address.
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(e) => std::net::ToSocketAddrs::to_socket_addrs(listen)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| setup_error(format!("--listen {listen:?}: {e} (an address and a port, such as 127.0.0.1:8080)")))?,
    };
    if !addr.ip().is_loopback() && !auth(config)?.required() {
        return Err(setup_error(format!(
            "refusing to listen on {addr}: anyone who can reach it would see the site. Configure [web] users (hashes from `blackbox passwd NAME`) \
or [web] token_file first, or listen on 127.0.0.1 behind a reverse proxy that authenticates (docs/GUIDE.md, \"The dashboard\")"
        )));
    }
    Ok(addr)
}

/// Once the cache is current: the live feed for the pages, and the
/// follower (`cache::follow`) telling them what it indexed, until `watch` stops.
#[allow(clippy::too_many_arguments)]
pub(crate) fn follow_serving(
    idx: &Arc<Mutex<index::Index>>,
    cache_dir: &Path,
    logs: &Path,
    decoders: &decode::Decoders,
    watch: &Watch,
    hub: &web::Hub,
    routes: &alert::Routes,
    on_record: Arc<alert::OnRecord>,
    mqtt: Option<(forward::Settings, std::path::PathBuf)>,
) -> Result<(), CliError> {
    let feed = live_feed(logs, decoders.clone(), hub.clone())?;
    let indexed = || hub.indexed();
    let followed = cache::follow(idx, cache_dir, logs, decoders, watch, cache::Telling { routes, on_record, indexed: &indexed, mqtt });
    feed.stop();
    followed
}

/// A running dashboard: the server, and what the follower tells it.
pub struct Web {
    pub server: web::Server,
    pub phase: Arc<web::Phase>,
    pub hub: web::Hub,
}

/// Starts the dashboard on `listen` over the cache `idx` will hold. With
/// `any_port`, a port in use is replaced by a free one (the demo).
pub fn start_web(
    global: &Global,
    config: &config::Config,
    logs: &Path,
    idx: Arc<std::sync::OnceLock<Arc<Mutex<index::Index>>>>,
    listen: &str,
    any_port: bool,
) -> Result<Web, CliError> {
    let mut addr = listen_addr(listen, config)?;
    let auth = auth(config)?;
    let phase = Arc::new(web::Phase::default());
    let hub = web::Hub::default();
    let site = |auth| web::Site {
        idx: idx.clone(),
        name: config.site.clone().unwrap_or_else(alert::route::host_name),
        logs: logs.to_path_buf(),
        state: settings::state_dir(global, config),
        phase: phase.clone(),
        hub: hub.clone(),
        auth,
        max_live: config.web.max_live.unwrap_or(256),
        max_connections: config.web.max_connections.unwrap_or(512),
    };
    let server = match web::start(addr, site(auth)) {
        Err(e) if any_port && e.kind() == std::io::ErrorKind::AddrInUse => {
            addr.set_port(0);
            web::start(addr, site(self::auth(config)?))
        }
        r => r,
    }
    .with_context(|| format!("cannot listen on {addr}"))
    .setup()?;
    Ok(Web { server, phase, hub })
}

/// The thread that reads new log lines as they are written and sends them
/// to the open live pages, decoded as `tail -f --decoded` shows them.
pub struct Feed {
    stopper: crate::cmd::watch::Stopper,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Feed {
    pub fn stop(mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn live_feed(logs: &Path, decoders: decode::Decoders, hub: web::Hub) -> Result<Feed, CliError> {
    let watch = Watch::new(logs)?;
    let stopper = watch.stopper();
    let (recent, mut follower) = logfile::tail::last_lines(logs, 200, &|_| true)
        .map_err(|e| anyhow::Error::new(e).context(format!("reading {}", logs.display())))?;
    let mut view = DecodedView::new(decoders, false);
    let mut send = move |line: &logfile::tail::TailLine| {
        let mut out = Vec::new();
        if view.show(line.day, &line.text, &mut out).is_err() {
            return;
        }
        let shown = String::from_utf8_lossy(&out);
        // The decoded view's line without its time and source (the page shows them).
        let decoded: Vec<&str> = shown.lines().filter(|l| !l.starts_with("==> ")).map(after_time_and_source).collect();
        let (time_ms, source, text) = match logfile::parse_line(&line.text) {
            Ok(logfile::Line::Reading { time, source, text }) => {
                (logfile::time::join_millis(line.day, time), source.to_string(), text.to_string())
            }
            Ok(logfile::Line::Meta { time, .. }) => (logfile::time::join_millis(line.day, time), "#".to_string(), line.text.clone()),
            Err(_) => return,
        };
        let devices = view.last_device().map(|d| vec![d.to_string()]).unwrap_or_default();
        hub.line(web::LiveLine { time_ms, source, text, decoded: Some(decoded.join(" ")).filter(|d| !d.is_empty()), devices });
    };
    for l in &recent {
        send(l);
    }
    let logs = logs.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("live feed".into())
        .spawn(move || loop {
            if let Err(e) = follower.poll(&mut |line| {
                send(&line);
                Ok(())
            }) {
                tracing::warn!(error = %e, logs = %logs.display(), "the live view cannot read the logs");
            }
            if watch.wait(Duration::from_secs(5), Duration::ZERO) == Wake::Stop {
                return;
            }
        })
        .context("cannot start the live feed")
        .setup()?;
    Ok(Feed { stopper, thread: Some(thread) })
}

/// `08:04:02.396  lab     second  temp 21.75` without `08:04:02.396  lab`.
fn after_time_and_source(line: &str) -> &str {
    fn rest(s: &str) -> &str {
        s.trim_start().split_once(' ').map_or("", |(_, r)| r).trim_start()
    }
    rest(rest(line))
}

pub fn passwd(_global: &Global, args: PasswdArgs) -> Result<ExitCode, CliError> {
    if args.name.is_empty() || args.name.contains(':') {
        return Err(setup_error(
            "a user name must be non-empty and without ':' (HTTP Basic authentication separates name and password with it)",
        ));
    }
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = read_hidden(&format!("password for {}: ", args.name))?;
        let second = read_hidden("again: ")?;
        if first != second {
            return Err(setup_error("the two passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.chars().count() < 8 {
        return Err(setup_error("a password needs at least 8 characters"));
    }
    let hash = web::hash_password(&password).map_err(setup_error)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "[[web.users]]\nname = {:?}\nhash = {:?}", args.name, hash)?;
    Ok(ExitCode::SUCCESS)
}

/// A line from the terminal without echoing it.
fn read_hidden(prompt: &str) -> Result<String, CliError> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let before = tcgetattr(&stdin).context("cannot read the terminal's settings").setup()?;
    let mut quiet = before.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("cannot turn the echo off").setup()?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &before);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
