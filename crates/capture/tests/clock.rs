//! Capture with an injected clock: the documented midnight rule.

use capture::{Backoff, CaptureOptions, SourceKind, SourceSpec, Stop};
use logfile::{ManualClock, WriterOptions};
use serialport::SerialPort;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-11-21T23:59:59.000Z
const LATE: i64 = 1_795_305_599_000;

fn wait(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read(root: &std::path::Path, day: &str) -> String {
    std::fs::read_to_string(root.join(&day[..4]).join(format!("{day}.txt"))).unwrap_or_default()
}

/// Scenario 7: a line whose first bytes arrive before midnight and whose
/// terminator arrives after it is one reading, in the day of its terminator.
#[test]
fn a_line_straddling_midnight_is_one_reading_in_the_day_of_its_terminator() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let clock = ManualClock::new(LATE + 990);
    let (mut device, port) = serialport::TTYPort::pair().unwrap();
    let path = port.name().unwrap();
    let stop = Stop::new().unwrap();
    let opts = CaptureOptions {
        logs: logs.clone(),
        writer: WriterOptions::default(),
        sources: vec![SourceSpec::new("usb-M", SourceKind::Serial { path: path.into(), baud: 57600, framing: Default::default() })],
        backoff: Backoff::default(),
    };
    let (run_clock, run_stop) = (Arc::new(clock.clone()), stop.clone());
    let capture = std::thread::spawn(move || capture::run(opts, run_clock, run_stop, None));
    wait("connect", || read(&logs, "20261121").contains(" connect source=usb-M"));

    device.write_all(b"OK 2 1 115").unwrap();
    // Capture has read the first half when the terminal's input queue is empty.
    wait("first half read", || port.bytes_to_read().unwrap() == 0);
    clock.advance(20); // 00:00:00.010 on the 22nd
    device.write_all(b" 179 0\r\n").unwrap();
    wait("the reading", || read(&logs, "20261122").contains("OK 2 1 115 179 0"));
    stop.trigger();
    let summary = capture.join().unwrap().unwrap();
    assert_eq!(summary.readings, 1);

    let before = read(&logs, "20261121");
    assert!(!before.contains("L "), "a reading went to the day before its terminator:\n{before}");
    let after = read(&logs, "20261122");
    let lines: Vec<&str> = after.lines().collect();
    assert!(lines[0].starts_with("# 00:00:00.010 previous 20261121.txt "), "{after}");
    assert_eq!(lines[1], "L 00:00:00.010 usb-M OK 2 1 115 179 0");
    drop(port);
}
