//! The SMS channel against the simulated modem, through a real
//! pseudo-terminal.
#![cfg(unix)]

use std::time::{Duration, Instant};

use alert::modem::{send, ModemError, ModemTarget};

use sim::modem::{Behaviour, PtyModem, Sms};

/// Long enough never to be reached by a modem that answers.
const PATIENT: Duration = Duration::from_secs(10);
/// Short, for the cases that wait for an answer that never comes.
const SHORT: Duration = Duration::from_millis(300);

/// A simulated modem answering on a pseudo-terminal.
struct Bench(PtyModem);

impl Bench {
    fn start(behaviour: Behaviour, echo: bool) -> Bench {
        Bench(PtyModem::start(behaviour, echo).expect("a simulated modem"))
    }

    fn target(&self, to: &[&str]) -> ModemTarget {
        ModemTarget { port: self.0.port().to_string(), baud: 115_200, to: to.iter().map(|n| n.to_string()).collect() }
    }

    /// Stops the modem and returns the messages it sent.
    fn finish(self) -> Vec<Sms> {
        self.0.finish()
    }
}

fn sms(to: &str, text: &str) -> Sms {
    Sms { to: to.to_string(), text: text.to_string() }
}

#[test]
fn a_good_modem_sends_and_gives_the_reference() {
    for echo in [true, false] {
        let bench = Bench::start(Behaviour::Good, echo);
        let references = send(&bench.target(&["+4912345678"]), "Node 4: 31.2°C > 30", PATIENT).expect("sent");
        assert_eq!(references, [1], "echo {echo}");
        assert_eq!(bench.finish(), [sms("+4912345678", "Node 4: 31.2C > 30")], "echo {echo}");
    }
}

#[test]
fn two_numbers_get_two_messages() {
    let bench = Bench::start(Behaviour::Good, true);
    let target = bench.target(&["+4912345678", "0612345678"]);
    assert_eq!(send(&target, "hello", PATIENT).expect("sent"), [1, 2]);
    assert_eq!(send(&target, "again", PATIENT).expect("sent"), [3, 4], "the port can be opened again");
    let sent = bench.finish();
    assert_eq!(sent, [sms("+4912345678", "hello"), sms("0612345678", "hello"), sms("+4912345678", "again"), sms("0612345678", "again")]);
}

#[test]
fn a_cms_error_is_reported_with_its_code() {
    let bench = Bench::start(Behaviour::CmsError(500), true);
    let err = send(&bench.target(&["+4912345678"]), "hello", PATIENT).unwrap_err();
    assert!(matches!(err, ModemError::CmsError { code: 500, ref number, .. } if number == "+4912345678"), "{err}");
    assert!(err.to_string().contains(bench.0.port()), "{err}");
    assert!(bench.finish().is_empty());
}

#[test]
fn ok_without_a_reference_is_a_failure() {
    let bench = Bench::start(Behaviour::OkWithoutCmgs, false);
    let err = send(&bench.target(&["+4912345678"]), "hello", PATIENT).unwrap_err();
    assert!(matches!(err, ModemError::NoReference { .. }), "{err}");
    assert!(err.to_string().contains("+4912345678") && err.to_string().contains("\"OK\""), "{err}");
    bench.finish();
}

#[test]
fn a_silent_modem_times_out() {
    let bench = Bench::start(Behaviour::Silent, true);
    let start = Instant::now();
    let err = send(&bench.target(&["+4912345678"]), "hello", SHORT).unwrap_err();
    assert!(matches!(err, ModemError::Timeout { command: "AT", .. }), "{err}");
    assert!(err.to_string().contains("said nothing"), "{err}");
    assert!(start.elapsed() < PATIENT, "it gives up: {:?}", start.elapsed());
    bench.finish();
}

#[test]
fn a_missing_prompt_is_a_failure() {
    let bench = Bench::start(Behaviour::NoPrompt, true);
    let err = send(&bench.target(&["+4912345678"]), "hello", SHORT).unwrap_err();
    assert!(matches!(err, ModemError::NoPrompt { .. }), "{err}");
    assert!(bench.finish().is_empty());
}

#[test]
fn a_missing_port_is_an_open_error_naming_it() {
    let port = "/dev/blackbox-no-such-modem";
    let target = ModemTarget { port: port.to_string(), baud: 115_200, to: vec!["+4912345678".to_string()] };
    let err = send(&target, "hello", SHORT).unwrap_err();
    assert!(matches!(err, ModemError::Open { .. }), "{err}");
    assert!(err.to_string().contains(port), "{err}");
}
