//! Schema-on-read decoders: turn a raw log line into device fields.
//!
//! Architecture invariant: decoding is a pure function of the line, its
//! source and time, the configuration and the per-source state carried from
//! earlier lines ([`SourceState`]). No I/O, no clock. So replaying the same
//! logs with the same configuration gives the same results, bit for bit.

mod bits;
pub mod dataflash;
mod generic;
mod rf12;
mod value;

pub use bits::{BitField, Driver};
pub use rf12::{parse as parse_rf12, NodeMap, NodeRule, ReceiverState, Rf12Line};
pub use value::{as_decimal, EventMatch, Field, Found, Level, Outcome, Value};

use config::{Config, NodeSpec, Place};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Which decoder a source uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// RF12demo packets, JSON objects or key=value lines, whichever fits.
    Auto,
    Rf12demo,
    Json,
    KeyValue,
    Csv,
    Regex,
    /// Keep lines raw.
    None,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "auto" => Kind::Auto,
            "rf12demo" => Kind::Rf12demo,
            "json" => Kind::Json,
            "kv" => Kind::KeyValue,
            "csv" => Kind::Csv,
            "regex" => Kind::Regex,
            "none" => Kind::None,
            _ => return None,
        })
    }
}

/// Per-source settings.
#[derive(Clone, Debug)]
struct SourceRules {
    kind: Kind,
    device_fields: Vec<String>,
    regex: Option<regex::Regex>,
    columns: Option<Vec<String>>,
    separator: char,
    /// RF12demo with a dataflash: `R` lines are replayed packets.
    dataflash: bool,
}

impl Default for SourceRules {
    fn default() -> Self {
        Self { kind: Kind::Auto, device_fields: Vec::new(), regex: None, columns: None, separator: ',', dataflash: false }
    }
}

/// What decoding carries from one line of a source to the next (the RF12
/// banner's band and group, a learned CSV header). The indexer stores it with
/// its cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub receiver: ReceiverState,
    pub csv_header: Option<Vec<String>>,
    /// For a source with `dataflash = true`.
    pub flash: dataflash::Flash,
}

/// What [`Outcome::Recognised`] says of a replayed packet that was logged
/// already (live, or by an earlier replay): it is not counted again.
pub const REPLAY_KNOWN: &str = "replayed, logged already";
/// A replayed packet whose time cannot be told (no receiver clock known).
pub const REPLAY_UNPLACED: &str = "replayed, time unknown";
/// `DF C?`: a page of the receiver's flash is damaged; its packets are lost.
pub const FLASH_DAMAGED: &str = "dataflash page damaged";

#[derive(Clone, Debug)]
struct EventRule {
    substring: Option<String>,
    regex: Option<regex::Regex>,
    source: Option<String>,
    found: EventMatch,
}

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeConfigError(pub String);

/// All decoders of a site, compiled from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Decoders {
    nodes: NodeMap,
    /// Per configured source (a site has a handful: a list is faster to
    /// search than a hash of the name, which every line would pay).
    sources: Vec<(String, SourceRules)>,
    events: Vec<EventRule>,
    warnings: Vec<String>,
}

/// Built-in drivers, for messages.
const BUILTINS: &str = "roomNode, radioBlip, homePower, slowLogger, lightNode";

impl Decoders {
    /// Compiles the decoding part of `config`. `source_names[i]` is the
    /// resolved name of `config.sources[i]` (names may be derived from ports).
    /// Errors, and [`Decoders::warnings`], name the file and line of the
    /// entry when the configuration was read from a file.
    pub fn new(config: &Config, source_names: &[String]) -> Result<Self, DecodeConfigError> {
        let err = |place: Place<'_>, m: String| DecodeConfigError(config.at(place, m));
        let mut warnings = Vec::new();
        let mut custom = HashMap::new();
        for (i, d) in config.drivers.iter().enumerate() {
            let place = Place::Driver(i);
            if Driver::builtin(&d.name).is_some() {
                return Err(err(place, format!("[[driver]] {:?} has the name of a built-in driver; choose another name", d.name)));
            }
            custom.insert(d.name.clone(), Driver::from_config(d).map_err(|m| err(place, m))?);
        }
        let mut nodes = NodeMap::new(config.rf12.node_mask.unwrap_or(0x1f));
        for (key, spec) in &config.rf12.nodes {
            let place = Place::Node(key);
            let id: u8 = key.parse().map_err(|_| err(place, format!("[rf12.nodes]: {key:?} is not a node id (0 to 255)")))?;
            let entries = match spec {
                NodeSpec::Driver(d) => vec![config::NodeEntry { driver: d.clone(), ..Default::default() }],
                NodeSpec::One(e) => vec![e.clone()],
                NodeSpec::Many(v) => v.clone(),
            };
            let mut rules = Vec::new();
            for e in entries {
                let time = |t: &Option<String>| -> Result<Option<i64>, DecodeConfigError> {
                    t.as_deref()
                        .map(|t| logfile::time::parse_time(t, None).map_err(|m| err(place, format!("[rf12.nodes] {key}: {m}"))))
                        .transpose()
                };
                let device: String = match e.name.as_deref() {
                    Some(n) => generic::sanitize_device(n),
                    None => format!("{}-{id}", generic::sanitize_device(&e.driver)),
                };
                // A node map copied from HouseMon names types blackbox has no
                // driver for yet. The node keeps its name and its raw bytes,
                // so adding the driver later only adds decoded fields.
                let driver = custom.get(&e.driver).cloned().or_else(|| Driver::builtin(&e.driver));
                if driver.is_none() {
                    warnings.push(config.at(
                        place,
                        format!(
                            "[rf12.nodes] {key}: blackbox has no driver {:?}, so node {id} is kept as {device} with its raw bytes as fields b1, b2, ...; built-ins are {BUILTINS}, or declare it with [[driver]]",
                            e.driver
                        ),
                    ));
                }
                rules.push(NodeRule {
                    device,
                    driver,
                    driver_name: e.driver.clone(),
                    name: e.name.as_deref().map(generic::sanitize_device),
                    source: e.source.clone(),
                    from: time(&e.from)?,
                    to: time(&e.to)?,
                });
            }
            nodes.set(id, rules);
        }
        let mut sources: Vec<(String, SourceRules)> = Vec::new();
        for (i, (s, name)) in config.sources.iter().zip(source_names).enumerate() {
            let place = Place::Source(i);
            let kind = match s.decoder.as_deref() {
                None => Kind::Auto,
                Some(k) => Kind::parse(k).ok_or_else(|| {
                    err(place, format!("source {name:?}: unknown decoder {k:?}; use auto, rf12demo, json, kv, csv, regex or none"))
                })?,
            };
            let regex = match (&s.regex, kind) {
                (Some(r), _) => Some(regex::Regex::new(r).map_err(|e| err(place, format!("source {name:?}: invalid regex: {e}")))?),
                (None, Kind::Regex) => return Err(err(place, format!("source {name:?}: decoder = \"regex\" needs regex = \"...\""))),
                (None, _) => None,
            };
            let separator = match s.separator.as_deref() {
                None => ',',
                Some(sep) => {
                    let mut chars = sep.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => c,
                        _ => return Err(err(place, format!("source {name:?}: separator must be one character"))),
                    }
                }
            };
            let columns = (!s.columns.is_empty()).then(|| s.columns.clone());
            if let Some(problem) = s.dataflash_problem() {
                return Err(err(place, format!("source {name:?}: {problem}")));
            }
            let rules = SourceRules { kind, device_fields: s.device.clone(), regex, columns, separator, dataflash: s.dataflash };
            // A name given twice: the last wins, as it did in a map.
            match sources.iter_mut().find(|(n, _)| n == name) {
                Some((_, r)) => *r = rules,
                None => sources.push((name.clone(), rules)),
            }
        }
        let mut events = Vec::new();
        for (i, e) in config.events.iter().enumerate() {
            let place = Place::Event(i);
            let what = format!("[[event]] {} ({:?})", i + 1, e.code);
            let regex =
                e.regex.as_deref().map(regex::Regex::new).transpose().map_err(|x| err(place, format!("{what}: invalid regex: {x}")))?;
            if regex.is_none() && e.substring.as_deref().is_none_or(str::is_empty) {
                return Err(err(place, format!("{what}: give match = \"substring\" or regex = \"...\"")));
            }
            let level = match e.level.as_deref() {
                None => Level::Info,
                Some(l) => Level::parse(l).ok_or_else(|| err(place, format!("{what}: level must be info, warning, error or critical")))?,
            };
            events.push(EventRule {
                substring: e.substring.clone(),
                regex,
                source: e.source.clone(),
                found: EventMatch { code: e.code.clone(), level, description: e.description.clone() },
            });
        }
        Ok(Self { nodes, sources, events, warnings })
    }

    /// What is not wrong enough to refuse the configuration but should be
    /// said (a node type without a driver), each naming the file and line.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn rules(&self, source: &str) -> Option<&SourceRules> {
        self.sources.iter().find(|(n, _)| n == source).map(|(_, r)| r)
    }

    /// Decodes one reading's text (unescaped, lossily as UTF-8).
    pub fn decode(&self, source: &str, time_ms: i64, text: &str, state: &mut SourceState) -> Outcome<'_> {
        let default = SourceRules::default();
        let rules = self.rules(source).unwrap_or(&default);
        if rules.dataflash {
            return self.decode_flash(source, time_ms, text, &mut state.flash, &mut state.receiver);
        }
        match rules.kind {
            Kind::None => Outcome::Undecoded,
            Kind::Rf12demo => match rf12::parse(text) {
                Some(line) => self.nodes.decode(&line, source, time_ms, &mut state.receiver),
                None => Outcome::Undecoded,
            },
            Kind::Json => generic::json(text, &rules.device_fields, source),
            Kind::KeyValue => generic::key_values(text, source),
            Kind::Csv => match &rules.columns {
                Some(cols) => generic::csv(text, rules.separator, &mut Some(cols.clone()), source),
                None => generic::csv(text, rules.separator, &mut state.csv_header, source),
            },
            Kind::Regex => match &rules.regex {
                Some(re) => generic::regex(text, re, source),
                None => Outcome::Undecoded,
            },
            Kind::Auto => {
                if let Some(line) = rf12::parse(text) {
                    return self.nodes.decode(&line, source, time_ms, &mut state.receiver);
                }
                if text.trim_start().starts_with('{') {
                    if let o @ (Outcome::Decoded { .. } | Outcome::Recognised { .. }) = generic::json(text, &rules.device_fields, source) {
                        return o;
                    }
                }
                if text.contains('=') {
                    return generic::key_values(text, source);
                }
                Outcome::Undecoded
            }
        }
    }

    /// A line of an RF12demo receiver with a dataflash: packets replayed
    /// from the flash are placed at the time the receiver got them, and the
    /// ones logged already are recognised, not decoded again.
    fn decode_flash(
        &self,
        source: &str,
        time_ms: i64,
        text: &str,
        flash: &mut dataflash::Flash,
        receiver: &mut ReceiverState,
    ) -> Outcome<'_> {
        if let Some(line) = dataflash::parse(text) {
            let placed = flash.line(&line, time_ms);
            return match (line, placed) {
                (dataflash::FlashLine::Replayed { header, payload, .. }, Some(placed)) => {
                    let (at, approximate) = match placed {
                        dataflash::Placed::New { utc_ms } => (utc_ms, false),
                        dataflash::Placed::Approximate { utc_ms } => (utc_ms, true),
                        dataflash::Placed::Known => return Outcome::Recognised { kind: REPLAY_KNOWN },
                        dataflash::Placed::Unplaced => return Outcome::Recognised { kind: REPLAY_UNPLACED },
                    };
                    let mut fields = Vec::with_capacity(payload.len() + 1);
                    match self.nodes.decode_packet_into(header, &payload, None, source, at, &mut fields) {
                        Some(device) => Outcome::Replayed { time_ms: at, approximate, device, fields },
                        None => Outcome::Recognised { kind: "empty packet" },
                    }
                }
                (dataflash::FlashLine::Damaged { .. }, _) => Outcome::Recognised { kind: FLASH_DAMAGED },
                _ => Outcome::Recognised { kind: "dataflash" },
            };
        }
        let line = rf12::parse(text);
        if let Some(Rf12Line::Packet { header, payload, .. }) = &line {
            flash.live(time_ms, *header, payload);
        }
        match line {
            Some(line) => self.nodes.decode(&line, source, time_ms, receiver),
            None => Outcome::Undecoded,
        }
    }

    /// Decodes like [`Decoders::decode`], appending the fields to `out`
    /// instead of a vector of their own: the indexer reuses one vector for
    /// every line, and RF12 packets are parsed without allocating.
    pub fn decode_into<'a>(
        &'a self,
        source: &str,
        time_ms: i64,
        text: &str,
        state: &mut SourceState,
        out: &mut Vec<Field<'a>>,
    ) -> Found<'a> {
        let rules = self.rules(source);
        let kind = rules.map_or(Kind::Auto, |r| r.kind);
        let flash = rules.is_some_and(|r| r.dataflash);
        if matches!(kind, Kind::Rf12demo | Kind::Auto) && !flash {
            if let Some(p) = rf12::Packet::parse(text) {
                return match self.nodes.decode_packet_into(p.header, p.payload(), p.rssi, source, time_ms, out) {
                    Some(device) => Found::Decoded { device },
                    None => Found::Recognised { kind: "empty packet" },
                };
            }
        }
        match self.decode(source, time_ms, text, state) {
            Outcome::Decoded { device, fields } => {
                out.extend(fields);
                Found::Decoded { device }
            }
            // Only a dataflash source replays, and its lines use the state (see `uses_state`).
            Outcome::Replayed { device, fields, .. } => {
                out.extend(fields);
                Found::Decoded { device }
            }
            Outcome::Recognised { kind } => Found::Recognised { kind },
            Outcome::Undecoded => Found::Undecoded,
        }
    }

    /// Whether decoding this line may read or change its source's state
    /// (an RF12demo banner, a line of a CSV source that learns its header).
    /// Every other line decodes the same whatever the state and leaves it
    /// as it was, so those can be decoded out of order, on several threads.
    pub fn uses_state(&self, source: &str, text: &str) -> bool {
        let Some(rules) = self.rules(source) else { return rf12::may_be_banner(text) };
        if rules.dataflash {
            // Live packets are remembered, to recognise them when replayed.
            return true;
        }
        match rules.kind {
            Kind::Csv => rules.columns.is_none(),
            Kind::Rf12demo | Kind::Auto => rf12::may_be_banner(text),
            Kind::None | Kind::Json | Kind::KeyValue | Kind::Regex => false,
        }
    }

    /// Whether `source` is an RF12demo receiver with a dataflash.
    pub fn dataflash(&self, source: &str) -> bool {
        self.rules(source).is_some_and(|r| r.dataflash)
    }

    /// Capture (re)connected to `source` (its `connect` line): a dataflash
    /// receiver's next replay is due.
    pub fn connected(&self, source: &str, state: &mut SourceState) {
        if self.dataflash(source) {
            state.flash.connected();
        }
    }

    /// The event patterns a line matches.
    pub fn events(&self, source: &str, text: &str) -> Vec<EventMatch> {
        self.events
            .iter()
            .filter(|e| e.source.as_deref().is_none_or(|s| s == source))
            .filter(|e| match (&e.regex, &e.substring) {
                (Some(re), _) => re.is_match(text),
                (None, Some(sub)) => text.contains(sub.as_str()),
                (None, None) => false,
            })
            .map(|e| e.found.clone())
            .collect()
    }
}

/// Capture's cut lines: `# cut source=S reason=R` comes just before a
/// reading that is a piece of a longer line (reason `overlong`: more pieces
/// of the same line follow, the last one unannounced). Pieces are kept in the
/// log but never decoded. Whoever replays a log (indexer, viewer) carries
/// one of these across lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cuts {
    /// Sources whose next reading was announced as cut, with the reason.
    pending: std::collections::BTreeMap<String, String>,
    /// Sources whose next reading continues an overlong line.
    continuing: std::collections::BTreeSet<String>,
}

impl Cuts {
    /// A `cut` metadata line.
    pub fn announce(&mut self, source: &str, reason: &str) {
        self.pending.insert(source.to_string(), reason.to_string());
    }

    /// Whether the next reading of `source` is a piece of a cut line.
    pub fn is_piece(&mut self, source: &str) -> bool {
        if self.pending.is_empty() && self.continuing.is_empty() {
            // Nearly always: no line is being cut.
            return false;
        }
        match self.pending.remove(source) {
            Some(reason) => {
                if reason == "overlong" {
                    self.continuing.insert(source.to_string());
                } else {
                    self.continuing.remove(source);
                }
                true
            }
            None => self.continuing.remove(source),
        }
    }
}

#[cfg(test)]
mod cut_tests {
    use super::Cuts;

    #[test]
    fn an_overlong_line_is_pieces_up_to_and_including_the_unannounced_last() {
        let mut c = Cuts::default();
        assert!(!c.is_piece("a"));
        c.announce("a", "overlong");
        assert!(c.is_piece("a"), "first piece");
        assert!(!c.is_piece("b"), "other sources are unaffected");
        c.announce("a", "overlong");
        assert!(c.is_piece("a"), "middle piece");
        assert!(c.is_piece("a"), "last piece, not announced");
        assert!(!c.is_piece("a"), "the next line is whole again");
        c.announce("a", "stop");
        assert!(c.is_piece("a"), "a line cut by a stop is one piece");
        assert!(!c.is_piece("a"));
    }
}
