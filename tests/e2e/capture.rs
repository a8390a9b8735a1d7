//! `blackbox capture` end to end (scenarios 1 to 18 of SCENARIOS.md).

use crate::harness::*;
use rustix::process::Signal;
use std::io::Write;
use std::time::{Duration, Instant};

fn count_readings(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("L ")).count()
}

#[test]
fn stdin_capture_of_the_real_day_keeps_every_text_one_for_one() {
    let dir = Dir::new();
    let texts = real_day_texts();
    assert_eq!(texts.len(), 30_429);
    let mut input = texts.join("\n");
    input.push('\n');
    let out = dir.run_with_stdin(&["capture", "--stdin", "--source", "usb-A40117UK"], input.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dir.readings(), texts);
    assert!(dir.log_lines().iter().all(|l| !l.starts_with("L ") || l.split(' ').nth(2) == Some("usb-A40117UK")));
    assert!(dir.verify().status.success());
}

#[test]
fn pty_lines_with_crlf_arrive_in_order_with_their_exact_text() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    let cap = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-TEST"]);
    let sent: Vec<String> = (0..200).map(|i| format!("OK {} {} 115 179 0", i % 31, i)).collect();
    for s in &sent {
        pty.send(format!("{s}\r\n").as_bytes());
    }
    dir.wait_for("200 readings", |l| count_readings(l) == 200);
    let out = cap.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dir.readings(), sent);
    let lines = dir.log_lines();
    assert!(lines[1].contains(" connect source=usb-TEST path="), "{}", lines[1]);
    assert!(lines.last().unwrap().contains(" stop reason=SIGTERM readings=200"), "{:?}", lines.last());
}

#[test]
fn terminators_split_across_reads_never_make_empty_readings() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    let cap = dir.spawn(&["capture", "--port", &pty.path]);
    // Each chunk is delivered separately: wait for the previous line to land first.
    pty.send(b"one\r");
    dir.wait_for("one", |l| count_readings(l) == 1);
    pty.send(b"\ntwo\n\r");
    dir.wait_for("two", |l| count_readings(l) == 2);
    pty.send(b"three\rfour\r\n\r\n\n\nfive\n");
    dir.wait_for("five", |l| count_readings(l) == 5);
    cap.terminate();
    assert_eq!(dir.readings(), ["one", "two", "three", "four", "five"]);
}

#[test]
fn garbage_nul_and_invalid_utf8_are_kept_escaped_and_neighbours_unharmed() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    let cap = dir.spawn(&["capture", "--port", &pty.path]);
    pty.send(b"before\r\n\x00\x01\xff\xfe garbage \\ \x1b[0m\r\nafter\r\n");
    dir.wait_for("3 readings", |l| count_readings(l) == 3);
    cap.terminate();
    assert_eq!(dir.readings(), ["before", "\\x00\\x01\\xFF\\xFE garbage \\\\ \\x1B[0m", "after"]);
    assert_eq!(logfile::unescape(&dir.readings()[1]), b"\x00\x01\xff\xfe garbage \\ \x1b[0m");
}

#[test]
fn the_real_day_replayed_through_a_pty_at_full_speed_is_captured_one_for_one() {
    let dir = Dir::new();
    let texts = real_day_texts();
    let pty = Pty::new();
    let cap = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-A40117UK", "--baud", "57600"]);
    let mut master = pty.master.try_clone_native().expect("clone master");
    let input: Vec<u8> = texts.iter().flat_map(|t| format!("{t}\r\n").into_bytes()).collect();
    let writer = std::thread::spawn(move || master.write_all(&input));
    dir.wait_for("every reading", |l| count_readings(l) >= texts.len());
    writer.join().unwrap().unwrap();
    let out = cap.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dir.readings(), texts);
    drop(pty);
}

#[test]
fn sigkill_then_restart_loses_and_duplicates_nothing() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    let mut sent = Vec::new();
    // Lines sent in the burst during which each kill lands. Only these may be
    // missing: bytes capture had read from the device but not yet written
    // when SIGKILL arrived die with the process, as in any program.
    let mut in_flight = std::collections::HashSet::new();
    let mut next = 0;
    for round in 0..3 {
        let cap = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-K", "--sync", "never"]);
        for _ in 0..300 {
            let s = format!("packet {next}");
            pty.send(format!("{s}\r\n").as_bytes());
            sent.push(s);
            next += 1;
        }
        let confirmed = sent.clone();
        dir.wait_for("all lines of this round", |l| count_readings(l) >= confirmed.len() - in_flight.len());
        let before_kill = dir.readings();
        for _ in 0..50 {
            let s = format!("packet {next}");
            pty.send(format!("{s}\r\n").as_bytes());
            in_flight.insert(s.clone());
            sent.push(s);
            next += 1;
        }
        cap.kill();
        let after_kill = dir.readings();
        assert_eq!(&after_kill[..before_kill.len()], &before_kill[..], "round {round}: written lines changed");
        let lines = dir.log_lines();
        assert!(lines.iter().all(|l| l.starts_with("L ") || l.starts_with("# ")), "round {round}: a torn line after SIGKILL");
    }
    // A last capture reads what was still buffered in the pseudo-terminal, then stops cleanly.
    let cap = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-K"]);
    pty.send(b"final\r\n");
    dir.wait_for("the final line", |l| l.iter().any(|l| l.ends_with(" final")));
    cap.terminate();
    sent.push("final".into());
    let got = dir.readings();
    // In order and never duplicated: the log is a subsequence of what was sent.
    let mut it = sent.iter();
    for g in &got {
        assert!(it.any(|s| s == g), "{g:?} is duplicated or out of order");
    }
    let missing: Vec<&String> = sent.iter().filter(|s| !got.contains(s)).collect();
    assert!(missing.iter().all(|m| in_flight.contains(*m)), "lost lines that were not in flight at a kill: {missing:?}");
    eprintln!("{} of {} lines were in flight at the 3 kills and lost with the process", missing.len(), in_flight.len());
    let v = dir.verify();
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn a_device_that_disappears_is_reopened_through_a_repointed_symlink() {
    let dir = Dir::new();
    let link = dir.path().join("ttyRF12");
    // Scenario 10: the device is absent when capture starts.
    let cap = dir.spawn(&["capture", "--port", link.to_str().unwrap(), "--source", "usb-RF"]);
    dir.wait_for("unavailable note", |l| l.iter().any(|l| l.contains(" unavailable source=usb-RF ")));
    let mut first = Pty::new();
    std::os::unix::fs::symlink(&first.path, &link).unwrap();
    dir.wait_for("connect", |l| l.iter().any(|l| l.contains(" connect source=usb-RF")));
    first.send(b"from the first adapter\r\nhalf a li");
    dir.wait_for("first line", |l| count_readings(l) == 1);
    // Unplugged mid-line: the pseudo-terminal goes away.
    drop(first);
    dir.wait_for("disconnect", |l| l.iter().any(|l| l.contains(" disconnect source=usb-RF")));
    // Replugged under another name; the by-id style symlink now points there.
    let mut second = Pty::new();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&second.path, &link).unwrap();
    dir.wait_for("reconnect", |l| l.iter().filter(|l| l.contains(" connect source=usb-RF")).count() == 2);
    second.send(b"from the second adapter\r\n");
    dir.wait_for("second line", |l| l.iter().any(|l| l.ends_with("from the second adapter")));
    // The device flaps: unplugged and replugged several times. No descriptor may leak.
    let fds = cap.open_fds();
    let mut current = second;
    for flap in 0..4 {
        drop(current);
        dir.wait_for("disconnect", |l| l.iter().filter(|l| l.contains(" disconnect source=usb-RF")).count() == 2 + flap);
        current = Pty::new();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&current.path, &link).unwrap();
        dir.wait_for("reconnect", |l| l.iter().filter(|l| l.contains(" connect source=usb-RF")).count() == 3 + flap);
    }
    assert_eq!(cap.open_fds(), fds, "file descriptors leaked across reconnects");
    let out = cap.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dir.readings(), ["from the first adapter", "half a li", "from the second adapter"]);
    let lines = dir.log_lines();
    let cut = lines.iter().position(|l| l.contains(" cut source=usb-RF reason=disconnect bytes=9")).expect("partial line flagged");
    assert!(lines[cut + 1].ends_with(" usb-RF half a li"));
}

#[test]
fn no_cpu_is_used_while_idle_or_while_waiting_for_a_device() {
    let dir = Dir::new();
    let pty = Pty::new();
    let idle = dir.spawn(&["capture", "--port", &pty.path, "--logs", "idle"]);
    let absent = dir.spawn(&["capture", "--port", "/dev/does-not-exist", "--logs", "absent"]);
    let start = Instant::now();
    while !(dir.path().join("idle/.lock").exists() && dir.path().join("absent/.lock").exists()) {
        assert!(start.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(10));
    }
    let (a, b) = (idle.cpu_ticks(), absent.cpu_ticks());
    // The measurement window: a busy loop would use all of it (100 ticks per second).
    std::thread::sleep(Duration::from_secs(2));
    let (a2, b2) = (idle.cpu_ticks(), absent.cpu_ticks());
    assert!(a2 - a <= 5, "idle capture used {} ticks in 2 s", a2 - a);
    assert!(b2 - b <= 5, "capture waiting for a device used {} ticks in 2 s", b2 - b);
    drop(pty);
}

#[test]
fn a_second_capture_on_the_same_log_directory_is_refused() {
    let dir = Dir::new();
    let pty = Pty::new();
    let first = dir.spawn(&["capture", "--port", &pty.path]);
    dir.wait_for("start", |l| l.iter().any(|l| l.contains(" connect ")));
    let out = dir.run_with_stdin(&["capture", "--stdin"], b"interloper\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is already being written by another capture (pid "), "{err}");
    first.terminate();
    assert!(!dir.readings().contains(&"interloper".to_string()));
}

#[test]
fn a_port_held_by_another_capture_is_reported_and_nothing_interleaves() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    let first = dir.spawn(&["capture", "--port", &pty.path, "--logs", "a"]);
    pty.send(b"marker\r\n");
    let logs_a = dir.path().join("a");
    let start = Instant::now();
    while !all_text(&logs_a).contains("marker") {
        assert!(start.elapsed() < DEADLINE, "first capture never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = dir.spawn(&["capture", "--port", &pty.path, "--logs", "b"]);
    let logs_b = dir.path().join("b");
    let start = Instant::now();
    let text = loop {
        let text = all_text(&logs_b);
        if text.contains(" unavailable ") {
            break text;
        }
        assert!(start.elapsed() < DEADLINE, "second capture did not report the busy port");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(text.contains("in use by another process"), "{text}");
    pty.send(b"only for the first\r\n");
    let start = Instant::now();
    while !all_text(&logs_a).contains("only for the first") {
        assert!(start.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(10));
    }
    second.terminate();
    first.terminate();
    let b_text = all_text(&logs_b);
    assert!(!b_text.contains("L "), "the second capture read from a port it does not own:\n{b_text}");
}

#[test]
fn sigterm_and_sigint_write_everything_received_including_a_partial_line() {
    for (sig, name) in [(Signal::TERM, "SIGTERM"), (Signal::INT, "SIGINT")] {
        let dir = Dir::new();
        let mut pty = Pty::new();
        let cap = dir.spawn(&["capture", "--port", &pty.path, "--sync", "never"]);
        dir.wait_for("connect", |l| l.iter().any(|l| l.contains(" connect ")));
        pty.send(b"complete\r\nno terminator yet");
        dir.wait_for("complete", |l| count_readings(l) == 1);
        // The partial line is in capture's memory only; stop must not lose it.
        // Give the bytes time to cross the pty before signalling: poll the pty's queue instead of sleeping.
        let start = Instant::now();
        while serialport::SerialPort::bytes_to_write(&pty.master).unwrap_or(0) > 0 || pty_queue(&pty) > 0 {
            assert!(start.elapsed() < DEADLINE);
            std::thread::sleep(Duration::from_millis(5));
        }
        cap.signal(sig);
        let out = cap.wait();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let lines = dir.log_lines();
        assert_eq!(dir.readings(), ["complete", "no terminator yet"], "{name}");
        assert!(lines.iter().any(|l| l.contains(" cut source=pts-") && l.contains("reason=stop bytes=17")), "{name}: {lines:?}");
        assert!(lines.last().unwrap().contains(&format!(" stop reason={name} readings=2")), "{lines:?}");
    }
}

/// Bytes waiting in the pseudo-terminal for capture to read.
fn pty_queue(pty: &Pty) -> u32 {
    pty.slave.as_ref().map(|s| serialport::SerialPort::bytes_to_read(s).unwrap_or(0)).unwrap_or(0)
}

#[test]
fn init_and_scheduled_commands_are_sent_and_their_answers_captured() {
    let dir = Dir::new();
    let mut pty = Pty::new();
    std::fs::write(
        dir.path().join("blackbox.toml"),
        format!(
            "[[source]]\nname = \"ups\"\nport = \"{}\"\nbaud = 9600\ninit = [\"8b\", \"5g\"]\ncommand_eol = \"\\r\"\n[[source.poll]]\ncommand = \"Show Faults\"\nevery = \"300ms\"\n",
            pty.path
        ),
    )
    .unwrap();
    let cap = dir.spawn(&["capture"]);
    let got = pty.read_until("Show Faults\r");
    assert!(got.starts_with("8b\r5g\r"), "{got:?}");
    pty.send(b"No faults\r\n");
    // The poll repeats on its schedule.
    let again = pty.read_until("Show Faults\r");
    assert!(again.contains("Show Faults\r"));
    pty.send(b"Fault 17: battery\r\n");
    dir.wait_for("answers", |l| count_readings(l) == 2);
    cap.terminate();
    assert_eq!(dir.readings(), ["No faults", "Fault 17: battery"]);
    assert!(dir.log_lines().iter().all(|l| !l.starts_with("L ") || l.contains(" ups ")));
}

#[test]
fn an_overlong_line_is_cut_into_marked_pieces_without_losing_a_byte() {
    let dir = Dir::new();
    // A megabyte without a terminator, as a device at the wrong baud rate can send.
    let long: String = (0..1_000_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let input = format!("short\n{long}\nafter\n");
    let out = dir.run_with_stdin(&["capture", "--stdin", "--max-line", "4096"], input.as_bytes());
    assert!(out.status.success());
    let readings = dir.readings();
    let pieces = 1_000_000usize.div_ceil(4096);
    assert_eq!(readings.len(), 2 + pieces);
    assert!(readings[1..pieces].iter().all(|r| r.len() == 4096));
    assert_eq!(readings[1..=pieces].concat(), long);
    assert_eq!(readings.last().unwrap(), "after");
    let cuts = dir.log_lines().iter().filter(|l| l.contains(" cut source=stdin reason=overlong bytes=4096")).count();
    assert_eq!(cuts, pieces - 1);
}

#[test]
fn a_tcp_source_reconnects_after_the_server_drops_it() {
    let dir = Dir::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cap = dir.spawn(&["capture", "--tcp", &addr, "--source", "ser2net"]);
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"first\r\n").unwrap();
    dir.wait_for("first", |l| count_readings(l) == 1);
    drop(conn);
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"second\r\n").unwrap();
    dir.wait_for("second", |l| count_readings(l) == 2);
    cap.terminate();
    let lines = dir.log_lines();
    assert_eq!(dir.readings(), ["first", "second"]);
    assert!(lines.iter().any(|l| l.contains(" disconnect source=ser2net reason=eof")), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains(&format!(" connect source=ser2net addr={addr}"))).count(), 2);
}

#[test]
fn a_torn_tail_left_by_a_power_cut_is_repaired_on_start() {
    let dir = Dir::new();
    let out = dir.run_with_stdin(&["capture", "--stdin"], b"one\ntwo\n");
    assert!(out.status.success());
    let day = logfile::scan(&dir.logs()).unwrap().days[0].path.clone();
    // Power cut mid-write: half a line and a block of zeros at the end.
    std::fs::OpenOptions::new().append(true).open(&day).unwrap().write_all(b"L 12:00:00.000 stdin thr\0\0\0").unwrap();
    let bad = dir.verify();
    assert_eq!(bad.status.code(), Some(1), "verify must flag the torn line");
    let out = dir.run_with_stdin(&["capture", "--stdin"], b"three\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dir.readings(), ["one", "two", "three"], "the fragment fused with the next reading or was read as one");
    let lines = dir.log_lines();
    assert!(lines.iter().any(|l| l.contains(" torn file=") && l.ends_with("text=L 12:00:00.000 stdin thr\\x00\\x00\\x00")), "{lines:?}");
    assert!(dir.verify().status.success());
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let dir = Dir::new();
    let out = dir.run(&["capture"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no source to capture: give --port PATH, --tcp HOST:PORT or --stdin"), "{}", stderr(&out));
    let out = dir.run(&["capture", "--stdin", "--sync", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid sync policy"), "{}", stderr(&out));
    let out = dir.run(&["capture", "--stdin", "--source", "has space"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(dir.path().join("blackbox.toml"), "[[source]]\nprot = 1\n").unwrap();
    let out = dir.run(&["capture"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("blackbox.toml") && stderr(&out).contains("prot"), "{}", stderr(&out));
    let out = dir.run(&["capture", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    // Issue 12: errors about a [[source]] name the file and the line of its table.
    std::fs::write(dir.path().join("blackbox.toml"), "[capture]\nsync = \"always\"\n\n[[source]]\nname = \"has space\"\nstdin = true\n")
        .unwrap();
    let out = dir.run(&["capture"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: blackbox.toml:4: source name \"has space\" contains ' '"), "{}", stderr(&out));
    std::fs::write(dir.path().join("blackbox.toml"), "[[source]]\nstdin = true\n\n[[source]]\nport = \"/dev/x\"\nframing = \"9N1\"\n")
        .unwrap();
    let out = dir.run(&["capture"]);
    assert!(stderr(&out).starts_with("error: blackbox.toml:4: [[source]] number 2: invalid framing \"9N1\""), "{}", stderr(&out));
}

/// A 256 KiB tmpfs with about 16 KiB left free by a ballast file, unmounted
/// when dropped. Mounting needs root (CI runs as root); without it the tests
/// that use it say so and pass, since the injected-failure tests in
/// crates/logfile/tests/writer.rs cover a full disk without it.
struct SmallDisk {
    mnt: std::path::PathBuf,
    ballast: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Dir) -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            // CI runs as root: there, a test that cannot run fails instead of skipping.
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run as root: this test mounts a small tmpfs");
            eprintln!("SKIPPED: mounting a small tmpfs needs root; the injected-failure test in crates/logfile/tests/writer.rs covers disk full without it (CI runs as root)");
            return None;
        }
        let mnt = dir.path().join("small");
        std::fs::create_dir(&mnt).unwrap();
        let status =
            std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"]).arg(&mnt).status().expect("mount");
        assert!(status.success(), "mounting a tmpfs failed although running as root");
        let ballast = mnt.join("ballast");
        std::fs::write(&ballast, vec![0u8; 240 * 1024]).ok();
        Some(Self { mnt, ballast })
    }

    fn logs(&self) -> std::path::PathBuf {
        self.mnt.join("logs")
    }

    /// Gives the space back.
    fn free(&self) {
        std::fs::remove_file(&self.ballast).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.mnt).status();
    }
}

/// `capture --stdin` into `logs` with its stdin and stderr piped.
fn spawn_stdin_capture(dir: &Dir, logs: &std::path::Path) -> (Proc, std::process::ChildStdin, StderrLines) {
    let child = dir
        .cmd(&["capture", "-v", "--stdin", "--logs", logs.to_str().unwrap(), "--sync", "always"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut cap = Proc { child };
    let stdin = cap.child.stdin.take().unwrap();
    let err = cap.stderr_lines();
    (cap, stdin, err)
}

fn padded_lines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("reading number {i:05} with some padding text")).collect()
}

fn send_all(stdin: &mut std::process::ChildStdin, lines: &[String]) {
    for s in lines {
        writeln!(stdin, "{s}").unwrap();
    }
    stdin.flush().unwrap();
}

fn readings_in(logs: &std::path::Path) -> Vec<String> {
    let text = all_text(logs);
    text.lines().filter_map(|l| l.strip_prefix("L ")).map(|l| l.splitn(3, ' ').nth(2).unwrap().to_string()).collect()
}

/// Scenario 16 on a real full file system: a small tmpfs, filled up, then freed.
#[test]
fn disk_full_on_a_real_file_system_holds_lines_and_resumes() {
    let dir = Dir::new();
    let Some(disk) = SmallDisk::mount(&dir) else { return };
    let logs = disk.logs();
    let (cap, mut stdin, mut err) = spawn_stdin_capture(&dir, &logs);
    let sent = padded_lines(1000);
    send_all(&mut stdin, &sent);
    err.wait_for("cannot write the log");
    disk.free();
    drop(stdin);
    let out = cap.wait();
    assert!(out.status.success());
    let text = all_text(&logs);
    assert_eq!(readings_in(&logs), sent, "lines lost or duplicated across the full disk");
    assert!(text.lines().any(|l| l.contains(" disk-full since=")), "no disk-full note:\n{text}");
    let report = logfile::verify::verify(&logs).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Issue 12: the input ends while the disk is full. Capture keeps retrying,
/// as it does while the input is open, and exits 0 once every line is written.
#[test]
fn disk_full_at_the_end_of_input_keeps_retrying_until_every_line_is_written() {
    let dir = Dir::new();
    let Some(disk) = SmallDisk::mount(&dir) else { return };
    let logs = disk.logs();
    let (mut cap, mut stdin, mut err) = spawn_stdin_capture(&dir, &logs);
    let sent = padded_lines(1000);
    send_all(&mut stdin, &sent);
    err.wait_for("cannot write the log");
    drop(stdin);
    let note = err.wait_for("end of input while lines are held");
    assert!(note.contains("SIGTERM or Ctrl-C gives up and reports what is lost"), "{note}");
    // A retry after the end of input failed, and capture is still waiting for room.
    err.wait_for("the log still cannot be written; retrying");
    assert!(cap.child.try_wait().unwrap().is_none(), "capture gave up at the end of its input");
    disk.free();
    err.wait_for("every held line is written");
    let out = cap.wait();
    assert!(out.status.success(), "{:?}", out.status);
    let text = all_text(&logs);
    assert_eq!(readings_in(&logs), sent, "lines lost or duplicated across the full disk");
    assert!(text.lines().any(|l| l.contains(" disk-full since=") && l.contains(" dropped=0 ")), "no disk-full note:\n{text}");
    assert!(text.lines().last().unwrap().contains(" stop reason=end-of-input readings=1000"), "{text}");
    let report = logfile::verify::verify(&logs).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Issue 12: a signal is the only thing that ends that wait, and capture then
/// says exactly which readings it could not write.
#[test]
fn a_signal_while_lines_are_held_at_the_end_of_input_reports_exactly_what_is_lost() {
    let dir = Dir::new();
    let Some(disk) = SmallDisk::mount(&dir) else { return };
    let logs = disk.logs();
    let (cap, mut stdin, mut err) = spawn_stdin_capture(&dir, &logs);
    let sent = padded_lines(1000);
    send_all(&mut stdin, &sent);
    err.wait_for("cannot write the log");
    drop(stdin);
    err.wait_for("end of input while lines are held");
    cap.signal(Signal::TERM);
    let report = err.wait_for("were held in memory and are lost");
    let out = cap.wait();
    assert_eq!(out.status.code(), Some(1), "{report}");
    let written = readings_in(&logs);
    assert_eq!(written[..], sent[..written.len()], "the lines written are not the first ones sent");
    let lost = sent.len() - written.len();
    assert!(lost > 0, "nothing was held");
    assert!(report.contains(&format!("{lost} readings received from ")), "{lost} readings are missing; capture said: {report}");
    assert!(report.contains(" could not be written (") && !report.contains("more lines had been dropped"), "{report}");
}

#[test]
fn several_sources_in_one_process_are_each_tagged_with_their_name() {
    let dir = Dir::new();
    let mut rf = Pty::new();
    let mut ups = Pty::new();
    std::fs::write(
        dir.path().join("blackbox.toml"),
        format!(
            "[[source]]\nname = \"usb-RF\"\nport = \"{}\"\n\n[[source]]\nname = \"ups\"\nport = \"{}\"\nbaud = 9600\nframing = \"8N1\"\n",
            rf.path, ups.path
        ),
    )
    .unwrap();
    let cap = dir.spawn(&["capture", "-v"]);
    dir.wait_for("both connected", |l| l.iter().filter(|l| l.contains(" connect source=")).count() == 2);
    for i in 0..50 {
        rf.send(format!("OK 2 {i}\r\n").as_bytes());
        ups.send(format!("status {i}\r").as_bytes());
    }
    dir.wait_for("100 readings", |l| count_readings(l) == 100);
    let out = cap.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = dir.log_lines();
    let of = |source: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("L "))
            .filter(|l| l.split(' ').nth(1) == Some(source))
            .map(|l| l.splitn(3, ' ').nth(2).unwrap().to_string())
            .collect()
    };
    assert_eq!(of("usb-RF"), (0..50).map(|i| format!("OK 2 {i}")).collect::<Vec<_>>());
    assert_eq!(of("ups"), (0..50).map(|i| format!("status {i}")).collect::<Vec<_>>());
    assert!(lines[0].contains(" start ") && lines[0].contains("sources=usb-RF,ups"), "{}", lines[0]);
    let v = dir.verify();
    assert!(v.status.success(), "timestamps across sources must never decrease: {}", stdout(&v));
}

#[test]
fn a_missing_port_is_reported_with_the_ports_that_exist_and_retried() {
    let dir = Dir::new();
    // A short backoff cap, so that every step of it is seen in a moment.
    std::fs::write(dir.path().join("blackbox.toml"), "[capture]\nreconnect_max = \"400ms\"\n").unwrap();
    let mut capture = dir.spawn(&["capture", "--port", "/dev/ttyUSB-not-here", "--source", "gone"]);
    let mut err = capture.stderr_lines();
    dir.wait_for("the unavailable note", |l| l.iter().any(|l| l.contains(" unavailable source=gone ")));
    err.wait_for("from now on it is tried every 0.4 s");
    let out = capture.terminate();
    assert!(out.status.success());
    let note = dir.log_lines().into_iter().find(|l| l.contains(" unavailable source=gone ")).unwrap();
    assert!(note.contains("/dev/ttyUSB-not-here") && note.contains("(no such device; "), "{note}");
    assert!(note.contains("ports here: ") || note.contains("no serial ports"), "{note}");
    // Issue 12: a path that never existed is an error, and the wait is said at
    // each step of the backoff up to its cap, then no more.
    let shown: Vec<String> = err.all().iter().map(|l| without_time_and_ports(l)).collect();
    insta::assert_snapshot!("capture-missing-port", shown.join("\n"));
}

/// A stderr line of tracing without its timestamp, and without the list of
/// this machine's ports.
fn without_time_and_ports(line: &str) -> String {
    let line = line.split_once(' ').map_or(line, |(_, rest)| rest).trim_start();
    match (line.find("(no such device; "), line.rfind(')')) {
        (Some(a), Some(b)) if a < b => format!("{}(no such device; PORTS){}", &line[..a], &line[b + 1..]),
        _ => line.to_string(),
    }
}

/// Issue 12: the source name of a by-id path that does not follow udev's
/// `usb-VENDOR_PRODUCT_SERIAL` form keeps its bus prefix once.
#[test]
fn a_by_id_path_without_a_serial_number_is_named_without_a_doubled_prefix() {
    let dir = Dir::new();
    let capture = dir.spawn(&["capture", "--port", "/dev/serial/by-id/usb-nothing-here"]);
    dir.wait_for("the unavailable note", |l| l.iter().any(|l| l.contains(" unavailable source=")));
    capture.terminate();
    let note = dir.log_lines().into_iter().find(|l| l.contains(" unavailable source=")).unwrap();
    assert!(note.contains(" unavailable source=usb-nothing-here "), "{note}");
}
