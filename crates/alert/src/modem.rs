//! Sending an SMS through a GSM modem on a serial port.
//!
//! [`send`] opens the port only while it sends and, for each number, has the
//! text-mode dialogue of 3GPP TS 27.005: `AT` (repeated to wake a sleeping
//! modem), `AT+CMGF=1`, `AT+CMGS="<number>"`, the `> ` prompt, the text and
//! Ctrl-Z. Only `+CMGS: <reference>` followed by `OK` counts as sent; every
//! other outcome is a [`ModemError`] naming the port, the number and what the
//! modem said. The modem's output is split by `Lines`, which tolerates echo,
//! blank lines and unsolicited result codes (`RING`, `+CMTI: ...`) and keeps
//! at most a few kilobytes of it, since a device is untrusted.
//!
//! [`sms_text`] fits a message into one SMS of the GSM 7-bit default alphabet
//! and [`valid_number`] checks a recipient.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serialport::{ClearBuffer, SerialPort};
use thiserror::Error;

/// Ends the text of a message.
const CTRL_Z: u8 = 0x1A;
/// Cancels a message.
const ESC: u8 = 0x1B;
/// How many times `AT` is written to wake a sleeping modem.
const WAKE_TRIES: u32 = 3;
/// The longest line kept from the modem, room for the echo of a whole SMS
/// (160 characters of up to 3 bytes); the rest of a longer line is dropped.
const MAX_LINE: usize = 512;
/// The most of the modem's answer to one command kept for an error message.
const MAX_ANSWER: usize = 1024;
/// Units of the GSM 7-bit default alphabet in one SMS.
const SMS_UNITS: usize = 160;
const ELLIPSIS: &str = "...";

/// Where SMS notifications go: a GSM modem on a serial port and the numbers
/// it texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemTarget {
    /// The serial port, such as `/dev/ttyUSB0`.
    pub port: String,
    /// The port's speed in baud.
    pub baud: u32,
    /// The numbers to text, in order; see [`valid_number`].
    pub to: Vec<String>,
}

/// Why a message was not sent.
///
/// The numbers of [`ModemTarget::to`] before the one an error names were sent.
#[derive(Debug, Error)]
pub enum ModemError {
    /// A recipient is not a phone number; nothing was sent to anyone.
    #[error("modem {port}: {number:?} is not a phone number")]
    InvalidNumber { port: String, number: String },
    /// The serial port could not be opened.
    #[error("modem {port}: cannot open the serial port: {source}")]
    Open {
        port: String,
        #[source]
        source: serialport::Error,
    },
    /// Reading from or writing to the port failed.
    #[error("modem {port}: I/O error while texting {number}: {source}")]
    Io {
        port: String,
        number: String,
        #[source]
        source: io::Error,
    },
    /// No final result code came for `command` within `timeout`.
    #[error("modem {port}: no answer to {command} within {timeout:?} while texting {number}; it said {}", said(.answer))]
    Timeout { port: String, number: String, command: &'static str, timeout: Duration, answer: String },
    /// The modem answered `ERROR` (or `+CME ERROR`, or `OK` where it must
    /// not) to `command`.
    #[error("modem {port}: {command} failed while texting {number}; it said {}", said(.answer))]
    Refused { port: String, number: String, command: &'static str, answer: String },
    /// The `> ` prompt for the text did not come after `AT+CMGS`.
    #[error("modem {port}: no \"> \" prompt after AT+CMGS for {number} within {timeout:?}; it said {}", said(.answer))]
    NoPrompt { port: String, number: String, timeout: Duration, answer: String },
    /// The modem or the network refused the message: `+CMS ERROR: <code>`
    /// (500 is "unknown error", 330 "SMSC address unknown", ...).
    #[error("modem {port}: the message to {number} failed with +CMS ERROR: {code}")]
    CmsError { port: String, number: String, code: u16 },
    /// The modem answered `OK` to the message without a `+CMGS` reference,
    /// as some broken modems do: it was not sent.
    #[error("modem {port}: the message to {number} got OK without +CMGS, so it was not sent; it said {}", said(.answer))]
    NoReference { port: String, number: String, answer: String },
}

/// The modem's answer for an error message, quoted and escaped.
fn said(answer: &str) -> String {
    if answer.is_empty() {
        "nothing".to_string()
    } else {
        format!("{answer:?}")
    }
}

/// Sends `text`, made to fit with [`sms_text`], to each number of `target` in
/// turn and returns the message references the modem gave, in order.
///
/// The port is opened for the time of sending only. `timeout` bounds each
/// wait for an answer: the answer to the message can take up to a minute on
/// real networks. The wake-up `AT` is written up to three times within one
/// `timeout`. An error stops the sending; the numbers before the one it names
/// were sent. With no numbers, nothing is done.
pub fn send(target: &ModemTarget, text: &str, timeout: Duration) -> Result<Vec<u32>, ModemError> {
    let port = target.port.as_str();
    if let Some(number) = target.to.iter().find(|n| !valid_number(n)) {
        return Err(ModemError::InvalidNumber { port: port.to_string(), number: number.clone() });
    }
    if target.to.is_empty() {
        return Ok(Vec::new());
    }
    let mut wire =
        serialport::new(port, target.baud).timeout(timeout).open().map_err(|source| ModemError::Open { port: port.to_string(), source })?;
    // What the modem said before (a late OK, RING) must not be taken for an
    // answer. Flushing is best-effort: the parser copes with such lines too.
    let _ = wire.clear(ClearBuffer::Input);
    let mut session = Session { wire: &mut wire, port, timeout, lines: Lines::default(), answer: String::new() };
    let text = sms_text(text);
    target.to.iter().map(|number| session.send_one(number, &text)).collect()
}

/// Whether `s` is a phone number as [`send`] takes it: an optional `+` and 3
/// to 15 digits (E.164 allows 15), without spaces.
pub fn valid_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The printable characters of the basic set of the GSM 7-bit default
/// alphabet (3GPP TS 23.038, 6.2.1). Its other three, LF, CR and the escape
/// to the extension table, are not let through [`sms_text`].
const GSM_BASIC: &str = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The printable characters of its extension table: each takes two units.
const GSM_EXTENSION: &str = "^{}\\[~]|€";

/// Fits `text` into one SMS: 160 units of the GSM 7-bit default alphabet,
/// where characters of its basic set take one unit and those of its
/// extension table (`^ { } \ [ ~ ] | €`) two.
///
/// Characters outside the alphabet become their obvious ASCII equivalent if
/// they have one (typographic quotes and dashes, `…`, special spaces, `µ` to
/// `u`, `×` to `x`, accented letters to their base letter), `°` is dropped
/// (`21.5°C` reads `21.5C`), and anything else becomes `?`. Line breaks, tabs
/// and other control characters become spaces: in text mode a carriage
/// return starts a new prompt, and Ctrl-Z or Esc would end the message. A
/// text still too long is cut between two characters and ends with `...`.
/// The result is its own `sms_text`.
pub fn sms_text(text: &str) -> String {
    let mut out = String::new();
    let mut units = 0;
    // How much of `out` fits with the ellipsis after it.
    let mut fits = 0;
    for c in text.chars() {
        let mut buf = [0; 4];
        let gsm: &str = if c.is_control() {
            " "
        } else if GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c) {
            c.encode_utf8(&mut buf)
        } else {
            substitute(c)
        };
        for g in gsm.chars() {
            units += if GSM_EXTENSION.contains(g) { 2 } else { 1 };
            if units > SMS_UNITS {
                out.truncate(fits);
                out.push_str(ELLIPSIS);
                return out;
            }
            out.push(g);
            if units <= SMS_UNITS - ELLIPSIS.len() {
                fits = out.len();
            }
        }
    }
    out
}

/// The GSM characters for `c`, which is not in the alphabet.
fn substitute(c: char) -> &'static str {
    match c {
        '°' => "",
        '‘' | '’' | '‚' | '′' | '`' | '´' => "'",
        '“' | '”' | '„' | '″' | '«' | '»' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '−' => "-",
        '…' => "...",
        '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' => " ",
        'µ' => "u",
        '×' => "x",
        'À' | 'Á' | 'Â' | 'Ã' => "A",
        'È' | 'Ê' | 'Ë' => "E",
        'Ì' | 'Í' | 'Î' | 'Ï' => "I",
        'Ò' | 'Ó' | 'Ô' | 'Õ' => "O",
        'Ù' | 'Ú' | 'Û' => "U",
        'Ý' => "Y",
        'á' | 'â' | 'ã' => "a",
        'ç' => "c",
        'ê' | 'ë' => "e",
        'í' | 'î' | 'ï' => "i",
        'ó' | 'ô' | 'õ' => "o",
        'ú' | 'û' => "u",
        'ý' | 'ÿ' => "y",
        _ => "?",
    }
}

/// What the dialogue needs of a serial port: bytes both ways and a timeout
/// for each read or write.
trait Wire: Read + Write {
    fn set_wait(&mut self, wait: Duration) -> io::Result<()>;
}

impl Wire for Box<dyn SerialPort> {
    fn set_wait(&mut self, wait: Duration) -> io::Result<()> {
        self.set_timeout(wait).map_err(io::Error::from)
    }
}

/// Something the modem said: a line, or the `> ` prompt for a message text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Line(String),
    Prompt,
}

/// Splits the modem's output into trimmed lines and prompts. Blank lines are
/// dropped and a line longer than [`MAX_LINE`] is cut, so memory stays
/// bounded whatever the device sends. The prompt is a `>` at the start of a
/// line; it ends no line, and what follows it starts a new one.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    heard: VecDeque<Heard>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\r' | b'\n' => self.end_line(),
                b'>' if self.partial.iter().all(u8::is_ascii_whitespace) => {
                    self.partial.clear();
                    self.heard.push_back(Heard::Prompt);
                }
                _ if self.partial.len() < MAX_LINE => self.partial.push(b),
                _ => {}
            }
        }
    }

    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&self.partial).trim().to_string();
        self.partial.clear();
        if !line.is_empty() {
            self.heard.push_back(Heard::Line(line));
        }
    }

    fn pop(&mut self) -> Option<Heard> {
        self.heard.pop_front()
    }
}

/// What a line means to the dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Error,
    Cms(u16),
    Reference(u32),
    /// Echo, unsolicited result codes and anything else.
    Other,
}

impl Answer {
    fn of(line: &str) -> Answer {
        match line {
            "OK" => Answer::Ok,
            "ERROR" => Answer::Error,
            _ if line.starts_with("+CME ERROR:") => Answer::Error,
            _ => {
                if let Some(code) = line.strip_prefix("+CMS ERROR:") {
                    // Verbose modems name the error instead of giving its code.
                    code.trim().parse().map_or(Answer::Error, Answer::Cms)
                } else if let Some(fields) = line.strip_prefix("+CMGS:") {
                    // `+CMGS: <mr>[,<scts>]`
                    fields.split(',').next().and_then(|mr| mr.trim().parse().ok()).map_or(Answer::Other, Answer::Reference)
                } else {
                    Answer::Other
                }
            }
        }
    }

    fn is_final(self) -> bool {
        matches!(self, Answer::Ok | Answer::Error | Answer::Cms(_))
    }
}

/// The dialogue with one modem on an open port.
struct Session<'a, W> {
    wire: &'a mut W,
    port: &'a str,
    timeout: Duration,
    lines: Lines,
    /// What the modem said since the current command, for error messages.
    answer: String,
}

impl<W: Wire> Session<'_, W> {
    fn send_one(&mut self, number: &str, text: &str) -> Result<u32, ModemError> {
        self.wake(number)?;
        self.command(number, "AT+CMGF=1")?;
        self.prompt(number)?;
        self.message(number, text)
    }

    /// `AT` until the modem answers, as the first one may only wake it.
    fn wake(&mut self, number: &str) -> Result<(), ModemError> {
        self.answer.clear();
        for _ in 0..WAKE_TRIES {
            self.write(number, b"AT\r")?;
            if let Some(result) = self.result(number, Instant::now() + self.timeout / WAKE_TRIES)? {
                return self.accept(number, "AT", result);
            }
        }
        Err(self.timed_out(number, "AT"))
    }

    fn command(&mut self, number: &str, command: &'static str) -> Result<(), ModemError> {
        self.answer.clear();
        self.write(number, format!("{command}\r").as_bytes())?;
        match self.result(number, Instant::now() + self.timeout)? {
            Some(result) => self.accept(number, command, result),
            None => Err(self.timed_out(number, command)),
        }
    }

    fn prompt(&mut self, number: &str) -> Result<(), ModemError> {
        self.answer.clear();
        // `number` is valid, so it cannot close the quotes or the command.
        self.write(number, format!("AT+CMGS=\"{number}\"\r").as_bytes())?;
        let deadline = Instant::now() + self.timeout;
        while let Some(heard) = self.next(number, deadline)? {
            match heard {
                Heard::Prompt => return Ok(()),
                Heard::Line(line) => match Answer::of(&line) {
                    Answer::Ok => break,
                    result if result.is_final() => return Err(self.refused(number, "AT+CMGS", result)),
                    _ => {}
                },
            }
        }
        // In case the modem waits for a text all the same, so that it does
        // not take what comes next for one; best-effort, as we are failing.
        let _ = self.wire.write_all(&[ESC]);
        Err(ModemError::NoPrompt { port: self.port.into(), number: number.into(), timeout: self.timeout, answer: self.answer.clone() })
    }

    fn message(&mut self, number: &str, text: &str) -> Result<u32, ModemError> {
        self.answer.clear();
        self.write(number, &[text.as_bytes(), &[CTRL_Z]].concat())?;
        let deadline = Instant::now() + self.timeout;
        let mut echo = true;
        let mut reference = None;
        while let Some(heard) = self.next(number, deadline)? {
            let Heard::Line(line) = heard else { continue };
            // A modem with echo on repeats the text, which may look like an
            // answer (`OK`, `+CMGS: 7`): skip it once, whatever it says.
            if echo && line.trim_end_matches(CTRL_Z as char).trim() == text.trim() {
                echo = false;
                continue;
            }
            match Answer::of(&line) {
                Answer::Reference(n) => reference = Some(n),
                Answer::Ok => {
                    return reference.ok_or_else(|| ModemError::NoReference {
                        port: self.port.into(),
                        number: number.into(),
                        answer: self.answer.clone(),
                    })
                }
                Answer::Other => {}
                result => return Err(self.refused(number, "the message", result)),
            }
        }
        Err(self.timed_out(number, "the message"))
    }

    /// Waits for a final result code until `deadline`; `None` if none came.
    fn result(&mut self, number: &str, deadline: Instant) -> Result<Option<Answer>, ModemError> {
        while let Some(heard) = self.next(number, deadline)? {
            if let Heard::Line(line) = heard {
                let answer = Answer::of(&line);
                if answer.is_final() {
                    return Ok(Some(answer));
                }
            }
        }
        Ok(None)
    }

    /// The next thing the modem says before `deadline`, noted in `answer`.
    fn next(&mut self, number: &str, deadline: Instant) -> Result<Option<Heard>, ModemError> {
        loop {
            if let Some(heard) = self.lines.pop() {
                self.note(&heard);
                return Ok(Some(heard));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut buf = [0; 64];
            match self.wire.set_wait(left).and_then(|()| self.wire.read(&mut buf)) {
                Ok(0) => return Err(self.io(number, io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => self.lines.push(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(self.io(number, e)),
            }
        }
    }

    fn note(&mut self, heard: &Heard) {
        let said = match heard {
            Heard::Line(line) => line.as_str(),
            Heard::Prompt => ">",
        };
        if self.answer.len() + said.len() < MAX_ANSWER {
            if !self.answer.is_empty() {
                self.answer.push('\n');
            }
            self.answer.push_str(said);
        } else if !self.answer.ends_with(ELLIPSIS) {
            self.answer.push('\n');
            self.answer.push_str(ELLIPSIS);
        }
    }

    fn write(&mut self, number: &str, bytes: &[u8]) -> Result<(), ModemError> {
        self.wire.set_wait(self.timeout).and_then(|()| self.wire.write_all(bytes)).map_err(|e| self.io(number, e))
    }

    /// `Ok` for `OK`, else the error a final result code to `command` means.
    fn accept(&self, number: &str, command: &'static str, result: Answer) -> Result<(), ModemError> {
        if result == Answer::Ok {
            Ok(())
        } else {
            Err(self.refused(number, command, result))
        }
    }

    /// The error a final result code other than `OK` to `command` means.
    fn refused(&self, number: &str, command: &'static str, result: Answer) -> ModemError {
        let (port, number) = (self.port.to_string(), number.to_string());
        match result {
            Answer::Cms(code) => ModemError::CmsError { port, number, code },
            _ => ModemError::Refused { port, number, command, answer: self.answer.clone() },
        }
    }

    fn timed_out(&self, number: &str, command: &'static str) -> ModemError {
        ModemError::Timeout { port: self.port.into(), number: number.into(), command, timeout: self.timeout, answer: self.answer.clone() }
    }

    fn io(&self, number: &str, source: io::Error) -> ModemError {
        ModemError::Io { port: self.port.into(), number: number.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::modem::{Behaviour, Modem};

    /// The simulator on an in-memory wire: what the host writes reaches the
    /// modem at once, and `noise` comes before each of its answers.
    struct Bench {
        modem: Modem,
        out: VecDeque<u8>,
        noise: &'static [u8],
        /// The first write is lost, as to a modem that sleeps.
        asleep: bool,
        wait: Duration,
    }

    impl Bench {
        fn new(behaviour: Behaviour) -> Bench {
            Bench { modem: Modem::new(behaviour), out: VecDeque::new(), noise: b"", asleep: false, wait: Duration::ZERO }
        }

        fn send(&mut self, to: &[&str], text: &str) -> Result<Vec<u32>, ModemError> {
            let timeout = Duration::from_millis(300);
            let mut session = Session { wire: self, port: "bench", timeout, lines: Lines::default(), answer: String::new() };
            to.iter().map(|number| session.send_one(number, &sms_text(text))).collect()
        }
    }

    impl Read for Bench {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.out.is_empty() {
                // Nothing will come: this is the port's timeout.
                std::thread::sleep(self.wait);
                return Err(io::ErrorKind::TimedOut.into());
            }
            let n = buf.len().min(self.out.len());
            buf.iter_mut().zip(self.out.drain(..n)).for_each(|(b, o)| *b = o);
            Ok(n)
        }
    }

    impl Write for Bench {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let answer = if std::mem::take(&mut self.asleep) { Vec::new() } else { self.modem.input(buf) };
            if !answer.is_empty() {
                self.out.extend(self.noise);
                self.out.extend(answer);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Wire for Bench {
        fn set_wait(&mut self, wait: Duration) -> io::Result<()> {
            self.wait = wait;
            Ok(())
        }
    }

    fn heard(output: &[&[u8]]) -> Vec<Heard> {
        let mut lines = Lines::default();
        let mut heard = Vec::new();
        for bytes in output {
            lines.push(bytes);
            heard.extend(std::iter::from_fn(|| lines.pop()));
        }
        heard
    }

    fn line(s: &str) -> Heard {
        Heard::Line(s.to_string())
    }

    #[test]
    fn lines_tolerate_echo_blank_lines_and_unsolicited_codes() {
        let output = b"AT+CMGS=\"123\"\r\r\nRING\r\n\r\n> hi\x1a\r\n+CMTI: \"SM\",3\n\r\n+CMGS: 7\r\n\r\nOK\r\n";
        let expected =
            [line("AT+CMGS=\"123\""), line("RING"), Heard::Prompt, line("hi\x1a"), line("+CMTI: \"SM\",3"), line("+CMGS: 7"), line("OK")];
        assert_eq!(heard(&[output]), expected);
        for at in 0..output.len() {
            assert_eq!(heard(&[&output[..at], &output[at..]]), expected, "split at {at}");
        }
    }

    #[test]
    fn a_line_without_end_is_cut_and_memory_stays_bounded() {
        let mut lines = Lines::default();
        for _ in 0..1000 {
            lines.push(&[b'x'; 100]);
        }
        assert_eq!(lines.partial.len(), MAX_LINE);
        lines.push(b"\r\n");
        assert_eq!(lines.pop(), Some(line(&"x".repeat(MAX_LINE))));
    }

    #[test]
    fn answers_are_recognised_strictly() {
        let cases = [
            ("OK", Answer::Ok),
            ("ERROR", Answer::Error),
            ("+CME ERROR: 10", Answer::Error),
            ("+CMS ERROR: 500", Answer::Cms(500)),
            ("+CMS ERROR: unknown error", Answer::Error),
            ("+CMGS: 12", Answer::Reference(12)),
            ("+CMGS: 12,\"24/01/01,12:00:00+04\"", Answer::Reference(12)),
            ("+CMGS: 7\x1a", Answer::Other),
            ("RING", Answer::Other),
            ("OK then", Answer::Other),
        ];
        for (line, answer) in cases {
            assert_eq!(Answer::of(line), answer, "{line:?}");
        }
    }

    #[test]
    fn short_gsm_text_is_kept_as_it_is() {
        let text = "Node 4: 31.2 C > 30 (since 12:00) @home_1 £5 ÄÖÜäöüß";
        assert_eq!(sms_text(text), text);
        assert_eq!(GSM_BASIC.chars().count(), 125);
    }

    #[test]
    fn characters_outside_the_alphabet_are_replaced() {
        assert_eq!(sms_text("21.5°C"), "21.5C");
        assert_eq!(sms_text("“hot” – crêpe brûlée… Ångström µs"), "\"hot\" - crepe brulée... Ångström us");
        assert_eq!(sms_text("line 1\nline 2\ttab\r\x1a\x1b"), "line 1 line 2 tab   ");
        assert_eq!(sms_text("日本 ☃"), "?? ?");
    }

    #[test]
    fn long_text_is_cut_to_160_units_with_an_ellipsis() {
        assert_eq!(sms_text(&"a".repeat(160)), "a".repeat(160));
        assert_eq!(sms_text(&"a".repeat(161)), format!("{}...", "a".repeat(157)));
        assert_eq!(sms_text(&"€".repeat(80)), "€".repeat(80), "the extension table takes two units");
        assert_eq!(sms_text(&"€".repeat(81)), format!("{}...", "€".repeat(78)));
        // 156 units, then a two-unit character that would straddle 157.
        assert_eq!(sms_text(&format!("{}[{}", "a".repeat(156), "b".repeat(10))), format!("{}...", "a".repeat(156)));
        let long = format!("{}…{}", "x".repeat(150), "°é[".repeat(30));
        assert_eq!(sms_text(&sms_text(&long)), sms_text(&long));
    }

    #[test]
    fn numbers_are_a_plus_and_3_to_15_digits() {
        for good in ["+4912345678", "112", "+123", "123456789012345"] {
            assert!(valid_number(good), "{good}");
        }
        for bad in ["", "+", "12", "+12", "1234567890123456", "+49 123 45", "+49-123", "++123", "\"123\"", "123\r"] {
            assert!(!valid_number(bad), "{bad:?}");
        }
    }

    #[test]
    fn unsolicited_codes_between_the_answers_are_ignored() {
        let mut bench = Bench::new(Behaviour::Good);
        bench.noise = b"\r\nRING\r\n\r\n+CMTI: \"SM\",3\r\n";
        assert_eq!(bench.send(&["+4912345", "0612345"], "hello").unwrap(), [1, 2]);
        assert_eq!(bench.modem.sent().len(), 2);
    }

    #[test]
    fn a_sleeping_modem_is_woken_by_another_at() {
        let mut bench = Bench::new(Behaviour::Good);
        bench.asleep = true;
        assert_eq!(bench.send(&["+4912345"], "hello").unwrap(), [1]);
    }

    #[test]
    fn an_echoed_text_is_not_taken_for_an_answer() {
        let mut bench = Bench::new(Behaviour::OkWithoutCmgs);
        let err = bench.send(&["+4912345"], "+CMGS: 7").unwrap_err();
        assert!(matches!(err, ModemError::NoReference { .. }), "{err}");
        let mut bench = Bench::new(Behaviour::Good);
        assert_eq!(bench.send(&["+4912345"], "OK").unwrap(), [1]);
        assert_eq!(bench.modem.sent()[0].text, "OK");
    }

    #[test]
    fn an_invalid_number_stops_everything_before_the_port_is_opened() {
        let target =
            ModemTarget { port: "/dev/blackbox-no-such-port".into(), baud: 115_200, to: vec!["+4912345".into(), "+49 123".into()] };
        let err = send(&target, "hello", Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, ModemError::InvalidNumber { ref number, .. } if number == "+49 123"), "{err}");
        let nobody = ModemTarget { to: Vec::new(), ..target };
        assert_eq!(send(&nobody, "hello", Duration::from_millis(100)).unwrap(), Vec::<u32>::new());
    }
}
