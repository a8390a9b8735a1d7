//! A simulated GSM modem: the AT command dialogue of sending an SMS in text
//! mode (3GPP TS 27.005).
//!
//! [`Modem`] answers the bytes a host writes the way a GSM modem does. As on
//! real modems, echo is on until `ATE0` and messages start in PDU mode, so a
//! host must ask for text mode (`AT+CMGF=1`) before `AT+CMGS="<number>"`.
//! [`Behaviour`] makes it fail the ways broken modems and networks do. It is
//! pure and deterministic: no clock, no I/O, and no input makes it panic.

/// Ends the text of a message.
const CTRL_Z: u8 = 0x1A;
/// Cancels a message (and, here, the command line being typed).
const ESC: u8 = 0x1B;
/// The longest command line or message text the modem takes, in bytes;
/// longer input is answered with an error, as a full buffer would be.
const MAX_INPUT: usize = 512;

const OK: &[u8] = b"\r\nOK\r\n";
const ERROR: &[u8] = b"\r\nERROR\r\n";

/// How the simulated modem behaves when asked to send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends it and answers `+CMGS: <reference>` and `OK`.
    Good,
    /// Answers `+CMS ERROR: <code>` after the text; nothing is sent.
    CmsError(u16),
    /// Answers `OK` after the text without `+CMGS`, as some broken modems
    /// do; nothing is sent.
    OkWithoutCmgs,
    /// Answers nothing at all, not even an echo.
    Silent,
    /// Never sends the `> ` prompt after `AT+CMGS`, nor anything else.
    NoPrompt,
}

/// A message the simulated modem sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// The number, as the host wrote it between the quotes of `AT+CMGS`.
    pub to: String,
    /// The text, as the host wrote it before Ctrl-Z (invalid UTF-8 replaced).
    pub text: String,
}

/// A simulated GSM modem.
#[derive(Debug, Clone)]
pub struct Modem {
    behaviour: Behaviour,
    echo: bool,
    text_mode: bool,
    /// The command line being typed, or the text of a message after the prompt.
    typed: Vec<u8>,
    /// The number while the text of a message to it is being typed.
    recipient: Option<String>,
    sent: Vec<Sms>,
    /// The last message reference given; like TP-MR, it goes from 1 to 255.
    reference: u8,
}

impl Modem {
    /// A modem just switched on: echo on, PDU mode.
    pub fn new(behaviour: Behaviour) -> Modem {
        Modem { behaviour, echo: true, text_mode: false, typed: Vec::new(), recipient: None, sent: Vec::new(), reference: 0 }
    }

    /// Takes the bytes the host wrote and returns those the modem answers.
    pub fn input(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.behaviour == Behaviour::Silent {
            return out;
        }
        for &b in bytes {
            if self.recipient.is_some() {
                self.text_byte(b, &mut out);
            } else {
                self.command_byte(b, &mut out);
            }
        }
        out
    }

    /// The messages sent so far, oldest first.
    pub fn sent(&self) -> &[Sms] {
        &self.sent
    }

    fn command_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.echo {
            out.push(b);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.typed);
                self.command(&line, out);
            }
            ESC => self.typed.clear(),
            _ if b.is_ascii_control() => {}
            // One byte past the limit marks the line as too long.
            _ if self.typed.len() <= MAX_INPUT => self.typed.push(b),
            _ => {}
        }
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if line.len() > MAX_INPUT {
            return out.extend_from_slice(ERROR);
        }
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let rest = match line.get(..2) {
            Some(at) if at.eq_ignore_ascii_case("AT") => &line[2..],
            _ => return out.extend_from_slice(ERROR),
        };
        let answer = match rest.to_ascii_uppercase().as_str() {
            "" => OK,
            "E" | "E0" => {
                self.echo = false;
                OK
            }
            "E1" => {
                self.echo = true;
                OK
            }
            "+CMGF=0" => {
                self.text_mode = false;
                OK
            }
            "+CMGF=1" => {
                self.text_mode = true;
                OK
            }
            upper if upper.starts_with("+CMGS=") => return self.cmgs(&rest["+CMGS=".len()..], out),
            _ => ERROR,
        };
        out.extend_from_slice(answer);
    }

    fn cmgs(&mut self, argument: &str, out: &mut Vec<u8>) {
        let number = argument.strip_prefix('"').and_then(|a| a.strip_suffix('"')).filter(|n| !n.is_empty() && !n.contains('"'));
        match number {
            Some(number) if self.text_mode => {
                if self.behaviour != Behaviour::NoPrompt {
                    self.recipient = Some(number.to_string());
                    out.extend_from_slice(b"\r\n> ");
                }
            }
            _ => out.extend_from_slice(ERROR),
        }
    }

    fn text_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            CTRL_Z => {
                let text = std::mem::take(&mut self.typed);
                if let Some(to) = self.recipient.take() {
                    self.submit(to, &text, out);
                }
            }
            ESC => {
                self.recipient = None;
                self.typed.clear();
                out.extend_from_slice(OK);
            }
            _ => {
                // Real modems echo the text after the prompt, on its line.
                if self.echo {
                    out.push(b);
                }
                if self.typed.len() <= MAX_INPUT {
                    self.typed.push(b);
                }
            }
        }
    }

    fn submit(&mut self, to: String, text: &[u8], out: &mut Vec<u8>) {
        match self.behaviour {
            // 305: invalid text mode parameter.
            _ if text.len() > MAX_INPUT => out.extend_from_slice(b"\r\n+CMS ERROR: 305\r\n"),
            Behaviour::Good => {
                self.reference = self.reference % 255 + 1;
                self.sent.push(Sms { to, text: String::from_utf8_lossy(text).into_owned() });
                out.extend_from_slice(format!("\r\n+CMGS: {}\r\n\r\nOK\r\n", self.reference).as_bytes());
            }
            Behaviour::CmsError(code) => out.extend_from_slice(format!("\r\n+CMS ERROR: {code}\r\n").as_bytes()),
            Behaviour::OkWithoutCmgs => out.extend_from_slice(OK),
            Behaviour::Silent | Behaviour::NoPrompt => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// Writes `input` to `modem` and returns its answer as text.
    fn talk(modem: &mut Modem, input: &str) -> String {
        String::from_utf8_lossy(&modem.input(input.as_bytes())).into_owned()
    }

    /// A modem in text mode with echo off.
    fn ready(behaviour: Behaviour) -> Modem {
        let mut modem = Modem::new(behaviour);
        talk(&mut modem, "ATE0\rAT+CMGF=1\r");
        modem
    }

    #[test]
    fn echo_is_on_until_ate0() {
        let mut modem = Modem::new(Behaviour::Good);
        assert_eq!(talk(&mut modem, "AT\r"), "AT\r\r\nOK\r\n");
        assert_eq!(talk(&mut modem, "ATE0\r"), "ATE0\r\r\nOK\r\n");
        assert_eq!(talk(&mut modem, "AT\r\n"), "\r\nOK\r\n", "the LF after CR is ignored");
        assert_eq!(talk(&mut modem, "ate1\r"), "\r\nOK\r\n");
        assert_eq!(talk(&mut modem, "AT\r"), "AT\r\r\nOK\r\n");
    }

    #[test]
    fn a_message_is_sent_in_text_mode_with_references_counting_up() {
        let mut modem = ready(Behaviour::Good);
        assert_eq!(talk(&mut modem, "AT+CMGS=\"+4912345\"\r"), "\r\n> ");
        assert_eq!(talk(&mut modem, "Node 4 is hot\x1a"), "\r\n+CMGS: 1\r\n\r\nOK\r\n");
        assert_eq!(talk(&mut modem, "AT+CMGS=\"0612\"\rsecond\x1a"), "\r\n> \r\n+CMGS: 2\r\n\r\nOK\r\n");
        let sms = |to: &str, text: &str| Sms { to: to.into(), text: text.into() };
        assert_eq!(modem.sent(), [sms("+4912345", "Node 4 is hot"), sms("0612", "second")]);
    }

    #[test]
    fn with_echo_on_the_text_is_echoed_after_the_prompt() {
        let mut modem = Modem::new(Behaviour::Good);
        talk(&mut modem, "AT+CMGF=1\r");
        assert_eq!(talk(&mut modem, "AT+CMGS=\"123\"\rhi\x1a"), "AT+CMGS=\"123\"\r\r\n> hi\r\n+CMGS: 1\r\n\r\nOK\r\n");
    }

    #[test]
    fn cmgs_needs_text_mode_and_a_quoted_number() {
        let mut modem = Modem::new(Behaviour::Good);
        talk(&mut modem, "ATE0\r");
        assert_eq!(talk(&mut modem, "AT+CMGS=\"123\"\r"), "\r\nERROR\r\n", "PDU mode after power on");
        talk(&mut modem, "AT+CMGF=1\r");
        assert_eq!(talk(&mut modem, "AT+CMGF=0\r"), "\r\nOK\r\n");
        assert_eq!(talk(&mut modem, "AT+CMGS=\"123\"\r"), "\r\nERROR\r\n");
        talk(&mut modem, "AT+CMGF=1\r");
        for bad in ["AT+CMGS=123\r", "AT+CMGS=\"\"\r", "AT+CMGS=\"1\"2\"\r"] {
            assert_eq!(talk(&mut modem, bad), "\r\nERROR\r\n", "{bad:?}");
        }
        assert!(modem.sent().is_empty());
    }

    #[test]
    fn esc_cancels_the_message() {
        let mut modem = ready(Behaviour::Good);
        assert_eq!(talk(&mut modem, "AT+CMGS=\"123\"\rnever\x1b"), "\r\n> \r\nOK\r\n");
        assert!(modem.sent().is_empty());
        assert_eq!(talk(&mut modem, "AT\r"), "\r\nOK\r\n", "back in command mode");
    }

    #[test]
    fn unknown_commands_and_garbage_are_errors() {
        let mut modem = ready(Behaviour::Good);
        assert_eq!(talk(&mut modem, "AT+CSQ\r"), "\r\nERROR\r\n");
        assert_eq!(talk(&mut modem, "hello\r"), "\r\nERROR\r\n");
        assert_eq!(talk(&mut modem, &format!("AT{}\r", "E".repeat(600))), "\r\nERROR\r\n");
        assert_eq!(talk(&mut modem, "\r\r"), "", "empty lines are ignored");
    }

    #[test]
    fn failing_behaviours_send_nothing() {
        let mut cms = ready(Behaviour::CmsError(500));
        assert_eq!(talk(&mut cms, "AT+CMGS=\"123\"\rhi\x1a"), "\r\n> \r\n+CMS ERROR: 500\r\n");
        let mut ok = ready(Behaviour::OkWithoutCmgs);
        assert_eq!(talk(&mut ok, "AT+CMGS=\"123\"\rhi\x1a"), "\r\n> \r\nOK\r\n");
        let mut no_prompt = ready(Behaviour::NoPrompt);
        assert_eq!(talk(&mut no_prompt, "AT\r"), "\r\nOK\r\n");
        assert_eq!(talk(&mut no_prompt, "AT+CMGS=\"123\"\r"), "");
        let mut silent = Modem::new(Behaviour::Silent);
        assert_eq!(talk(&mut silent, "AT\rAT+CMGF=1\rAT+CMGS=\"123\"\rhi\x1a"), "");
        for modem in [cms, ok, no_prompt, silent] {
            assert!(modem.sent().is_empty());
        }
    }

    #[test]
    fn input_split_anywhere_gives_the_same_answer() {
        let dialogue = b"AT\rAT+CMGF=1\rAT+CMGS=\"+4912345\"\rsome text\x1aAT\r";
        let whole = Modem::new(Behaviour::Good).input(dialogue);
        for at in 0..dialogue.len() {
            let mut modem = Modem::new(Behaviour::Good);
            let mut split = modem.input(&dialogue[..at]);
            split.extend(modem.input(&dialogue[at..]));
            assert_eq!(split, whole, "split at {at}");
        }
        let mut bytewise = Modem::new(Behaviour::Good);
        assert_eq!(dialogue.iter().flat_map(|b| bytewise.input(&[*b])).collect::<Vec<u8>>(), whole);
    }

    #[test]
    fn random_bytes_never_panic_and_memory_stays_bounded() {
        let mut rng = Rng::new(27005);
        for behaviour in [Behaviour::Good, Behaviour::CmsError(1), Behaviour::OkWithoutCmgs, Behaviour::NoPrompt] {
            let mut modem = Modem::new(behaviour);
            for _ in 0..2000 {
                // Mostly the bytes of the dialogue, so that every state is reached.
                let alphabet = b"AaTtEe01+CMGSF=\"\r\n\x1a\x1b\xff";
                let bytes: Vec<u8> = (0..1 + rng.below(40)).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect();
                modem.input(&bytes);
                assert!(modem.typed.len() <= MAX_INPUT + 1);
            }
        }
    }
}

/// A simulated modem answering on a pseudo-terminal, for the demo and the
/// tests: the channel opens [`PtyModem::port`] as it would a real modem.
#[derive(Debug)]
pub struct PtyModem {
    modem: std::sync::Arc<std::sync::Mutex<Modem>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The slave side, kept open so that the master never reads a hang-up
    /// while the channel has the port closed.
    _slave: serialport::TTYPort,
    port: String,
}

impl PtyModem {
    /// Starts a modem that behaves so; `echo` as a real one at power-on.
    pub fn start(behaviour: Behaviour, echo: bool) -> std::io::Result<PtyModem> {
        use serialport::SerialPort;
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let (mut master, slave) = serialport::TTYPort::pair().map_err(std::io::Error::other)?;
        let port = slave.name().ok_or_else(|| std::io::Error::other("the pseudo-terminal has no name"))?;
        let mut modem = Modem::new(behaviour);
        if !echo {
            modem.input(b"ATE0\r");
        }
        // The timeout only lets the thread see the stop flag.
        master.set_timeout(std::time::Duration::from_millis(20)).map_err(std::io::Error::other)?;
        let modem = std::sync::Arc::new(std::sync::Mutex::new(modem));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, stopped) = (modem.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("simulated modem".into()).spawn(move || {
            let mut buf = [0; 256];
            while !stopped.load(Ordering::Relaxed) {
                match master.read(&mut buf) {
                    Ok(n) => {
                        let answer = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).input(&buf[..n]);
                        if master.write_all(&answer).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        })?;
        Ok(PtyModem { modem, stop, thread: Some(thread), _slave: slave, port })
    }

    /// The path to open, as the port of a modem.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The messages sent so far.
    pub fn sent(&self) -> Vec<Sms> {
        self.modem.lock().unwrap_or_else(std::sync::PoisonError::into_inner).sent().to_vec()
    }

    /// Stops the modem and returns the messages it sent.
    pub fn finish(mut self) -> Vec<Sms> {
        self.halt();
        self.sent()
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.halt();
    }
}
