//! The writer's guarantees, with an injected clock and injected faults.

use logfile::storage::{RealStorage, Storage, StorageFile};
use logfile::verify::verify;
use logfile::{Clock, LogWriter, ManualClock, SyncPolicy, WriteError, WriterOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// 2026-11-21T23:59:59.000Z
const LATE: i64 = 1_795_305_599_000;

#[derive(Debug, Default)]
struct Faults {
    /// Writes fail: `Some(true)` writes half then reports success (short write), `Some(false)` fails with ENOSPC.
    full: Option<bool>,
    sync_fails: bool,
    syncs: u64,
}

#[derive(Debug, Clone, Default)]
struct Faulty(Arc<Mutex<Faults>>);

impl Faulty {
    fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.0.lock().unwrap());
    }
    fn syncs(&self) -> u64 {
        self.0.lock().unwrap().syncs
    }
}

#[derive(Debug)]
struct FaultyFile(Box<dyn StorageFile>, Faulty);

impl Storage for Faulty {
    fn create_dir(&mut self, path: &Path) -> io::Result<bool> {
        RealStorage.create_dir(path)
    }
    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(FaultyFile(RealStorage.open_append(path)?, self.clone())))
    }
    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        RealStorage.sync_dir(path)
    }
}

impl StorageFile for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let full = self.1 .0.lock().unwrap().full;
        match full {
            Some(true) => self.0.write(&buf[..buf.len() / 2]),
            Some(false) => Err(io::Error::from_raw_os_error(28)),
            None => self.0.write(buf),
        }
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let mut f = self.1 .0.lock().unwrap();
        if f.sync_fails {
            return Err(io::Error::from_raw_os_error(5));
        }
        f.syncs += 1;
        self.0.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.truncate(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.0.size()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: ManualClock,
    faults: Faulty,
}

impl Fixture {
    fn new(wall_ms: i64) -> Self {
        Self { dir: tempfile::tempdir().unwrap(), clock: ManualClock::new(wall_ms), faults: Faulty::default() }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn open(&self, sync: SyncPolicy) -> LogWriter {
        let opts = WriterOptions { sync, hold_limit: 200 };
        LogWriter::open(self.root(), opts, Box::new(self.faults.clone()), self.clock.now()).unwrap()
    }
    fn read(&self, day: &str) -> String {
        std::fs::read_to_string(self.path(day)).unwrap()
    }
    fn path(&self, day: &str) -> PathBuf {
        self.root().join(&day[..4]).join(format!("{day}.txt"))
    }
    fn files(&self) -> Vec<String> {
        logfile::scan(self.root()).unwrap().days.iter().map(|d| d.name()).collect()
    }
    fn assert_verifies(&self) {
        let report = verify(self.root()).unwrap();
        assert!(report.is_ok(), "{:#?}", report.problems);
    }
}

#[test]
fn midnight_rollover_starts_a_new_file_with_the_header_chain() {
    let fx = Fixture::new(LATE + 900);
    let mut w = fx.open(SyncPolicy::default());
    w.reading(fx.clock.now(), "usb-A", b"before midnight").unwrap();
    fx.clock.advance(200);
    w.reading(fx.clock.now(), "usb-A", b"after midnight").unwrap();
    w.close().unwrap();
    let first = fx.read("20261121");
    assert_eq!(first, "L 23:59:59.900 usb-A before midnight\n");
    assert_eq!(fx.read("20261122"), format!("# 00:00:00.100 previous 20261121.txt {}\nL 00:00:00.100 usb-A after midnight\n", first.len()));
    fx.assert_verifies();
}

#[test]
fn clock_stepping_back_across_midnight_never_reopens_the_closed_day() {
    let fx = Fixture::new(LATE + 999);
    let mut w = fx.open(SyncPolicy::default());
    w.reading(fx.clock.now(), "s", b"one").unwrap();
    fx.clock.advance(2);
    w.reading(fx.clock.now(), "s", b"two").unwrap(); // 00:00:00.001 on the 22nd
    let closed = fx.read("20261121");
    fx.clock.step(-5_000); // NTP puts the clock back to 23:59:55
    w.reading(fx.clock.now(), "s", b"three").unwrap();
    fx.clock.advance(4_000);
    w.reading(fx.clock.now(), "s", b"four").unwrap();
    fx.clock.advance(2_000); // 00:00:01.001, past the last timestamp again
    w.reading(fx.clock.now(), "s", b"five").unwrap();
    w.close().unwrap();
    assert_eq!(fx.read("20261121"), closed, "the closed day was modified");
    let today = fx.read("20261122");
    let lines: Vec<&str> = today.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "L 00:00:00.001 s two",
            "# 00:00:00.001 clock-step delta_ms=-5000",
            "L 00:00:00.001 s three",
            "L 00:00:00.001 s four",
            "L 00:00:01.001 s five",
        ]
    );
    fx.assert_verifies();
}

#[test]
fn a_forward_jump_of_a_year_makes_one_new_file_not_a_storm() {
    let fx = Fixture::new(LATE - 3_600_000);
    let mut w = fx.open(SyncPolicy::default());
    w.reading(fx.clock.now(), "s", b"last year").unwrap();
    fx.clock.advance(10);
    fx.clock.step(365 * 86_400_000);
    w.reading(fx.clock.now(), "s", b"after ntp").unwrap();
    w.close().unwrap();
    assert_eq!(fx.files(), ["20261121.txt", "20271121.txt"]);
    let next = fx.read("20271121");
    assert!(next.starts_with("# 22:59:59.010 previous 20261121.txt "), "{next}");
    assert!(next.contains("# 22:59:59.010 clock-step delta_ms=31536000000\nL 22:59:59.010 s after ntp\n"), "{next}");
    fx.assert_verifies();
}

#[test]
fn restart_with_a_clock_behind_the_log_keeps_appending_to_the_latest_day() {
    let fx = Fixture::new(LATE + 500);
    let mut w = fx.open(SyncPolicy::default());
    w.reading(fx.clock.now(), "s", b"a").unwrap();
    fx.clock.advance(1_000);
    w.reading(fx.clock.now(), "s", b"b").unwrap(); // 00:00:00.500 on the 22nd
    w.close().unwrap();
    // The board reboots without a real-time clock: it thinks it is 1970.
    let fx2 = Fixture { dir: fx.dir, clock: ManualClock::new(0), faults: Faulty::default() };
    let mut w = fx2.open(SyncPolicy::default());
    w.reading(fx2.clock.now(), "s", b"c").unwrap();
    w.close().unwrap();
    assert_eq!(fx2.files(), ["20261121.txt", "20261122.txt"]);
    let today = fx2.read("20261122");
    assert!(
        today.ends_with("L 00:00:00.500 s b\n# 00:00:00.500 clock-step delta_ms=-1795305600500 reason=behind-log\nL 00:00:00.500 s c\n"),
        "{today}"
    );
    fx2.assert_verifies();
}

#[test]
fn a_torn_last_line_is_cut_back_and_kept_in_a_note() {
    let fx = Fixture::new(LATE - 10_000);
    std::fs::create_dir_all(fx.root().join("2026")).unwrap();
    std::fs::write(fx.path("20261121"), "L 23:59:40.000 s whole\nL 23:59:45.000 s to\x00\x00").unwrap();
    let mut w = fx.open(SyncPolicy::default());
    assert_eq!(w.recovery().torn_bytes, Some(21));
    w.reading(fx.clock.now(), "s", b"next").unwrap();
    w.close().unwrap();
    assert_eq!(
        fx.read("20261121"),
        "L 23:59:40.000 s whole\n# 23:59:49.000 torn file=20261121.txt offset=23 bytes=21 text=L 23:59:45.000 s to\\x00\\x00\nL 23:59:49.000 s next\n"
    );
    fx.assert_verifies();
}

#[test]
fn an_empty_file_left_by_a_power_cut_gets_its_header() {
    let fx = Fixture::new(LATE + 5_000);
    std::fs::create_dir_all(fx.root().join("2026")).unwrap();
    std::fs::write(fx.path("20261121"), "L 23:59:40.000 s x\n").unwrap();
    std::fs::write(fx.path("20261122"), "").unwrap();
    let mut w = fx.open(SyncPolicy::default());
    w.reading(fx.clock.now(), "s", b"y").unwrap();
    w.close().unwrap();
    assert_eq!(fx.read("20261122"), "# 00:00:04.000 previous 20261121.txt 19\nL 00:00:04.000 s y\n");
    fx.assert_verifies();
}

#[test]
fn disk_full_holds_lines_leaves_nothing_partial_and_resumes() {
    for short_write in [true, false] {
        let fx = Fixture::new(LATE - 60_000);
        let mut w = fx.open(SyncPolicy::Never);
        w.reading(fx.clock.now(), "s", b"one").unwrap();
        fx.faults.set(|f| f.full = Some(short_write));
        for text in ["two", "three", "four", "five"] {
            fx.clock.advance(100);
            w.reading(fx.clock.now(), "s", text.as_bytes()).unwrap();
        }
        // The hold limit (200 bytes) keeps the first lines and counts the rest.
        for i in 0..6 {
            fx.clock.advance(100);
            w.reading(fx.clock.now(), "s", format!("extra-{i}").as_bytes()).unwrap();
        }
        assert_eq!(fx.read("20261121"), "L 23:58:59.000 s one\n", "a partial record was left behind");
        let held = w.stats().held;
        assert!(held >= 4 && w.stats().dropped > 0, "{:?}", w.stats());
        // Still full at the first retry: nothing changes.
        fx.clock.advance(1_000);
        w.tick(fx.clock.now().mono_ms).unwrap();
        assert_eq!(fx.read("20261121"), "L 23:58:59.000 s one\n");
        fx.faults.set(|f| f.full = None);
        fx.clock.advance(1_000);
        w.tick(fx.clock.now().mono_ms).unwrap();
        let stats = w.close().unwrap();
        let text = fx.read("20261121");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "L 23:58:59.000 s one");
        assert!(lines[1].starts_with("# 23:58:59.100 disk-full since=23:58:59.100 held="), "{text}");
        assert!(lines[1].contains(&format!("held={held} dropped={}", 10 - held)), "{text}");
        assert_eq!(&lines[2..6], ["L 23:58:59.100 s two", "L 23:58:59.200 s three", "L 23:58:59.300 s four", "L 23:58:59.400 s five"]);
        assert_eq!(lines.len(), 2 + held, "{text}");
        assert_eq!(stats.held, 0);
        fx.assert_verifies();
    }
}

/// Closing while the disk is still full (capture stopped by a signal) says
/// exactly which readings were lost.
#[test]
fn closing_while_lines_are_held_reports_exactly_what_is_lost() {
    let fx = Fixture::new(LATE - 60_000);
    let mut w = fx.open(SyncPolicy::Never);
    w.reading(fx.clock.now(), "s", b"written").unwrap();
    fx.faults.set(|f| f.full = Some(false));
    assert!(!w.holding());
    for text in ["two", "three"] {
        fx.clock.advance(100);
        w.reading(fx.clock.now(), "s", text.as_bytes()).unwrap();
    }
    fx.clock.advance(100);
    w.meta(fx.clock.now(), "stop", "reason=SIGTERM").unwrap();
    assert!(w.holding());
    let err = w.close().unwrap_err();
    assert!(matches!(err, WriteError::Unwritten { readings: 2, lines: 3, dropped: 0, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "2 readings received from 23:58:59.100 to 23:58:59.200 UTC (and 1 of capture's own # lines) were held in memory and are lost: "
        ),
        "{msg}"
    );
    assert!(msg.contains("20261121.txt could not be written (No space left on device"), "{msg}");
    assert_eq!(fx.read("20261121"), "L 23:58:59.000 s written\n");
}

#[test]
fn a_failed_fsync_poisons_the_writer() {
    let fx = Fixture::new(LATE - 60_000);
    let mut w = fx.open(SyncPolicy::Always);
    w.reading(fx.clock.now(), "s", b"synced").unwrap();
    fx.faults.set(|f| f.sync_fails = true);
    let err = w.reading(fx.clock.now(), "s", b"not synced").unwrap_err();
    assert!(matches!(err, WriteError::SyncFailed { .. }), "{err}");
    assert!(err.to_string().contains("20261121.txt"), "{err}");
    fx.faults.set(|f| f.sync_fails = false);
    let err = w.reading(fx.clock.now(), "s", b"refused").unwrap_err();
    assert!(matches!(err, WriteError::Poisoned { .. }), "{err}");
    assert!(!fx.read("20261121").contains("refused"));
}

#[test]
fn sync_policies_decide_when_fdatasync_runs() {
    let run = |sync| {
        let fx = Fixture::new(LATE - 60_000);
        let mut w = fx.open(sync);
        let base = 1; // creating the day's file syncs it once
        for _ in 0..10 {
            w.reading(fx.clock.now(), "s", b"x").unwrap();
            fx.clock.advance(300);
            if let Some(deadline) = w.next_deadline() {
                if deadline <= fx.clock.now().mono_ms {
                    w.tick(fx.clock.now().mono_ms).unwrap();
                }
            }
        }
        let before_close = fx.faults.syncs() - base;
        w.close().unwrap();
        (before_close, fx.faults.syncs() - base)
    };
    assert_eq!(run(SyncPolicy::Always), (10, 10));
    // Lines every 300 ms with a 1000 ms window: a sync at most 1 s after a write.
    assert_eq!(run(SyncPolicy::Interval(1000)), (2, 3));
    assert_eq!(run(SyncPolicy::Never), (0, 1));
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let fx = Fixture::new(LATE);
    let _w = fx.open(SyncPolicy::default());
    let err = LogWriter::open(fx.root(), WriterOptions::default(), Box::new(RealStorage), fx.clock.now()).unwrap_err();
    assert!(err.to_string().contains("already being written by another capture"), "{err}");
}

/// A disk that loses everything not yet synced when the power is cut, and
/// may keep a torn prefix of the unsynced tail (as a real disk can).
#[derive(Debug, Clone, Default)]
struct PowerCut(Arc<Mutex<Vec<(PathBuf, u64)>>>);

#[derive(Debug)]
struct PowerCutFile(Box<dyn StorageFile>, PathBuf, PowerCut);

impl Storage for PowerCut {
    fn create_dir(&mut self, path: &Path) -> io::Result<bool> {
        RealStorage.create_dir(path)
    }
    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = RealStorage.open_append(path)?;
        let size = file.size()?;
        let mut synced = self.0.lock().unwrap();
        if !synced.iter().any(|(p, _)| p == path) {
            synced.push((path.to_path_buf(), size));
        }
        Ok(Box::new(PowerCutFile(file, path.to_path_buf(), self.clone())))
    }
    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        RealStorage.sync_dir(path)
    }
}

impl StorageFile for PowerCutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let size = self.0.size()?;
        for (p, s) in self.2 .0.lock().unwrap().iter_mut() {
            if *p == self.1 {
                *s = size;
            }
        }
        self.0.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.truncate(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.0.size()
    }
}

impl PowerCut {
    /// Cuts every file back to its synced size plus `torn` bytes of what followed.
    fn cut(&self, torn: u64) {
        for (path, synced) in self.0.lock().unwrap().iter() {
            let len = std::fs::metadata(path).unwrap().len();
            let keep = (*synced + torn).min(len);
            std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(keep).unwrap();
        }
    }
}

/// Writes `lines` readings `step_ms` apart from `start`, cuts the power
/// keeping `torn` unsynced bytes, restarts, and checks the invariants: no
/// torn or fused reading, every line older than the policy's sync window
/// kept (all of them with `always`), and the logs verify.
fn power_cut(lines: usize, step_ms: i64, start: i64, torn: u64, sync: SyncPolicy) {
    let fx = Fixture::new(start);
    let disk = PowerCut::default();
    let mut w =
        LogWriter::open(fx.root(), WriterOptions { sync, ..WriterOptions::default() }, Box::new(disk.clone()), fx.clock.now()).unwrap();
    let mut written_at = Vec::new();
    for i in 0..lines {
        written_at.push(fx.clock.now().wall_ms);
        w.reading(fx.clock.now(), "s", format!("line {i}").as_bytes()).unwrap();
        fx.clock.advance(step_ms);
        w.tick(fx.clock.now().mono_ms).unwrap();
    }
    let cut_at = fx.clock.now().wall_ms;
    // The power goes: the process dies without closing, the disk keeps what was synced.
    std::mem::forget(w);
    disk.cut(torn);
    // The leaked writer still holds its flock (as a dead process would not): move the
    // directory and remove the lock file so that the next writer starts as after a reboot.
    let moved = tempfile::tempdir().unwrap();
    let target = moved.path().join("logs");
    std::fs::rename(fx.root(), &target).unwrap();
    std::fs::remove_file(target.join(".lock")).unwrap();
    let mut w = LogWriter::open(&target, WriterOptions::default(), Box::new(RealStorage), fx.clock.now()).unwrap();
    w.reading(fx.clock.now(), "s", b"after the power cut").unwrap();
    w.close().unwrap();
    let text: String = logfile::scan(&target).unwrap().days.iter().map(|d| std::fs::read_to_string(&d.path).unwrap()).collect();
    let readings: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("L ")).map(|l| l.splitn(3, ' ').nth(2).unwrap()).collect();
    let (last, before) = readings.split_last().unwrap();
    assert_eq!(*last, "after the power cut");
    for (i, r) in before.iter().enumerate() {
        assert_eq!(*r, format!("line {i}"), "{sync}: a torn or fused reading survived:\n{text}");
    }
    let window = match sync {
        SyncPolicy::Always => Some(0),
        SyncPolicy::Interval(ms) => Some(ms as i64 + step_ms),
        SyncPolicy::Never => None,
    };
    if let Some(window) = window {
        let must_keep = written_at.iter().filter(|t| **t + window <= cut_at).count();
        assert!(before.len() >= must_keep, "{sync}: lost lines older than the sync window ({} < {must_keep})", before.len());
    }
    let report = verify(&target).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn a_power_cut_loses_at_most_the_sync_window_and_never_leaves_a_torn_reading() {
    for (torn, sync) in [(0, SyncPolicy::Interval(1000)), (7, SyncPolicy::Interval(1000)), (13, SyncPolicy::Always), (0, SyncPolicy::Never)]
    {
        power_cut(50, 100, LATE - 3_600_000, torn, sync);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The same at random points: any number of lines, any pace, across
    /// midnight or not, any torn remainder, any policy.
    #[test]
    fn a_power_cut_at_a_random_point_keeps_the_invariants(
        lines in 1usize..150,
        step_ms in 1i64..500,
        before_midnight in 0i64..40_000,
        torn in 0u64..100,
        policy in 0u8..3,
        interval in 10u32..3000,
    ) {
        let sync = match policy {
            0 => SyncPolicy::Always,
            1 => SyncPolicy::Interval(interval),
            _ => SyncPolicy::Never,
        };
        power_cut(lines, step_ms, LATE + 1000 - before_midnight, torn, sync);
    }
}
