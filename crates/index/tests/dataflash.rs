//! A JeeLink's dataflash fills the gaps in the logs: a simulated receiver
//! (`sim::Receiver`, the firmware's logic) heard by a simulated capture that
//! goes away and comes back, asks for the replay as capture does
//! (`capture::dataflash::Progress`), and writes daily files; the indexer
//! must then hold every packet the receiver kept exactly once, at the time
//! the receiver got it.

use capture::dataflash::{self, FlashLine, Progress};
use decode::{Decoders, Value};
use index::Index;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SOURCE: &str = "jl";
const CONFIG: &str = r#"
[[source]]
name = "jl"
port = "/dev/null"
decoder = "rf12demo"
dataflash = true

[rf12.nodes]
2 = "roomNode"
3 = "radioBlip"
4 = "roomNode"
5 = "roomNode"
9 = "homePower"
"#;

/// 2026-11-28 23:30 UTC: runs cross midnight, so replayed readings are
/// logged in one day's file and belong to the other day.
const START_MS: i64 = 1_795_908_600_000;

/// The receiver, a capture that may be away, and what is known to be true.
struct World {
    rx: sim::Receiver,
    t: i64,
    progress: Progress,
    connected: bool,
    /// Waiting for the receiver to save its page (or restart) to ask for the replay.
    waiting: bool,
    log: Vec<(i64, String)>,
    /// radioBlip pings (unique per packet) heard, with when.
    truth: Vec<(u32, i64)>,
    /// Pings in the receiver's RAM page (not saved yet), and whether logged live.
    ram: Vec<(u32, bool)>,
    /// Pings of each saved page, and whether logged live.
    pages: BTreeMap<u16, Vec<(u32, bool)>>,
    /// Pings neither logged live nor kept by the receiver (its RAM page at a
    /// restart or a replay, a damaged page): the firmware's limits.
    lost: BTreeSet<u32>,
    /// Lines of a replay still to be printed when the receiver is unplugged mid-replay.
    cut_replay_after: Option<usize>,
}

fn hms(t: i64) -> String {
    let ms = t.rem_euclid(86_400_000);
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

fn ping(line: &str) -> Option<u32> {
    let b: Vec<u8> = line.strip_prefix("OK 3 ")?.split(' ').map(|b| b.parse().unwrap()).collect();
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl World {
    fn new(pages: u16) -> Self {
        let mut w = World {
            rx: sim::Receiver::new(7, pages),
            t: START_MS,
            progress: Progress::default(),
            connected: false,
            waiting: false,
            log: Vec::new(),
            truth: Vec::new(),
            ram: Vec::new(),
            pages: BTreeMap::new(),
            lost: BTreeSet::new(),
            cut_replay_after: None,
        };
        w.connect(true);
        w
    }

    /// Lines the receiver prints at `t`: logged when capture listens.
    fn print(&mut self, lines: Vec<String>) {
        let mut trigger = false;
        for (i, l) in lines.into_iter().enumerate() {
            if !self.connected {
                continue;
            }
            let at = self.t + i as i64;
            self.log.push((at, format!("L {} {SOURCE} {l}", hms(at))));
            if let Some(fl) = dataflash::parse(&l) {
                trigger |= matches!(fl, FlashLine::Saved(_) | FlashLine::Started { .. });
                self.progress.observe(&fl);
            }
        }
        if trigger && self.waiting {
            self.waiting = false;
            self.t += 20;
            self.replay();
        }
    }

    fn replay(&mut self) {
        let cmd = self.progress.replay_command().expect("a page to replay from");
        let mut lines = self.rx.command(&cmd, self.t);
        // The firmware drops its RAM page after a replay.
        self.lose_ram();
        if let Some(n) = self.cut_replay_after.take() {
            lines.truncate(n);
            self.print(lines);
            self.connected = false;
            return;
        }
        self.print(lines);
    }

    fn lose_ram(&mut self) {
        self.lost.extend(self.ram.drain(..).filter(|&(_, live)| !live).map(|(p, _)| p));
    }

    /// The receiver hears packets for `secs` seconds, one every 3 to 9 s.
    fn run(&mut self, secs: i64) {
        let end = self.t + secs * 1000;
        let mut n = 0u64;
        while self.t < end {
            n += 1;
            self.t += 3000 + (n * 2654435761 % 6000) as i64;
            let lines = self.rx.receive(self.t);
            let live = self.connected;
            let blip = ping(&lines[0]);
            if let Some(p) = blip {
                self.truth.push((p, self.t));
            }
            let good = lines[0].starts_with("OK ");
            if let Some(l) = lines.iter().find(|l| l.starts_with("DF S ")) {
                let page: u16 = l.split(' ').nth(2).unwrap().parse().unwrap();
                self.pages.insert(page, std::mem::take(&mut self.ram));
            }
            if let (Some(p), true) = (blip, good) {
                self.ram.push((p, live));
            }
            self.print(lines);
        }
    }

    /// Capture connects (a JeeLink resets when its port is opened: `reset`).
    fn connect(&mut self, reset: bool) {
        self.connected = true;
        self.t += 1000;
        self.log.push((self.t, format!("# {} connect source={SOURCE} path=/dev/null baud=57600 framing=8N1", hms(self.t))));
        self.progress.connected();
        self.waiting = self.progress.replay_command().is_some();
        if reset {
            self.lose_ram();
            let lines = self.rx.boot(self.t);
            self.print(lines);
        }
    }

    /// A new recorder: no log and nothing known, on a receiver with a past.
    fn forget(&mut self) {
        assert!(!self.connected);
        self.log.clear();
        self.progress = Progress::default();
        self.truth.clear();
        self.lost.clear();
        self.pages.clear();
    }

    /// The receiver restarts while nobody listens (a power glitch).
    fn restart_unseen(&mut self) {
        assert!(!self.connected);
        self.lose_ram();
        self.rx.boot(self.t);
    }

    fn damage(&mut self, page: u16) {
        assert!(self.rx.damage_page(page));
        self.lost.extend(self.pages[&page].iter().filter(|&&(_, live)| !live).map(|&(p, _)| p));
    }

    /// Writes the log as daily files.
    fn write(&self, logs: &Path) {
        let mut days: BTreeMap<i64, String> = BTreeMap::new();
        for (t, l) in &self.log {
            let text = days.entry(t.div_euclid(86_400_000)).or_default();
            text.push_str(l);
            text.push('\n');
        }
        for (day, text) in days {
            let date = chrono::DateTime::from_timestamp_millis(day * 86_400_000).unwrap().date_naive();
            let path = logfile::layout::day_path(logs, date);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }
}

struct Indexed {
    pings: Vec<(i64, u32)>,
    counts: index::SourceCounts,
    /// Pings before midnight, by `query` and by `export`.
    before_midnight: (BTreeSet<u32>, BTreeSet<u32>),
}

/// The midnight the runs cross.
const MIDNIGHT_MS: i64 = (START_MS / 86_400_000 + 1) * 86_400_000;

fn index(world: &World) -> Indexed {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    world.write(&logs);
    let config = config::Config::parse(CONFIG, Path::new("t.toml")).unwrap();
    let names = [SOURCE.to_string()];
    let decoders = Decoders::new(&config, &names).unwrap();
    let (mut idx, _) = Index::open(&dir.path().join("cache"), &index::fingerprint(&config, &names)).unwrap();
    idx.catch_up(&logs, &decoders, &mut |_| true).unwrap();
    let mut pings = Vec::new();
    idx.query(&format!("{SOURCE}/radioBlip-3/ping"), None, None, &mut |t, v| {
        let Value::Int(p) = v else { panic!("ping {v:?}") };
        pings.push((t, *p as u32));
        Ok(())
    })
    .unwrap();
    let counts = idx.stats().unwrap().sources.into_iter().find(|s| s.source == SOURCE).unwrap().counts;
    let mut queried = BTreeSet::new();
    idx.query(&format!("{SOURCE}/radioBlip-3/ping"), None, Some(MIDNIGHT_MS), &mut |_, v| {
        let Value::Int(p) = v else { panic!("ping {v:?}") };
        queried.insert(*p as u32);
        Ok(())
    })
    .unwrap();
    let mut exported = BTreeSet::new();
    idx.export(None, Some(MIDNIGHT_MS), &mut |t, s, v| {
        assert!(t < MIDNIGHT_MS);
        if let (true, Value::Int(p)) = (s.ends_with("/radioBlip-3/ping"), v) {
            exported.insert(*p as u32);
        }
        Ok(())
    })
    .unwrap();
    Indexed { pings, counts, before_midnight: (queried, exported) }
}

/// Every ping the receiver kept is indexed once, in time order, within
/// `precision_ms` of when it was heard (pings in `loose` only once).
fn check(world: &World, got: &Indexed, precision_ms: i64, loose: &BTreeSet<u32>) {
    let times: Vec<i64> = got.pings.iter().map(|p| p.0).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "readings come in time order");
    let mut seen = BTreeSet::new();
    for &(_, p) in &got.pings {
        assert!(seen.insert(p), "ping {p} indexed twice");
    }
    let expected: BTreeSet<u32> = world.truth.iter().map(|t| t.0).filter(|p| !world.lost.contains(p)).collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "pings the receiver kept are missing: {missing:?}");
    let extra: Vec<_> = seen.difference(&expected).collect();
    assert!(extra.is_empty(), "pings indexed that the receiver lost: {extra:?}");
    let heard: BTreeMap<u32, i64> = world.truth.iter().copied().collect();
    for &(t, p) in &got.pings {
        if !loose.contains(&p) {
            let off = t - heard[&p];
            assert!(off.abs() <= precision_ms, "ping {p} placed {off} ms from when it was heard");
        }
    }
}

#[test]
fn a_capture_outage_across_midnight_is_filled_from_the_flash_at_the_true_times() {
    let mut w = World::new(400);
    w.run(15 * 60);
    w.connected = false; // capture killed
    let outage_from = w.t;
    w.run(20 * 60);
    w.connect(false); // the receiver did not reset
    w.run(10 * 60);
    let got = index(&w);
    assert!(w.lost.is_empty(), "nothing is lost when capture waits for the page to be saved: {:?}", w.lost);
    check(&w, &got, 1100, &BTreeSet::new());
    let in_outage = w.truth.iter().filter(|(_, t)| *t > outage_from && *t < outage_from + 20 * 60_000).count();
    assert!(in_outage > 20, "the outage had radioBlip packets: {in_outage}");
    assert!(got.counts.replayed >= in_outage as u64, "{:?}", got.counts);
    assert!(got.counts.replay_known > 0, "the overlap with what was logged live is recognised: {:?}", got.counts);
    assert_eq!(got.counts.replay_approximate, 0);
    // Replayed after midnight, read before it: in the day before, for query and export alike.
    let before: BTreeSet<u32> = w.truth.iter().filter(|(_, t)| *t < MIDNIGHT_MS).map(|p| p.0).collect();
    assert!(w.truth.iter().any(|(_, t)| *t > outage_from && *t < MIDNIGHT_MS), "the outage began before midnight");
    assert_eq!(got.before_midnight.0, before);
    assert_eq!(got.before_midnight.1, before);
}

#[test]
fn a_receiver_reset_by_the_reconnect_keeps_what_it_saved_before() {
    let mut w = World::new(400);
    w.run(10 * 60);
    w.connected = false;
    w.run(15 * 60);
    w.connect(true); // a JeeLink resets when its port is opened: its RAM page is gone
    w.run(10 * 60);
    let got = index(&w);
    check(&w, &got, 1100, &BTreeSet::new());
    assert!(!w.lost.is_empty(), "the test covers the RAM page lost by the reset");
}

#[test]
fn a_receiver_restart_while_nobody_listened_is_detected_and_placed_within_the_outage() {
    let mut w = World::new(400);
    w.run(10 * 60);
    w.connected = false;
    let outage_from = w.t;
    w.run(8 * 60);
    w.restart_unseen();
    let restarted = w.t;
    w.run(8 * 60);
    let outage_to = w.t;
    w.connect(true);
    w.run(5 * 60);
    let got = index(&w);
    // Packets of the run never seen live are placed by a guess: only within the outage.
    let unseen: BTreeSet<u32> = w.truth.iter().filter(|(_, t)| *t > restarted && *t < outage_to).map(|p| p.0).collect();
    check(&w, &got, 1100, &unseen);
    for &(t, p) in &got.pings {
        if unseen.contains(&p) {
            assert!(t > outage_from && t < outage_to + 1000, "ping {p} of the unseen run placed outside the outage");
        }
    }
    assert!(got.counts.replay_approximate > 0, "{:?}", got.counts);
}

#[test]
fn an_outage_before_the_first_page_of_a_run_was_logged_is_replayed_from_the_run_before() {
    let mut w = World::new(400);
    w.run(10 * 60);
    w.connected = false;
    w.forget();
    // A new recorder connects (the receiver resets), and loses it within a minute.
    w.connect(true);
    w.run(60);
    assert!(w.progress.through.is_none(), "no page of this run was logged yet");
    w.connected = false;
    w.run(10 * 60);
    w.connect(false);
    w.run(5 * 60);
    let got = index(&w);
    check(&w, &got, 1100, &BTreeSet::new());
    assert!(got.counts.replayed > 50, "{:?}", got.counts);
}

#[test]
fn a_damaged_page_is_counted_and_its_packets_alone_are_lost() {
    let mut w = World::new(400);
    w.run(10 * 60);
    w.connected = false;
    let before: BTreeSet<u16> = w.pages.keys().copied().collect();
    w.run(15 * 60);
    let page = *w.pages.keys().find(|p| !before.contains(p)).expect("a page saved in the outage");
    w.damage(page);
    w.connect(false);
    w.run(5 * 60);
    let got = index(&w);
    assert!(!w.lost.is_empty());
    check(&w, &got, 1100, &BTreeSet::new());
    assert_eq!(got.counts.flash_damaged, 1);
}

#[test]
fn a_replay_cut_by_unplugging_resumes_after_the_last_page_replayed() {
    let mut w = World::new(400);
    w.run(10 * 60);
    w.connected = false;
    w.run(20 * 60);
    w.cut_replay_after = Some(40);
    w.connect(false);
    w.run(5 * 60);
    assert!(!w.connected, "the replay was cut");
    w.connect(true);
    w.run(5 * 60);
    let got = index(&w);
    check(&w, &got, 1100, &BTreeSet::new());
}

#[test]
fn a_firmware_that_decodes_the_marker_with_logical_or_replays_too_much_and_nothing_counts_twice() {
    let mut w = World::new(400);
    w.rx.logical_or_quirk = true;
    w.run(10 * 60);
    w.connected = false;
    w.run(10 * 60);
    w.connect(false);
    w.run(10 * 60);
    w.connected = false;
    w.run(10 * 60);
    w.connect(true);
    w.run(5 * 60);
    let got = index(&w);
    check(&w, &got, 1100, &BTreeSet::new());
    assert!(got.counts.replay_known > 50, "pages logged already were replayed again: {:?}", got.counts);
}

#[test]
fn indexing_as_the_log_grows_gives_what_a_rebuild_gives() {
    let mut w = World::new(400);
    w.run(10 * 60);
    w.connected = false;
    w.run(10 * 60);
    w.connect(false);
    w.run(5 * 60);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let config = config::Config::parse(CONFIG, Path::new("t.toml")).unwrap();
    let names = [SOURCE.to_string()];
    let decoders = Decoders::new(&config, &names).unwrap();
    let (mut idx, _) = Index::open(&dir.path().join("cache"), &index::fingerprint(&config, &names)).unwrap();
    // Catch up after every 50 lines, as a follower does.
    let full = std::mem::take(&mut w.log);
    for chunk in full.chunks(50) {
        w.log.extend_from_slice(chunk);
        w.write(&logs);
        idx.catch_up(&logs, &decoders, &mut |_| true).unwrap();
    }
    let mut pings = Vec::new();
    idx.query(&format!("{SOURCE}/radioBlip-3/ping"), None, None, &mut |t, v| {
        pings.push((t, v.clone()));
        Ok(())
    })
    .unwrap();
    let rebuilt = index(&w);
    let rebuilt: Vec<(i64, Value)> = rebuilt.pings.iter().map(|&(t, p)| (t, Value::Int(i64::from(p)))).collect();
    assert_eq!(pings, rebuilt);
}
