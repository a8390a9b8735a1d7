//! Health results are a function of the logs and the configuration: a
//! rebuild, a follow a few lines at a time, and a catch-up after the
//! process was stopped halfway give the same transitions and final state.

use std::io::Write;
use std::path::{Path, PathBuf};

const CONFIG: &str = r#"
[status]
grey_after = "20m"
black_after = "40m"

[[check]]
name = "warm"
sensors = ["*/*/temp"]
kind = "range"
max = 25
for = "2m"

[[check]]
name = "quiet"
sensors = ["*/*/temp"]
kind = "stale"
after = "10m"
level = "error"

[[check]]
name = "jump"
sensors = ["*/*/temp"]
kind = "rate"
max_change = 4
per = "5m"

[[check]]
name = "fault"
kind = "event"
codes = ["F1"]
hold = "15m"
level = "critical"

[[event]]
match = "FAULT"
code = "F1"
level = "error"
"#;

/// Two days of three devices: values that cross the limits, silences and faults.
fn days() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut x: u64 = 7;
    for day in ["20121130", "20121201"] {
        let mut lines = Vec::new();
        let mut t = 0i64;
        while t < 86_400_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            t += 5_000 + (x >> 33) as i64 % 60_000;
            // Device b is silent for an hour each day; c now and then faults.
            let hms = format!("{:02}:{:02}:{:02}.{:03}", t / 3_600_000 % 24, t / 60_000 % 60, t / 1000 % 60, t % 1000);
            if t >= 86_400_000 {
                break;
            }
            let dev = ["a", "b", "c"][(x >> 20) as usize % 3];
            if dev == "b" && (36_000_000..39_600_000).contains(&t) {
                continue;
            }
            let temp = 20.0 + ((t / 600_000) % 12) as f64 + ((x >> 40) % 5) as f64 * 0.3;
            let line = if dev == "c" && (x >> 12).is_multiple_of(40) {
                format!("L {hms} c FAULT inverter")
            } else {
                format!("L {hms} {dev} temp={temp:.1}")
            };
            lines.push(line);
        }
        out.push((day.to_string(), lines));
    }
    out
}

struct Site {
    _dir: tempfile::TempDir,
    logs: PathBuf,
    cache: PathBuf,
    config: config::Config,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("2012")).unwrap();
        let cache = dir.path().join("cache");
        let config = config::Config::parse(CONFIG, Path::new("blackbox.toml")).unwrap();
        Site { _dir: dir, logs, cache, config }
    }

    /// Opens the cache (sled's threads can hold its lock a moment after the
    /// previous `Index` of this process is dropped).
    fn open(&self) -> index::Index {
        let fp = index::fingerprint(&self.config, &[]);
        let (mut idx, _) = index::Index::open_waiting(&self.cache, &fp, std::time::Duration::from_secs(5), || {}).unwrap();
        idx.set_checks(health::Checks::new(&self.config, &[]).unwrap());
        idx
    }

    fn append(&self, day: &str, lines: &[String]) {
        let path = self.logs.join("2012").join(format!("{day}.txt"));
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    fn catch_up(&self, idx: &mut index::Index) {
        let decoders = decode::Decoders::new(&self.config, &[]).unwrap();
        idx.catch_up(&self.logs, &decoders, &mut |_| true).unwrap();
    }
}

/// The transitions and the final status of a site, as JSON text.
fn outcome(idx: &index::Index) -> (Vec<String>, String) {
    let t = idx.transitions(None, None).unwrap().iter().map(|t| format!("{t:?}")).collect();
    let status = idx.health().unwrap().status_at(i64::MIN / 2);
    (t, format!("{status:?}"))
}

#[test]
fn rebuild_follow_and_restart_agree() {
    let days = days();
    // All at once.
    let whole = Site::new();
    for (day, lines) in &days {
        whole.append(day, lines);
    }
    let mut idx = whole.open();
    whole.catch_up(&mut idx);
    let expected = outcome(&idx);
    assert!(expected.0.len() > 20, "the data should make transitions: {}", expected.0.len());
    for kind in ["check: \"warm\"", "check: \"quiet\"", "check: \"jump\"", "check: \"fault\"", "to: Grey", "to: Black"] {
        assert!(expected.0.iter().any(|t| t.contains(kind)), "no {kind} transition in {:#?}", expected.0);
    }
    drop(idx);

    // A few lines at a time, reopened now and then (a new process each time).
    let follow = Site::new();
    let mut idx = follow.open();
    let mut n = 0usize;
    for (day, lines) in &days {
        let mut i = 0;
        while i < lines.len() {
            let step = 1 + (n * 7919) % 97;
            let end = (i + step).min(lines.len());
            follow.append(day, &lines[i..end]);
            // As a follower answering `status` between commits: the state it
            // decoded must not outlive the next commit.
            let _ = idx.health().unwrap();
            follow.catch_up(&mut idx);
            i = end;
            n += 1;
            if n.is_multiple_of(13) {
                drop(idx);
                idx = follow.open();
            }
        }
    }
    assert_eq!(outcome(&idx), expected);
}
