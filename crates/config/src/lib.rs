//! `blackbox.toml`, the configuration file. Every key is documented in
//! docs/configuration.md. Unknown keys are errors, so a typo never silently
//! turns a setting off.

mod origin;

pub use origin::{Location, Origin, Place};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Log directory (overridden by `--logs`).
    pub logs: Option<PathBuf>,
    /// Cache directory (overridden by `--cache`).
    pub cache: Option<PathBuf>,
    #[serde(default)]
    pub capture: CaptureConfig,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub rf12: Rf12Config,
    #[serde(default, rename = "driver")]
    pub drivers: Vec<DriverConfig>,
    #[serde(default, rename = "event")]
    pub events: Vec<EventConfig>,
    #[serde(default, rename = "check")]
    pub checks: Vec<CheckConfig>,
    #[serde(default)]
    pub status: StatusConfig,
    #[serde(default)]
    pub rollup: RollupConfig,
    #[serde(default, rename = "counter")]
    pub counters: Vec<CounterConfig>,
    /// The state directory (default `state` beside the log directory): the
    /// records of what blackbox did outside itself (the notification ledger,
    /// acknowledgements and silences), which a rebuild never redoes.
    pub state: Option<PathBuf>,
    /// The site's name in notifications (default: the host name).
    pub site: Option<String>,
    #[serde(default, rename = "notify")]
    pub notify: Vec<NotifyConfig>,
    #[serde(default)]
    pub web: WebConfig,
    /// `[mqtt]`: forwarding to a broker (the follower forwards when it is present).
    pub mqtt: Option<MqttConfig>,
    /// The file this was read from, with the lines of its entries (none for
    /// a configuration that was not read from a file).
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// `[rf12]`: RF12demo decoding.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rf12Config {
    /// Node id = header & mask (default 31, `0x1F`; RF69 firmware may differ).
    pub node_mask: Option<u8>,
    /// Node id to driver: `2 = "roomNode"`, a table, or a list of tables with time ranges.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeSpec>,
}

/// One entry of `[rf12.nodes]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum NodeSpec {
    Driver(String),
    One(NodeEntry),
    Many(Vec<NodeEntry>),
}

/// A node assignment, optionally limited to a source and a time range
/// (a node reflashed with other firmware).
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub driver: String,
    /// Device name instead of `DRIVER-N`.
    pub name: Option<String>,
    /// Only packets from this source.
    pub source: Option<String>,
    /// From this time on (inclusive), RFC 3339 or `YYYY-MM-DD[ HH:MM[:SS]]` UTC.
    pub from: Option<String>,
    /// Until this time (exclusive).
    pub to: Option<String>,
}

/// `[[driver]]`: a bit layout for RF12 packets.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DriverConfig {
    pub name: String,
    pub fields: Vec<FieldConfig>,
}

/// One field of a bit layout, read from a little-endian bit stream after the header byte.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    pub bits: u8,
    #[serde(default)]
    pub signed: bool,
    /// Multiply the raw value (0.1 for tenths).
    pub scale: Option<f64>,
    pub unit: Option<String>,
    /// Padding: read but not reported.
    #[serde(default)]
    pub skip: bool,
}

/// `[[event]]`: a pattern that marks a line as an event.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// A substring to look for (give this or `regex`).
    #[serde(rename = "match")]
    pub substring: Option<String>,
    pub regex: Option<String>,
    pub code: String,
    /// `info`, `warning`, `error` or `critical` (default `info`).
    pub level: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Only lines from this source.
    pub source: Option<String>,
}

/// `[[check]]`: one test with one level, applied to every sensor its
/// `sensors` globs match. Which keys a kind takes is checked by the `health`
/// crate, which names the file and line of a wrong one.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub name: String,
    /// Globs over sensor ids, `SOURCE/DEVICE/FIELD` (`*` matches within one part).
    #[serde(default)]
    pub sensors: Vec<String>,
    /// `range`, `stale`, `rate`, `agree`, `anomaly` or `event`.
    pub kind: String,
    /// `warning` (default), `error` or `critical`.
    pub level: Option<String>,
    /// How long the condition must hold before the result changes.
    #[serde(rename = "for")]
    pub for_: Option<DurationText>,
    /// How long a failing value check must pass before it clears (default 5m).
    pub clear_for: Option<DurationText>,
    /// A template with `{value}`, `{sensor}`, `{limit}`, `{check}`.
    pub message: Option<String>,
    #[serde(flatten)]
    pub params: CheckParams,
    /// Other parameters for some devices (`[[check.override]]`).
    #[serde(default, rename = "override")]
    pub overrides: Vec<CheckOverride>,
}

/// The parameters of a check; which ones a kind takes is checked later.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct CheckParams {
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `range`: how far back inside a limit a value must come to clear.
    pub hysteresis: Option<f64>,
    /// `stale`: no reading for this long.
    pub after: Option<DurationText>,
    /// `rate`: the largest change allowed per `per`.
    pub max_change: Option<f64>,
    pub per: Option<DurationText>,
    /// `agree`: the largest spread allowed between the latest values.
    pub max_spread: Option<f64>,
    /// `anomaly`: standard deviations from the mean of the same hour of day.
    pub sigma: Option<f64>,
    pub days: Option<u32>,
    /// `event`: event codes (of `[[event]]`) that set the device at this level.
    pub codes: Option<Vec<String>>,
    /// `event`: event levels that do (instead of codes).
    pub levels: Option<Vec<String>>,
    /// `event`: how long an event keeps the device at the level.
    pub hold: Option<DurationText>,
    /// `event`: event codes that clear it before `hold` ends.
    pub clear: Option<Vec<String>>,
}

/// `[[check.override]]`: other parameters for the devices its globs match
/// (`SOURCE/DEVICE`); the first override that matches a device applies.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckOverride {
    pub devices: Vec<String>,
    pub level: Option<String>,
    #[serde(flatten)]
    pub params: CheckParams,
}

/// `[rollup]`: the per-hour and per-day summaries the indexer keeps.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Summaries of every numeric sensor that is not a counter (default
    /// true; false saves their space and time on small boards).
    pub gauges: Option<bool>,
}

/// `[[counter]]`: sensors that are cumulative meters, rolled up as
/// increments per period. Checked by the `rollup` crate, which names the
/// file and line of a wrong one.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CounterConfig {
    /// Globs over sensor ids, `SOURCE/DEVICE/FIELD`, as in `[[check]]`.
    pub sensors: Vec<String>,
    /// An hour's increment below this counts as 0 and is flagged.
    pub low: Option<f64>,
    /// An hour's increment above this counts as 0 and is flagged.
    pub high: Option<f64>,
    /// The value at which the counter wraps to 0 (65536 for 16 bits).
    pub wrap: Option<f64>,
    /// `rebase` (default) or `max`: what a drop that is not a wrap means.
    pub reset: Option<String>,
    /// Multiplies every increment (Wh per pulse, for example); default 1.
    pub scale: Option<f64>,
    /// The unit of the increments once scaled.
    pub unit: Option<String>,
}

/// `[[notify]]`: who is told about which status changes, and through
/// which channels. Checked by the `alert` crate, which names the file and
/// line of a wrong one.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub name: String,
    /// Levels whose transitions (in and, with `resolved`, out) are told
    /// (default error, critical, grey, black).
    pub levels: Option<Vec<String>>,
    /// Globs over device ids, `SOURCE/DEVICE` (default every device).
    pub devices: Option<Vec<String>>,
    /// An `http://` or `https://` URL that receives a JSON POST.
    pub webhook: Option<String>,
    /// A program and its arguments, run with the message on stdin.
    pub command: Option<Vec<String>>,
    /// A GSM modem that sends an SMS.
    pub modem: Option<ModemConfig>,
    /// The channels in the order they are tried (default webhook, command, modem).
    pub order: Option<Vec<String>>,
    /// Changes within this time of each other go in one message (default 30s).
    pub group_wait: Option<DurationText>,
    /// A summary again while the condition lasts, this often (default 4h).
    pub repeat: Option<DurationText>,
    /// Tell when a device is back to a level the route does not cover (default true).
    pub resolved: Option<bool>,
    /// How long one try of a channel may take (default 10s for a webhook,
    /// 30s for a command, 60s for the modem).
    pub timeout: Option<DurationText>,
}

/// `[web]`: `blackbox serve`, the dashboard.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// The address to listen on (default 127.0.0.1:8080; `--listen` overrides).
    pub listen: Option<String>,
    /// People who may sign in: a name and a password hash from `blackbox passwd`.
    #[serde(default)]
    pub users: Vec<WebUser>,
    /// A file holding a bearer token for programs (`Authorization: Bearer ...`).
    pub token_file: Option<PathBuf>,
    /// Browsers with a live page open at once, at most (default 256).
    pub max_live: Option<usize>,
    /// Connections open at once, at most, live pages included (default 512).
    pub max_connections: Option<usize>,
}

/// `[mqtt]`: forwarding with the log as the outbox (docs/mqtt.md).
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port`.
    pub url: String,
    /// The site's name in topics (default: the top-level `site`, else the host name).
    pub site: Option<String>,
    /// The first level of every topic (default `blackbox`).
    pub prefix: Option<String>,
    /// Home Assistant discovery.
    pub discovery: Option<bool>,
    /// Raw lines for mirroring (default true).
    pub raw: Option<bool>,
    pub user: Option<String>,
    /// A file holding the password.
    pub password_file: Option<PathBuf>,
    /// `mqtts://`: the CA certificates (PEM) that sign the broker's (default: the system's).
    pub ca_file: Option<PathBuf>,
}

/// One of `[web] users`.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebUser {
    pub name: String,
    /// An argon2 hash (`$argon2id$...`) made by `blackbox passwd`.
    pub hash: String,
}

/// `modem = { port = ..., baud = ..., to = [...] }` of a `[[notify]]`.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    pub port: PathBuf,
    /// Default 115200.
    pub baud: Option<u32>,
    /// Phone numbers, `+` and digits.
    pub to: Vec<String>,
}

/// `[status]`: when a device without readings turns grey, then black.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// Default 24h.
    pub grey_after: Option<DurationText>,
    /// Default 48h.
    pub black_after: Option<DurationText>,
}

/// `[capture]`
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// `always`, `never` or `interval=MS`.
    pub sync: Option<String>,
    /// Longest line in bytes before it is cut (default 4096).
    pub max_line: Option<usize>,
    /// Bytes held in memory while the disk is full (default 4 MiB).
    pub hold_limit: Option<usize>,
    /// First wait before reopening a lost source (default 100ms).
    pub reconnect_min: Option<DurationText>,
    /// Longest wait between attempts (default 30s).
    pub reconnect_max: Option<DurationText>,
}

/// `[[source]]`
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: Option<String>,
    pub port: Option<PathBuf>,
    pub baud: Option<u32>,
    pub framing: Option<String>,
    pub tcp: Option<String>,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub init: Vec<String>,
    pub init_delay: Option<DurationText>,
    #[serde(default, rename = "poll")]
    pub polls: Vec<PollConfig>,
    pub command_eol: Option<String>,
    pub max_line: Option<usize>,
    /// `auto` (default), `rf12demo`, `json`, `kv`, `csv`, `regex` or `none`.
    pub decoder: Option<String>,
    /// JSON fields that name the device, joined with `-` (e.g. `["model", "id"]`).
    #[serde(default)]
    pub device: Vec<String>,
    /// For `decoder = "regex"`: named captures become fields (`device` names the device).
    pub regex: Option<String>,
    /// For `decoder = "csv"`: column names; without them the first line that is not numeric is the header.
    #[serde(default)]
    pub columns: Vec<String>,
    /// For `decoder = "csv"`: the separator (default `,`).
    pub separator: Option<String>,
    /// An RF12demo receiver with a dataflash (JeeLink): on every connect,
    /// capture asks it to replay what it saved while nobody listened.
    #[serde(default)]
    pub dataflash: bool,
    /// This source's devices turn grey after this long without a reading (overrides `[status]`).
    pub grey_after: Option<DurationText>,
    /// And black after this long.
    pub black_after: Option<DurationText>,
}

impl SourceConfig {
    /// Why `dataflash = true` cannot apply to this source, if it cannot: a
    /// replay needs an RF12demo receiver capture can talk to.
    pub fn dataflash_problem(&self) -> Option<&'static str> {
        if !self.dataflash {
            None
        } else if self.stdin {
            Some("dataflash = true needs a receiver capture can talk to (port or tcp), not stdin")
        } else if !matches!(self.decoder.as_deref(), None | Some("auto" | "rf12demo")) {
            Some("dataflash = true needs an RF12demo receiver (decoder \"rf12demo\" or \"auto\")")
        } else {
            None
        }
    }
}

/// `[[source.poll]]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub command: String,
    pub every: DurationText,
}

/// A duration written as `500ms`, `2s`, `5m`, `1h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(DurationText).map_err(serde::de::Error::custom)
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `5m`, `1h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected a number and a unit, such as 500ms, 2s, 5m, 1h"))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("invalid duration {s:?}: the unit must be ms, s, m, h or d")),
    };
    Ok(Duration::from_secs_f64(value * scale))
}

/// A configuration error, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Parses configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        config.origin = Some(Origin::find(text, path));
        Ok(config)
    }

    /// Where `place` is in the file, if this configuration came from one.
    pub fn locate(&self, place: Place<'_>) -> Option<Location> {
        self.origin.as_ref().map(|o| o.locate(place))
    }

    /// `message`, preceded by the file and line of `place` when known
    /// (`blackbox.toml:12: message`).
    pub fn at(&self, place: Place<'_>, message: impl fmt::Display) -> String {
        match self.locate(place) {
            Some(location) => format!("{location}: {message}"),
            None => message.to_string(),
        }
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typo in a check's override is an error, as everywhere else.
    #[test]
    fn unknown_keys_of_an_override_are_errors() {
        let text = "[[check]]\nname = \"warm\"\nsensors = [\"*/*/temp\"]\nkind = \"range\"\nmax = 28\n[[check.override]]\ndevices = [\"a/b\"]\nmx = 32\n";
        let err = Config::parse(text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(err.contains("b.toml") && err.contains("line 6") && err.contains("unknown field `mx`"), "{err}");
    }

    #[test]
    fn a_full_file_parses() {
        let text = r#"
            logs = "/var/lib/blackbox/logs"
            [capture]
            sync = "interval=500"
            reconnect_max = "10s"
            [[source]]
            port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A40117UK-if00-port0"
            baud = 57600
            init = ["8b", "5g", "1i"]
            init_delay = "2s"
            [[source]]
            name = "ups"
            tcp = "ser2net.local:3001"
            command_eol = "\r"
            [[source.poll]]
            command = "Show Faults"
            every = "5m"
        "#;
        let c = Config::parse(text, Path::new("blackbox.toml")).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[0].init, ["8b", "5g", "1i"]);
        assert_eq!(c.sources[0].init_delay, Some(DurationText(Duration::from_secs(2))));
        assert_eq!(c.sources[1].polls[0].every.0, Duration::from_secs(300));
        assert_eq!(c.capture.reconnect_max.unwrap().0, Duration::from_secs(10));
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let err = Config::parse("[[source]]\nprot = \"/dev/ttyUSB0\"\n", Path::new("site.toml")).unwrap_err().to_string();
        assert!(err.starts_with("site.toml: "), "{err}");
        assert!(err.contains("line 2") && err.contains("prot"), "{err}");
        let err = Config::parse("[[source]]\ninit_delay = \"2 parsecs\"\n", Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("unit must be"), "{err}");
    }

    #[test]
    fn decoding_keys_parse() {
        let text = r#"
            [rf12]
            node_mask = 31
            [rf12.nodes]
            2 = "roomNode"
            9 = { driver = "homePower", name = "meter" }
            5 = [ { driver = "roomNode", to = "2012-06-01" }, { driver = "lightNode", from = "2012-06-01", source = "usb-A" } ]
            [[driver]]
            name = "tinyTemp"
            fields = [ { name = "temp", bits = 10, signed = true, scale = 0.1, unit = "°C" }, { name = "pad", bits = 6, skip = true } ]
            [[event]]
            match = "Fault 17"
            code = "F17"
            level = "error"
            description = "battery fault"
            [[source]]
            stdin = true
            decoder = "json"
            device = ["model", "id"]
        "#;
        let c = Config::parse(text, Path::new("b.toml")).unwrap();
        assert_eq!(c.rf12.nodes["2"], NodeSpec::Driver("roomNode".into()));
        assert!(matches!(&c.rf12.nodes["9"], NodeSpec::One(e) if e.name.as_deref() == Some("meter")));
        assert!(matches!(&c.rf12.nodes["5"], NodeSpec::Many(v) if v.len() == 2));
        assert_eq!(c.drivers[0].fields[0].scale, Some(0.1));
        assert_eq!(c.events[0].substring.as_deref(), Some("Fault 17"));
        assert_eq!(c.sources[0].device, ["model", "id"]);
    }

    #[test]
    fn entries_are_located_by_file_and_line() {
        let text = "logs = \"l\"\n\n[[source]]\nstdin = true\n\n[rf12.nodes]\n2 = \"roomNode\"\n14 = { driver = \"otRelay\" }\n\n[[driver]]\nname = \"x\"\nfields = []\n\n[[event]]\nmatch = \"a\"\ncode = \"A\"\n";
        let c = Config::parse(text, Path::new("site.toml")).unwrap();
        let at = |p| c.locate(p).unwrap().to_string();
        assert_eq!(at(Place::Source(0)), "site.toml:3");
        assert_eq!(at(Place::Node("2")), "site.toml:7");
        assert_eq!(at(Place::Node("14")), "site.toml:8");
        assert_eq!(at(Place::Driver(0)), "site.toml:10");
        assert_eq!(at(Place::Event(0)), "site.toml:14");
        assert_eq!(at(Place::Source(5)), "site.toml");
        assert_eq!(c.at(Place::Node("14"), "no driver"), "site.toml:8: no driver");
        assert_eq!(Config::default().at(Place::Node("14"), "no driver"), "no driver");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
    }
}
