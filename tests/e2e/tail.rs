//! `blackbox tail` end to end.

use crate::harness::*;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Collects the lines a running `tail -f` prints.
struct Lines(mpsc::Receiver<String>, Vec<String>);

impl Lines {
    fn of(proc: &mut Proc) -> Lines {
        let out = proc.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx, Vec::new())
    }

    /// Waits until `f` holds for the lines printed so far.
    fn until(&mut self, what: &str, f: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !f(&self.1) {
            match self.0.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) => self.1.push(l),
                Err(_) => panic!("timed out waiting for {what}; tail printed:\n{}", self.1.join("\n")),
            }
        }
    }

    fn readings(&self) -> Vec<String> {
        self.1.iter().filter_map(|l| l.strip_prefix("L ")).map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string()).collect()
    }
}

#[test]
fn tail_shows_the_last_lines_across_days_with_filters() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.logs().join("2026")).unwrap();
    std::fs::write(dir.logs().join("2026/20261120.txt"), "L 23:00:00.000 a one\nL 23:00:01.000 b two\n").unwrap();
    std::fs::write(dir.logs().join("2026/20261121.txt"), "# 00:00:00.001 previous 20261120.txt 42\nL 00:00:01.000 a three\nL 00:00:0")
        .unwrap();
    let out = dir.run(&["tail", "-n", "3"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "L 23:00:01.000 b two\n# 00:00:00.001 previous 20261120.txt 42\nL 00:00:01.000 a three\n");
    assert_eq!(
        stdout(&dir.run(&["tail", "--source", "a", "-n", "5"])),
        "L 23:00:00.000 a one\n# 00:00:00.001 previous 20261120.txt 42\nL 00:00:01.000 a three\n"
    );
    assert_eq!(stdout(&dir.run(&["tail", "--grep", "t[wh]", "-n", "5"])), "L 23:00:01.000 b two\nL 00:00:01.000 a three\n");
    let bad = dir.run(&["tail", "--grep", "("]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stdout(&dir.run(&["tail", "--since", "2026-11-20 23:00:01"])),
        "L 23:00:01.000 b two\n# 00:00:00.001 previous 20261120.txt 42\nL 00:00:01.000 a three\n"
    );
    assert_eq!(
        stdout(&dir.run(&["tail", "--since", "2026-11-21", "--source", "a"])),
        "# 00:00:00.001 previous 20261120.txt 42\nL 00:00:01.000 a three\n"
    );
    assert_eq!(dir.run(&["tail", "--since", "whenever"]).status.code(), Some(2));
    assert_eq!(dir.run(&["tail", "--since", "-1h", "-n", "3"]).status.code(), Some(2), "--since and -n conflict");
}

#[test]
fn tail_follows_a_real_capture_across_restarts_and_into_the_next_day() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    let capture = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-T"]);
    pty.send(b"before tail\r\n");
    dir.wait_for("first line", |l| l.iter().any(|l| l.ends_with("before tail")));
    let mut tail = dir.spawn(&["tail", "-n", "0", "-f", "--source", "usb-T"]);
    let mut lines = Lines::of(&mut tail);
    let mut sent = Vec::new();
    // Give tail a moment to start watching: it prints nothing for -n 0, so send until the first line shows.
    let start = Instant::now();
    while lines.readings().is_empty() {
        assert!(start.elapsed() < DEADLINE, "tail never printed");
        let s = format!("packet {}", sent.len());
        pty.send(format!("{s}\r\n").as_bytes());
        sent.push(s);
        let _ = lines.0.recv_timeout(Duration::from_millis(50)).map(|l| lines.1.push(l));
    }
    for _ in 0..100 {
        let s = format!("packet {}", sent.len());
        pty.send(format!("{s}\r\n").as_bytes());
        sent.push(s);
    }
    let want = sent.last().unwrap().clone();
    lines.until("the burst", |l| l.iter().any(|l| l.ends_with(&want)));
    // Capture restarts: tail goes on, and shows the stop and start lines.
    capture.terminate();
    let capture = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-T"]);
    pty.send(b"after restart\r\n");
    lines.until("after restart", |l| l.iter().any(|l| l.ends_with("after restart")));
    capture.terminate();
    // The next day's file, as capture writes it at midnight.
    let today = logfile::scan(&dir.logs()).unwrap().days.last().unwrap().clone();
    let next = today.date.succ_opt().unwrap();
    let path = logfile::layout::day_path(&dir.logs(), next);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let size = std::fs::metadata(&today.path).unwrap().len();
    std::fs::write(
        &path,
        format!(
            "# 00:00:00.002 previous {} {size}\nL 00:00:00.002 usb-T after midnight\nL 00:00:00.003 usb-OTHER not shown\n",
            today.name()
        ),
    )
    .unwrap();
    lines.until("after midnight", |l| l.iter().any(|l| l.ends_with("after midnight")));
    tail.signal(rustix::process::Signal::TERM);
    let status = tail.wait().status;
    assert!(status.success());
    // Every line exactly once and in order; the other source filtered out.
    let mut expected: Vec<String> = sent.clone();
    expected.extend(["after restart".to_string(), "after midnight".to_string()]);
    let got = lines.readings();
    let first = expected.iter().position(|e| Some(e) == got.first()).expect("tail's first reading was sent");
    assert_eq!(got, expected[first..], "tail lost, repeated or reordered lines");
    assert!(lines.1.iter().any(|l| l.contains(" stop reason=SIGTERM")) && lines.1.iter().any(|l| l.contains(" start version=")));
    assert!(!lines.1.iter().any(|l| l.contains("not shown")));
}
