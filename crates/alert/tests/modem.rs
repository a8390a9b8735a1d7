//! The SMS channel against the simulated modem, through a real
//! pseudo-terminal.
#![cfg(unix)]

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alert::modem::{send, ModemError, ModemTarget};
use serialport::{SerialPort, TTYPort};
use sim::modem::{Behaviour, Modem, Sms};

/// Long enough never to be reached by a modem that answers.
const PATIENT: Duration = Duration::from_secs(10);
/// Short, for the cases that wait for an answer that never comes.
const SHORT: Duration = Duration::from_millis(300);

/// A simulated modem answering on the master side of a pseudo-terminal.
struct Bench {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Modem>,
    /// The slave side, kept open so that the master never reads a hang-up
    /// while the channel has the port closed.
    _slave: TTYPort,
    port: String,
}

impl Bench {
    fn start(behaviour: Behaviour, echo: bool) -> Bench {
        let (mut master, slave) = TTYPort::pair().expect("a pseudo-terminal");
        let port = slave.name().expect("the slave's name");
        let mut modem = Modem::new(behaviour);
        if !echo {
            modem.input(b"ATE0\r");
        }
        // The timeout only lets the thread see the stop flag.
        master.set_timeout(Duration::from_millis(20)).expect("a timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0; 256];
            while !stopped.load(Ordering::Relaxed) {
                match master.read(&mut buf) {
                    Ok(n) => master.write_all(&modem.input(&buf[..n])).expect("writing to the pty"),
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(e) => panic!("reading the pty: {e}"),
                }
            }
            modem
        });
        Bench { stop, thread, _slave: slave, port }
    }

    fn target(&self, to: &[&str]) -> ModemTarget {
        ModemTarget { port: self.port.clone(), baud: 115_200, to: to.iter().map(|n| n.to_string()).collect() }
    }

    /// Stops the modem and returns the messages it sent.
    fn finish(self) -> Vec<Sms> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the modem thread").sent().to_vec()
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
    assert!(err.to_string().contains(&bench.port), "{err}");
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
