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
    // A relative time starts with a hyphen and is still a value, not an option.
    dir.set_clock("2026-11-21T00:29:59.500Z");
    assert_eq!(
        stdout(&dir.run(&["tail", "--since", "-30m", "--source", "a"])),
        "# 00:00:00.001 previous 20261120.txt 42\nL 00:00:01.000 a three\n"
    );
}

#[test]
fn tail_follows_a_real_capture_across_restarts_and_an_injected_midnight() {
    let dir = Dir::new();
    dir.set_clock("2026-11-20T23:59:50Z");
    let mut pty = Pty::new();
    let capture = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-T"]);
    pty.send(b"before tail\r\n");
    dir.wait_for("first line", |l| l.iter().any(|l| l.ends_with("before tail")));
    let mut tail = dir.spawn(&["tail", "-n", "0", "-f", "--source", "usb-T"]);
    let mut lines = Lines::of(&mut tail);
    let mut sent = vec!["before tail".to_string()];
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
    sent.push("after restart".into());
    lines.until("after restart", |l| l.iter().any(|l| l.ends_with("after restart")));
    // Midnight passes while capture runs: lines go on into the next day's
    // file as soon as capture's clock has taken up the new time.
    dir.set_clock("2026-11-21T00:00:00.500Z");
    let next_day = dir.logs().join("2026/20261121.txt");
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "capture never wrote into the next day");
        let s = format!("midnight {}", sent.len());
        pty.send(format!("{s}\r\n").as_bytes());
        sent.push(s.clone());
        lines.until(&s, |l| l.iter().any(|l| l.ends_with(&s)));
        if std::fs::read_to_string(&next_day).is_ok_and(|t| t.contains(&s)) {
            break;
        }
    }
    // One more restart, now on the new day.
    capture.terminate();
    let capture = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-T"]);
    pty.send(b"last\r\n");
    sent.push("last".into());
    lines.until("last", |l| l.iter().any(|l| l.ends_with(" last")));
    capture.terminate();
    tail.signal(rustix::process::Signal::TERM);
    let status = tail.wait().status;
    assert!(status.success());
    // Every line exactly once and in order.
    let got = lines.readings();
    let first = sent.iter().position(|e| Some(e) == got.first()).expect("tail's first reading was sent");
    assert_eq!(got, sent[first..], "tail lost, repeated or reordered lines");
    assert!(lines.1.iter().any(|l| l.contains(" stop reason=SIGTERM")) && lines.1.iter().any(|l| l.contains(" start version=")));
    // Both days are on disk, chained, and the logs verify.
    let days: Vec<String> = logfile::scan(&dir.logs()).unwrap().days.iter().map(|d| d.name()).collect();
    assert_eq!(days, ["20261120.txt", "20261121.txt"]);
    assert!(std::fs::read_to_string(&next_day).unwrap().starts_with("# 00:00:00."), "the new day starts with its header");
    let verify = dir.verify();
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert_eq!(dir.readings(), sent, "the logs hold every line once, in order");
}

/// A viewer that is stopped (Ctrl-Z, a paused pager) holds nothing capture
/// needs: capture writes the whole burst while the viewer cannot run.
#[test]
fn a_stopped_viewer_never_slows_capture() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.logs()).unwrap();
    let tail = dir.spawn(&["tail", "-f", "-n", "0"]);
    tail.signal(rustix::process::Signal::STOP);
    let input: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
    let out = dir.run_with_stdin(&["capture", "--stdin", "--source", "s"], input.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dir.readings().len(), 50_000);
    tail.signal(rustix::process::Signal::CONT);
    tail.kill();
}

/// A power cut left half a line; the next capture cuts it back and notes
/// it. `tail -f` never shows the half line as a reading, and goes on.
#[test]
fn tail_follows_across_a_torn_tail_repair() {
    let dir = Dir::new();
    dir.set_clock("2026-11-21T12:00:00Z");
    std::fs::create_dir_all(dir.logs().join("2026")).unwrap();
    std::fs::write(dir.logs().join("2026/20261121.txt"), "L 11:59:00.000 s whole\nL 11:59:30.000 s half a li").unwrap();
    let mut tail = dir.spawn(&["tail", "-f", "-n", "5"]);
    let mut lines = Lines::of(&mut tail);
    lines.until("the whole line", |l| l.iter().any(|l| l.ends_with(" s whole")));
    let out = dir.run_with_stdin(&["capture", "--stdin", "--source", "s"], b"after repair\n");
    assert!(out.status.success(), "{}", stderr(&out));
    lines.until("the line after the repair", |l| l.iter().any(|l| l.ends_with(" s after repair")));
    tail.signal(rustix::process::Signal::TERM);
    assert!(tail.wait().status.success());
    assert_eq!(lines.readings(), ["whole", "after repair"], "{:?}", lines.1);
    assert!(lines.1.iter().any(|l| l.contains(" torn file=20261121.txt ") && l.contains("half a li")), "{:?}", lines.1);
    assert!(dir.verify().status.success());
}

/// `blackbox tail ... | head`: the reader goes away, blackbox ends quietly with 0.
#[test]
fn a_closed_pipe_ends_tail_and_export_quietly() {
    use std::io::Read;
    let dir = real_site();
    assert!(dir.run(&["index", "-q"]).status.success());
    for args in [&["tail", "-n", "20000", "--decoded"][..], &["tail", "-n", "20000"], &["export"], &["tail", "-f", "-n", "20000"]] {
        let mut child = dir
            .cmd(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 100];
        out.read_exact(&mut first).unwrap();
        drop(out);
        let done = Proc { child }.wait();
        assert!(done.status.success(), "{args:?}: {:?} {}", done.status, stderr(&done));
        assert_eq!(stderr(&done), "", "{args:?}");
    }
}
