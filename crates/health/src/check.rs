//! `[[check]]` tables compiled into [`Checks`]: each kind's parameters
//! checked (which keys it takes, which it needs, limits in order), errors
//! naming the file and line of the check.

use crate::glob::Glob;
use crate::Level;
use config::{CheckConfig, CheckParams, Config, Place};
use std::time::Duration;

/// Default `grey_after`: a day without a reading.
pub const GREY_AFTER_MS: i64 = 24 * 3_600_000;
/// Default `clear_for`: a failing value must pass for five minutes to
/// clear, so a value wobbling at a limit (a humidity between 69 and 70 %)
/// does not flap on every reading.
pub const CLEAR_FOR_MS: i64 = 5 * 60_000;
/// Default `black_after`: two days.
pub const BLACK_AFTER_MS: i64 = 48 * 3_600_000;

/// Every check of the configuration, and when devices turn grey and black.
#[derive(Debug, Clone)]
pub struct Checks {
    pub checks: Vec<Check>,
    pub grey_after_ms: i64,
    pub black_after_ms: i64,
    /// Per source: its own `grey_after` and `black_after`, when set.
    pub sources: Vec<(String, i64, i64)>,
}

/// One check: one test with one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: Kind,
    pub level: Level,
    /// What it applies to: sensor ids (`SOURCE/DEVICE/FIELD`), or for
    /// `event` checks source names.
    pub sensors: Vec<Glob>,
    /// How long the condition must hold before the result fails (0: at once).
    pub for_ms: i64,
    /// How long a failing range, rate, agree or anomaly result must pass
    /// before it clears (stale and event results clear at once).
    pub clear_for_ms: i64,
    /// A template with `{value}`, `{sensor}`, `{limit}` and `{check}`.
    pub message: Option<String>,
    pub params: Params,
    /// Other levels and parameters for some devices; the first that matches applies.
    pub overrides: Vec<Override>,
}

/// The kinds of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Range,
    Stale,
    Rate,
    Agree,
    Anomaly,
    Event,
}

impl Kind {
    fn parse(word: &str) -> Result<Kind, String> {
        Ok(match word {
            "range" => Kind::Range,
            "stale" => Kind::Stale,
            "rate" => Kind::Rate,
            "agree" => Kind::Agree,
            "anomaly" => Kind::Anomaly,
            "event" => Kind::Event,
            _ => return Err(format!("unknown kind {word:?}: the kinds are range, stale, rate, agree, anomaly and event")),
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            Kind::Range => "range",
            Kind::Stale => "stale",
            Kind::Rate => "rate",
            Kind::Agree => "agree",
            Kind::Anomaly => "anomaly",
            Kind::Event => "event",
        }
    }

    /// The parameter keys the kind takes.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Range => &["min", "max", "hysteresis"],
            Kind::Stale => &["after"],
            Kind::Rate => &["max_change", "per"],
            Kind::Agree => &["max_spread"],
            Kind::Anomaly => &["sigma", "days"],
            Kind::Event => &["codes", "levels", "hold", "clear"],
        }
    }
}

/// A check's parameters, checked for its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    /// A value below `min` or above `max` fails; a failing value clears
    /// once back inside the limit by `hysteresis`.
    Range { min: Option<f64>, max: Option<f64>, hysteresis: f64 },
    /// No reading for `after_ms` (data time).
    Stale { after_ms: i64 },
    /// A change between consecutive readings faster than `max_change` per `per_ms`.
    Rate { max_change: f64, per_ms: i64 },
    /// The latest values of the sensors spread by more than `max_spread`.
    Agree { max_spread: f64 },
    /// More than `sigma` standard deviations from the mean of the same hour
    /// of day over the previous `days` days.
    Anomaly { sigma: f64, days: u32 },
    /// An event with one of `codes`, or at one of `levels`, within `hold_ms`,
    /// until an event with one of `clear`.
    Event { codes: Vec<String>, levels: Vec<String>, hold_ms: i64, clear: Vec<String> },
}

/// `[[check.override]]`, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub devices: Vec<Glob>,
    pub level: Level,
    pub params: Params,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Which keys of `p` are given, by name.
fn given(p: &CheckParams) -> Vec<&'static str> {
    let all: [(&str, bool); 12] = [
        ("min", p.min.is_some()),
        ("max", p.max.is_some()),
        ("hysteresis", p.hysteresis.is_some()),
        ("after", p.after.is_some()),
        ("max_change", p.max_change.is_some()),
        ("per", p.per.is_some()),
        ("max_spread", p.max_spread.is_some()),
        ("sigma", p.sigma.is_some()),
        ("days", p.days.is_some()),
        ("codes", p.codes.is_some()),
        ("levels", p.levels.is_some()),
        ("hold", p.hold.is_some()),
    ];
    let mut out: Vec<&str> = all.into_iter().filter(|(_, g)| *g).map(|(k, _)| k).collect();
    if p.clear.is_some() {
        out.push("clear");
    }
    out
}

/// `later`'s keys over `base`'s.
fn overlay(base: &CheckParams, later: &CheckParams) -> CheckParams {
    CheckParams {
        min: later.min.or(base.min),
        max: later.max.or(base.max),
        hysteresis: later.hysteresis.or(base.hysteresis),
        after: later.after.or(base.after),
        max_change: later.max_change.or(base.max_change),
        per: later.per.or(base.per),
        max_spread: later.max_spread.or(base.max_spread),
        sigma: later.sigma.or(base.sigma),
        days: later.days.or(base.days),
        codes: later.codes.clone().or_else(|| base.codes.clone()),
        levels: later.levels.clone().or_else(|| base.levels.clone()),
        hold: later.hold.or(base.hold),
        clear: later.clear.clone().or_else(|| base.clear.clone()),
    }
}

fn finite(key: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{key} must be a number"))
    }
}

fn positive(key: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{key} must be more than 0"))
    }
}

/// The parameters of a kind, each key checked.
fn kind_params(kind: Kind, p: &CheckParams) -> Result<Params, String> {
    let wrong: Vec<&str> = given(p).into_iter().filter(|k| !kind.keys().contains(k)).collect();
    if !wrong.is_empty() {
        return Err(format!("a {} check does not take {}; it takes {}", kind.word(), wrong.join(", "), kind.keys().join(", ")));
    }
    let need = |key: &str, v: Option<f64>| v.ok_or_else(|| format!("a {} check needs {key}", kind.word()));
    Ok(match kind {
        Kind::Range => {
            let (min, max) = (p.min.map(|v| finite("min", v)).transpose()?, p.max.map(|v| finite("max", v)).transpose()?);
            match (min, max) {
                (None, None) => return Err("a range check needs min, max or both".into()),
                (Some(lo), Some(hi)) if lo > hi => return Err(format!("min ({lo}) is above max ({hi})")),
                _ => {}
            }
            let hysteresis = match p.hysteresis {
                Some(h) if !(h.is_finite() && h >= 0.0) => return Err("hysteresis must be 0 or more".into()),
                Some(h) => h,
                // 1 % of the largest limit: a value wobbling at the limit does not flap.
                None => min.into_iter().chain(max).map(|l| l.abs() / 100.0).fold(0.0, f64::max),
            };
            Params::Range { min, max, hysteresis }
        }
        Kind::Stale => {
            let after = p.after.ok_or("a stale check needs after (such as \"15m\")")?;
            let after_ms = ms(after.0);
            if after_ms <= 0 {
                return Err("after must be more than 0".into());
            }
            Params::Stale { after_ms }
        }
        Kind::Rate => {
            let max_change = positive("max_change", need("max_change", p.max_change)?)?;
            let per_ms = p.per.map_or(3_600_000, |d| ms(d.0));
            if per_ms <= 0 {
                return Err("per must be more than 0".into());
            }
            Params::Rate { max_change, per_ms }
        }
        Kind::Agree => {
            let max_spread = need("max_spread", p.max_spread)?;
            if !(max_spread.is_finite() && max_spread >= 0.0) {
                return Err("max_spread must be 0 or more".into());
            }
            Params::Agree { max_spread }
        }
        Kind::Anomaly => {
            let sigma = positive("sigma", p.sigma.unwrap_or(3.0))?;
            let days = p.days.unwrap_or(7);
            if !(2..=366).contains(&days) {
                return Err("days must be from 2 to 366".into());
            }
            Params::Anomaly { sigma, days }
        }
        Kind::Event => {
            let codes = p.codes.clone().unwrap_or_default();
            let levels = p.levels.clone().unwrap_or_default();
            if codes.is_empty() && levels.is_empty() {
                return Err("an event check needs codes or levels (of [[event]] patterns)".into());
            }
            for l in &levels {
                if !["info", "warning", "error", "critical"].contains(&l.as_str()) {
                    return Err(format!("unknown event level {l:?}: event levels are info, warning, error and critical"));
                }
            }
            let hold_ms = p.hold.map_or(24 * 3_600_000, |d| ms(d.0));
            if hold_ms <= 0 {
                return Err("hold must be more than 0".into());
            }
            Params::Event { codes, levels, hold_ms, clear: p.clear.clone().unwrap_or_default() }
        }
    })
}

fn globs(list: &[String], what: &str) -> Result<Vec<Glob>, String> {
    list.iter().map(|g| Glob::new(g).map_err(|e| format!("{what} {g:?}: {e}"))).collect()
}

impl Check {
    fn compile(c: &CheckConfig) -> Result<Check, String> {
        if c.name.trim().is_empty() {
            return Err("a check needs a name".into());
        }
        let kind = Kind::parse(&c.kind)?;
        let level = c.level.as_deref().map_or(Ok(Level::Warning), Level::parse_check_level)?;
        if c.sensors.is_empty() && kind != Kind::Event {
            return Err(format!("check {:?} needs sensors (globs such as \"*/roomNode-*/temp\")", c.name));
        }
        if kind == Kind::Agree && c.sensors.len() < 2 {
            return Err(format!("agree check {:?} needs two or more sensors", c.name));
        }
        let sensors = if c.sensors.is_empty() { vec![Glob::new("*")?] } else { globs(&c.sensors, "sensor glob")? };
        let params = kind_params(kind, &c.params).map_err(|e| format!("check {:?}: {e}", c.name))?;
        if let Some(m) = &c.message {
            template_ok(m).map_err(|e| format!("check {:?}: message: {e}", c.name))?;
        }
        let clear_for_ms = match (kind, c.clear_for) {
            (Kind::Stale | Kind::Event, Some(_)) => {
                return Err(format!(
                    "check {:?}: clear_for applies to range, rate, agree and anomaly checks (a {} result clears at once)",
                    c.name,
                    kind.word()
                ))
            }
            (Kind::Stale | Kind::Event, None) => 0,
            (_, d) => d.map_or(CLEAR_FOR_MS, |d| ms(d.0)),
        };
        let mut overrides = Vec::new();
        for (i, o) in c.overrides.iter().enumerate() {
            let at = |e: String| format!("check {:?}, override {}: {e}", c.name, i + 1);
            if o.devices.is_empty() {
                return Err(at("needs devices (globs over SOURCE/DEVICE)".into()));
            }
            let level = o.level.as_deref().map_or(Ok(level), Level::parse_check_level).map_err(at)?;
            let params = kind_params(kind, &overlay(&c.params, &o.params)).map_err(at)?;
            overrides.push(Override { devices: globs(&o.devices, "device glob").map_err(at)?, level, params });
        }
        Ok(Check {
            name: c.name.clone(),
            kind,
            level,
            sensors,
            for_ms: c.for_.map_or(0, |d| ms(d.0)),
            clear_for_ms,
            message: c.message.clone(),
            params,
            overrides,
        })
    }

    /// Whether the check applies to `id` (a sensor id, or a source for `event` checks).
    pub fn applies_to(&self, id: &str) -> bool {
        self.sensors.iter().any(|g| g.matches(id))
    }

    /// The level and parameters for a device (`SOURCE/DEVICE`).
    pub fn for_device(&self, device: &str) -> (Level, &Params) {
        match self.overrides.iter().find(|o| o.devices.iter().any(|g| g.matches(device))) {
            Some(o) => (o.level, &o.params),
            None => (self.level, &self.params),
        }
    }
}

const PLACEHOLDERS: [&str; 4] = ["value", "sensor", "limit", "check"];

fn template_ok(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or("a { without its }")? + open;
        let name = &rest[open + 1..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!("unknown placeholder {{{name}}}: the placeholders are {{value}}, {{sensor}}, {{limit}} and {{check}}"));
        }
        rest = &rest[close + 1..];
    }
    Ok(())
}

/// Fills a message template.
pub(crate) fn fill(template: &str, value: &str, sensor: &str, limit: &str, check: &str) -> String {
    template.replace("{value}", value).replace("{sensor}", sensor).replace("{limit}", limit).replace("{check}", check)
}

impl Default for Checks {
    /// No checks; devices turn grey after a day without a reading and black after two.
    fn default() -> Checks {
        Checks { checks: Vec::new(), grey_after_ms: GREY_AFTER_MS, black_after_ms: BLACK_AFTER_MS, sources: Vec::new() }
    }
}

impl Checks {
    /// Compiles the configuration's checks; `sources` are the names of its
    /// `[[source]]` tables, in order. Errors name the file and line.
    pub fn new(config: &Config, sources: &[String]) -> Result<Checks, String> {
        let mut checks: Vec<Check> = Vec::new();
        for (i, c) in config.checks.iter().enumerate() {
            let check = Check::compile(c).map_err(|e| config.at(Place::Check(i), e))?;
            if checks.iter().any(|o| o.name == check.name) {
                return Err(config.at(Place::Check(i), format!("a second check named {:?}: names must differ", check.name)));
            }
            checks.push(check);
        }
        let grey_after_ms = config.status.grey_after.map_or(GREY_AFTER_MS, |d| ms(d.0));
        let black_after_ms = config.status.black_after.map_or(BLACK_AFTER_MS, |d| ms(d.0));
        if grey_after_ms <= 0 || black_after_ms < grey_after_ms {
            return Err(config.at(Place::File, "[status] grey_after must be more than 0 and black_after at least grey_after"));
        }
        let mut per_source = Vec::new();
        for (i, (s, name)) in config.sources.iter().zip(sources).enumerate() {
            if s.grey_after.is_none() && s.black_after.is_none() {
                continue;
            }
            let grey = s.grey_after.map_or(grey_after_ms, |d| ms(d.0));
            let black = s.black_after.map_or(black_after_ms.max(grey), |d| ms(d.0));
            if grey <= 0 || black < grey {
                return Err(config.at(Place::Source(i), "grey_after must be more than 0 and black_after at least grey_after"));
            }
            per_source.push((name.clone(), grey, black));
        }
        Ok(Checks { checks, grey_after_ms, black_after_ms, sources: per_source })
    }

    /// When a device of `source` turns grey and black.
    pub fn silence_limits(&self, source: &str) -> (i64, i64) {
        match self.sources.iter().find(|(s, ..)| s == source) {
            Some(&(_, grey, black)) => (grey, black),
            None => (self.grey_after_ms, self.black_after_ms),
        }
    }

    /// Warnings for globs that match none of `known` (sensor ids, or sources
    /// for event checks): devices may appear later, so not errors.
    pub fn unmatched<'a>(&self, config: &Config, sensors: &[&'a str], sources: &[&'a str]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in self.checks.iter().enumerate() {
            let known = if c.kind == Kind::Event { sources } else { sensors };
            for g in &c.sensors {
                if !known.iter().any(|s| g.matches(s)) {
                    let what = if c.kind == Kind::Event { "source" } else { "sensor" };
                    out.push(config.at(Place::Check(i), format!("check {:?}: {:?} matches no {what} yet", c.name, g.as_str())));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn compile(text: &str) -> Result<Checks, String> {
        let config = Config::parse(text, Path::new("site.toml")).map_err(|e| e.to_string())?;
        Checks::new(&config, &[])
    }

    #[test]
    fn every_kind_compiles_with_its_parameters() {
        let c = compile(
            r#"
            [[check]]
            name = "warm"
            sensors = ["*/roomNode-*/temp"]
            kind = "range"
            max = 28
            [[check]]
            name = "silent"
            sensors = ["**"]
            kind = "stale"
            after = "15m"
            level = "error"
            for = "1m"
            [[check]]
            name = "jump"
            sensors = ["*/*/temp"]
            kind = "rate"
            max_change = 5
            per = "10m"
            [[check]]
            name = "twins"
            sensors = ["a/x/temp", "b/x/temp"]
            kind = "agree"
            max_spread = 1.5
            [[check]]
            name = "odd"
            sensors = ["*/*/temp"]
            kind = "anomaly"
            [[check]]
            name = "ups fault"
            kind = "event"
            codes = ["101"]
            level = "critical"
            clear = ["100"]
            "#,
        )
        .unwrap();
        let p: Vec<_> = c.checks.iter().map(|c| c.params.clone()).collect();
        assert_eq!(p[0], Params::Range { min: None, max: Some(28.0), hysteresis: 0.28 });
        assert_eq!(p[1], Params::Stale { after_ms: 900_000 });
        assert_eq!((c.checks[1].level, c.checks[1].for_ms), (Level::Error, 60_000));
        assert_eq!(p[2], Params::Rate { max_change: 5.0, per_ms: 600_000 });
        assert_eq!(p[3], Params::Agree { max_spread: 1.5 });
        assert_eq!(p[4], Params::Anomaly { sigma: 3.0, days: 7 });
        assert_eq!(p[5], Params::Event { codes: vec!["101".into()], levels: vec![], hold_ms: 86_400_000, clear: vec!["100".into()] });
        assert_eq!(c.checks[5].level, Level::Critical);
        assert!(c.checks[5].applies_to("ups"), "an event check without sensors applies to every source");
        assert_eq!((c.grey_after_ms, c.black_after_ms), (GREY_AFTER_MS, BLACK_AFTER_MS));
    }

    #[test]
    fn errors_name_the_file_the_line_and_what_is_wrong() {
        let cases = [
            ("kind = \"ranges\"\nmax = 1", "site.toml:2: unknown kind \"ranges\""),
            ("kind = \"range\"\nmin = 5\nmax = 1", "site.toml:2: check \"c\": min (5) is above max (1)"),
            ("kind = \"range\"", "site.toml:2: check \"c\": a range check needs min, max or both"),
            ("kind = \"range\"\nmax = 1\nafter = \"5m\"", "does not take after; it takes min, max, hysteresis"),
            ("kind = \"stale\"", "a stale check needs after"),
            ("kind = \"rate\"\nmax_change = -1", "max_change must be more than 0"),
            ("kind = \"range\"\nmax = 1\nlevel = \"grey\"", "a check's level is warning, error or critical"),
            ("kind = \"range\"\nmax = 1\nmessage = \"{valu}\"", "unknown placeholder {valu}"),
            ("kind = \"event\"", "needs codes or levels"),
            ("kind = \"anomaly\"\ndays = 1", "days must be from 2 to 366"),
            ("kind = \"range\"\nmax = 1\n[[check.override]]\ndevices = [\"a/b\"]\nmin = 3", "override 1: min (3) is above max (1)"),
        ];
        for (body, want) in cases {
            let text = format!("\n[[check]]\nname = \"c\"\nsensors = [\"*/*/t\"]\n{body}\n");
            let err = compile(&text).unwrap_err();
            assert!(err.contains(want), "{body:?}: {err}");
            assert!(err.starts_with("site.toml:2"), "{body:?}: {err}");
        }
        let err = compile("[[check]]\nname = \"c\"\nsensors = [\"a\"]\nkind = \"range\"\nmaxx = 3\n").unwrap_err();
        assert!(err.contains("site.toml") && err.contains("maxx"), "{err}");
        let err = compile("[[check]]\nname = \"c\"\nsensors = [\"a\"]\nkind = \"agree\"\nmax_spread = 1\n").unwrap_err();
        assert!(err.contains("two or more sensors"), "{err}");
        let two = "[[check]]\nname = \"c\"\nsensors = [\"a\"]\nkind = \"range\"\nmax = 1\n";
        let err = compile(&format!("{two}{two}")).unwrap_err();
        assert!(err.starts_with("site.toml:6: a second check named \"c\""), "{err}");
        let err = compile("[status]\ngrey_after = \"2d\"\nblack_after = \"1d\"\n").unwrap_err();
        assert!(err.contains("black_after at least grey_after"), "{err}");
    }

    #[test]
    fn overrides_change_the_level_and_parameters_of_some_devices() {
        let c = compile(
            r#"
            [[check]]
            name = "warm"
            sensors = ["*/*/temp"]
            kind = "range"
            max = 28
            hysteresis = 0.5
            [[check.override]]
            devices = ["usb-A/roomNode-5"]
            max = 40
            level = "error"
            "#,
        )
        .unwrap();
        let w = &c.checks[0];
        assert_eq!(w.for_device("usb-A/roomNode-4"), (Level::Warning, &Params::Range { min: None, max: Some(28.0), hysteresis: 0.5 }));
        assert_eq!(w.for_device("usb-A/roomNode-5"), (Level::Error, &Params::Range { min: None, max: Some(40.0), hysteresis: 0.5 }));
    }

    #[test]
    fn silence_limits_per_source_and_unmatched_globs() {
        let text = r#"
            [status]
            grey_after = "2h"
            [[source]]
            name = "ups"
            stdin = true
            grey_after = "10m"
            [[check]]
            name = "warm"
            sensors = ["*/*/temp", "nothing/*/here"]
            kind = "range"
            max = 28
        "#;
        let config = Config::parse(text, Path::new("site.toml")).unwrap();
        let c = Checks::new(&config, &["ups".into()]).unwrap();
        assert_eq!(c.silence_limits("ups"), (600_000, BLACK_AFTER_MS));
        assert_eq!(c.silence_limits("usb-A"), (7_200_000, BLACK_AFTER_MS));
        let warnings = c.unmatched(&config, &["usb-A/roomNode-5/temp"], &["usb-A"]);
        assert_eq!(warnings, ["site.toml:8: check \"warm\": \"nothing/*/here\" matches no sensor yet"]);
    }
}
