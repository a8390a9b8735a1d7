//! One line of a daily log file: a reading (`L`) or a metadata line (`#`).

use crate::escape::escape_into;
use crate::time::TimeOfDay;
use std::fmt;

/// A parsed line, borrowing from the text it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `L HH:MM:SS.mmm SOURCE TEXT`: one line a device sent. `text` is still
    /// escaped; [`crate::unescape`] gives the device's bytes.
    Reading { time: TimeOfDay, source: &'a str, text: &'a str },
    /// `# HH:MM:SS.mmm EVENT ARGS`: something capture did or saw.
    Meta { time: TimeOfDay, event: &'a str, args: MetaArgs<'a> },
}

impl Line<'_> {
    /// The time of day written on the line.
    pub fn time(&self) -> TimeOfDay {
        match self {
            Line::Reading { time, .. } | Line::Meta { time, .. } => *time,
        }
    }
}

/// Why a line could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line is neither a reading (L) nor a metadata line (#)")]
    UnknownKind,
    #[error("bad time of day {0:?}, expected HH:MM:SS.mmm")]
    BadTime(String),
    #[error("reading has no source name")]
    NoSource,
    #[error("metadata line has no event name")]
    NoEvent,
}

/// Parses one line without its terminator.
pub fn parse_line(line: &str) -> Result<Line<'_>, LineError> {
    let (kind, rest) = match line.as_bytes().first() {
        Some(b'L') => ('L', &line[1..]),
        Some(b'#') => ('#', &line[1..]),
        _ => return Err(LineError::UnknownKind),
    };
    let rest = rest.strip_prefix(' ').ok_or(LineError::UnknownKind)?;
    let time_str = rest.get(..12).unwrap_or(rest);
    let time = TimeOfDay::parse(time_str).ok_or_else(|| LineError::BadTime(time_str.to_string()))?;
    let rest = &rest[12..];
    let rest = match rest.strip_prefix(' ') {
        Some(r) => r,
        None if rest.is_empty() => rest,
        None => return Err(LineError::BadTime(line[2..].chars().take(20).collect())),
    };
    let (name, tail) = match memchr::memchr(b' ', rest.as_bytes()) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if kind == 'L' {
        if name.is_empty() {
            return Err(LineError::NoSource);
        }
        Ok(Line::Reading { time, source: name, text: tail })
    } else {
        if name.is_empty() {
            return Err(LineError::NoEvent);
        }
        Ok(Line::Meta { time, event: name, args: MetaArgs(tail) })
    }
}

/// The arguments of a metadata line: positional words and `key=value`
/// pairs separated by single spaces. A `text=` pair is always last and its
/// value runs to the end of the line (it may contain spaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArgs<'a>(pub &'a str);

impl<'a> MetaArgs<'a> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let mut rest = self.0;
        while !rest.is_empty() {
            if let Some(v) = rest.strip_prefix("text=") {
                return (key == "text").then_some(v);
            }
            let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((k, v)) = word.split_once('=') {
                if k == key {
                    return Some(v);
                }
            }
            rest = tail;
        }
        None
    }

    /// The n-th word (positional arguments such as `previous NAME SIZE`).
    pub fn word(&self, n: usize) -> Option<&'a str> {
        self.0.split(' ').nth(n).filter(|w| !w.is_empty())
    }
}

impl fmt::Display for MetaArgs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Appends `L HH:MM:SS.mmm SOURCE TEXT\n` to `out`, escaping the text.
pub fn format_reading(out: &mut String, time: TimeOfDay, source: &str, text: &[u8]) {
    out.push_str("L ");
    time.write_to(out);
    out.push(' ');
    out.push_str(source);
    out.push(' ');
    escape_into(text, out);
    out.push('\n');
}

/// Appends `# HH:MM:SS.mmm EVENT ARGS\n` to `out`. `args` must already be
/// one line (use [`MetaBuilder`] to build it safely).
pub fn format_meta(out: &mut String, time: TimeOfDay, event: &str, args: &str) {
    out.push_str("# ");
    time.write_to(out);
    out.push(' ');
    out.push_str(event);
    if !args.is_empty() {
        out.push(' ');
        out.push_str(args);
    }
    out.push('\n');
}

/// Builds the arguments of a metadata line, escaping values so that the line
/// stays one line and each value stays one word.
#[derive(Debug, Default, Clone)]
pub struct MetaBuilder(String);

impl MetaBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A `key=value` pair (spaces and controls in the value escaped).
    pub fn kv(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.sep();
        self.0.push_str(key);
        self.0.push('=');
        self.push_word(&value.to_string());
        self
    }

    /// The final `text=` pair, whose value keeps its spaces.
    pub fn text(mut self, bytes: &[u8]) -> String {
        self.sep();
        self.0.push_str("text=");
        escape_into(bytes, &mut self.0);
        self.0
    }

    pub fn build(self) -> String {
        self.0
    }

    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
    }

    fn push_word(&mut self, w: &str) {
        let mut escaped = String::new();
        escape_into(w.as_bytes(), &mut escaped);
        self.0.push_str(&escaped.replace(' ', "\\x20"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s).unwrap()
    }

    #[test]
    fn readings_parse() {
        assert_eq!(
            parse_line("L 00:00:00.062 usb-A40117UK OK 19 96 12 11 30 1 0 0"),
            Ok(Line::Reading { time: t("00:00:00.062"), source: "usb-A40117UK", text: "OK 19 96 12 11 30 1 0 0" })
        );
        // Text keeps leading and trailing spaces; an empty text is allowed.
        assert_eq!(
            parse_line("L 02:21:24.042 usb-A  -> ack "),
            Ok(Line::Reading { time: t("02:21:24.042"), source: "usb-A", text: " -> ack " })
        );
        assert_eq!(parse_line("L 02:21:24.042 usb-A"), Ok(Line::Reading { time: t("02:21:24.042"), source: "usb-A", text: "" }));
    }

    #[test]
    fn meta_lines_parse() {
        let line = parse_line("# 00:00:00.003 previous 20261121.txt 1928432").unwrap();
        let Line::Meta { event, args, .. } = line else { panic!("{line:?}") };
        assert_eq!(event, "previous");
        assert_eq!(args.word(0), Some("20261121.txt"));
        assert_eq!(args.word(1), Some("1928432"));
        let line = parse_line("# 10:00:00.000 torn bytes=5 text=L 10:0 x").unwrap();
        let Line::Meta { args, .. } = line else { panic!() };
        assert_eq!(args.get("bytes"), Some("5"));
        assert_eq!(args.get("text"), Some("L 10:0 x"));
        assert_eq!(args.get("missing"), None);
    }

    #[test]
    fn bad_lines_are_errors() {
        assert_eq!(parse_line(""), Err(LineError::UnknownKind));
        assert_eq!(parse_line("X 00:00:00.000 a b"), Err(LineError::UnknownKind));
        assert!(matches!(parse_line("L 0:00:00.000 a b"), Err(LineError::BadTime(_))));
        assert!(matches!(parse_line("L 00:00:00.0000 a"), Err(LineError::BadTime(_))));
        assert_eq!(parse_line("L 00:00:00.000 "), Err(LineError::NoSource));
        assert_eq!(parse_line("# 00:00:00.000"), Err(LineError::NoEvent));
    }

    #[test]
    fn formatting_round_trips() {
        let mut s = String::new();
        format_reading(&mut s, t("23:59:59.999"), "stdin", b"a\0b\\");
        assert_eq!(s, "L 23:59:59.999 stdin a\\x00b\\\\\n");
        let mut m = String::new();
        let args = MetaBuilder::new().kv("source", "usb-A").kv("path", "/dev/my port").text(b"gone away\n");
        format_meta(&mut m, t("01:02:03.004"), "disconnect", &args);
        assert_eq!(m, "# 01:02:03.004 disconnect source=usb-A path=/dev/my\\x20port text=gone away\\x0A\n");
        let Line::Meta { args, .. } = parse_line(m.trim_end_matches('\n')).unwrap() else { panic!() };
        assert_eq!(args.get("path").map(crate::unescape), Some(b"/dev/my port".to_vec()));
        assert_eq!(args.get("text"), Some("gone away\\x0A"));
    }
}
