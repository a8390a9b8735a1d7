//! The command line (a public contract: see DESIGN.md and `blackbox --help`).

use clap::{Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "blackbox",
    version,
    about = "A flight recorder for sites full of devices",
    long_about = "blackbox captures every text line that serial devices emit, stamps it with UTC time \
and appends it to plain daily log files that never lose a reading.",
    after_help = "Examples:\n  blackbox demo\n  blackbox capture --port /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A40117UK-if00-port0 --baud 57600\n  blackbox index --follow\n  blackbox tail -f --decoded\n  blackbox query usb-A40117UK/roomNode-2/temp --from -2h\n  blackbox verify --logs /var/lib/blackbox/logs\n\nMore: docs/GUIDE.md and docs/FAQ.md"
)]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, ClapArgs, Clone, Default)]
pub struct Global {
    /// Configuration file [default: ./blackbox.toml when present]
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log directory [default: ./logs, or `logs` in the configuration]
    #[arg(long, global = true, help_heading = "Global options", value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// Cache directory [default: ./cache, or `cache` in the configuration]
    #[arg(long, global = true, help_heading = "Global options", value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// More diagnostics on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Colours in tail, demo and status output: auto (a terminal without NO_COLOR), always or never
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Capture(CaptureArgs),
    Index(IndexArgs),
    Rebuild(RebuildArgs),
    Query(QueryArgs),
    Export(ExportArgs),
    Schema(SchemaArgs),
    Stats(StatsArgs),
    Status(StatusArgs),
    Health(HealthArgs),
    Events(EventsArgs),
    Tail(TailArgs),
    Verify(VerifyArgs),
    Ports(PortsArgs),
    Demo(DemoArgs),
    Ack(AckArgs),
    Silence(SilenceArgs),
    Notify(NotifyArgs),
    Serve(ServeArgs),
    Passwd(PasswdArgs),
    Forward(ForwardArgs),
    Mirror(MirrorArgs),
}

/// Capture lines from devices into the daily log files.
///
/// Without a source option the sources come from the [[source]] tables of
/// the configuration. Runs until SIGTERM or Ctrl-C (everything received is
/// written and synced first); with --stdin, until the end of the input. A
/// [[source]] with `dataflash = true` (a JeeLink) is asked after every
/// reconnect to replay what it saved meanwhile (docs/dataflash.md).
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  blackbox capture --port /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A40117UK-if00-port0 --baud 57600\n  blackbox capture --tcp ser2net.local:3001 --source ups\n  some-tool | blackbox capture --stdin --source tool --sync always"
)]
pub struct CaptureArgs {
    /// Serial port to read (a /dev/serial/by-id/ path survives replugging)
    #[arg(long, value_name = "PATH", conflicts_with_all = ["tcp", "stdin"])]
    pub port: Option<PathBuf>,
    /// Baud rate of --port [default: 57600]
    #[arg(long, value_name = "N", requires = "port")]
    pub baud: Option<u32>,
    /// Data bits, parity and stop bits of --port [default: 8N1]
    #[arg(long, value_name = "8N1", requires = "port")]
    pub framing: Option<String>,
    /// Remote serial server to connect to (ser2net style)
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "stdin")]
    pub tcp: Option<String>,
    /// Read standard input; capture ends at its end
    #[arg(long)]
    pub stdin: bool,
    /// Name written in the SOURCE column [default: derived from the port, `stdin`, or tcp-HOST-PORT]
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Durability: always, interval=MS or never [default: interval=1000]
    #[arg(long, value_name = "POLICY")]
    pub sync: Option<String>,
    /// Longest line in bytes; longer lines are cut into marked pieces [default: 4096]
    #[arg(long, value_name = "BYTES")]
    pub max_line: Option<usize>,
}

/// Check the log files: header chain, line syntax, torn lines, time order.
///
/// Exit status 1 and a report naming file and line when something is wrong.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  blackbox verify --logs /var/lib/blackbox/logs")]
pub struct VerifyArgs {}

/// List the serial ports of this machine.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  blackbox ports")]
pub struct PortsArgs {}

/// The whole pipeline on a simulated receiver: capture, index and a decoded live view.
///
/// A simulated RF12demo receiver sends roomNode, radioBlip and homePower
/// packets (and the odd bad packet) to a pseudo-terminal. Capture reads it
/// through the real serial code path into the log directory, the indexer
/// follows the logs into the cache (other terminals can query it meanwhile),
/// and the logs are shown decoded as they grow, as `tail -f --decoded` does.
/// Ctrl-C stops all three cleanly and prints what to try next. Without a
/// configuration, it writes ./blackbox.toml with the simulated node map; with
/// one that maps no RF12 node, it writes ./blackbox-demo.toml, that
/// configuration with the simulated node map added, and uses it. Running it
/// again continues the same logs, and the simulated nodes' counters.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  blackbox demo --rate 20")]
pub struct DemoArgs {
    /// Packets per second from the simulated receiver
    #[arg(long, default_value_t = 4.0, value_name = "N")]
    pub rate: f64,
    /// Seed of the simulated receiver
    #[arg(long, default_value_t = 2012, value_name = "N")]
    pub seed: u64,
    /// Stop capture for this many seconds (see --outage-at) while the
    /// simulated receiver keeps saving packets in its dataflash; when capture
    /// is back it asks for them and the gap fills (docs/dataflash.md)
    #[arg(long, value_name = "SECONDS")]
    pub outage: Option<u64>,
    /// When the --outage begins, in seconds from the start
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    pub outage_at: u64,
    /// Where the dashboard listens [default: 127.0.0.1:8080, or a free port when it is taken]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Also start a mosquitto broker on a free loopback port and forward
    /// everything to it (site "demo", Home Assistant discovery on), with
    /// mosquitto_sub hints; needs mosquitto on the PATH
    #[arg(long)]
    pub mqtt: bool,
}

/// Catch the cache up with the logs (and keep it current with --follow).
///
/// Days are indexed strictly in order, each from where the last run stopped.
/// A day whose file changed is re-indexed; a day whose file is gone is
/// removed. The cache can be deleted at any time: `index` rebuilds it.
/// With --follow and an [mqtt] table in the configuration, it also forwards
/// every line to the broker (docs/mqtt.md).
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:\n  blackbox index\n  blackbox index --logs /srv/jeemon/logs --cache /tmp/jeemon-cache")]
pub struct IndexArgs {
    /// Keep following new lines after catching up (until SIGTERM or Ctrl-C)
    #[arg(short, long)]
    pub follow: bool,
}

/// Build a new cache from all logs beside the current one, then swap it in.
///
/// The current cache keeps answering queries until the swap.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  blackbox rebuild")]
pub struct RebuildArgs {}

/// One sensor's readings, or its rollups per period (--every).
///
/// With --every, one row per period (UTC: days start at midnight, weeks on
/// Mondays, other periods at multiples of their length since 1970; the
/// periods that hold --from and --to are given whole): a gauge's count, min, max, mean, first and last value and when
/// the min and max were read; a [[counter]]'s increment, count of readings
/// and flags (which of its rules applied: first, zero, reset, wrap, low,
/// high). The period holding the current time is marked partial.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(
    after_help = "Examples:\n  blackbox query usb-A40117UK/roomNode-2/temp --from 2012-11-30 --to '2012-11-30 06:00'\n  blackbox query usb-A40117UK/roomNode-2/temp --from -2h --format jsonl\n  blackbox query usb-A40117UK/roomNode-2/temp --every 1d --from -30d\n  blackbox query usb-A40117UK/homePower-9/c1 --every 1h --format csv"
)]
pub struct QueryArgs {
    /// SOURCE/DEVICE/FIELD, as listed by `blackbox schema`
    pub sensor: String,
    /// From this time on (RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] UTC, or -2h, -7d)
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Before this time
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// How to write the readings (json is accepted for jsonl)
    #[arg(long, value_enum, default_value_t = Format::Table, value_name = "FORMAT")]
    pub format: Format,
    /// One row per period instead of every reading: 1h, 1d, or a multiple
    /// of either (6h, 7d), from the rollups; a counter gives its increment
    #[arg(long, value_name = "PERIOD")]
    pub every: Option<String>,
    /// With --every and the table format, empty rows for periods without readings
    #[arg(long, requires = "every")]
    pub fill: bool,
}

/// How the read commands write readings: the same names for every one of
/// them (DESIGN.md, command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum Format {
    // Aligned columns for a person.
    Table,
    // `time,sensor,value` with a header line.
    Csv,
    // One JSON object per line; `json`, the name `query` used first, is kept.
    #[value(alias = "json")]
    Jsonl,
}

/// Every decoded reading, in log order; or every sensor's rollups (--every).
///
/// With --every, one row per sensor and period (sensor by sensor, each in
/// time order), as `query --every` gives them, with a `kind` column: gauge
/// (count, min, max, mean, first, last, when the min and max were read) or
/// counter (increment, unit, count, flags). Periods are UTC; those that
/// hold --from and --to are given whole.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(
    after_help = "Examples:\n  blackbox export --from 2012-11-30 --to 2012-12-01 --format csv > day.csv\n  blackbox export --every 1h --format csv > hours.csv"
)]
pub struct ExportArgs {
    /// From this time on
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Before this time
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// How to write the readings (json is accepted for jsonl)
    #[arg(long, value_enum, default_value_t = Format::Jsonl, value_name = "FORMAT")]
    pub format: Format,
    /// Every sensor's rollups instead of every reading: one row per sensor
    /// and period of 1h, 1d, or a multiple of either
    #[arg(long, value_name = "PERIOD")]
    pub every: Option<String>,
}

/// Devices and fields discovered, with type, unit, count, first and last seen.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(after_help = "Example:\n  blackbox schema")]
pub struct SchemaArgs {}

/// The site at a glance: each device's status colour, level, since when and why.
///
/// Levels come from the [[check]] tables of the configuration, judged in
/// data time as the logs were indexed; a device without a reading for
/// grey_after (24h) is grey now, for black_after (48h) black. With DEVICE
/// (an id or a unique prefix), every failing check of that device and the
/// log lines that caused it. With --nagios, one monitoring-plugin line and
/// its exit code: 0 ok, 1 warning, 2 error or critical, 3 grey or black.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(after_help = "Examples:
  blackbox status
  blackbox status --all
  blackbox status usb-A40117UK/roomNode-5
  blackbox status --nagios
  blackbox status --sites sites")]
pub struct StatusArgs {
    /// A device: SOURCE/DEVICE, or a unique prefix of it or of DEVICE
    pub device: Option<String>,
    /// The fleet: every site the mirror keeps under DIR (DIR/<site>/logs),
    /// each indexed into DIR/<site>/cache first
    #[arg(long, value_name = "DIR", conflicts_with_all = ["device", "nagios", "at"])]
    pub sites: Option<std::path::PathBuf>,
    /// Every device, green ones too
    #[arg(long)]
    pub all: bool,
    /// One line in the monitoring-plugin format, and its exit code
    #[arg(long, conflicts_with_all = ["device", "format"])]
    pub nagios: bool,
    /// table or json
    #[arg(long, value_enum, default_value_t = StatusFormat::Table, value_name = "FORMAT")]
    pub format: StatusFormat,
    /// Judge at this time instead of now (silence, stale sensors, holds), as
    /// for old logs; results are those of the last line indexed (`health`
    /// has the history)
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// The log directory, for the lines behind a result (set by the client).
    #[arg(skip)]
    pub logs: Option<std::path::PathBuf>,
    /// Whether the client's output is coloured (set by the client).
    #[arg(skip)]
    pub color: bool,
    /// The state directory, for the notifications (set by the client).
    #[arg(skip)]
    pub state: Option<std::path::PathBuf>,
}

/// The follower and the dashboard: keep the cache current and serve the site's pages
///
/// Catches up, follows the logs, judges the checks, sends notifications, and
/// serves the dashboard, its JSON API, /metrics and /healthz from the same
/// process. While it catches up (or rebuilds), every page shows how far it
/// is. Listens on 127.0.0.1:8080 unless --listen or [web] listen say
/// otherwise; an address other than loopback is refused unless [web] users
/// or token_file make people sign in. With an [mqtt] table it also forwards
/// every line to the broker.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox serve
  blackbox serve --listen 127.0.0.1:9090
  blackbox serve --listen 0.0.0.0:8080    # needs [web] users or token_file
  blackbox serve --sites sites            # the fleet a `blackbox mirror` keeps")]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080, or [web] listen]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The fleet: every site the mirror keeps under DIR (DIR/<site>/logs), each
    /// followed into its own cache and shown under /sites/<site>/
    #[arg(long, value_name = "DIR")]
    pub sites: Option<std::path::PathBuf>,
}

/// Make a password hash for [web] users
///
/// Reads the password (twice, without echo, on a terminal; one line from a
/// pipe) and prints the [[web.users]] table to add to blackbox.toml.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox passwd ann >> blackbox.toml
  echo 'correct horse battery' | blackbox passwd ann")]
pub struct PasswdArgs {
    /// The user's name
    pub name: String,
}

/// Acknowledge a device's status: no more repeated notifications about it
///
/// Until its level changes (or --for runs out). Recorded in the state
/// directory; `status` shows it.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(after_help = "Examples:
  blackbox ack usb-A40117UK/roomNode-4
  blackbox ack roomNode-4 --for 4h --note \"window left open, Jan is on it\"")]
pub struct AckArgs {
    /// A device: SOURCE/DEVICE, or a unique prefix of it or of DEVICE
    pub device: String,
    /// Only for this long (default: until its level changes)
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
    /// Why, for `status` and the ledger
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// The state directory (set by the client).
    #[arg(skip)]
    pub state: Option<std::path::PathBuf>,
}

/// Suppress notifications about the devices a glob matches, for maintenance
///
/// Recorded in the state directory; `status` shows it. When a silence ends,
/// what then stands and was not told is told.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox silence 'usb-A40117UK/*' --for 2h --note \"replacing batteries\"
  blackbox silence --clear 'usb-A40117UK/*'
  blackbox silence --list")]
pub struct SilenceArgs {
    /// A glob over device ids, SOURCE/DEVICE (`*` matches within one part)
    #[arg(required_unless_present = "list")]
    pub glob: Option<String>,
    /// How long (required, unless --clear)
    #[arg(long = "for", value_name = "DURATION", required_unless_present_any = ["clear", "list"])]
    pub for_: Option<String>,
    /// Why, for `status`
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// End the silences of this glob now
    #[arg(long, conflicts_with_all = ["for_", "list"])]
    pub clear: bool,
    /// The silences in force
    #[arg(long, conflicts_with_all = ["for_", "clear", "note"])]
    pub list: bool,
}

/// Notifications: send a test message, or show the ledger of what was sent.
#[derive(Debug, ClapArgs)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: NotifyCommand,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    Test(NotifyTestArgs),
    Log(NotifyLogArgs),
}

/// Send a test message through every channel, and say what happened to each
///
/// Every channel of every [[notify]] route, or of one. Exit status 1 when a
/// channel failed. The tests are recorded in the ledger.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox notify test
  blackbox notify test --route \"on call\"")]
pub struct NotifyTestArgs {
    /// Only the [[notify]] with this name
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
}

/// Show the ledger: what was sent, when, through which channel, after which failures
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox notify log
  blackbox notify log --last 5 --format json")]
pub struct NotifyLogArgs {
    /// Only the last N records
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// table or json (one record per line)
    #[arg(long, value_enum, default_value_t = StatusFormat::Table, value_name = "FORMAT")]
    pub format: StatusFormat,
}

/// How `status` and `health` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum StatusFormat {
    Table,
    Json,
}

/// The history of health transitions (a check's result, a device's, a
/// source's or the site's level changing), oldest first.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(after_help = "Examples:
  blackbox health --from -7d
  blackbox health --device usb-A40117UK/roomNode-5 --level critical")]
pub struct HealthArgs {
    /// From this time on (data time)
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Before this time
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Only transitions of this device (SOURCE/DEVICE) and its sensors
    #[arg(long)]
    pub device: Option<String>,
    /// Only transitions into or out of this level
    #[arg(long)]
    pub level: Option<String>,
    /// table or json (one object per line)
    #[arg(long, value_enum, default_value_t = StatusFormat::Table, value_name = "FORMAT")]
    pub format: StatusFormat,
    /// The log directory, for the names of the files behind the transitions
    /// (set by the command, not an option).
    #[arg(skip)]
    pub logs: Option<std::path::PathBuf>,
}

/// Every event occurrence ([[event]] matches), with its time, code, level,
/// description and original line, oldest first.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(
    after_help = "Examples:\n  blackbox events --code 101\n  blackbox events --level critical --from -7d\n  blackbox events --source ups --format json"
)]
pub struct EventsArgs {
    /// Only events with this code
    #[arg(long)]
    pub code: Option<String>,
    /// Only events at this level (info, warning, error, critical)
    #[arg(long)]
    pub level: Option<String>,
    /// Only events of this source
    #[arg(long)]
    pub source: Option<String>,
    /// From this time on
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Before this time
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// table or json (one object per line)
    #[arg(long, value_enum, default_value_t = StatusFormat::Table, value_name = "FORMAT")]
    pub format: StatusFormat,
}

/// How long data has been collected, lines per source, undecoded lines, frequent events.
#[derive(Debug, Clone, ClapArgs, serde::Serialize, serde::Deserialize)]
#[command(after_help = "Example:\n  blackbox stats")]
pub struct StatsArgs {}

/// The latest lines of the logs, then new ones as they arrive (-f).
///
/// Reads the daily files directly, so it works while the cache is missing or
/// rebuilding. With -f it follows by name, like `tail -F`: across midnight
/// into the next day's file and across capture restarts. Only complete lines
/// are printed. With --decoded each reading is decoded on the fly with the
/// indexer's decoders and configuration.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  blackbox tail -n 50\n  blackbox tail -f --decoded\n  blackbox tail -f --source usb-A40117UK\n  blackbox tail -f --grep 'OK (2|34) '\n  blackbox tail --since '2012-11-30 06:00' --decoded | less -R"
)]
pub struct TailArgs {
    /// How many lines to show first (0: only what arrives from now on)
    #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N", allow_negative_numbers = true, value_parser = line_count)]
    pub lines: usize,
    /// Keep printing lines as they are appended (until Ctrl-C)
    #[arg(short, long)]
    pub follow: bool,
    /// Show time, source, device and fields with units instead of the raw lines
    #[arg(short, long)]
    pub decoded: bool,
    /// Only readings of this source (and metadata lines about it or about capture itself)
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Only lines matching this regular expression
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,
    /// Start from this time instead of the last N lines (RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] UTC, or -2h)
    #[arg(long, value_name = "T", allow_hyphen_values = true, conflicts_with = "lines")]
    pub since: Option<String>,
}

/// `tail -n N`: a count of lines. A negative one is taken as a value (not an
/// unknown option) so that the message can say what is wrong with it.
fn line_count(s: &str) -> Result<usize, String> {
    match s.parse::<i64>() {
        Ok(n) if n < 0 => Err("N must be 0 or more (-n 0 -f shows only the lines that arrive from now on)".into()),
        _ => s.parse().map_err(|_| "N must be a whole number, 0 or more".into()),
    }
}

/// Publish history to MQTT again, on purpose (for a new consumer)
///
/// Every message of the lines from the start of --from (values, JSON, raw
/// lines, Home Assistant configs with discovery) goes to the [mqtt] broker
/// again with QoS 1, at most --rate lines a second, up to the end of the
/// logs as they are now (or of --to). The follower's own cursor is not
/// touched; consumers drop repeats by the messages' `id`.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox forward --from 20261101
  blackbox forward --from 20261101 --to 20261107 --rate 200")]
pub struct ForwardArgs {
    /// The first day, YYYYMMDD (or YYYY-MM-DD), from its start
    #[arg(long, value_name = "DAY")]
    pub from: String,
    /// The last day, to its end [default: up to the end of the logs now]
    #[arg(long, value_name = "DAY")]
    pub to: Option<String>,
    /// At most this many lines a second
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub rate: u32,
}

/// Keep byte-identical copies of every site's logs from their MQTT raw lines
///
/// Subscribes to `<prefix>/+/raw/#` (persistent session, QoS 1) and writes
/// DIR/<site>/logs/YYYY/YYYYMMDD.txt, each line at the byte offset it has on
/// its site; repeats are dropped, and a gap is asked again from the site's
/// forwarder. Closed days copied by rsync are continued. One mirror per DIR
/// (it is locked). Runs until SIGTERM or Ctrl-C.
/// `verify --logs DIR/<site>/logs` checks a copy; `status --sites DIR` and
/// `serve --sites DIR` show the fleet.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  blackbox mirror --mqtt mqtt://broker.lan:1883 --dir sites
  blackbox mirror --mqtt mqtt://broker.lan --site cellar --site barn")]
pub struct MirrorArgs {
    /// The broker: mqtt://HOST[:PORT] (or mqtts:// with --ca-file)
    #[arg(long, value_name = "URL")]
    pub mqtt: String,
    /// Where the copies go
    #[arg(long, value_name = "DIR", default_value = "sites")]
    pub dir: PathBuf,
    /// Only this site (repeatable) [default: every site]
    #[arg(long = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// The first level of the topics
    #[arg(long, value_name = "PREFIX", default_value = "blackbox")]
    pub prefix: String,
    /// The client id, which names the broker's persistent session [default: blackbox-mirror-HOST]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// User name at the broker (with --password-file)
    #[arg(long, value_name = "NAME", requires = "password_file")]
    pub user: Option<String>,
    /// A file holding the broker password
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the broker's, for mqtts://
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}
