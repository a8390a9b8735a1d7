//! The soak test: several simulated devices on pseudo-terminals at a high
//! rate, a real capture and a real `index --follow`, both SIGKILLed at
//! random moments many times, the injected clock crossing several midnights
//! and stepping back once, and a device unplugged and replugged. At the end:
//! every line sent while capture was up is in the logs exactly once and in
//! order per source (lines in flight inside a process at the moment it is
//! SIGKILLed excepted: they die with it, as docs/log-format.md says),
//! `verify` passes, and the export equals the export of a fresh index.
//!
//! `BLACKBOX_SOAK_SECS` sets the duration (CI runs a short one);
//! `just soak 600` runs ten minutes. `BLACKBOX_SOAK_SEED` replays a run.

use crate::harness::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SOURCES: [&str; 3] = ["dev-a", "dev-b", "dev-c"];
/// Most bytes a SIGKILL can take with it, all sources together: what capture
/// had read and not yet written (its channel holds 64 reads of at most
/// 32 KiB, plus the read in progress) and a partial line per source.
const IN_FLIGHT_MAX_BYTES: u64 = 65 * 32 * 1024 + 3 * 64;

/// A simulated device: a pseudo-terminal reached through a symlink (as
/// /dev/serial/by-id is), sending numbered lines while the test says capture is up.
struct Device {
    name: &'static str,
    link: PathBuf,
    /// The device's end, and the terminal end kept open as a real port stays (dropped together on unplug).
    master: Mutex<Option<(std::fs::File, std::fs::File)>>,
    /// The next sequence number to send.
    seq: AtomicU64,
    /// Whether capture is known to have this device open (lines sent now must arrive).
    up: AtomicBool,
}

impl Device {
    fn new(dir: &Path, name: &'static str) -> Arc<Device> {
        let d =
            Arc::new(Device { name, link: dir.join(name), master: Mutex::new(None), seq: AtomicU64::new(0), up: AtomicBool::new(false) });
        d.plug();
        d
    }

    /// A new pseudo-terminal behind the link (replugging gives another /dev/pts/N).
    /// Opened close-on-exec (serialport's pairs are not), so that capture
    /// processes started later do not inherit the device's end and keep it alive.
    fn plug(&self) {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        use std::os::unix::fs::OpenOptionsExt;
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname").into_string().expect("pty name");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(&name)
            .expect("open the terminal end");
        let tmp = self.link.with_extension("new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp).expect("symlink");
        std::fs::rename(&tmp, &self.link).expect("re-point the link");
        *self.master.lock().unwrap() = Some((std::fs::File::from(master), slave));
    }

    /// Stops sending (capture is about to go) and returns the next sequence
    /// number: every line before it was written, none after it will be until `resume`.
    fn pause(&self) -> u64 {
        let _sending = self.sending();
        self.up.store(false, Ordering::SeqCst);
        self.seq.load(Ordering::SeqCst)
    }

    /// Waits for a write in progress to end. A write only blocks when the
    /// terminal is full because capture stopped reading this device: that
    /// fails the test instead of hanging it.
    fn sending(&self) -> std::sync::MutexGuard<'_, Option<(std::fs::File, std::fs::File)>> {
        let start = Instant::now();
        loop {
            match self.master.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::WouldBlock) if start.elapsed() < RECONNECT_DEADLINE => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    panic!("{}: a line has been stuck in its terminal for {RECONNECT_DEADLINE:?}: capture is not reading it", self.name)
                }
                Err(std::sync::TryLockError::Poisoned(_)) => panic!("{}: the sending thread panicked", self.name),
            }
        }
    }

    fn resume(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Unplugs the device: its terminal goes, and so does the link, as udev
    /// removes /dev/serial/by-id entries. (A link left pointing at the freed
    /// /dev/pts/N would let capture open whatever terminal is given that
    /// number next, another test's for one.)
    fn unplug(&self) {
        *self.sending() = None;
        std::fs::remove_file(&self.link).expect("remove the link");
    }

    /// Sends the next line if capture is up; the sequence number only advances when it was written whole.
    fn send(&self) {
        let mut master = self.master.lock().unwrap();
        if !self.up.load(Ordering::SeqCst) {
            return;
        }
        let Some((m, _)) = master.as_mut() else { return };
        let n = self.seq.load(Ordering::SeqCst);
        let line = format!("seq={n} temp={}.{}\r\n", 15 + n % 10, n % 7);
        // write_all: a line is never left half written (the device would garble it, not the recorder).
        if m.write_all(line.as_bytes()).is_ok() {
            self.seq.store(n + 1, Ordering::SeqCst);
        }
    }
}

/// What the chaos did to one source, in sequence numbers.
#[derive(Default, Debug)]
struct History {
    /// Moments that can lose lines in flight (a SIGKILL of capture, the
    /// device unplugged): the chaos event's number and the next sequence number then.
    /// (Nothing is sent while capture is down: devices are paused until it is up.)
    breaks: Vec<(usize, u64)>,
}

/// A position in the logs: the newest day file and its size.
#[derive(Clone)]
struct Mark(Option<(chrono::NaiveDate, u64)>);

fn mark(dir: &Dir) -> Mark {
    let newest = logfile::scan(&dir.logs()).ok().and_then(|s| s.days.last().cloned());
    Mark(newest.map(|d| (d.date, std::fs::metadata(&d.path).map(|m| m.len()).unwrap_or(0))))
}

/// Everything written after `mark` (cheap however long the soak has run).
fn since(dir: &Dir, mark: &Mark) -> String {
    use std::io::{Read, Seek};
    let Ok(scan) = logfile::scan(&dir.logs()) else { return String::new() };
    let mut out = String::new();
    for d in scan.days.iter().filter(|d| mark.0.is_none_or(|(date, _)| d.date >= date)) {
        let mut f = std::fs::File::open(&d.path).unwrap();
        if let Some((date, offset)) = mark.0 {
            if d.date == date {
                f.seek(std::io::SeekFrom::Start(offset)).unwrap();
            }
        }
        f.read_to_string(&mut out).unwrap();
    }
    out
}

/// Longer than the harness's deadline: a device that flaps (short
/// connections) is retried with a backoff that grows to 30 s, by design.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(90);

/// What the devices and the capture process were doing, for a timeout's message.
fn diagnose(devices: &[Arc<Device>], capture: u32) -> String {
    let mut out = String::new();
    for d in devices {
        let target = std::fs::read_link(&d.link).map(|p| p.display().to_string()).unwrap_or_default();
        let queued = match d.master.try_lock() {
            Ok(m) => m.as_ref().map_or("unplugged".to_string(), |(_, slave)| format!("{:?}", rustix::io::ioctl_fionread(slave))),
            Err(_) => "a write is blocked".to_string(),
        };
        out.push_str(&format!(
            "{}: -> {target}, next seq {}, up {}, bytes waiting in the terminal: {queued}\n",
            d.name,
            d.seq.load(Ordering::SeqCst),
            d.up.load(Ordering::SeqCst)
        ));
    }
    out.push_str(&format!("capture {capture} has open:\n"));
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{capture}/fd")) {
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path()).map(|p| p.display().to_string()).unwrap_or_default();
            out.push_str(&format!("  {} -> {target}\n", fd.file_name().to_string_lossy()));
        }
    }
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{capture}/task")) {
        for t in tasks.flatten() {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            out.push_str(&format!(
                "  thread {} {}: wchan {} syscall {}\n",
                t.file_name().to_string_lossy(),
                read("comm").trim(),
                read("wchan"),
                read("syscall").trim()
            ));
        }
    }
    out
}

/// Waits until a line containing `needle` is written after `mark`; `diagnose` says what was going on if it times out.
fn wait_after_or(dir: &Dir, mark: &Mark, needle: &str, diagnose: &dyn Fn() -> String) {
    let start = Instant::now();
    while !since(dir, mark).contains(needle) {
        if start.elapsed() > RECONNECT_DEADLINE {
            let all = dir.log_lines();
            let meta: Vec<&String> = all.iter().filter(|l| l.starts_with('#')).collect();
            let tail: Vec<&String> = all.iter().rev().take(12).collect();
            panic!(
                "timed out waiting for {needle:?}; {}the metadata lines:\n{}\nthe last lines, newest first:\n{}",
                diagnose(),
                meta.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
                tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn soak_capture_and_index_through_kills_midnights_clock_steps_and_unplugs() {
    let secs: u64 = std::env::var("BLACKBOX_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("BLACKBOX_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    println!("soak: {secs} s, BLACKBOX_SOAK_SEED={seed}");
    let mut rng = sim::Rng::new(seed);
    let dir = Dir::new();
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    dir.set_clock(&format!("{day}T23:59:58Z"));
    let devices: Vec<Arc<Device>> = SOURCES.iter().map(|n| Device::new(dir.path(), n)).collect();
    let mut config = String::new();
    for d in &devices {
        config.push_str(&format!("[[source]]\nname = \"{}\"\nport = \"{}\"\ndecoder = \"kv\"\n\n", d.name, d.link.display()));
    }
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    let history: HashMap<&str, Mutex<History>> = SOURCES.iter().map(|n| (*n, Mutex::new(History::default()))).collect();

    // The devices send continuously, each on its own thread.
    let running = Arc::new(AtomicBool::new(true));
    let senders: Vec<_> = devices
        .iter()
        .map(|d| {
            let (d, running) = (d.clone(), running.clone());
            std::thread::spawn(move || {
                while running.load(Ordering::SeqCst) {
                    d.send();
                    // Pacing of a fast device, not synchronisation.
                    std::thread::sleep(Duration::from_micros(500));
                }
            })
        })
        .collect();

    // Starts capture and marks each source up once its `connect` line is in the log.
    let start_capture = |devices: &[Arc<Device>]| -> Proc {
        let before = mark(&dir);
        let p = dir.spawn(&["capture"]);
        for d in devices {
            wait_after_or(&dir, &before, &format!(" connect source={} ", d.name), &|| diagnose(devices, p.child.id()));
            d.resume();
        }
        p
    };
    let mut capture = start_capture(&devices);
    let mut indexer = dir.spawn(&["index", "--follow"]);
    let (mut kills, mut index_kills, mut midnights, mut steps, mut unplugs) = (0, 0, 0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut event = 0;
    while Instant::now() < deadline {
        event += 1;
        // A random moment: 50 to 400 ms of traffic.
        std::thread::sleep(Duration::from_millis(50 + rng.below(350)));
        match rng.below(10) {
            0..=3 => {
                // SIGKILL capture mid-stream, then start it again.
                for d in &devices {
                    let s = d.pause();
                    let mut h = history[d.name].lock().unwrap();
                    h.breaks.push((event, s));
                }
                capture.kill();
                kills += 1;
                capture = start_capture(&devices);
            }
            4..=5 => {
                indexer.kill();
                index_kills += 1;
                indexer = dir.spawn(&["index", "--follow"]);
            }
            6..=7 => {
                // The clock runs into the next midnight.
                day = day.succ_opt().unwrap();
                dir.set_clock(&format!("{day}T23:59:59.700Z"));
                midnights += 1;
            }
            8 if steps == 0 => {
                // One backward step (NTP correcting a fast clock).
                dir.set_clock(&format!("{day}T23:59:50Z"));
                steps += 1;
            }
            _ => {
                // A device is unplugged and plugged back in.
                let d = &devices[rng.below(devices.len() as u64) as usize];
                let before = mark(&dir);
                {
                    let s = d.pause();
                    let mut h = history[d.name].lock().unwrap();
                    h.breaks.push((event, s));
                }
                d.unplug();
                let why = || diagnose(&devices, capture.child.id());
                wait_after_or(&dir, &before, &format!(" disconnect source={} ", d.name), &why);
                let unplugged = mark(&dir);
                d.plug();
                wait_after_or(&dir, &unplugged, &format!(" connect source={} ", d.name), &why);
                d.resume();
                unplugs += 1;
            }
        }
    }
    // Quiet down: every line sent is written; then stop both cleanly.
    running.store(false, Ordering::SeqCst);
    for d in &devices {
        d.pause();
    }
    for s in senders {
        s.join().unwrap();
    }
    // One more line from each device, with capture up: it must arrive, even
    // when a device sent nothing since the last kill took its latest lines.
    let last: Vec<u64> = devices
        .iter()
        .map(|d| {
            d.resume();
            d.send();
            d.pause()
        })
        .collect();
    for (d, &last) in devices.iter().zip(&last) {
        if last > 0 {
            wait_after_or(&dir, &Mark(None), &format!(" {} seq={} ", d.name, last - 1), &|| diagnose(&devices, capture.child.id()));
        }
    }
    assert!(capture.terminate().status.success());
    assert!(indexer.terminate().status.success());
    println!(
        "soak: {kills} capture kills, {index_kills} indexer kills, {midnights} midnights, {steps} backward steps, {unplugs} unplugs; sent {:?}",
        devices.iter().map(|d| d.seq.load(Ordering::SeqCst)).collect::<Vec<_>>()
    );

    // Every source: exactly once, in order. What is missing died in flight
    // with a SIGKILLed capture: for each kill, one contiguous stretch of the
    // lines sent just before it (those capture had read but not written;
    // unread ones stay in the terminal and arrive after the restart).
    let lines = dir.log_lines();
    let mut worst = 0;
    let mut lost_bytes: HashMap<usize, u64> = HashMap::new();
    for d in &devices {
        let prefix = format!(" {} seq=", d.name);
        let seqs: Vec<u64> = lines
            .iter()
            .filter(|l| l.starts_with("L "))
            .filter_map(|l| l.split_once(&prefix))
            .map(|(_, rest)| rest.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{}: a line repeated or out of order", d.name);
        let h = history[d.name].lock().unwrap();
        let sent = d.seq.load(Ordering::SeqCst);
        let got: std::collections::HashSet<u64> = seqs.iter().copied().collect();
        let mut by_break: HashMap<usize, Vec<u64>> = HashMap::new();
        for s in (0..sent).filter(|s| !got.contains(s)) {
            let next = h.breaks.iter().position(|(_, k)| s < *k);
            let Some(next) = next else { panic!("{}: seq={s} was sent after the last kill or unplug and is missing", d.name) };
            by_break.entry(next).or_default().push(s);
        }
        for (i, missing) in by_break {
            let (event, _) = h.breaks[i];
            let (first, last) = (missing[0], *missing.last().unwrap());
            assert_eq!(last - first + 1, missing.len() as u64, "{}: lines lost at event {event} are not one stretch: {missing:?}", d.name);
            let earlier = if i == 0 { 0 } else { h.breaks[i - 1].1 };
            assert!(first >= earlier, "{}: seq={first} was lost at event {event} but was sent before the one before it", d.name);
            worst = worst.max(missing.len());
            *lost_bytes.entry(event).or_default() += missing.iter().map(|s| format!("seq={s} temp=00.0\r\n").len() as u64).sum::<u64>();
        }
    }
    for (event, bytes) in lost_bytes {
        assert!(bytes <= IN_FLIGHT_MAX_BYTES, "event {event} lost {bytes} bytes, more than capture can hold in flight");
    }
    println!("soak: at most {worst} lines of one source died in flight at one kill or unplug");
    let v = dir.verify();
    assert!(v.status.success(), "{}", stdout(&v));
    assert!(lines.iter().any(|l| l.contains(" clock-step ")) || steps == 0);
    assert!(logfile::scan(&dir.logs()).unwrap().days.len() > midnights.min(1));

    // The cache the killed followers left, caught up, equals a fresh one.
    assert!(dir.run(&["index", "-q"]).status.success());
    let export = dir.run(&["export"]);
    assert!(export.status.success());
    let fresh = dir.run(&["--cache", "fresh-cache", "index", "-q"]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    let fresh = dir.run(&["--cache", "fresh-cache", "export"]);
    assert!(!stdout(&export).is_empty());
    assert!(stdout(&export) == stdout(&fresh), "the followed cache differs from a fresh index");
}
