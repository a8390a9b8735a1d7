//! `blackbox demo`: the whole pipeline in one process. A simulated RF12demo
//! receiver on a pseudo-terminal, captured through the real serial code path
//! into the logs, the indexer following them into the cache, and the decoded
//! live view reading the logs, each on its own thread exactly as the separate
//! commands run on a site.

use crate::args::{DemoArgs, Global};
use crate::cmd::{cache, dashboard, tail, watch::Watch};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use crate::view::{self, DecodedView};
use anyhow::Context;
use capture::{CaptureOptions, SourceKind, SourceSpec, Stop};
use logfile::OffsetClock;
use serialport::SerialPort;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The source name of the simulated receiver.
pub const DEMO_SOURCE: &str = "usb-DEMO";

/// Written to ./blackbox.toml when the demo runs where there is no configuration,
/// so that later commands decode the simulated nodes the same way.
const DEMO_CONFIG: &str = r#"# Written by `blackbox demo`: the node map of its simulated RF12demo
# receiver. Every blackbox command run in this directory reads this file;
# see docs/configuration.md for all keys.

# The site's name in notifications (default: the host name).
site = "demo"

# The simulated receiver is a JeeLink with a dataflash: after a reconnect,
# capture asks it for what it saved meanwhile (docs/dataflash.md).
[[source]]
name = "usb-DEMO"
port = "demo-receiver"   # the demo links this to its receiver while it runs
decoder = "rf12demo"
dataflash = true

[rf12.nodes]
2 = "roomNode"
3 = "radioBlip"
4 = "roomNode"
5 = { driver = "roomNode", name = "outside" }
9 = "homePower"

# What is wrong at the simulated site (`blackbox status` shows it): now and
# then the room of roomNode 4 overheats and roomNode 2 goes silent.
[[check]]
name = "room too warm"
sensors = ["*/roomNode-*/temp"]
kind = "range"
max = 26

[[check]]
name = "room far too warm"
sensors = ["*/roomNode-*/temp"]
kind = "range"
max = 28
level = "critical"

[[check]]
name = "roomNode silent"
sensors = ["*/roomNode-*/temp"]
kind = "stale"
after = "30s"
level = "error"

[[check]]
name = "freezing outside"
sensors = ["*/outside/temp"]
kind = "range"
min = -10

# Who is told when the site turns red: a simulated GSM modem texts the
# person on call (`blackbox notify log` shows what went out). A real site
# would add a webhook or a command first (docs/configuration.md).
[[notify]]
name = "on call"
levels = ["critical"]
modem = { port = "demo-modem", to = ["+15550100"] }   # the demo links this to its modem while it runs
group_wait = "5s"
repeat = "1h"

# The homePower node's three meters count half watt-hours in 16-bit
# counters: `blackbox query usb-DEMO/homePower-9/c1 --every 1h` is the energy per hour.
[[counter]]
sensors = ["*/homePower-*/c?"]
wrap = 65536
scale = 0.5
unit = "Wh"
"#;

/// The port of the demo's [[notify]] modem: a link to the simulated one while the demo runs.
const DEMO_MODEM: &str = "demo-modem";

/// Written when the configuration maps no RF12 node: that configuration
/// with the simulated node map added, used by the demo and by the commands
/// it suggests.
const DEMO_COPY: &str = "blackbox-demo.toml";

pub fn run(global: &Global, args: DemoArgs) -> Result<ExitCode, CliError> {
    if !(args.rate > 0.0 && args.rate <= 10_000.0) {
        return Err(setup_error("--rate must be between 0 and 10000 packets per second"));
    }
    if global.config.is_none() && !Path::new(settings::CONFIG_FILE).exists() {
        std::fs::write(settings::CONFIG_FILE, DEMO_CONFIG).context("cannot write ./blackbox.toml for the demo").setup()?;
        note!("blackbox demo: wrote ./{} with the node map of the simulated receiver", settings::CONFIG_FILE);
    }
    let mut global = global.clone();
    let mut config = settings::load_config(&global)?;
    let has_source = config.sources.iter().any(|s| s.name.as_deref() == Some(DEMO_SOURCE));
    if config.rf12.nodes.is_empty() || !has_source {
        let read = global.config.clone().unwrap_or_else(|| settings::CONFIG_FILE.into());
        let text = std::fs::read_to_string(&read).with_context(|| format!("cannot read {}", read.display())).setup()?;
        std::fs::write(DEMO_COPY, with_demo_parts(&text, &read, config.rf12.nodes.is_empty(), !has_source)?)
            .with_context(|| format!("cannot write ./{DEMO_COPY}"))
            .setup()?;
        note!(
            "blackbox demo: {} lacks the simulated receiver's {}, so the demo uses ./{DEMO_COPY}: {} with it added; the commands suggested at the end use it",
            read.display(),
            match (config.rf12.nodes.is_empty(), has_source) {
                (true, false) => "node map and [[source]]",
                (true, true) => "node map",
                _ => "[[source]] (a JeeLink with a dataflash)",
            },
            read.display()
        );
        global.config = Some(DEMO_COPY.into());
        config = settings::load_config(&global)?;
    }
    let global = &global;
    let derive = settings::deriving(&config)?;
    let decoders = derive.decoders.clone();
    // The configuration's capture settings (sync policy, hold limit, line length, backoff) hold for the demo too.
    let writing = settings::writing(None, None, &config)?;
    let logs = settings::logs_dir(global, &config);
    let cache_dir = settings::cache_dir(global, &config);
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display())).setup()?;
    // A second run continues the simulated nodes' counters and values from the logs.
    let mut sim = sim::Receiver::new(args.seed, 400);
    sim.incidents(true);
    resume_from_logs(&mut sim, &logs);

    let (device, port) = serialport::TTYPort::pair().context("cannot create a pseudo-terminal for the simulated receiver").setup()?;
    let path = port.name().context("the pseudo-terminal has no name").setup()?;
    let stop = Stop::new().context("cannot create the stop pipe").setup()?;
    stop.on_signals().context("cannot install signal handlers").setup()?;
    // Each follower waits on its own watch; all of them stop on Ctrl-C.
    let index_watch = Watch::new(&logs)?;
    let view_watch = Watch::new(&logs)?;
    let (index_stopper, view_stopper) = (index_watch.stopper(), view_watch.stopper());

    // Capture opens the receiver by the path in the configuration: link it to the pseudo-terminal.
    let link = config.sources.iter().find(|s| s.name.as_deref() == Some(DEMO_SOURCE)).and_then(|s| s.port.clone());
    let port_path: std::path::PathBuf = match &link {
        Some(l) => {
            let _ = std::fs::remove_file(l);
            std::os::unix::fs::symlink(&path, l)
                .with_context(|| format!("cannot link {} to the simulated receiver", l.display()))
                .setup()?;
            l.clone()
        }
        None => path.clone().into(),
    };
    let dataflash = config.sources.iter().any(|s| s.name.as_deref() == Some(DEMO_SOURCE) && s.dataflash);
    // Whether capture listens: during an outage the receiver's lines go nowhere (it keeps them in its flash).
    let listening = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let sim_stop = stop.clone();
    let sim_listening = listening.clone();
    let simulator = std::thread::Builder::new()
        .name("simulated rf12demo".into())
        .spawn(move || simulate(sim, device, interval, &sim_stop, &sim_listening))
        .context("cannot start the simulator")
        .setup()?;

    let routes = settings::routes(global, &config)?;
    // The modem the demo's [[notify]] texts through: a simulated one, linked where the configuration says.
    let modem_link = routes.routes.iter().flat_map(|r| &r.channels).find_map(|c| match c {
        alert::Channel::Modem { target, .. } if target.port == DEMO_MODEM => Some(std::path::PathBuf::from(&target.port)),
        _ => None,
    });
    let modem = match &modem_link {
        Some(link) => {
            let modem =
                sim::modem::PtyModem::start(sim::modem::Behaviour::Good, true).context("cannot start the simulated modem").setup()?;
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(modem.port(), link)
                .with_context(|| format!("cannot link {} to the simulated modem", link.display()))
                .setup()?;
            Some(modem)
        }
        None => None,
    };
    // With --mqtt, a broker of its own and the follower's forwarder to it.
    let broker = if args.mqtt { Some(DemoBroker::start(&settings::state_dir(global, &config))?) } else { None };
    let mqtt = broker.as_ref().map(|b| (b.settings.clone(), settings::state_dir(global, &config)));
    // The dashboard first, so its address is the first thing said.
    let idx_cell: Arc<std::sync::OnceLock<Arc<Mutex<index::Index>>>> = Arc::default();
    let chosen = args.listen.clone().or_else(|| config.web.listen.clone());
    let listen = chosen.clone().unwrap_or_else(|| dashboard::DEFAULT_LISTEN.into());
    // The default port may be taken by another demo: a free one then. An
    // address asked for is that address, or an error saying it is in use.
    let web = dashboard::start_web(global, &config, &logs, idx_cell.clone(), &listen, chosen.is_none())?;
    note!("blackbox demo: the dashboard is on http://{}/", web.server.addr);
    let idx = Arc::new(Mutex::new(cache::open_current(&cache_dir, &logs, &derive)?.0));
    let _ = idx_cell.set(idx.clone());
    let indexer = {
        let (idx, cache_dir, logs, decoders) = (idx.clone(), cache_dir.clone(), logs.clone(), decoders.clone());
        let (phase, hub) = (web.phase.clone(), web.hub.clone());
        let on_record: Arc<alert::OnRecord> = Arc::new(|e: &alert::Entry| note!("blackbox demo: {}", crate::cmd::notify::record_line(e)));
        std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || -> Result<(), CliError> {
                idx.lock().unwrap_or_else(PoisonError::into_inner).catch_up(&logs, &decoders, &mut |p| {
                    phase.progress("catching up", p);
                    !index_watch.stopping()
                })?;
                phase.ready();
                hub.progress(&phase);
                cache::follow(
                    &idx,
                    &cache_dir,
                    &logs,
                    &decoders,
                    &index_watch,
                    cache::Telling { routes: &routes, on_record, indexed: &|| hub.indexed(), mqtt },
                )
            })
            .context("cannot start the indexer")
            .setup()?
    };

    let feed = dashboard::live_feed(&logs, decoders.clone(), web.hub.clone())?;
    // The live view: `tail -f --decoded` from the end of the logs.
    let (_, follower) =
        logfile::tail::last_lines(&logs, 0, &|_| true).map_err(|e| anyhow::Error::new(e).context(format!("reading {}", logs.display())))?;
    let viewer = {
        let (logs, stop) = (logs.clone(), stop.clone());
        let mut view = tail::View::Decoded(Box::new(DecodedView::new(decoders.clone(), view::use_color(global.color))));
        let mut follower = follower;
        std::thread::Builder::new()
            .name("viewer".into())
            .spawn(move || {
                let mut out = std::io::stdout();
                let result = tail::follow(&logs, &mut follower, &view_watch, &|_| true, &mut view, &mut out);
                if result.is_err() {
                    // The viewer went away (`| head`) or the logs cannot be read: stop the demo.
                    stop.trigger();
                }
                (follower, view, result)
            })
            .context("cannot start the viewer")
            .setup()?
    };

    note!(
        "blackbox demo: a simulated RF12demo receiver on {path}, captured into {}, indexed into {} (Ctrl-C to stop)",
        logs.display(),
        cache_dir.display()
    );
    let mut spec = SourceSpec::new(
        DEMO_SOURCE,
        SourceKind::Serial { path: port_path.clone(), baud: settings::DEFAULT_BAUD, framing: Default::default() },
    );
    spec.max_line = writing.max_line;
    spec.dataflash = dataflash;
    let opts = CaptureOptions { logs: logs.clone(), writer: writing.writer, sources: vec![spec], backoff: writing.backoff };
    let result = match args.outage {
        None | Some(0) => capture::run(opts, OffsetClock::from_env(), stop.clone(), None),
        Some(secs) => {
            let first = Stop::new().context("cannot create the stop pipe").setup()?;
            capture_with_outage(opts, &stop, first, &listening, &port, args.outage_at, secs)
        }
    };
    stop.trigger();
    index_stopper.stop();
    view_stopper.stop();
    let _ = simulator.join();
    drop(port);
    if let Some(l) = &link {
        let _ = std::fs::remove_file(l);
    }
    if let Some(l) = &modem_link {
        let _ = std::fs::remove_file(l);
    }
    let texted = modem.map_or(0, |m| m.finish().len());
    drop(broker);
    let (mut follower, mut view, shown) = viewer.join().map_err(|_| anyhow::anyhow!("the viewer panicked"))?;
    if shown.is_ok() {
        // What capture wrote while stopping (its `stop` line). Quietly: a
        // viewer that went away is not an error of the demo.
        let mut out = std::io::stdout();
        let _ = tail::poll(&logs, &mut follower, &|_| true, &mut view, &mut out);
    }
    let indexed = indexer.join().map_err(|_| anyhow::anyhow!("the indexer panicked"))?;
    feed.stop();
    drop(web);
    let summary = result.map_err(anyhow::Error::new).with_context(|| format!("capture into {} failed", logs.display()))?;
    indexed?;
    // The last lines, so that the cache holds everything captured.
    let mut idx = idx.lock().unwrap_or_else(PoisonError::into_inner);
    idx.catch_up(&logs, &decoders, &mut |_| true).context("indexing the last lines")?;
    idx.flush()?;
    let schema = idx.schema()?;
    // The device to drill into: the worst one now.
    let now = OffsetClock::from_env().now().wall_ms;
    let worst = idx.health()?.status_at(now).devices.into_iter().max_by_key(|d| d.level).map(|d| d.device);
    drop(idx);
    note!("\n{}", hints(global, summary.readings, &logs, &cache_dir, sensor_to_query(&schema), worst.as_deref(), texted));
    Ok(ExitCode::SUCCESS)
}

/// `demo --mqtt`: mosquitto on a free loopback port, stopped with the demo.
struct DemoBroker {
    child: std::process::Child,
    settings: forward::Settings,
}

impl DemoBroker {
    fn start(state: &Path) -> Result<DemoBroker, CliError> {
        let program = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/local/bin/mosquitto"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("mosquitto")).find(|p| p.exists()))
            })
            .ok_or_else(|| {
                setup_error("demo --mqtt needs mosquitto (Debian: `apt-get install mosquitto mosquitto-clients`), and none is on the PATH")
            })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context("cannot find a free port for mosquitto")
            .setup()?;
        std::fs::create_dir_all(state).with_context(|| format!("cannot create {}", state.display())).setup()?;
        let conf = state.join("demo-mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n"))
            .with_context(|| format!("cannot write {}", conf.display()))
            .setup()?;
        let mut child = std::process::Command::new(&program)
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))
            .setup()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if child.try_wait().ok().flatten().is_some() || std::time::Instant::now() > deadline {
                let _ = child.kill();
                return Err(setup_error(format!("mosquitto did not start on 127.0.0.1:{port} (try `mosquitto -c {}`)", conf.display())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut settings = forward::broker(&format!("mqtt://127.0.0.1:{port}"), None, None, None).map_err(setup_error)?;
        settings.site = "demo".into();
        settings.discovery = true;
        note!("blackbox demo: an MQTT broker (mosquitto) on 127.0.0.1:{port}; everything is forwarded to it as site \"demo\". Watch it:");
        note!("    mosquitto_sub -h 127.0.0.1 -p {port} -v -t 'blackbox/demo/#'          # values, lines, statuses");
        note!("    mosquitto_sub -h 127.0.0.1 -p {port} -v -t 'homeassistant/#'           # Home Assistant discovery");
        note!("    blackbox mirror --mqtt mqtt://127.0.0.1:{port} --dir /tmp/sites      # a central copy of the logs");
        Ok(DemoBroker { child, settings })
    }
}

impl Drop for DemoBroker {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }
}

/// `text` (the configuration read from `path`) with the simulated node map added.
/// The configuration in `text` with the demo's node map and source added where missing.
fn with_demo_parts(text: &str, path: &Path, nodes: bool, source: bool) -> Result<String, CliError> {
    let mut table: toml::Table = text.parse().with_context(|| format!("cannot read {} as TOML", path.display())).setup()?;
    let demo: toml::Table = DEMO_CONFIG.parse().context("the demo's configuration").setup()?;
    if nodes {
        let rf12 = table.entry("rf12").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let (Some(rf12), Some(nodes)) = (rf12.as_table_mut(), demo.get("rf12").and_then(|r| r.get("nodes"))) else {
            return Err(setup_error(format!("{}: rf12 is not a table", path.display())));
        };
        rf12.insert("nodes".into(), nodes.clone());
    }
    if source {
        let sources = table.entry("source").or_insert_with(|| toml::Value::Array(Vec::new()));
        let (Some(sources), Some(toml::Value::Array(demo_sources))) = (sources.as_array_mut(), demo.get("source")) else {
            return Err(setup_error(format!("{}: source is not an array of tables", path.display())));
        };
        sources.extend(demo_sources.iter().cloned());
    }
    let body = toml::to_string(&table).context("writing the demo's configuration").setup()?;
    Ok(format!(
        "# Written by `blackbox demo`: {} with the simulated receiver's node map\n# and source added where missing. Give it to other commands with --config.\n\n{body}",
        path.display()
    ))
}

fn resume_from_logs(sim: &mut sim::Receiver, logs: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let Ok(scan) = logfile::scan(logs) else { return };
    let Some(day) = scan.days.last().filter(|d| !d.compressed) else { return };
    let Ok(mut file) = std::fs::File::open(&day.path) else { return };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL);
    let mut tail = Vec::new();
    if file.seek(SeekFrom::Start(start)).and_then(|_| file.take(TAIL).read_to_end(&mut tail)).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&tail);
    // The first line may be a piece of one when reading started mid-file.
    for line in text.lines().skip(usize::from(start > 0)) {
        if let Ok(logfile::Line::Reading { source: DEMO_SOURCE, text, .. }) = logfile::parse_line(line) {
            sim.resume(text);
        }
    }
}

/// The demo's sensor to suggest querying: the one the README shows when the
/// node map has it, else another temperature, else any of the demo's sensors.
/// The simulated receiver: hears a packet every `interval`, prints its lines
/// while capture listens, and answers the commands capture sends (the
/// dataflash replay).
fn simulate(
    mut sim: sim::Receiver,
    mut device: serialport::TTYPort,
    interval: Duration,
    stop: &Stop,
    listening: &std::sync::atomic::AtomicBool,
) {
    use std::io::Read;
    use std::sync::atomic::Ordering;
    let now = || OffsetClock::from_env().now().wall_ms;
    let mut lines = sim.boot(now());
    let mut command = Vec::new();
    // Commands are read without waiting: the radio's pace is the interval.
    let _ = device.set_timeout(Duration::from_millis(1));
    loop {
        if listening.load(Ordering::SeqCst) {
            let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
            if device.write_all(text.as_bytes()).is_err() {
                break;
            }
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = device.read(&mut buf) {
                for &b in &buf[..n] {
                    if b == b'\r' || b == b'\n' {
                        let cmd = String::from_utf8_lossy(&command).into_owned();
                        command.clear();
                        let answer = sim.command(&cmd, now());
                        let text: String = answer.iter().map(|l| format!("{l}\r\n")).collect();
                        if device.write_all(text.as_bytes()).is_err() {
                            return;
                        }
                    } else if command.len() < 256 {
                        command.push(b);
                    }
                }
            }
        }
        if stop.wait(interval) {
            break;
        }
        lines = sim.receive(now());
    }
}

/// Captures for `at` seconds, stops for `secs` seconds while the receiver keeps
/// saving packets, then captures again until the end of the demo.
/// `first` stops the first part.
fn capture_with_outage(
    opts: CaptureOptions,
    stop: &Stop,
    first: Stop,
    listening: &Arc<std::sync::atomic::AtomicBool>,
    port: &serialport::TTYPort,
    at: u64,
    secs: u64,
) -> Result<capture::Summary, capture::CaptureError> {
    use std::sync::atomic::Ordering;
    let timer = {
        let (stop, first, listening) = (stop.clone(), first.clone(), listening.clone());
        std::thread::spawn(move || {
            // The receiver's lines go nowhere from now on, as on an unplugged cable.
            if !stop.wait(Duration::from_secs(at)) {
                listening.store(false, Ordering::SeqCst);
            }
            first.trigger();
        })
    };
    let before = capture::run(opts.clone(), OffsetClock::from_env(), first, None)?;
    let _ = timer.join();
    if stop.is_set() {
        return Ok(before);
    }
    note!("blackbox demo: capture stopped for {secs} s; the simulated receiver keeps saving what it hears in its dataflash");
    if stop.wait(Duration::from_secs(secs)) {
        return Ok(before);
    }
    // What the receiver printed as capture stopped would reach the next
    // capture seconds late, stamped wrong: a closed serial port drops it.
    let _ = port.clear(serialport::ClearBuffer::Input);
    listening.store(true, Ordering::SeqCst);
    note!("blackbox demo: capture is back; when the receiver saves the page it is filling, capture asks it for what it saved meanwhile, and the replayed lines follow");
    let mut after = capture::run(opts, OffsetClock::from_env(), stop.clone(), None)?;
    after.readings += before.readings;
    Ok(after)
}

fn sensor_to_query(schema: &[index::SchemaRow]) -> Option<&index::SchemaRow> {
    let demo: Vec<&index::SchemaRow> = schema.iter().filter(|r| r.sensor.starts_with(&format!("{DEMO_SOURCE}/"))).collect();
    let preferred = format!("{DEMO_SOURCE}/roomNode-2/temp");
    demo.iter().find(|r| r.sensor == preferred).or_else(|| demo.iter().find(|r| r.sensor.ends_with("/temp"))).or(demo.first()).copied()
}

/// What to try next, as commands that can be pasted as they are and work.
fn hints(
    global: &Global,
    readings: u64,
    logs: &Path,
    cache: &Path,
    sensor: Option<&index::SchemaRow>,
    device: Option<&str>,
    texted: usize,
) -> String {
    // The program as it was invoked (`target/release/blackbox` under cargo run).
    let me = std::env::args().next().filter(|a| a.contains('/')).unwrap_or_else(|| "blackbox".into());
    let mut flags = String::new();
    for (flag, value) in [("--config", &global.config), ("--logs", &global.logs), ("--cache", &global.cache)] {
        if let Some(v) = value {
            flags.push_str(&format!(" {flag} {}", v.display()));
        }
    }
    let (logs, cache) = (logs.display(), cache.display());
    let now = OffsetClock::from_env().now().wall_ms;
    let query = sensor.map(|r| {
        // Only a range that holds readings: the last ten minutes, if the sensor has any in them.
        let from = if now - r.last_ms < 10 * 60_000 { " --from -10m" } else { "" };
        (format!("{me}{flags} query {}{from}", r.sensor), "one sensor's readings (table, --format csv|jsonl)")
    });
    let hourly = sensor.map(|r| (format!("{me}{flags} query {} --every 1h", r.sensor), "its count, min, max and mean per hour"));
    let status = [(format!("{me}{flags} status --all"), "every device's colour, and why")]
        .into_iter()
        .chain(device.map(|d| (format!("{me}{flags} status {d}"), "one device: its checks and the log lines behind them")))
        .chain([(format!("{me}{flags} health"), "every change of colour, oldest first")])
        .chain((texted > 0).then(|| (format!("{me}{flags} notify log"), "the text messages the simulated modem sent")))
        .chain([(format!("{me}{flags} serve"), "the dashboard, on http://127.0.0.1:8080/ (the follower too)")]);
    let rows = query.into_iter().chain(hourly).chain(status).chain([
        (format!("{me}{flags} schema"), "every device and field discovered"),
        (format!("{me}{flags} stats"), "what was collected, per source"),
        (format!("{me}{flags} tail -n 20 --decoded"), "the logs themselves, decoded"),
        (format!("{me}{flags} verify"), "check the log files"),
        (format!("{me}{flags} rebuild"), "build the cache again from the logs"),
        (format!("rm -r {cache} && {me}{flags} index"), "the cache is disposable: the logs are the truth"),
        (format!("{me}{flags} demo"), "run again: continues the same logs"),
    ]);
    let rows: Vec<(String, &str)> = rows.collect();
    let width = rows.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut out =
        format!("blackbox demo: stopped; {readings} readings captured this run into {logs}, and indexed into {cache}.\nTry next:\n");
    for (command, why) in rows {
        out.push_str(&format!("  {command:width$}   # {why}\n"));
    }
    out
}
