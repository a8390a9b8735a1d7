//! Health: what is wrong at a site. Checks from the configuration
//! (`[[check]]`) judge readings and events; their results set levels, and
//! levels roll up from sensors to devices, sources and the site.
//!
//! This crate does no I/O and reads no clock: it is fed readings, events
//! and the data time (the stamps in the logs) in line order, and everything
//! it reports is a function of that feed and the configuration, so a
//! rebuild reproduces the same results and transitions, and its state
//! ([`Health`]) can be committed with the indexer's cursor. Wall time
//! enters only through [`Health::status_at`], which says what is grey or
//! black *now*.

mod check;
mod eval;
pub mod glob;

pub use check::{Check, Checks, Kind, Params};
pub use eval::{
    show_duration, CalmRun, Cause, CheckStanding, DeviceStatus, Health, Reading, ResultNow, SensorRef, State, Status, Subject, Transition,
};

use serde::{Deserialize, Serialize};

/// A level, in order: worst wins, and black is worst (DESIGN.md, Phase 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Ok,
    Warning,
    Error,
    Critical,
    /// No reading for `grey_after`.
    Grey,
    /// No reading for `black_after`.
    Black,
}

impl Level {
    pub const ALL: [Level; 6] = [Level::Ok, Level::Warning, Level::Error, Level::Critical, Level::Grey, Level::Black];

    /// The word used in configuration, output and JSON.
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
            Level::Grey => "grey",
            Level::Black => "black",
        }
    }

    /// The status colour.
    pub fn colour(self) -> &'static str {
        match self {
            Level::Ok => "green",
            Level::Warning => "yellow",
            Level::Error => "orange",
            Level::Critical => "red",
            Level::Grey => "grey",
            Level::Black => "black",
        }
    }

    /// The monitoring-plugin exit code (Nagios, Icinga): ok 0, warning 1,
    /// error and critical 2, grey and black 3 (unknown).
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Error | Level::Critical => 2,
            Level::Grey | Level::Black => 3,
        }
    }

    /// Any level by its word.
    pub fn parse(word: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.word() == word)
    }

    /// A check's level: `warning`, `error` or `critical`.
    pub fn parse_check_level(word: &str) -> Result<Level, String> {
        match Level::parse(word) {
            Some(l @ (Level::Warning | Level::Error | Level::Critical)) => Ok(l),
            _ => Err(format!("unknown level {word:?}: a check's level is warning, error or critical")),
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_words_colours_and_exit_codes() {
        let mut sorted = Level::ALL;
        sorted.sort();
        assert_eq!(sorted, Level::ALL, "worst is last");
        let table: Vec<_> = Level::ALL.iter().map(|l| (l.word(), l.colour(), l.exit_code())).collect();
        assert_eq!(
            table,
            [
                ("ok", "green", 0),
                ("warning", "yellow", 1),
                ("error", "orange", 2),
                ("critical", "red", 2),
                ("grey", "grey", 3),
                ("black", "black", 3)
            ]
        );
        for l in Level::ALL {
            assert_eq!(Level::parse(l.word()), Some(l));
        }
        assert!(Level::parse_check_level("grey").is_err());
        assert_eq!(Level::parse_check_level("error"), Ok(Level::Error));
    }
}
