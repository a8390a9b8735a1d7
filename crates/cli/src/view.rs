//! Showing log lines to a person: raw or decoded, aligned, and coloured
//! when the output is a terminal (or `--color always`).

use crate::args::ColorChoice;
use chrono::NaiveDate;
use decode::{Cuts, Decoders, Level, Outcome, SourceState};
use logfile::Line;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

/// Whether to colour stdout, decided once: `--color`, then `NO_COLOR`, then whether it is a terminal.
pub fn use_color(choice: ColorChoice) -> bool {
    color_for(choice, io::stdout().is_terminal())
}

/// Whether to colour a stream that `is_terminal` or not: `--color always|never`
/// decide; `auto` colours a terminal unless `NO_COLOR` is set or `TERM=dumb`.
pub fn color_for(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

/// `s` with control characters written as `\xHH`, so a decoded text value
/// cannot move the cursor or change colours.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", u32::from(c) & 0xff);
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// ANSI styles (SGR parameters).
mod sgr {
    pub const DIM: &str = "2";
    pub const BOLD: &str = "1";
    pub const SOURCE: &str = "36";
    pub const DEVICE: &str = "1;32";
    pub const META: &str = "35";
    pub const WARN: &str = "33";
    pub const ERROR: &str = "1;31";
}

/// Appends `text` to `out`, styled when colour is on.
#[derive(Clone, Copy, Debug)]
struct Paint(bool);

impl Paint {
    fn put(self, out: &mut String, style: &str, text: &str) {
        if self.0 && !text.is_empty() {
            let _ = write!(out, "\x1b[{style}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }

    /// Like `put`, padded with spaces to `width` characters (padding outside the colour).
    fn pad(self, out: &mut String, style: &str, text: &str, width: usize) {
        self.put(out, style, text);
        out.extend(std::iter::repeat_n(' ', width.saturating_sub(text.chars().count())));
    }
}

/// Metadata events worth a second look.
fn meta_style(event: &str) -> &'static str {
    match event {
        "torn" | "disk-full" | "dropped" => sgr::ERROR,
        "clock-step" | "disconnect" | "cut" | "error" => sgr::WARN,
        _ => sgr::META,
    }
}

fn level_style(level: Level) -> &'static str {
    match level {
        Level::Info => sgr::BOLD,
        Level::Warning => sgr::WARN,
        Level::Error | Level::Critical => sgr::ERROR,
    }
}

/// Prints log lines as they are, with a day header on day changes when
/// `headers` is set, and colour on metadata lines when `color` is set.
pub struct RawView {
    paint: Paint,
    headers: bool,
    day: Option<NaiveDate>,
    buf: String,
}

impl RawView {
    pub fn new(color: bool, headers: bool) -> Self {
        Self { paint: Paint(color), headers, day: None, buf: String::new() }
    }

    pub fn show(&mut self, day: NaiveDate, line: &str, out: &mut dyn Write) -> io::Result<()> {
        self.buf.clear();
        if self.headers && self.day != Some(day) {
            self.paint.put(&mut self.buf, sgr::BOLD, &format!("==> {day} <=="));
            self.buf.push('\n');
            self.day = Some(day);
        }
        match logfile::parse_line(line) {
            Ok(Line::Meta { event, .. }) => self.paint.put(&mut self.buf, meta_style(event), line),
            Ok(Line::Reading { .. }) => self.buf.push_str(line),
            Err(_) => self.paint.put(&mut self.buf, sgr::ERROR, line),
        }
        self.buf.push('\n');
        out.write_all(self.buf.as_bytes())
    }
}

/// Decodes log lines on the fly with the indexer's decoders and shows time,
/// source, device and fields with units; undecoded readings as raw text and
/// metadata lines marked with `#`.
pub struct DecodedView {
    decoders: Decoders,
    states: HashMap<String, SourceState>,
    cuts: Cuts,
    paint: Paint,
    /// Column widths: they only grow, so columns stay aligned as new names appear.
    source_width: usize,
    device_width: usize,
    day: Option<NaiveDate>,
    buf: String,
    /// The device of the last line shown, when it decoded.
    last_device: Option<String>,
}

impl DecodedView {
    pub fn new(decoders: Decoders, color: bool) -> Self {
        Self {
            decoders,
            states: HashMap::new(),
            cuts: Cuts::default(),
            paint: Paint(color),
            source_width: 6,
            device_width: 11,
            day: None,
            buf: String::new(),
            last_device: None,
        }
    }

    /// Widens the columns for lines about to be shown, so a first screenful
    /// is aligned. Decodes them with a copy of the decoder state.
    pub fn fit<'a>(&mut self, lines: impl IntoIterator<Item = (NaiveDate, &'a str)>) {
        let mut states = self.states.clone();
        let mut cuts = self.cuts.clone();
        for (day, line) in lines {
            match logfile::parse_line(line) {
                Ok(Line::Reading { time, source, text }) => {
                    self.source_width = self.source_width.max(source.chars().count());
                    if cuts.is_piece(source) {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&logfile::unescape(text)).into_owned();
                    let state = states.entry(source.to_string()).or_default();
                    if let Outcome::Decoded { device, .. } | Outcome::Replayed { device, .. } =
                        self.decoders.decode(source, logfile::time::join_millis(day, time), &text, state)
                    {
                        self.device_width = self.device_width.max(device.chars().count());
                    }
                }
                Ok(Line::Meta { event: "cut", args, .. }) => {
                    if let (Some(source), Some(reason)) = (args.get("source"), args.get("reason")) {
                        cuts.announce(source, reason);
                    }
                }
                _ => {}
            }
        }
    }

    /// The device (`SOURCE/DEVICE`) of the line [`DecodedView::show`] showed last, when it decoded.
    pub fn last_device(&self) -> Option<&str> {
        self.last_device.as_deref()
    }

    pub fn show(&mut self, day: NaiveDate, line: &str, out: &mut dyn Write) -> io::Result<()> {
        let p = self.paint;
        self.buf.clear();
        if self.day != Some(day) {
            p.put(&mut self.buf, sgr::BOLD, &format!("==> {day} <=="));
            self.buf.push('\n');
            self.day = Some(day);
        }
        let parsed = logfile::parse_line(line);
        let decoded = step(&self.decoders, &mut self.states, &mut self.cuts, day, &parsed);
        self.last_device = None;
        match parsed {
            Ok(Line::Reading { time, source, text: escaped }) => {
                let Some((text, outcome)) = decoded else { unreachable!("step decodes every reading") };
                self.source_width = self.source_width.max(source.chars().count());
                p.put(&mut self.buf, sgr::DIM, &time.to_string());
                self.buf.push_str("  ");
                p.pad(&mut self.buf, sgr::SOURCE, source, self.source_width);
                self.buf.push_str("  ");
                let events = self.decoders.events(source, &text);
                // A packet replayed from a dataflash shows like a live one, with the time it was read.
                let (replayed, outcome) = match outcome {
                    Some(Outcome::Replayed { time_ms, approximate, device, fields }) => {
                        (Some((time_ms, approximate)), Some(Outcome::Decoded { device, fields }))
                    }
                    o => (None, o),
                };
                match outcome {
                    Some(Outcome::Decoded { device, fields }) => {
                        self.device_width = self.device_width.max(device.chars().count());
                        self.last_device = Some(format!("{source}/{device}"));
                        p.pad(&mut self.buf, sgr::DEVICE, &device, self.device_width);
                        for f in fields {
                            self.buf.push_str("  ");
                            self.buf.push_str(&f.name);
                            self.buf.push(' ');
                            p.put(&mut self.buf, sgr::BOLD, &printable(&f.value.to_string()));
                            if let Some(unit) = f.unit {
                                self.buf.push(' ');
                                self.buf.push_str(&unit);
                            }
                        }
                        if let Some((t, approximate)) = replayed {
                            let at = chrono::DateTime::from_timestamp_millis(t)
                                .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                                .unwrap_or_default();
                            let about = if approximate { "about " } else { "" };
                            p.put(&mut self.buf, sgr::DIM, &format!("  (replayed: read {about}{at})"));
                        }
                    }
                    Some(Outcome::Recognised { kind }) => {
                        p.pad(&mut self.buf, sgr::DIM, &format!("({kind})"), self.device_width);
                        self.buf.push_str("  ");
                        p.put(&mut self.buf, sgr::DIM, escaped);
                    }
                    other => {
                        let what = if other.is_none() { "(cut piece)" } else { "(raw)" };
                        p.pad(&mut self.buf, sgr::DIM, what, self.device_width);
                        self.buf.push_str("  ");
                        // As written in the log: escaped, so no control byte reaches the terminal.
                        p.put(&mut self.buf, sgr::WARN, escaped);
                    }
                }
                for e in events {
                    self.buf.push_str("  ");
                    p.put(&mut self.buf, level_style(e.level), &format!("[{} {}: {}]", e.level, e.code, e.description));
                }
            }
            Ok(Line::Meta { time, event, .. }) => {
                p.put(&mut self.buf, sgr::DIM, &time.to_string());
                self.buf.push_str("  ");
                // Everything after the time: the event and its arguments, as written.
                let rest = line.get(15..).unwrap_or(event);
                p.put(&mut self.buf, meta_style(event), &format!("# {rest}"));
            }
            Err(e) => p.put(&mut self.buf, sgr::ERROR, &format!("{line}  (not a log line: {e})")),
        }
        self.buf.push('\n');
        out.write_all(self.buf.as_bytes())
    }
}

/// Carries the decoder state over one parsed line, as the indexer does:
/// a `cut` line announces a piece; a reading gives its unescaped text and
/// its outcome (`None` for a piece of a cut line, which is never decoded).
fn step<'d>(
    decoders: &'d Decoders,
    states: &mut HashMap<String, SourceState>,
    cuts: &mut Cuts,
    day: NaiveDate,
    parsed: &Result<Line<'_>, logfile::LineError>,
) -> Option<(String, Option<Outcome<'d>>)> {
    match parsed {
        Ok(Line::Reading { time, source, text }) => {
            let text = String::from_utf8_lossy(&logfile::unescape(text)).into_owned();
            if cuts.is_piece(source) {
                return Some((text, None));
            }
            let state = states.entry(source.to_string()).or_default();
            let outcome = decoders.decode(source, logfile::time::join_millis(day, *time), &text, state);
            Some((text, Some(outcome)))
        }
        Ok(Line::Meta { event: "cut", args, .. }) => {
            if let (Some(source), Some(reason)) = (args.get("source"), args.get("reason")) {
                cuts.announce(source, reason);
            }
            None
        }
        Ok(Line::Meta { event: "connect", args, .. }) => {
            if let Some(source) = args.get("source") {
                decoders.connected(source, states.entry(source.to_string()).or_default());
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2012, 11, 30).unwrap()
    }

    fn decoders() -> Decoders {
        let config: config::Config =
            toml::from_str("[rf12.nodes]\n2 = \"roomNode\"\n\n[[event]]\nmatch = \"OK 2\"\ncode = \"R2\"\nlevel = \"warning\"\ndescription = \"node two\"\n")
                .unwrap();
        Decoders::new(&config, &[]).unwrap()
    }

    fn show(view: &mut DecodedView, lines: &[&str]) -> String {
        let mut out = Vec::new();
        for l in lines {
            view.show(day(), l, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decoded_lines_show_device_fields_units_events_and_raw_text() {
        let mut view = DecodedView::new(decoders(), false);
        let got = show(
            &mut view,
            &[
                "L 00:04:53.611 usb-A40117UK OK 2 36 61 54 0",
                "L 00:04:54.000 usb-A40117UK hello\\x00there",
                "# 00:04:55.000 disconnect source=usb-A40117UK error=\"gone\"",
                "L 00:04:56.000 usb-A40117UK ?",
                "garbage",
            ],
        );
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "==> 2012-11-30 <==");
        assert!(lines[1].starts_with("00:04:53.611  usb-A40117UK  roomNode-2   light "), "{}", lines[1]);
        assert!(lines[1].contains(" °C") && lines[1].ends_with("[warning R2: node two]"), "{}", lines[1]);
        assert_eq!(lines[2], "00:04:54.000  usb-A40117UK  (raw)        hello\\x00there");
        assert_eq!(lines[3], "00:04:55.000  # disconnect source=usb-A40117UK error=\"gone\"");
        assert!(lines[5].starts_with("garbage  (not a log line"));
        assert!(!got.contains('\x1b'), "no colour unless asked");
    }

    #[test]
    fn control_characters_in_values_are_escaped() {
        assert_eq!(printable("plain °C"), "plain °C");
        assert_eq!(printable("a\x1b[31mb\n"), "a\\x1b[31mb\\x0a");
    }

    #[test]
    fn pieces_of_a_cut_line_are_never_decoded() {
        let mut view = DecodedView::new(decoders(), false);
        let got = show(
            &mut view,
            &[
                "# 00:00:01.000 cut source=s reason=overlong bytes=8",
                "L 00:00:01.000 s OK 2 1 2",
                "L 00:00:01.000 s  3 4",
                "L 00:00:02.000 s OK 2 36 61 54 0",
            ],
        );
        let lines: Vec<&str> = got.lines().collect();
        assert!(lines[2].contains("(cut piece)") && lines[3].contains("(cut piece)"), "{got}");
        assert!(lines[4].contains("roomNode-2"), "{got}");
    }

    #[test]
    fn colour_wraps_styles_and_resets() {
        let mut view = DecodedView::new(decoders(), true);
        let got = show(&mut view, &["# 00:00:01.000 clock-step delta_ms=-5000"]);
        assert!(got.contains("\x1b[33m# clock-step delta_ms=-5000\x1b[0m"), "{got:?}");
        let mut raw = RawView::new(true, false);
        let mut out = Vec::new();
        raw.show(day(), "L 00:00:01.000 s x", &mut out).unwrap();
        assert_eq!(out, b"L 00:00:01.000 s x\n");
    }
}
