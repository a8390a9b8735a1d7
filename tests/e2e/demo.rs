//! `blackbox demo` and `blackbox ports` end to end.

use crate::harness::*;
use rustix::process::Signal;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demo as a person runs it: in a terminal (a pseudo-terminal that is
/// its controlling terminal, via `setsid --ctty`), stopped by typing Ctrl-C.
#[test]
fn the_demo_in_a_terminal_captures_indexes_shows_decoded_and_stops_on_ctrl_c() {
    use serialport::SerialPort;
    let dir = Dir::new();
    let (mut master, slave) = serialport::TTYPort::pair().expect("pseudo-terminal pair");
    let tty = slave.name().expect("pty name");
    let open = || std::fs::OpenOptions::new().read(true).write(true).open(&tty).expect("open the terminal");
    // A terminal as a shell leaves it: Ctrl-C raises SIGINT (serialport makes pairs raw).
    {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, OutputModes};
        let t = open();
        let mut attrs = tcgetattr(&t).expect("tcgetattr");
        attrs.local_modes |= LocalModes::ISIG | LocalModes::ICANON | LocalModes::ECHO;
        attrs.output_modes |= OutputModes::OPOST | OutputModes::ONLCR;
        tcsetattr(&t, OptionalActions::Now, &attrs).expect("tcsetattr");
    }
    let child = Command::new("setsid")
        .args(["--ctty", BIN, "demo", "--rate", "100"])
        .current_dir(dir.path())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env("TERM", "xterm")
        .env(logfile::clock::CLOCK_FILE_ENV, dir.path().join("clock"))
        .stdin(Stdio::from(open()))
        .stdout(Stdio::from(open()))
        .stderr(Stdio::from(open()))
        .spawn()
        .expect("spawn setsid blackbox demo");
    // Killed if the test fails (`setsid` execs blackbox: same process).
    let mut demo = Proc { child };
    // The test keeps the terminal open too: when the last process closes a
    // pseudo-terminal, Linux may hang it up before the master has read the
    // final output (seen in CI: the closing hints were lost). The reader
    // stops when told, once the end is on the screen.
    let _keep = slave;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Everything the demo shows on its terminal.
    let screen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (screen, done) = (screen.clone(), done.clone());
        let mut master = master.try_clone_native().expect("clone master");
        master.set_timeout(Duration::from_millis(50)).expect("timeout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                match master.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => screen.lock().unwrap().extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        })
    };
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    // Wait until the live view shows decoded readings of all node kinds, in colour.
    let start = Instant::now();
    while !["roomNode-2", "radioBlip-3", "homePower-9", "outside", "°C"].iter().all(|w| shown().contains(w)) {
        assert!(start.elapsed() < DEADLINE, "the demo showed no decoded readings:\n{}", shown());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(shown().contains("\x1b[1;32mroomNode-2\x1b[0m"), "a terminal gets colours");
    // Ctrl-C, typed.
    master.write_all(&[3]).expect("type Ctrl-C");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = demo.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(started.elapsed() < DEADLINE, "the demo did not stop on Ctrl-C:\n{}", shown());
        std::thread::sleep(Duration::from_millis(10));
    };
    // The demo has exited: its last words are on the way to the screen.
    let waited = Instant::now();
    while !shown().contains("Try next:") && waited.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.join().expect("reader");
    let screen = shown();
    assert!(status.success(), "{status:?}\n{screen}");
    assert!(screen.contains("wrote ./blackbox.toml"), "{screen}");
    assert!(screen.contains("# stop reason=SIGINT"), "the view shows capture's last line:\n{screen}");
    assert!(screen.contains("Try next:") && screen.contains("query usb-DEMO/roomNode-2/temp"), "{screen}");
    // The logs: intact, ending with the stop.
    let lines = dir.log_lines();
    assert!(lines.last().unwrap().contains(" stop reason=SIGINT"));
    assert!(dir.verify().status.success());
    // The cache: current without running `index`, equal to one built afresh from the logs.
    let query = dir.run(&["query", "usb-DEMO/roomNode-2/temp", "--format", "csv"]);
    assert!(query.status.success(), "{}", stderr(&query));
    assert!(stdout(&query).lines().count() > 1, "{}", stdout(&query));
    assert_cache_equals_a_fresh_index(&dir);
    // Run again, without a terminal: the same logs continue and the view goes to a pipe, without colours.
    let demo = dir.spawn(&["demo", "--rate", "200"]);
    let before = lines.iter().filter(|l| l.starts_with("L ")).count();
    dir.wait_for("20 more readings", |l| l.iter().filter(|l| l.starts_with("L ")).count() >= before + 20);
    demo.signal(Signal::INT);
    let out = demo.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains('\x1b') && stdout(&out).contains("usb-DEMO  roomNode-"), "{}", stdout(&out));
    assert!(!stderr(&out).contains("wrote ./blackbox.toml"), "the configuration is written once");
    assert_eq!(dir.log_lines().iter().filter(|l| l.contains(" start version=")).count(), 2);
    assert_cache_equals_a_fresh_index(&dir);
    assert!(dir.verify().status.success());
}

fn assert_cache_equals_a_fresh_index(dir: &Dir) {
    let export = dir.run(&["export"]);
    assert!(export.status.success(), "{}", stderr(&export));
    let fresh = Dir::new();
    std::fs::copy(dir.path().join("blackbox.toml"), fresh.path().join("blackbox.toml")).unwrap();
    let logs = dir.logs();
    let logs = logs.to_str().unwrap();
    assert!(fresh.run(&["--logs", logs, "index"]).status.success());
    let rebuilt = fresh.run(&["--logs", logs, "export"]);
    assert!(!stdout(&export).is_empty());
    assert_eq!(stdout(&export), stdout(&rebuilt), "the demo's cache differs from one built from its logs");
}

#[test]
fn the_demo_piped_into_head_ends_quietly() {
    let dir = Dir::new();
    let mut child = dir.cmd(&["demo", "--rate", "500"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 200];
    out.read_exact(&mut first).expect("the demo prints");
    drop(out);
    let proc = Proc { child };
    let done = proc.wait();
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(dir.verify().status.success());
    assert!(dir.log_lines().last().unwrap().contains(" stop reason="), "{:?}", dir.log_lines().last());
}

#[test]
fn ports_lists_without_failing() {
    let dir = Dir::new();
    let out = dir.run(&["ports"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).is_empty());
}

/// The radioBlip counters of the simulated node 3, in log order.
fn blip_counts(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| l.split_once(" usb-DEMO OK 3 ").map(|(_, b)| b))
        .map(|b| {
            let b: Vec<u8> = b.split(' ').map(|x| x.parse().unwrap()).collect();
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
        .collect()
}

/// Issue 12: a configuration of its own (here only a sync policy), without
/// a node map. The demo uses its simulated receiver's node map and says so,
/// honours the configuration's sync policy, continues the simulated
/// counters in a second run, and every command it suggests works.
#[test]
fn the_demo_with_a_configuration_lacking_a_node_map_suggests_only_commands_that_work() {
    let dir = Dir::new();
    std::fs::write(dir.path().join("blackbox.toml"), "# my site\n[capture]\nsync = \"always\"\n").unwrap();
    let demo = dir.spawn(&["demo", "--rate", "200"]);
    dir.wait_for("a few radioBlip packets", |l| blip_counts(l).len() >= 3);
    demo.signal(Signal::INT);
    let out = demo.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("blackbox.toml lacks the simulated receiver's node map and [[source]], so the demo uses ./blackbox-demo.toml"),
        "{err}"
    );
    assert!(stdout(&out).contains("usb-DEMO  roomNode-2"), "decoded with the demo's node map:\n{}", stdout(&out));
    let lines = dir.log_lines();
    assert!(lines[0].contains(" start ") && lines[0].contains(" sync=always "), "the configuration's sync policy: {}", lines[0]);
    let copy = std::fs::read_to_string(dir.path().join("blackbox-demo.toml")).unwrap();
    assert!(copy.contains("sync = \"always\"") && copy.contains("2 = \"roomNode\""), "{copy}");
    assert_eq!(std::fs::read_to_string(dir.path().join("blackbox.toml")).unwrap(), "# my site\n[capture]\nsync = \"always\"\n");
    // Every suggestion, as pasted into a shell (but another demo).
    let hints: Vec<&str> = err.split("Try next:\n").nth(1).expect("hints").lines().filter_map(|l| l.split("   # ").next()).collect();
    assert!(hints.len() >= 7, "{err}");
    assert!(hints[0].contains(" query usb-DEMO/roomNode-2/temp --from -10m"), "{hints:?}");
    // (Not the long-running ones: another demo, the dashboard.)
    for hint in hints.iter().map(|h| h.trim()).filter(|h| !h.ends_with(" demo") && !h.ends_with(" serve")) {
        let run = Command::new("sh").arg("-c").arg(hint).current_dir(dir.path()).env("NO_COLOR", "1").output().unwrap();
        assert!(run.status.success(), "{hint}: {}", stderr(&run));
        assert!(!stderr(&run).contains("warning") && !stderr(&run).contains("no readings"), "{hint}: {}", stderr(&run));
        if hint.contains(" query ") {
            // At least one reading (how many depends on when Ctrl-C came).
            assert!(!stdout(&run).trim().is_empty(), "{hint}: {}", stdout(&run));
        }
    }
    // Run again, as suggested: the simulated counters continue from the logs.
    let first = blip_counts(&dir.log_lines());
    let demo = dir.spawn(&["--config", "blackbox-demo.toml", "demo", "--rate", "200"]);
    dir.wait_for("radioBlip packets of the second run", |l| blip_counts(l).len() >= first.len() + 3);
    demo.signal(Signal::INT);
    assert!(demo.wait().status.success());
    let all = blip_counts(&dir.log_lines());
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "the counter restarted: {all:?}");
}

/// Issue 12: the demo stops capture for a while; the simulated JeeLink keeps
/// saving what it hears, and when capture is back it asks for it: every
/// radioBlip packet is in the cache once, in order, with no gap in time.
#[test]
fn the_demo_outage_is_filled_from_the_receivers_dataflash() {
    let dir = Dir::new();
    let demo = dir.spawn(&["demo", "--rate", "50", "--outage", "3", "--outage-at", "2"]);
    // The end of the replay (`DF E` with three numbers), then live packets again.
    dir.wait_for("the replay's end and packets after it", |lines| {
        let end = lines.iter().position(|l| l.split_once(" usb-DEMO DF E ").is_some_and(|(_, r)| r.split(' ').count() == 3));
        end.is_some_and(|e| blip_counts(&lines[e..]).len() >= 3)
    });
    demo.signal(Signal::INT);
    let out = demo.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("capture stopped for 3 s") && err.contains("capture is back"), "{err}");
    let live = blip_counts(&dir.log_lines());
    let query = dir.run(&["query", "usb-DEMO/radioBlip-3/ping", "--format", "csv"]);
    assert!(query.status.success(), "{}", stderr(&query));
    let rows: Vec<(String, u32)> = stdout(&query)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].parse().unwrap())
        })
        .collect();
    // Every packet once. (Replayed packets are placed to the second, so at
    // 50 packets a second neighbours near the outage's edges may swap.)
    let mut pings: Vec<u32> = rows.iter().map(|r| r.1).collect();
    pings.sort_unstable();
    assert!(pings.windows(2).all(|w| w[1] == w[0] + 1), "every packet once: {pings:?}");
    assert!(pings.len() > live.len() + 10, "the outage's packets came from the flash: {} indexed, {} logged live", pings.len(), live.len());
    let times: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    let stats = dir.run(&["stats"]);
    assert!(stdout(&stats).contains("usb-DEMO: dataflash replays gave "), "{}", stdout(&stats));
}
