//! The indexer against a simple model. Random appends (whole lines and
//! partial ones), truncations and deletions of day files, catch-ups and
//! restarts of the indexer; at the end, after a last catch-up, the cache's
//! export must equal what the model gives: every complete reading of every
//! day file, in order, decoded with state carried from line to line.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Arbitrary, Debug)]
enum Op {
    Append { day: u8, kind: u8, value: u32, whole: bool },
    Truncate { day: u8, keep_per_mille: u16 },
    Delete { day: u8 },
    CatchUp,
    Restart,
}

const CONFIG: &str = "[rf12.nodes]\n2 = \"roomNode\"\n3 = \"radioBlip\"\n";
const DAYS: u8 = 3;

fn day_path(logs: &Path, day: u8) -> PathBuf {
    logs.join("2012").join(format!("201211{:02}.txt", 27 + day % DAYS))
}

fn line(kind: u8, value: u32, ms: u32) -> String {
    let b = value.to_le_bytes();
    let time = logfile::TimeOfDay::from_millis(ms % 86_400_000).expect("in range");
    let text = match kind % 5 {
        0 => format!("OK 2 {} {} {} {}", b[0], b[1], b[2], b[3]),
        1 => format!("OK 3 {} {} {} {}", b[0], b[1], b[2], b[3]),
        2 => format!("t={}.{} h={}", b[0], b[1] % 10, b[2]),
        3 => format!("? {} {}", b[0], b[1]),
        _ => "garbage".to_string(),
    };
    format!("L {time} s {text}")
}

/// The model: decode every complete reading of every day file, in order.
fn model(logs: &Path, decoders: &decode::Decoders) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    let mut state = decode::SourceState::default();
    for day in logfile::scan(logs).expect("scan").days {
        let mut reader = logfile::DayReader::open(&day).expect("open day");
        while let Some(raw) = reader.next_line().expect("read") {
            let text = String::from_utf8_lossy(raw.bytes).into_owned();
            if let Ok(logfile::Line::Reading { time, source, text }) = logfile::parse_line(&text) {
                let ts = logfile::time::join_millis(day.date, time);
                if let decode::Outcome::Decoded { device, fields } = decoders.decode(source, ts, text, &mut state) {
                    for f in fields {
                        out.push((ts, format!("{source}/{device}/{}", f.name), index::value_json(&f.value)));
                    }
                }
            }
        }
    }
    out
}

fuzz_target!(|ops: Vec<Op>| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("2012")).expect("log directory");
    let config: config::Config = toml::from_str(CONFIG).expect("configuration");
    let decoders = decode::Decoders::new(&config, &[]).expect("decoders");
    let fingerprint = index::fingerprint(&config, &[]);
    let cache = dir.path().join("cache");
    let mut idx = Some(index::Index::open(&cache, &fingerprint).expect("open cache").0);
    // Time of day per file, so lines are in order within a day.
    let mut clock = [0u32; DAYS as usize];
    for op in ops.into_iter().take(64) {
        match op {
            Op::Append { day, kind, value, whole } => {
                let i = usize::from(day % DAYS);
                clock[i] += 1 + value % 5000;
                let mut l = line(kind, value, clock[i]);
                if whole {
                    l.push('\n');
                } else {
                    l.truncate(l.len() / 2);
                }
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(day_path(&logs, day)).expect("append");
                f.write_all(l.as_bytes()).expect("write");
            }
            Op::Truncate { day, keep_per_mille } => {
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(day_path(&logs, day)) {
                    let len = f.metadata().expect("metadata").len();
                    f.set_len(len * u64::from(keep_per_mille % 1001) / 1000).expect("truncate");
                }
            }
            Op::Delete { day } => {
                let _ = std::fs::remove_file(day_path(&logs, day));
            }
            Op::CatchUp => {
                if let Some(idx) = idx.as_mut() {
                    idx.catch_up(&logs, &decoders, &mut |_| true).expect("catch up");
                }
            }
            Op::Restart => {
                drop(idx.take());
                idx = Some(index::Index::open(&cache, &fingerprint).expect("reopen cache").0);
            }
        }
    }
    let mut idx = idx.take().expect("open");
    idx.catch_up(&logs, &decoders, &mut |_| true).expect("last catch up");
    let mut got = Vec::new();
    idx.export(None, None, &mut |t, sensor, value| {
        got.push((t, sensor.to_string(), index::value_json(value)));
        Ok(())
    })
    .expect("export");
    let want = model(&logs, &decoders);
    assert_eq!(got.len(), want.len(), "the cache holds {} values, the logs {}", got.len(), want.len());
    assert_eq!(got, want, "the cache differs from the logs");
});
