//! `[[notify]]` tables checked and turned into routes: which devices and
//! levels a route covers, and its channels in the order they are tried.

use crate::modem::{self, ModemTarget};
use config::{Config, NotifyConfig, Place};
use health::glob::Glob;
use health::Level;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One way of telling someone.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    /// An HTTP POST of the message as JSON.
    Webhook { url: String, timeout: Duration },
    /// A program run with the message on stdin and its fields in the environment.
    Command { argv: Vec<String>, timeout: Duration },
    /// An SMS through a GSM modem.
    Modem { target: ModemTarget, timeout: Duration },
}

impl Channel {
    /// `webhook`, `command` or `modem`.
    pub fn word(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Command { .. } => "command",
            Channel::Modem { .. } => "modem",
        }
    }
}

/// A `[[notify]]`: who is told about which changes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    /// The levels it covers: transitions into them are told.
    pub levels: Vec<Level>,
    /// Globs over `SOURCE/DEVICE`; empty covers every device.
    pub devices: Vec<Glob>,
    /// In the order they are tried.
    pub channels: Vec<Channel>,
    pub group_wait_ms: i64,
    pub repeat_ms: i64,
    /// Tell when a device is back to a level the route does not cover.
    pub resolved: bool,
}

impl Route {
    pub fn covers(&self, level: Level) -> bool {
        self.levels.contains(&level)
    }

    pub fn watches(&self, device: &str) -> bool {
        self.devices.is_empty() || self.devices.iter().any(|g| g.matches(device))
    }

    /// The level as the route sees it: itself when covered, none otherwise.
    pub fn routed(&self, level: Level) -> Option<Level> {
        self.covers(level).then_some(level)
    }
}

/// Every route, with the site's name and the state directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Routes {
    pub routes: Vec<Route>,
    pub site: String,
    pub state: PathBuf,
}

/// The levels a route covers when `levels` is not given.
pub const DEFAULT_LEVELS: [Level; 4] = [Level::Error, Level::Critical, Level::Grey, Level::Black];
const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);

impl Routes {
    /// The routes of `config`; `state` is the state directory. Errors name
    /// the file and line of the `[[notify]]` at fault.
    pub fn new(config: &Config, state: &Path) -> Result<Routes, String> {
        let mut routes = Vec::new();
        for (i, n) in config.notify.iter().enumerate() {
            let route = route(n).map_err(|e| config.at(Place::Notify(i), format!("[[notify]] {:?}: {e}", n.name)))?;
            if routes.iter().any(|r: &Route| r.name == route.name) {
                return Err(config.at(
                    Place::Notify(i),
                    format!("two [[notify]] tables are named {:?}: names tell them apart in `notify test --route` and the ledger", n.name),
                ));
            }
            routes.push(route);
        }
        let site = config.site.clone().unwrap_or_else(host_name);
        Ok(Routes { routes, site, state: state.to_path_buf() })
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// This machine's name, the default site name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "site".into())
}

fn route(n: &NotifyConfig) -> Result<Route, String> {
    if n.name.trim().is_empty() {
        return Err("`name` is empty".into());
    }
    let levels = match &n.levels {
        None => DEFAULT_LEVELS.to_vec(),
        Some(words) => {
            let mut levels = Vec::new();
            for w in words {
                levels.push(
                    Level::parse(w)
                        .ok_or_else(|| format!("unknown level {w:?} in `levels` (ok, warning, error, critical, grey, black)"))?,
                );
            }
            if levels.is_empty() {
                return Err("`levels` is empty: the route would never tell anything".into());
            }
            if levels.contains(&Level::Ok) {
                return Err("`levels` has \"ok\": a route tells about levels that are wrong (back to ok is told with `resolved`)".into());
            }
            levels
        }
    };
    let mut devices = Vec::new();
    for g in n.devices.iter().flatten() {
        devices.push(Glob::new(g).map_err(|e| format!("`devices`: {e}"))?);
    }
    if n.timeout.is_some_and(|t| t.0.is_zero()) {
        return Err("`timeout` must be longer than 0".into());
    }
    let timeout = |default: u64| n.timeout.map_or(Duration::from_secs(default), |t| t.0);
    let mut available: Vec<Channel> = Vec::new();
    if let Some(url) = &n.webhook {
        check_url(url)?;
        available.push(Channel::Webhook { url: url.clone(), timeout: timeout(10) });
    }
    if let Some(argv) = &n.command {
        check_command(argv)?;
        available.push(Channel::Command { argv: argv.clone(), timeout: timeout(30) });
    }
    if let Some(m) = &n.modem {
        if m.to.is_empty() {
            return Err("`modem.to` is empty: give the phone numbers to text".into());
        }
        if let Some(bad) = m.to.iter().find(|t| !modem::valid_number(t)) {
            return Err(format!("`modem.to`: {bad:?} is not a phone number (a + and 3 to 15 digits, no spaces: \"+15551234\")"));
        }
        let target = ModemTarget { port: m.port.display().to_string(), baud: m.baud.unwrap_or(115_200), to: m.to.clone() };
        available.push(Channel::Modem { target, timeout: timeout(60) });
    }
    if available.is_empty() {
        return Err("no channel: give a `webhook`, a `command` or a `modem`".into());
    }
    let channels = match &n.order {
        None => available,
        Some(order) => {
            let mut channels = Vec::new();
            for word in order {
                let c = available.iter().find(|c| c.word() == word).ok_or_else(|| match word.as_str() {
                    "webhook" | "command" | "modem" => format!("`order` names {word:?}, which this table does not configure"),
                    _ => format!("`order`: unknown channel {word:?} (webhook, command, modem)"),
                })?;
                if channels.contains(c) {
                    return Err(format!("`order` names {word:?} twice"));
                }
                channels.push(c.clone());
            }
            // Channels configured but left out of `order` are not used: say so rather than guess.
            if let Some(left) = available.iter().find(|c| !channels.contains(c)) {
                return Err(format!("`order` leaves out {:?}, which is configured: add it or remove its key", left.word()));
            }
            channels
        }
    };
    let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
    let repeat = n.repeat.map_or(DEFAULT_REPEAT, |d| d.0);
    if repeat.is_zero() {
        return Err("`repeat` must be longer than 0".into());
    }
    Ok(Route {
        name: n.name.clone(),
        levels,
        devices,
        channels,
        group_wait_ms: ms(n.group_wait.map_or(DEFAULT_GROUP_WAIT, |d| d.0)),
        repeat_ms: ms(repeat),
        resolved: n.resolved.unwrap_or(true),
    })
}

/// `http://host[:port]/path` or `https://...`.
fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`webhook` {url:?} is not a usable URL: {why}"));
    let Some((scheme, rest)) = url.split_once("://") else { return bad("expected http://host/path") };
    if scheme != "http" && scheme != "https" {
        return bad("the scheme must be http or https");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, port)) => (addr, port.strip_prefix(':')),
            None => return bad("an unclosed [ in the host"),
        },
        None => match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        },
    };
    if name.is_empty() {
        return bad("no host");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("a space in the host");
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return bad("the port must be a number from 1 to 65535");
        }
    }
    if url.chars().any(char::is_whitespace) {
        return bad("a space in it (write %20)");
    }
    Ok(())
}

/// The program must exist now: a typo is found at startup, not at 3 am.
fn check_command(argv: &[String]) -> Result<(), String> {
    let Some(program) = argv.first().filter(|p| !p.is_empty()) else { return Err("`command` is empty".into()) };
    if program.contains('/') {
        let p = Path::new(program);
        if !is_executable(p) {
            return Err(format!("`command`: {program} does not exist or is not executable"));
        }
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program))) {
        return Ok(());
    }
    Err(format!("`command`: no program {program:?} on the PATH (give its full path)"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(text: &str) -> Result<Routes, String> {
        let config = Config::parse(text, Path::new("site.toml")).map_err(|e| e.to_string())?;
        Routes::new(&config, Path::new("state"))
    }

    #[test]
    fn defaults_and_order() {
        let r = routes("[[notify]]\nname = \"on call\"\nwebhook = \"http://127.0.0.1:9000/hook\"\ncommand = [\"sh\", \"-c\", \"cat\"]\n")
            .unwrap();
        let route = &r.routes[0];
        assert_eq!(route.levels, DEFAULT_LEVELS);
        assert_eq!(route.channels.iter().map(Channel::word).collect::<Vec<_>>(), ["webhook", "command"]);
        assert_eq!((route.group_wait_ms, route.repeat_ms, route.resolved), (30_000, 4 * 3_600_000, true));
        assert!(route.watches("any/device"));
        let r = routes("[[notify]]\nname = \"x\"\nwebhook = \"https://h/x\"\ncommand = [\"sh\"]\norder = [\"command\", \"webhook\"]\ndevices = [\"usb/*\"]\n").unwrap();
        assert_eq!(r.routes[0].channels.iter().map(Channel::word).collect::<Vec<_>>(), ["command", "webhook"]);
        assert!(r.routes[0].watches("usb/a") && !r.routes[0].watches("tcp/a"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("webhook = \"ftp://h/x\"", "scheme"),
            ("webhook = \"http:///x\"", "no host"),
            ("webhook = \"http://h:99999/x\"", "port"),
            ("webhook = \"hook\"", "http://host"),
            ("command = [\"/no/such/program\"]", "does not exist"),
            ("command = [\"no-such-program-anywhere\"]", "PATH"),
            ("command = []", "empty"),
            ("modem = { port = \"/dev/ttyUSB0\", to = [\"555 1234\"] }", "not a phone number"),
            ("modem = { port = \"/dev/ttyUSB0\", to = [] }", "empty"),
            ("webhook = \"http://h/\"\nlevels = [\"red\"]", "unknown level"),
            ("webhook = \"http://h/\"\norder = [\"sms\"]", "unknown channel"),
            ("webhook = \"http://h/\"\norder = [\"modem\"]", "does not configure"),
            ("webhook = \"http://h/\"\ncommand = [\"sh\"]\norder = [\"command\"]", "leaves out"),
            ("levels = [\"error\"]", "no channel"),
            ("webhook = \"http://h/\"\nlevels = [\"ok\", \"error\"]", "has \"ok\""),
            ("webhook = \"http://h/\"\ntimeout = \"0s\"", "longer than 0"),
        ];
        for (body, want) in cases {
            let err = routes(&format!("site = \"s\"\n\n[[notify]]\nname = \"n\"\n{body}\n")).unwrap_err();
            assert!(err.starts_with("site.toml:3: [[notify]] \"n\": ") && err.contains(want), "{body}: {err}");
        }
        let err = routes("[[notify]]\nname = \"n\"\nwebhook = \"http://h/\"\nwebhok = 1\n").unwrap_err();
        assert!(err.contains("unknown field `webhok`"), "{err}");
        let err = routes("[[notify]]\nname = \"n\"\nwebhook = \"http://h/\"\n[[notify]]\nname = \"n\"\ncommand = [\"sh\"]\n").unwrap_err();
        assert!(err.starts_with("site.toml:4:") && err.contains("two [[notify]]"), "{err}");
    }
}
