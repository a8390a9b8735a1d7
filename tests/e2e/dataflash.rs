//! `dataflash = true` end to end: the real `blackbox capture` talks to a
//! simulated JeeLink (`sim::Receiver`, the firmware's dataflash logic) on a
//! pseudo-terminal, is killed with SIGKILL while the receiver keeps hearing
//! and saving packets, comes back, asks for the replay, and the real
//! `blackbox index` then holds every radioBlip ping the receiver heard
//! exactly once, at the time it was heard (docs/dataflash.md).

use crate::harness::*;
use serialport::SerialPort;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One packet every 25 ms of real time: a 248-byte page holds about 30
/// packets, so the receiver saves a page every second or so.
const PACKET_EVERY: Duration = Duration::from_millis(25);
/// Pages the receiver saves while capture is down: they come back by the replay.
const PAGES_WHILE_DOWN: usize = 3;
/// How far from when it was heard a ping may be placed (docs/dataflash.md).
const PRECISION_MS: i64 = 1500;

/// What the test tells the simulated receiver.
enum Ctl {
    /// Capture has the port open: print to it (the first time, the receiver starts).
    Connect,
    /// Capture is gone: what the receiver prints is lost (it still saves to flash).
    Disconnect,
    Stop,
}

/// What the simulated receiver tells the test.
enum Event {
    /// A [`Ctl`] was carried out.
    Done,
    /// A page was saved (`DF S`) while nobody listened.
    SavedUnheard,
}

/// What the simulated receiver did.
struct SimEnd {
    rx: sim::Receiver,
    /// The lines printed to capture, per connection.
    printed: Vec<Vec<String>>,
    /// Commands received from capture.
    commands: Vec<String>,
    /// Bytes capture sent while a replay was being printed.
    during_replay: Vec<String>,
    /// The device end, kept open: capture would see a hangup.
    _master: serialport::TTYPort,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

fn print(master: &mut serialport::TTYPort, lines: &[String], log: &mut Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    // Writes wait for capture to read, however loaded the machine.
    master.set_timeout(Duration::from_secs(60)).expect("pty timeout");
    master.write_all(text.as_bytes()).expect("write to pty");
    master.flush().expect("flush pty");
    log.extend_from_slice(lines);
}

/// The receiver: hears a packet every [`PACKET_EVERY`] (at real UTC
/// milliseconds), prints while capture is connected, and answers commands.
fn simulate(mut master: serialport::TTYPort, ctl: Receiver<Ctl>, events: Sender<Event>) -> SimEnd {
    let mut rx = sim::Receiver::new(8, 400);
    let mut connected = false;
    let mut booted = false;
    let mut printed: Vec<Vec<String>> = Vec::new();
    let mut commands = Vec::new();
    let mut during_replay = Vec::new();
    let mut from_capture: Vec<u8> = Vec::new();
    let mut next = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match ctl.try_recv() {
            Ok(Ctl::Connect) => {
                connected = true;
                printed.push(Vec::new());
                if !booted {
                    // A JeeLink starts when its port is first opened.
                    booted = true;
                    let lines = rx.boot(now_ms());
                    print(&mut master, &lines, printed.last_mut().unwrap());
                    next = Instant::now() + PACKET_EVERY;
                }
                let _ = events.send(Event::Done);
            }
            Ok(Ctl::Disconnect) => {
                connected = false;
                let _ = events.send(Event::Done);
            }
            Ok(Ctl::Stop) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        // Commands from capture, until the next packet is due (the radio's pace).
        let wait = next.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        master.set_timeout(wait).expect("pty timeout");
        match master.read(&mut buf) {
            Ok(n) => from_capture.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read from pty: {e}"),
        }
        while let Some(end) = from_capture.iter().position(|&b| b == b'\r') {
            let bytes: Vec<u8> = from_capture.drain(..=end).collect();
            let cmd = String::from_utf8_lossy(&bytes[..end]).trim().to_string();
            let answer = rx.command(&cmd, now_ms());
            let replay = cmd.ends_with('r');
            commands.push(cmd);
            if connected && replay {
                // A line at a time, as the firmware prints it at 57,600 baud
                // (a few ms a line); any byte from capture meanwhile would
                // end the firmware's replay.
                for (i, line) in answer.iter().enumerate() {
                    print(&mut master, std::slice::from_ref(line), printed.last_mut().unwrap());
                    if i + 1 == answer.len() {
                        break; // the replay is over (`DF E`)
                    }
                    master.set_timeout(Duration::from_millis(3)).expect("pty timeout");
                    match master.read(&mut buf) {
                        Ok(n) => during_replay.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(e) => panic!("read from pty: {e}"),
                    }
                }
            } else if connected {
                print(&mut master, &answer, printed.last_mut().unwrap());
            }
        }
        if booted && Instant::now() >= next {
            next += PACKET_EVERY;
            let lines = rx.receive(now_ms());
            if connected {
                print(&mut master, &lines, printed.last_mut().unwrap());
            } else {
                for _ in lines.iter().filter(|l| l.starts_with("DF S ")) {
                    let _ = events.send(Event::SavedUnheard);
                }
            }
        }
    }
    SimEnd { rx, printed, commands, during_replay, _master: master }
}

/// Tells the receiver `what` and waits until it is done.
fn tell(ctl: &Sender<Ctl>, events: &Receiver<Event>, what: Ctl) {
    ctl.send(what).expect("the simulated receiver runs");
    let deadline = Instant::now() + DEADLINE;
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Done) => return,
            Ok(Event::SavedUnheard) => {}
            Err(e) => panic!("the simulated receiver did not answer: {e}"),
        }
    }
}

/// The text of a reading of source `jl` (`L HH:MM:SS.mmm jl TEXT`).
fn jl_text(line: &str) -> Option<&str> {
    line.strip_prefix("L ")?.split_once(' ')?.1.strip_prefix("jl ")
}

fn is_connect(line: &str) -> bool {
    line.starts_with("# ") && line.contains(" connect source=jl ")
}

fn connects(lines: &[String]) -> usize {
    lines.iter().filter(|l| is_connect(l)).count()
}

/// The readings of `jl` logged during its `n`th connection (from 0).
fn readings_of_connection(lines: &[String], n: usize) -> Vec<String> {
    let mut k = 0;
    let mut out = Vec::new();
    for l in lines {
        if is_connect(l) {
            k += 1;
        } else if k == n + 1 {
            if let Some(t) = jl_text(l) {
                out.push(t.to_string());
            }
        }
    }
    out
}

/// Whether a reading is the end of a replay: `DF E <last> <seq> <millis>`.
fn is_replay_end(text: &str) -> bool {
    let words: Vec<&str> = text.split(' ').collect();
    words.len() == 5 && words[..2] == ["DF", "E"] && words[2..].iter().all(|w| w.parse::<u64>().is_ok())
}

/// The radioBlip ping of an `OK 3 b0 b1 b2 b3` line (a little-endian count).
fn ping(line: &str) -> Option<u32> {
    let b: Vec<u8> = line.strip_prefix("OK 3 ")?.split(' ').map(|b| b.parse().expect("a byte")).collect();
    Some(u32::from_le_bytes(b[..4].try_into().expect("four bytes")))
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "status {:?}\nstderr: {}", out.status, stderr(out));
    stdout(out)
}

#[test]
fn a_capture_killed_for_seconds_gets_what_the_receiver_heard_back_from_its_dataflash() {
    let dir = Dir::new();
    let Pty { master, slave, path } = Pty::new();
    let slave = slave.expect("the slave end");
    // Capture opens its port by path at every (re)connect, as a by-id symlink.
    let link = dir.path().join("receiver");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    std::fs::write(
        dir.path().join("blackbox.toml"),
        format!(
            "[[source]]\nname = \"jl\"\nport = \"{}\"\ndecoder = \"rf12demo\"\ndataflash = true\ninit = [\"8b\"]\n[[source.poll]]\ncommand = \"v\"\nevery = \"100ms\"\n\n[rf12.nodes]\n2 = \"roomNode\"\n3 = \"radioBlip\"\n4 = \"roomNode\"\n5 = \"roomNode\"\n9 = \"homePower\"\n",
            link.display()
        ),
    )
    .unwrap();
    let (ctl, ctl_rx) = channel();
    let (events_tx, events) = channel();
    let receiver = std::thread::spawn(move || simulate(master, ctl_rx, events_tx));
    let started = Instant::now();

    // Capture listens to the receiver from its start.
    let capture = dir.spawn(&["capture"]);
    dir.wait_for("capture connects", |l| connects(l) == 1);
    tell(&ctl, &events, Ctl::Connect);
    // Three saved pages: at this pace the first two begin in second 0, so
    // two consecutive `DF S` lines tell the receiver's clock from the third
    // on. Then part of the next page, so that the replay brings packets that
    // were logged live.
    dir.wait_for("three saved pages and more packets", |l| {
        let r = readings_of_connection(l, 0);
        let saves: Vec<usize> = r.iter().enumerate().filter(|(_, t)| t.starts_with("DF S ")).map(|(i, _)| i).collect();
        saves.len() >= 3 && r.len() - saves[2] > 10
    });

    // Killed while the receiver talks: what capture had not written is lost
    // with it, and what was left in the terminal is dropped, as a serial port does.
    capture.kill();
    tell(&ctl, &events, Ctl::Disconnect);
    slave.clear(serialport::ClearBuffer::Input).expect("flush the terminal");
    let before_kill = dir.log_lines();
    let deadline = Instant::now() + DEADLINE;
    let mut saved_unheard = 0;
    while saved_unheard < PAGES_WHILE_DOWN {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::SavedUnheard) => saved_unheard += 1,
            Ok(Event::Done) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                panic!("the receiver saved {saved_unheard} pages while down")
            }
        }
    }

    // Back, without a reset of the receiver: capture asks for the replay once
    // the page being filled is saved.
    let capture = dir.spawn(&["capture"]);
    dir.wait_for("capture reconnects", |l| connects(l) == 2);
    tell(&ctl, &events, Ctl::Connect);
    dir.wait_for("the end of the replay", |l| readings_of_connection(l, 1).iter().any(|t| is_replay_end(t)));
    dir.wait_for("a page saved after the replay", |l| {
        let r = readings_of_connection(l, 1);
        let end = r.iter().position(|t| is_replay_end(t)).unwrap();
        r[end..].iter().any(|t| t.starts_with("DF S "))
    });
    ctl.send(Ctl::Stop).unwrap();
    let sim = receiver.join().expect("the simulated receiver");
    // Everything printed since the reconnect is logged before capture stops.
    let printed = sim.printed[1].clone();
    dir.wait_for("every line printed since the reconnect", |l| readings_of_connection(l, 1).len() >= printed.len());
    let out = capture.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = dir.log_lines();

    // The log: the first connection lost at most its tail at the kill; the
    // second one holds what was printed, one for one.
    let first = readings_of_connection(&lines, 0);
    assert_eq!(first[..], sim.printed[0][..first.len()], "the first connection's log is not a prefix of what was printed");
    assert_eq!(readings_of_connection(&before_kill, 0), first, "a killed capture's log changed");
    assert_eq!(readings_of_connection(&lines, 1), printed);
    // One replay, asked from the last page logged before the kill: its seq,
    // and its time less one second (pages can begin in the same second).
    let last_saved = first.iter().rev().find_map(|t| t.strip_prefix("DF S ")).expect("a page saved before the kill");
    let n: Vec<u32> = last_saved.split(' ').map(|w| w.parse().unwrap()).collect();
    let [sh, sl] = (n[1] as u16).to_be_bytes();
    let [t3, t2, t1, t0] = n[2].saturating_sub(1).to_be_bytes();
    let replays: Vec<&String> = sim.commands.iter().filter(|c| c.ends_with(" r")).collect();
    assert_eq!(replays, [&format!("{sh},{sl},{t3},{t2},{t1},{t0} r")], "capture asked for the replay once, after page {}", n[0]);
    assert!(
        sim.commands.iter().any(|c| c == "v") && sim.commands.iter().any(|c| c == "8b"),
        "init and polls were sent: {:?}",
        sim.commands
    );
    // The firmware ends a replay at any input: capture holds init and polls meanwhile.
    assert!(sim.during_replay.is_empty(), "capture sent {:?} during the replay", sim.during_replay);
    let v = dir.verify();
    assert!(v.status.success(), "{}", stdout(&v));

    // The index: every ping the receiver heard, once, at the time it was heard.
    ok(&dir.run(&["index"]));
    let json = ok(&dir.run(&["query", "jl/radioBlip-3/ping", "--format", "json"]));
    let mut got: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for l in json.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().expect("time")).expect("an RFC 3339 time");
        let p = u32::try_from(v["value"].as_i64().expect("an integer ping")).unwrap();
        got.entry(p).or_default().push(time.timestamp_millis());
    }
    let heard: BTreeMap<u32, i64> = sim.rx.heard().iter().filter_map(|(t, l)| Some((ping(l)?, *t))).collect();
    let twice: Vec<_> = got.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(twice.is_empty(), "pings indexed more than once: {twice:?}");
    let missing: Vec<_> = heard.keys().filter(|p| !got.contains_key(p)).collect();
    assert!(missing.is_empty(), "pings heard but not indexed: {missing:?}");
    let extra: Vec<_> = got.keys().filter(|p| !heard.contains_key(p)).collect();
    assert!(extra.is_empty(), "pings indexed but never heard: {extra:?}");
    let mut worst = 0;
    for (p, t) in &got {
        let off = t[0] - heard[p];
        assert!(off.abs() <= PRECISION_MS, "ping {p} placed {off} ms from when it was heard");
        worst = worst.max(off.abs());
    }
    // Pings that only the replay could give: heard while capture was down.
    let printed_pings: BTreeSet<u32> = sim.printed.iter().flatten().filter_map(|l| ping(l)).collect();
    let logged_live: BTreeSet<u32> = first.iter().chain(&printed).filter_map(|l| ping(l)).collect();
    let replayed: Vec<&u32> = heard.keys().filter(|p| !logged_live.contains(p)).collect();
    let unprinted = heard.keys().filter(|p| !printed_pings.contains(p)).count();
    assert!(unprinted > 0 && replayed.len() >= unprinted, "the outage had radioBlip packets");

    let stats = ok(&dir.run(&["stats"]));
    let line =
        stats.lines().find(|l| l.starts_with("jl: dataflash replays gave ")).unwrap_or_else(|| panic!("no dataflash line:\n{stats}"));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    // gave N readings (A placed approximately), K logged already, U without a known time, D damaged pages
    let [replayed_readings, approximate, known, unplaced, damaged] = nums[..] else { panic!("{line}") };
    assert!(replayed_readings > 0, "{line}");
    assert_eq!((approximate, unplaced, damaged), (0, 0, 0), "{line}");
    eprintln!(
        "{} pings heard, {} only replayed ({unprinted} while nobody listened), worst placement {worst} ms; {known} replayed packets logged already; {:.1} s",
        heard.len(),
        replayed.len(),
        started.elapsed().as_secs_f64()
    );
}
