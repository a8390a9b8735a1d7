//! Where things are in the configuration file, so that a message about one
//! of them (a driver blackbox does not have, a bad source name) names the
//! file and the line, as parse errors do.

use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The file a configuration came from and the lines of its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    sources: Vec<usize>,
    drivers: Vec<usize>,
    events: Vec<usize>,
    checks: Vec<usize>,
    counters: Vec<usize>,
    notify: Vec<usize>,
    nodes: BTreeMap<String, usize>,
}

/// An entry of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// The `[[source]]` with this index.
    Source(usize),
    /// The `[[driver]]` with this index.
    Driver(usize),
    /// The `[[event]]` with this index.
    Event(usize),
    /// The `[[check]]` with this index.
    Check(usize),
    /// The `[[counter]]` with this index.
    Counter(usize),
    /// The `[[notify]]` with this index.
    Notify(usize),
    /// The `[rf12.nodes]` entry with this key.
    Node(&'a str),
    /// The file as a whole.
    File,
}

/// A place in a configuration file: `blackbox.toml:12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// The parts of the file whose positions are kept; everything else is
/// ignored here (the real parse checks it).
#[derive(Deserialize)]
struct Spans {
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<IgnoredAny>>,
    #[serde(default, rename = "driver")]
    drivers: Vec<Spanned<IgnoredAny>>,
    #[serde(default, rename = "event")]
    events: Vec<Spanned<IgnoredAny>>,
    #[serde(default, rename = "check")]
    checks: Vec<Spanned<IgnoredAny>>,
    #[serde(default, rename = "counter")]
    counters: Vec<Spanned<IgnoredAny>>,
    #[serde(default, rename = "notify")]
    notify: Vec<Spanned<IgnoredAny>>,
    #[serde(default)]
    rf12: Rf12Spans,
}

#[derive(Deserialize, Default)]
struct Rf12Spans {
    #[serde(default)]
    nodes: BTreeMap<Spanned<String>, IgnoredAny>,
}

impl Origin {
    /// Finds the entries of `text`, which has already parsed as a configuration.
    pub(crate) fn find(text: &str, path: &Path) -> Self {
        let line = |offset: usize| text.get(..offset).map_or(1, |t| t.matches('\n').count() + 1);
        let lines = |v: &[Spanned<IgnoredAny>]| v.iter().map(|s| line(s.span().start)).collect();
        match toml::from_str::<Spans>(text) {
            Ok(s) => Self {
                path: path.to_path_buf(),
                sources: lines(&s.sources),
                drivers: lines(&s.drivers),
                events: lines(&s.events),
                checks: lines(&s.checks),
                counters: lines(&s.counters),
                notify: lines(&s.notify),
                nodes: s.rf12.nodes.keys().map(|k| (k.get_ref().clone(), line(k.span().start))).collect(),
            },
            // Positions are a courtesy: without them messages name the file only.
            Err(_) => Self { path: path.to_path_buf(), ..Self::default() },
        }
    }

    /// Where `place` is.
    pub fn locate(&self, place: Place<'_>) -> Location {
        let line = match place {
            Place::Source(i) => self.sources.get(i).copied(),
            Place::Driver(i) => self.drivers.get(i).copied(),
            Place::Event(i) => self.events.get(i).copied(),
            Place::Check(i) => self.checks.get(i).copied(),
            Place::Counter(i) => self.counters.get(i).copied(),
            Place::Notify(i) => self.notify.get(i).copied(),
            Place::Node(key) => self.nodes.get(key).copied(),
            Place::File => None,
        };
        Location { path: self.path.clone(), line }
    }
}
