//! Rollups end to end: `query --every` and `export --every` on the real day,
//! against sums computed here from the raw lines.

use crate::harness::*;
use std::collections::BTreeMap;

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "status {:?}\nstderr: {}", out.status, stderr(out));
    stdout(out)
}

const COUNTERS: &str = "\n[[counter]]\nsensors = [\"*/homePower-*/c?\"]\nwrap = 65536\nscale = 0.5\nunit = \"Wh\"\n";

/// The real day's lines, `(time of day in ms, text)`.
fn real_lines() -> Vec<(i64, String)> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(real_day()).unwrap()).read_to_string(&mut text).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(4, ' ');
            let (kind, time, _source, rest) = (p.next()?, p.next()?, p.next()?, p.next()?);
            if kind != "L" {
                return None;
            }
            let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
            Some((((t[0] * 3600.0 + t[1] * 60.0 + t[2]) * 1000.0).round() as i64, rest.to_string()))
        })
        .collect()
}

/// The homePower counters' increments per hour of the day, from the raw
/// packets: node 9's `OK` lines, counters c1, c2 and c3 as 16-bit
/// little-endian at bytes 1, 5 and 9, each increment taken modulo 65536,
/// half watt-hours; the first packet only sets where counting starts.
fn hourly_counts_from_packets() -> [BTreeMap<i64, f64>; 3] {
    let mut out: [BTreeMap<i64, f64>; 3] = Default::default();
    let mut prev: [Option<i64>; 3] = [None; 3];
    for (t, text) in real_lines() {
        let Some(bytes) = text.strip_prefix("OK ") else { continue };
        let b: Vec<i64> = bytes.split(' ').filter_map(|x| x.parse().ok()).collect();
        if b.len() < 13 || b[0] & 0x1f != 9 {
            continue;
        }
        for (i, counter) in out.iter_mut().enumerate() {
            let c = b[1 + 4 * i] | b[2 + 4 * i] << 8;
            let hour = counter.entry(t / 3_600_000).or_insert(0.0);
            if let Some(p) = prev[i] {
                *hour += (c - p).rem_euclid(65536) as f64 * 0.5;
            }
            prev[i] = Some(c);
        }
    }
    out
}

/// `query --every 1h --format csv` of a counter: hour of the day → increment.
fn hourly_from_query(dir: &Dir, sensor: &str) -> BTreeMap<i64, f64> {
    let csv = ok(&dir.run(&["query", sensor, "--every", "1h", "--format", "csv", "--from", "2012-11-30", "--to", "2012-12-01"]));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("start,end,sensor,increment,unit,count,flags,partial"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let hour: i64 = f[0][11..13].parse().unwrap();
            assert_eq!(f[4], "Wh", "{l}");
            (hour, f[3].parse().unwrap())
        })
        .collect()
}

/// Issue 14's evidence: the real day's homePower counters summed per hour
/// with `wrap = 65536` equal the sums computed here from the raw packets,
/// every hour, both while the day is the newest (its hours made from its
/// readings) and once a later day makes it over (its hours stored).
#[test]
fn the_real_days_home_power_counters_per_hour_match_the_raw_packets() {
    let dir = real_site();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{COUNTERS}")).unwrap();
    ok(&dir.run(&["index"]));
    let expected = hourly_counts_from_packets();
    assert_eq!(expected[0].len(), 24);
    assert!(expected[2].values().sum::<f64>() > 1000.0, "c3 counted: {:?}", expected[2]);
    let sensors = ["usb-A40117UK/homePower-9/c1", "usb-A40117UK/homePower-9/c2", "usb-A40117UK/homePower-9/c3"];
    for (sensor, want) in sensors.iter().zip(&expected) {
        assert_eq!(&hourly_from_query(&dir, sensor), want, "{sensor}, made from the readings");
    }
    // A later day: 2012-11-30 is over, and its hours are stored.
    std::fs::write(dir.logs().join("20121201.txt"), "L 00:00:01.000 usb-A40117UK OK 2 1 115 179 0\n").unwrap();
    ok(&dir.run(&["index"]));
    for (sensor, want) in sensors.iter().zip(&expected) {
        assert_eq!(&hourly_from_query(&dir, sensor), want, "{sensor}, stored");
    }
    // A day sums its hours.
    let day = ok(&dir.run(&["query", sensors[2], "--every", "1d", "--format", "jsonl", "--to", "2012-12-01"]));
    let total: f64 = expected[2].values().sum();
    assert!(day.contains(&format!("\"increment\":{total},")), "{day} (want {total})");
    // The table names an hour's flags, and shows none for an hour without
    // any: a counter's first hour only (`first`: no increment before it).
    let table = ok(&dir.run(&["export", "--every", "1h", "--format", "table", "--to", "2012-12-01"]));
    let c1: Vec<&str> = table.lines().filter(|l| l.contains(sensors[0])).collect();
    assert_eq!(c1.len(), 24, "{table}");
    assert!(c1[0].contains("flags=first"), "{}", c1[0]);
    assert!(c1[1..].iter().all(|l| !l.contains("flags")), "{table}");
}

/// The gauges of a room node per hour and per day equal what its raw
/// readings (from `query`) give, and combining stored hours into 6-hour
/// periods equals combining them from the readings.
#[test]
fn a_room_nodes_hours_and_day_match_its_readings() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let sensor = "usb-A40117UK/roomNode-2/temp";
    let raw = ok(&dir.run(&["query", sensor, "--format", "csv"]));
    let readings: Vec<(String, f64)> = raw
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].parse().unwrap())
        })
        .collect();
    assert!(readings.len() > 300);
    for (every, key_len) in [("1h", 13), ("6h", 0), ("1d", 10)] {
        let json = ok(&dir.run(&["query", sensor, "--every", every, "--format", "jsonl"]));
        let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // serde_json's default float parsing is not exact in the last digit: the means are compared as text.
        let means: Vec<&str> = json.lines().map(|l| l.split("\"mean\":").nth(1).unwrap().split(',').next().unwrap()).collect();
        let total: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
        assert_eq!(total as usize, readings.len(), "{every}: every reading in one period");
        for (r, mean) in rows.iter().zip(&means) {
            let start = r["start"].as_str().unwrap();
            let end = r["end"].as_str().unwrap();
            let part: Vec<&(String, f64)> = readings.iter().filter(|(t, _)| t.as_str() >= start && t.as_str() < end).collect();
            if key_len > 0 {
                assert!(part.iter().all(|(t, _)| t[..key_len] == start[..key_len]));
            }
            let values: Vec<f64> = part.iter().map(|p| p.1).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(r["count"].as_u64().unwrap() as usize, values.len(), "{r}");
            assert_eq!(r["min"].as_f64().unwrap(), min, "{r}");
            assert_eq!(r["max"].as_f64().unwrap(), max, "{r}");
            assert_eq!(r["first"].as_f64().unwrap(), values[0], "{r}");
            assert_eq!(r["last"].as_f64().unwrap(), *values.last().unwrap(), "{r}");
            // The mean of tenths, summed as tenths (exactly), then divided once.
            let tenths: i64 = values.iter().map(|v| (v * 10.0).round() as i64).sum();
            assert_eq!(*mean, (tenths as f64 / (10 * values.len()) as f64).to_string(), "{r}");
            let at_min = part.iter().find(|p| p.1 == min).unwrap();
            assert_eq!(r["min_time"].as_str().unwrap(), at_min.0, "the first reading at the minimum");
            assert_eq!(r["partial"], false);
        }
    }
}

/// Usage errors name what is wrong; a sensor without rollups says why.
#[test]
fn every_takes_whole_hours_and_a_sensor_without_rollups_says_why() {
    let dir = real_site();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}\n[rollup]\ngauges = false\n")).unwrap();
    ok(&dir.run(&["index"]));
    let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--every", "90m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--every 90m: rollups are kept per hour"), "{}", stderr(&out));
    let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--every", "1h"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("gauges are off ([rollup] gauges = false)"), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("blackbox.toml"),
        format!("{HOUSEMON}\n[[counter]]\nsensors = [\"*/homePower-*/c1\"]\nlow = 5\nhigh = 2\n"),
    )
    .unwrap();
    let out = dir.run(&["query", "usb-A40117UK/homePower-9/c1", "--every", "1h"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("blackbox.toml:15: counter: low (5) is above high (2)"), "{}", stderr(&out));
}

/// `--fill` shows the periods without readings in the table, and only there.
#[test]
fn fill_shows_empty_periods_in_the_table_only() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let args = ["query", "usb-A40117UK/roomNode-2/temp", "--every", "1d", "--from", "2012-11-28", "--to", "2012-12-02"];
    let table = ok(&dir.run(&[&args[..], &["--fill"]].concat()));
    assert_eq!(table.lines().count(), 1 + 4, "{table}");
    assert!(table.lines().nth(1).unwrap().trim_end() == "2012-11-28T00:00:00.000Z", "{table}");
    let csv = ok(&dir.run(&[&args[..], &["--format", "csv"]].concat()));
    assert_eq!(csv.lines().count(), 1 + 1, "{csv}");
    let out = dir.run(&[&args[..], &["--format", "csv", "--fill"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--fill adds empty rows to the table format only"), "{}", stderr(&out));
}

/// The periods that hold --from and --to are whole: a day asked up to its
/// noon is the whole day, as is a week, and `1w` is `7d`.
#[test]
fn periods_holding_from_and_to_are_whole() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let sensor = "usb-A40117UK/roomNode-2/temp";
    let whole = ok(&dir.run(&["query", sensor, "--every", "1d", "--format", "csv"]));
    let cut =
        ok(&dir.run(&["query", sensor, "--every", "1d", "--format", "csv", "--from", "2012-11-30 05:00", "--to", "2012-11-30 12:00"]));
    assert_eq!(cut, whole);
    let week = ok(&dir.run(&["query", sensor, "--every", "1w", "--format", "csv", "--to", "2012-11-30 12:00"]));
    assert_eq!(week, ok(&dir.run(&["query", sensor, "--every", "7d", "--format", "csv"])));
    assert!(week.lines().nth(1).unwrap().starts_with("2012-11-26T00:00:00.000Z,2012-12-03T00:00:00.000Z,"), "{week}");
    let out = dir.run(&["query", sensor, "--every", "0h"]);
    assert!(stderr(&out).contains("a period is at least an hour"), "{}", stderr(&out));
}

/// A changed `[[counter]]` is answered right before `index` runs (from the
/// readings: the stored rollups were made with the old table), and `index`
/// makes the stored ones again without indexing the logs again.
#[test]
fn a_changed_counter_is_answered_before_and_after_index() {
    let dir = real_site();
    std::fs::write(dir.logs().join("20121201.txt"), "L 00:00:01.000 usb-A40117UK OK 9 1 0 0 0 2 0 0 0 3 0 0 0\n").unwrap();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{COUNTERS}")).unwrap();
    ok(&dir.run(&["index"]));
    let args = ["export", "--every", "1h", "--format", "csv"];
    let wrapped = ok(&dir.run(&args));
    // The same meters counted in kWh (scale 0.0005) with the MyEMS rule for drops.
    let other = COUNTERS.replace("scale = 0.5", "scale = 0.0005").replace("unit = \"Wh\"", "unit = \"kWh\"\nreset = \"max\"");
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{other}")).unwrap();
    let before = ok(&dir.run(&args));
    assert_ne!(before, wrapped);
    assert!(before.contains(",kWh,"), "{}", &before[..400]);
    let out = dir.run(&["index"]);
    ok(&out);
    assert!(stderr(&out).contains("indexed 0 new lines"), "the logs were not indexed again: {}", stderr(&out));
    assert!(stderr(&out).contains("[[counter]] changed since the rollups were made; making them again"), "{}", stderr(&out));
    assert_eq!(ok(&dir.run(&args)), before, "stored rollups differ from those made from the readings");
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    ok(&dir.run(&["index"]));
    assert_eq!(ok(&dir.run(&args)), before, "a fresh cache's rollups differ");
}
