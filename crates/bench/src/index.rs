//! `bench index`: the indexer of the real binary on three workloads
//! (workloads.rs), each figure held to a target on its ratio to a baseline
//! measured in the same run, so that a slower or busier machine moves both:
//!
//! - rebuild lines/s against `grep -c OK` over the same files (>= 0.20x);
//! - cache size against the log size (<= 0.30x);
//! - peak resident memory of the rebuild (<= 64 MB; no baseline);
//! - `index` after one appended line against `index` with nothing new (<= 2x);
//! - peak memory of a rebuild of 15,000,000 lines over 30 days (<= 64 MB);
//! - a query of one sensor-day from a year cache against `blackbox --version`
//!   (process start): cold (<= 6x) and with `index --follow` holding the
//!   cache and answering over its socket (<= 3x);
//! - the rate of a rebuild with 20 checks over every roomNode sensor against
//!   one without (>= 0.85x: "within 15 %", issue 13), and of one with rollups
//!   (gauges, and the homePower counters) against one without (>= 0.85x):
//!   each the median of 5 rounds' ratios ([`derived_bench`]); the cache's
//!   size with rollups against without
//!   (< 1.10x); `query --every 1h` and `--every 1d` over a year of one
//!   sensor at one reading a minute, the whole process, cold (< 50 ms) and
//!   held by a follower (< 20 ms), each beside `--version` (issue 14);
//! - `blackbox status` and `status --all` on a site of 1,000 devices with
//!   checks, with `index --follow` holding the cache (< 20 ms for the whole
//!   process, issue 13), and cold (no target), each beside `--version`.
//!
//! Every figure is checked to come from a run that did the work: the schema
//! after a rebuild counts every packet grep counted, each catch-up adds its
//! line, every query answers the same full day, and every status lists the
//! devices the site made non-green, each at the level it must have.

use crate::workloads::{self, DataSet, Workload};
use crate::{cores, Row};
use rustix::process::{kill_process, Pid, Signal};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const REBUILD_RATIO: f64 = 0.20;
const CACHE_RATIO: f64 = 0.30;
const RSS_LIMIT_MB: f64 = 64.0;
const CATCH_UP_RATIO: f64 = 2.0;
/// Issue 13: the rate (lines/s) of a rebuild with 20 checks over every
/// roomNode sensor "stays within 15 % of the rebuild rate without checks".
const CHECKS_RATE: f64 = 0.85;
/// Issue 14: the rate of a rebuild with rollups (gauges and counters)
/// "stays within 15 % of the rate with them off".
const ROLLUPS_RATE: f64 = 0.85;
/// Rounds of the four rebuilds that measure what checks and rollups cost
/// (with and without each, one after the other): see [`derived_bench`].
const DERIVED_ROUNDS: usize = 5;
/// Issue 14: the cache with rollups against one without them.
const ROLLUPS_SIZE_RATIO: f64 = 1.10;
/// Issue 14: `query --every` over a year of one sensor, the whole process.
const EVERY_HELD_MS: f64 = 20.0;
const EVERY_COLD_MS: f64 = 50.0;
const COLD_QUERY_RATIO: f64 = 6.0;
const HELD_QUERY_RATIO: f64 = 3.0;
/// Catch-up pairs (one line, then nothing new) per workload.
const CATCH_UPS: usize = 5;
/// Whole-process times of queries vary (a storage engine starting threads): medians of 11.
const QUERY_RUNS: usize = 11;
/// Issue 13: `status` on a site of 1,000 devices answers within this (the
/// whole process, as a person waits for it) with a follower holding the cache.
const STATUS_LIMIT_MS: f64 = 20.0;
/// The kernel counts process CPU time in ticks of 10 ms (USER_HZ is 100 on
/// Linux): a CPU figure is the mean of 20 runs, to half a millisecond.
const TICK_MS: f64 = 10.0;
const CPU_RUNS: usize = 20;
/// The big memory run: lines and days of the mixed workload.
const BIG_LINES: usize = 15_000_000;
const BIG_DAYS: usize = 30;

pub fn index_bench(bin: &Path, lines: usize, only: Option<Workload>, rows: &mut Vec<Row>) {
    println!("blackbox index benchmark: {lines} lines per workload, {} cores", cores());
    println!("targets are ratios to baselines measured in this run (memory: absolute limits)\n");
    for workload in Workload::ALL.into_iter().filter(|w| only.is_none_or(|o| o == *w)) {
        workload_bench(bin, workload, lines, rows);
        println!();
    }
    big_rebuild(bin, lines, rows);
    println!();
    query_bench(bin, rows);
    println!();
    status_bench(bin, rows);
}

/// Prints one line of a detail table.
fn detail(name: &str, value: &str, baseline: &str, ratio: &str) {
    println!("{name:<72} {value:>12} {baseline:>14} {ratio:>8}");
}

fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable figures"));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn workload_bench(bin: &Path, workload: Workload, lines: usize, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let w = workload.name();
    let mut data = workloads::write(dir, workload, lines, workload.days(lines));
    println!("workload {w}: {lines} lines in {} daily files ({:.1} MB)", data.days, mb(data.log_bytes));
    println!("  {}", workload.describe());
    // A rebuild of 5M lines takes seconds: three runs fit; beyond that one.
    let rebuild_runs = if lines <= 5_000_000 { 3 } else { 1 };
    println!(
        "  rebuild: {}; grep: median of 3; catch-up: median of {CATCH_UPS} alternating pairs\n",
        if rebuild_runs == 3 {
            "median of 3 runs (cache size: the median; peak RSS: the highest)"
        } else {
            "1 run (more than 5000000 lines)"
        }
    );
    detail("measurement", "value", "baseline", "ratio");

    // Rebuild against grep -c OK over the same files, alternating.
    let mut greps = Vec::new();
    let mut rebuilds = Vec::new();
    let mut rss = 0f64;
    // The cache's size differs from rebuild to rebuild of the same logs
    // (when the storage engine writes its snapshots and segments): each is kept.
    let mut sizes = Vec::new();
    let mut packets = 0;
    for i in 0..3 {
        let (t, n) = grep_ok(&data.files);
        greps.push(t);
        packets = n;
        if i < rebuild_runs {
            let (t, peak) = timed(bin, dir, &["rebuild"]);
            rebuilds.push(t);
            rss = rss.max(peak);
            sizes.push(dir_size(&dir.join("cache")));
        }
    }
    check_schema(bin, dir, workload, packets);
    let rate = lines as f64 / median(&rebuilds).as_secs_f64();
    let grep_rate = lines as f64 / median(&greps).as_secs_f64();
    let rebuild_ratio = rate / grep_rate;
    let name = format!("rebuild lines/s, {w} (baseline: grep -c OK)");
    detail(&name, &format!("{rate:.0}"), &format!("{grep_rate:.0}"), &format!("{rebuild_ratio:.2}x"));
    rows.push(
        Row::new(name, format!("{rate:.0}"), format!("{grep_rate:.0}"), format!("{rebuild_ratio:.2}x"))
            .target(format!(">= {REBUILD_RATIO:.2}x"), rebuild_ratio >= REBUILD_RATIO),
    );

    let cache_bytes = median(&sizes);
    let size_ratio = cache_bytes as f64 / data.log_bytes as f64;
    let name = format!("cache size, {w} (baseline: log size)");
    let (value, baseline) = (format!("{:.1} MB", mb(cache_bytes)), format!("{:.1} MB", mb(data.log_bytes)));
    detail(&name, &value, &baseline, &format!("{size_ratio:.2}x"));
    if sizes.len() > 1 {
        println!("  (cache sizes after each rebuild: {} MB)", sizes.iter().map(|b| format!("{:.1}", mb(*b))).collect::<Vec<_>>().join(" "));
    }
    rows.push(
        Row::new(name, value, baseline, format!("{size_ratio:.2}x")).target(format!("<= {CACHE_RATIO:.2}x"), size_ratio <= CACHE_RATIO),
    );

    let name = format!("rebuild peak RSS, {w}");
    detail(&name, &format!("{rss:.1} MB"), &format!("{RSS_LIMIT_MB:.0} MB"), "limit");
    rows.push(
        Row::new(name, format!("{rss:.1} MB"), String::new(), String::new())
            .target(format!("<= {RSS_LIMIT_MB:.0} MB"), rss <= RSS_LIMIT_MB),
    );

    derived_bench(bin, dir, w, lines, rows);
    catch_up(bin, dir, &mut data, packets, rows);
}

/// 20 checks over every roomNode sensor, of the kinds a site uses most
/// (ranges with and without `for`, stale sensors, jumps).
fn twenty_checks() -> String {
    let mut out = String::new();
    let checks: [(&str, &str, &str); 20] = [
        ("temp", "range", "max = 28"),
        ("temp", "range", "max = 35\nfor = \"10m\"\nlevel = \"critical\""),
        ("temp", "range", "min = 5\nlevel = \"error\""),
        ("temp", "rate", "max_change = 5\nper = \"10m\""),
        ("temp", "stale", "after = \"15m\""),
        ("temp", "stale", "after = \"1h\"\nlevel = \"error\""),
        ("humi", "range", "max = 85"),
        ("humi", "range", "min = 15"),
        ("humi", "rate", "max_change = 30\nper = \"10m\""),
        ("humi", "stale", "after = \"15m\""),
        ("light", "range", "max = 250\nfor = \"1h\""),
        ("light", "stale", "after = \"15m\""),
        ("light", "rate", "max_change = 200\nper = \"1m\""),
        ("moved", "range", "max = 1"),
        ("moved", "stale", "after = \"30m\""),
        ("lobat", "range", "max = 0\nlevel = \"error\""),
        ("lobat", "stale", "after = \"30m\""),
        ("temp", "range", "max = 40\nlevel = \"critical\""),
        ("humi", "range", "max = 95\nfor = \"5m\"\nlevel = \"error\""),
        ("temp", "range", "min = 0\nfor = \"5m\"\nlevel = \"critical\""),
    ];
    for (i, (field, kind, params)) in checks.iter().enumerate() {
        out.push_str(&format!("\n[[check]]\nname = \"check {i}\"\nsensors = [\"*/roomNode-*/{field}\"]\nkind = \"{kind}\"\n{params}\n"));
    }
    out
}

/// The homePower nodes' counters as cumulative meters (16-bit, wrapping).
const COUNTERS: &str = "\n[[counter]]\nsensors = [\"*/homePower-*/c?\"]\nwrap = 65536\nscale = 0.5\nunit = \"Wh\"\n";

/// What checks and rollups cost a rebuild: with 20 checks against without
/// (issue 13), and with rollups on (every gauge, and the homePower counters)
/// against off (issue 14), in [`DERIVED_ROUNDS`] rounds of the four
/// rebuilds one after the other; each round's ratios compare rebuilds
/// seconds apart, and the median of the rounds' ratios is held to the
/// target (the same rebuild varies by up to 30 % over a minute on a shared
/// machine: a ratio of medians taken apart mixes that in). The ratios are
/// of rates (lines/s), as the issues state their targets: "within 15 % of
/// the rate" is a rate at least 0.85 times the baseline's (a time at most
/// 1.18 times). And the cache size with rollups against without.
fn derived_bench(bin: &Path, dir: &Path, w: &str, lines: usize, rows: &mut Vec<Row>) {
    let base = std::fs::read_to_string(dir.join("blackbox.toml")).expect("read blackbox.toml");
    std::fs::write(dir.join("checks.toml"), format!("{base}{}", twenty_checks())).expect("write checks.toml");
    std::fs::write(dir.join("rollups.toml"), format!("{base}{COUNTERS}")).expect("write rollups.toml");
    std::fs::write(dir.join("no-rollups.toml"), format!("{base}\n[rollup]\ngauges = false\n")).expect("write no-rollups.toml");
    let (mut with, mut without, mut on, mut off) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut checks_ratios, mut rollups_ratios) = (Vec::new(), Vec::new());
    let (mut size_on, mut size_off) = (Vec::new(), Vec::new());
    for _ in 0..DERIVED_ROUNDS {
        without.push(timed(bin, dir, &["rebuild"]).0);
        with.push(timed(bin, dir, &["--config", "checks.toml", "rebuild"]).0);
        on.push(timed(bin, dir, &["--config", "rollups.toml", "rebuild"]).0);
        size_on.push(dir_size(&dir.join("cache")));
        off.push(timed(bin, dir, &["--config", "no-rollups.toml", "rebuild"]).0);
        size_off.push(dir_size(&dir.join("cache")));
        let last = |v: &[Duration]| v[v.len() - 1].as_secs_f64();
        checks_ratios.push(last(&without) / last(&with));
        rollups_ratios.push(last(&off) / last(&on));
    }
    // Rollups were made: the rebuild with them answers `query --every` from stored days.
    timed(bin, dir, &["--config", "rollups.toml", "index"]);
    let every =
        Command::new(bin).current_dir(dir).args(["--config", "rollups.toml", "export", "--every", "1d"]).output().expect("export --every");
    assert!(
        every.status.success() && !every.stdout.is_empty(),
        "export --every 1d answered nothing: {}",
        String::from_utf8_lossy(&every.stderr)
    );
    for (what, name, (a, b), ratios, limit) in [
        (
            "checks",
            format!("rebuild lines/s with 20 checks, {w} (baseline: without)"),
            (median(&with), median(&without)),
            checks_ratios,
            CHECKS_RATE,
        ),
        (
            "rollups",
            format!("rebuild lines/s with rollups, {w} (baseline: without)"),
            (median(&on), median(&off)),
            rollups_ratios,
            ROLLUPS_RATE,
        ),
    ] {
        let ratio = median(&ratios);
        let rate = |t: Duration| format!("{:.0}", lines as f64 / t.as_secs_f64());
        let (value, baseline) = (rate(a), rate(b));
        detail(&name, &value, &baseline, &format!("{ratio:.2}x"));
        println!(
            "  ({what}: rate ratios of the {DERIVED_ROUNDS} rounds {}; median times {:.2} s against {:.2} s)",
            ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "),
            a.as_secs_f64(),
            b.as_secs_f64()
        );
        rows.push(Row::new(name, value, baseline, format!("{ratio:.2}x")).target(format!(">= {limit:.2}x"), ratio >= limit));
    }
    let (a, b) = (median(&size_on), median(&size_off));
    let ratio = a as f64 / b as f64;
    let name = format!("cache size with rollups, {w} (baseline: without)");
    let (value, baseline) = (format!("{:.1} MB", mb(a)), format!("{:.1} MB", mb(b)));
    detail(&name, &value, &baseline, &format!("{ratio:.2}x"));
    rows.push(
        Row::new(name, value, baseline, format!("{ratio:.2}x")).target(format!("< {ROLLUPS_SIZE_RATIO:.2}x"), ratio < ROLLUPS_SIZE_RATIO),
    );
    // The cache the next measurements use is the default one.
    timed(bin, dir, &["rebuild"]);
}

/// `grep -c OK` over the files: its wall time and the lines it counted.
fn grep_ok(files: &[PathBuf]) -> (Duration, u64) {
    let start = Instant::now();
    // -h: counts only, one a line, whether there is one file or many.
    let out = Command::new("grep").args(["-c", "-h", "OK"]).args(files).output().expect("run grep");
    let elapsed = start.elapsed();
    assert!(out.status.success(), "grep -c OK failed: {}", String::from_utf8_lossy(&out.stderr));
    let count = String::from_utf8_lossy(&out.stdout).lines().map(|n| n.trim().parse::<u64>().expect("grep -c prints counts")).sum();
    (elapsed, count)
}

/// `blackbox schema` in `dir`: each sensor's name and reading count.
fn schema(bin: &Path, dir: &Path) -> Vec<(String, u64)> {
    let out = Command::new(bin).current_dir(dir).arg("schema").output().expect("run blackbox schema");
    assert!(out.status.success(), "blackbox schema failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().next().is_some_and(|s| s.matches('/').count() >= 2))
        .map(|l| {
            // SENSOR TYPE UNIT COUNT FIRST LAST
            let cols: Vec<&str> = l.split_whitespace().collect();
            let count = cols.get(3).and_then(|c| c.parse().ok());
            (cols[0].to_string(), count.unwrap_or_else(|| panic!("schema line without a count in its fourth column: {l:?}")))
        })
        .collect()
}

/// Packets in the cache: the readings of fields every packet has one of.
fn packets_indexed(schema: &[(String, u64)]) -> u64 {
    schema.iter().filter(|(s, _)| s.rsplit('/').next().is_some_and(|f| workloads::PACKET_FIELDS.contains(&f))).map(|(_, n)| n).sum()
}

/// The rebuilt cache holds the sensors the workload should produce and one
/// reading set for every packet grep counted: the rebuild read everything.
fn check_schema(bin: &Path, dir: &Path, workload: Workload, packets: u64) {
    let schema = schema(bin, dir);
    for expected in workload.expected_sensors() {
        assert!(schema.iter().any(|(s, _)| s == expected), "{}: {expected} missing from blackbox schema", workload.name());
    }
    let indexed = packets_indexed(&schema);
    assert_eq!(indexed, packets, "{}: the cache holds {indexed} packets, grep counted {packets} OK lines", workload.name());
}

/// Catch-up of one appended line against a catch-up with nothing new, in
/// alternating pairs; the median of the pairs' ratios is held to the target.
fn catch_up(bin: &Path, dir: &Path, data: &mut DataSet, packets: u64, rows: &mut Vec<Row>) {
    let mut ones = Vec::new();
    let mut nones = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..CATCH_UPS {
        data.append_packet();
        let (one, _) = timed(bin, dir, &["index"]);
        let (none, _) = timed(bin, dir, &["index"]);
        ratios.push(one.as_secs_f64() / none.as_secs_f64());
        ones.push(one);
        nones.push(none);
    }
    let indexed = packets_indexed(&schema(bin, dir));
    let w = data.workload.name();
    assert_eq!(indexed, packets + CATCH_UPS as u64, "{w}: the catch-ups did not index each appended line");
    let ratio = median(&ratios);
    let (value, baseline) = (format!("{:.1} ms", ms(median(&ones))), format!("{:.1} ms", ms(median(&nones))));
    let name = format!("catch-up of one line, {w} (baseline: none new)");
    detail(&name, &value, &baseline, &format!("{ratio:.2}x"));
    println!("  (catch-up ratios of the {CATCH_UPS} pairs: {})", ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "));
    rows.push(Row::new(name, value, baseline, format!("{ratio:.2}x")).target(format!("<= {CATCH_UP_RATIO:.1}x"), ratio <= CATCH_UP_RATIO));
}

/// Peak memory of one rebuild of 15,000,000 mixed lines over 30 days: the
/// indexer must not hold what it reads. Part of a full run (LINES of at
/// least 5,000,000); BENCH_BIG=0 skips it, BENCH_BIG=1 runs it with fewer.
fn big_rebuild(bin: &Path, lines: usize, rows: &mut Vec<Row>) {
    let run = match std::env::var("BENCH_BIG").as_deref() {
        Ok("0") => {
            println!("big logs: skipped ({BIG_LINES} lines in {BIG_DAYS} days; BENCH_BIG=0)");
            false
        }
        Ok("1") => true,
        _ if lines >= 5_000_000 => true,
        _ => {
            println!("big logs: skipped ({BIG_LINES} lines in {BIG_DAYS} days run with LINES >= 5000000, or BENCH_BIG=1)");
            false
        }
    };
    if !run {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let data = workloads::write(dir, Workload::Mixed, BIG_LINES, BIG_DAYS);
    println!("big logs: {BIG_LINES} mixed lines in {BIG_DAYS} daily files ({:.1} MB), one rebuild\n", mb(data.log_bytes));
    let (_, packets) = grep_ok(&data.files);
    let (took, rss) = timed(bin, dir, &["rebuild"]);
    check_schema(bin, dir, Workload::Mixed, packets);
    let cache_bytes = dir_size(&dir.join("cache"));
    detail("measurement", "value", "baseline", "ratio");
    let name = format!("rebuild peak RSS, {}M lines in {BIG_DAYS} days", BIG_LINES / 1_000_000);
    detail(&name, &format!("{rss:.1} MB"), &format!("{RSS_LIMIT_MB:.0} MB"), "limit");
    println!(
        "  (that rebuild: {:.1} s, {:.0} lines/s; cache {:.1} MB, {:.2}x the logs)",
        took.as_secs_f64(),
        BIG_LINES as f64 / took.as_secs_f64(),
        mb(cache_bytes),
        cache_bytes as f64 / data.log_bytes as f64
    );
    rows.push(
        Row::new(name, format!("{rss:.1} MB"), String::new(), String::new())
            .target(format!("<= {RSS_LIMIT_MB:.0} MB"), rss <= RSS_LIMIT_MB),
    );
}

/// A query of one sensor-day from a year of 20 sensors at one reading a
/// minute, cold and held by a follower, against process start.
fn query_bench(bin: &Path, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let year = tmp.path();
    workloads::year_data(year);
    let (year_index, _) = timed(bin, year, &["index"]);
    let from = logfile::time::rfc3339_millis((workloads::FIRST_DAY + 200) * 86_400_000);
    let to = logfile::time::rfc3339_millis((workloads::FIRST_DAY + 201) * 86_400_000);
    let sensor = "usb-SIM/usb-SIM/s7";
    let args = ["query", sensor, "--from", &from, "--to", &to, "--format", "csv"];
    let out = year.join("query.out");

    // Cold: every run opens the cache itself. Each answer must be the full day, and the same.
    let expected = {
        let (_, status) = time_to(bin, year, &args, &out);
        assert!(status.success(), "blackbox query failed on the year cache");
        let text = std::fs::read(&out).expect("query output");
        let rows = String::from_utf8_lossy(&text).lines().filter(|l| l.contains(sensor)).count();
        assert_eq!(rows, 1440, "a query of one day at one reading a minute answers 1440 readings");
        text
    };
    let cold = against_version(bin, year, &args, &out, &expected, "cold");
    // The year's rollups: a row per hour (per day) of the whole year, each checked to count 60 (1440) readings.
    let every = |period: &str| ["query", sensor, "--every", period, "--format", "csv"].map(str::to_string);
    let (hourly, daily) = (every("1h"), every("1d"));
    let (hourly, daily): (Vec<&str>, Vec<&str>) = (hourly.iter().map(String::as_str).collect(), daily.iter().map(String::as_str).collect());
    let expect_every = |args: &[&str], rows: usize, count: &str| -> Vec<u8> {
        let (_, status) = time_to(bin, year, args, &out);
        assert!(status.success(), "{}", failure(args, status, year));
        let text = std::fs::read(&out).expect("query output");
        let lines: Vec<String> = String::from_utf8_lossy(&text).lines().skip(1).map(str::to_string).collect();
        assert_eq!(lines.len(), rows, "{args:?}: a row per period of the year");
        assert!(lines.iter().all(|l| l.split(',').nth(3) == Some(count)), "{args:?}: every period counts {count} readings");
        text
    };
    let (expected_hourly, expected_daily) = (expect_every(&hourly, 365 * 24, "60"), expect_every(&daily, 365, "1440"));
    let cold_hourly = against_version(bin, year, &hourly, &out, &expected_hourly, "cold");
    let cold_daily = against_version(bin, year, &daily, &out, &expected_daily, "cold");

    // Held: `index --follow` keeps the cache open and answers over cache/query.sock.
    let mut follower = Follower::start(bin, year);
    let ready = follower.wait_ready(|| {
        let (_, status) = time_to(bin, year, &args, &out);
        status.success() && std::fs::read(&out).is_ok_and(|o| o == expected)
    });
    let held = against_version(bin, year, &args, &out, &expected, "held by the follower");
    let held_hourly = against_version(bin, year, &hourly, &out, &expected_hourly, "held by the follower");
    let held_daily = against_version(bin, year, &daily, &out, &expected_daily, "held by the follower");
    follower.stop();

    println!(
        "query: one sensor-day ({sensor}, 1440 readings) from a year cache (525600 lines of 20 fields, indexed in {:.1} s)",
        year_index.as_secs_f64()
    );
    println!("  medians of {QUERY_RUNS} runs of the whole process, each followed by a --version");
    println!("  the follower answered a first query {:.0} ms after it started\n", ms(ready));
    detail("measurement", "value", "baseline", "ratio");
    for (name, (t, version), limit) in [
        ("query one sensor-day, cold (baseline: --version)", cold, COLD_QUERY_RATIO),
        ("query one sensor-day, follower holds cache (baseline: --version)", held, HELD_QUERY_RATIO),
    ] {
        let ratio = t.as_secs_f64() / version.as_secs_f64();
        let (value, baseline) = (format!("{:.1} ms", ms(t)), format!("{:.1} ms", ms(version)));
        detail(name, &value, &baseline, &format!("{ratio:.1}x"));
        rows.push(Row::new(name, value, baseline, format!("{ratio:.1}x")).target(format!("<= {limit:.1}x"), ratio <= limit));
    }
    for (name, (t, version), limit) in [
        ("query --every 1h, a year of one sensor, cold (baseline: --version)", cold_hourly, EVERY_COLD_MS),
        ("query --every 1d, a year of one sensor, cold (baseline: --version)", cold_daily, EVERY_COLD_MS),
        ("query --every 1h, a year of one sensor, follower holds cache (baseline: --version)", held_hourly, EVERY_HELD_MS),
        ("query --every 1d, a year of one sensor, follower holds cache (baseline: --version)", held_daily, EVERY_HELD_MS),
    ] {
        let ratio = t.as_secs_f64() / version.as_secs_f64();
        let (value, baseline) = (format!("{:.1} ms", ms(t)), format!("{:.1} ms", ms(version)));
        detail(name, &value, &baseline, &format!("{ratio:.1}x"));
        rows.push(Row::new(name, value, baseline, format!("{ratio:.1}x")).target(format!("< {limit:.0} ms"), ms(t) < limit));
    }
}

/// Runs `blackbox ARGS` QUERY_RUNS times, each followed by a `--version`,
/// so that both see the same load on a shared machine, and returns the
/// medians of both (each row's baseline is its own runs'). Every answer
/// must be `expected`.
fn against_version(bin: &Path, dir: &Path, args: &[&str], out: &Path, expected: &[u8], label: &str) -> (Duration, Duration) {
    let mut times = Vec::new();
    let mut versions = Vec::new();
    for _ in 0..QUERY_RUNS {
        let (t, status) = time_to(bin, dir, args, out);
        assert!(status.success(), "{label}: {}", failure(args, status, dir));
        assert!(std::fs::read(out).expect("blackbox's output") == expected, "blackbox {args:?} ({label}) answered differently");
        times.push(t);
        let (t, status) = time_to(bin, dir, &["--version"], &dir.join("version.out"));
        assert!(status.success(), "blackbox --version failed");
        versions.push(t);
    }
    (median(&times), median(&versions))
}

/// `blackbox status` on a site of 1,000 devices (workloads::status_data):
/// the non-green devices and every device (`--all`), cold and with the
/// cache held by a follower, against process start. Issue 13 holds the
/// held answer to STATUS_LIMIT_MS; the cold one is for information.
fn status_bench(bin: &Path, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let site = workloads::status_data(dir);
    let (rebuilt, _) = timed(bin, dir, &["rebuild"]);
    // Silence is judged at the end of the data, not now: `--at`, as for old logs.
    let at = logfile::time::rfc3339_millis(site.end_ms);
    let short = ["status", "--at", &at];
    let all = ["status", "--all", "--at", &at];
    let out = dir.join("status.out");

    // Cold answers, checked: each device the site made non-green at its level (every device with --all).
    let answer = |args: &[&str], all: bool| -> Vec<u8> {
        let (_, status) = time_to(bin, dir, args, &out);
        assert!(status.success(), "{}", failure(args, status, dir));
        let text = std::fs::read(&out).expect("status output");
        check_status(&String::from_utf8_lossy(&text), all);
        text
    };
    let (expected_short, expected_all) = (answer(&short, false), answer(&all, true));
    let not_ok = (0..workloads::STATUS_DEVICES).filter(|&id| workloads::status_level(id) != "ok").count();
    let cold_short = against_version(bin, dir, &short, &out, &expected_short, "cold");
    let cold_all = against_version(bin, dir, &all, &out, &expected_all, "cold");
    let cpu_cold = [cpu_per_run(bin, dir, &short, &out, None), cpu_per_run(bin, dir, &all, &out, None)];

    // Held: `index --follow` keeps the cache open and answers over cache/query.sock.
    let mut follower = Follower::start(bin, dir);
    let ready = follower.wait_ready(|| {
        let (_, status) = time_to(bin, dir, &all, &out);
        status.success() && std::fs::read(&out).is_ok_and(|o| o == expected_all)
    });
    let held_short = against_version(bin, dir, &short, &out, &expected_short, "held by the follower");
    let held_all = against_version(bin, dir, &all, &out, &expected_all, "held by the follower");
    let cpu_held = [cpu_per_run(bin, dir, &short, &out, Some(&follower)), cpu_per_run(bin, dir, &all, &out, Some(&follower))];
    follower.stop();

    let n = workloads::STATUS_DEVICES;
    println!(
        "status: a site of {n} devices (rtl_433 JSON, 3 sensors each, 6 checks; {} lines in 2 days, {:.1} MB, rebuilt in {:.1} s), --at the end of its data",
        site.lines,
        mb(site.log_bytes),
        rebuilt.as_secs_f64()
    );
    println!("  `status` lists the {not_ok} devices that are not ok, `status --all` every device; each answer checked");
    println!("  medians of {QUERY_RUNS} runs of the whole process, each followed by a --version");
    println!("  the follower answered a first status {:.0} ms after it started\n", ms(ready));
    detail("measurement", "value", "baseline", "ratio");
    // The cold `status` is only in the detail: in the table, the cold `--all` tells the same.
    for (name, (t, version), table, target) in [
        (format!("status, {n} devices, cold (baseline: --version)"), cold_short, false, false),
        (format!("status --all, {n} devices, cold (baseline: --version)"), cold_all, true, false),
        (format!("status, {n} devices, follower holds cache (baseline: --version)"), held_short, true, true),
        (format!("status --all, {n} devices, follower holds cache (baseline: --version)"), held_all, true, true),
    ] {
        let ratio = t.as_secs_f64() / version.as_secs_f64();
        let (value, baseline) = (format!("{:.1} ms", ms(t)), format!("{:.1} ms", ms(version)));
        detail(&name, &value, &baseline, &format!("{ratio:.1}x"));
        let row = Row::new(name, value, baseline, format!("{ratio:.1}x"));
        if target {
            rows.push(row.target(format!("< {STATUS_LIMIT_MS:.0} ms"), ms(t) < STATUS_LIMIT_MS));
        } else if table {
            rows.push(row);
        }
    }
    // Held, the client's own CPU time leaves out the follower's work: both are shown.
    println!("  CPU (user+system) per run, means of {CPU_RUNS} runs one after the other (the follower: all it did meanwhile):");
    for (i, label) in ["status", "status --all"].into_iter().enumerate() {
        let ((cold, _), (held, follower)) = (cpu_cold[i], cpu_held[i]);
        println!("    {label:<13} cold {cold:.1} ms; held {held:.1} ms, and the follower {:.1} ms", follower.unwrap_or_default());
    }
}

/// A status answer's site line counts every device of the site, and its
/// table lists each device the site made non-green (each device with
/// `--all`) once, at the level workloads::status_level gives it.
fn check_status(text: &str, all: bool) {
    let mut lines = text.lines();
    let site = lines.next().unwrap_or_default();
    let n = workloads::STATUS_DEVICES;
    assert!(site.contains(&format!("site: {n} devices: ")), "status's first line does not count {n} devices: {site:?}");
    let mut listed = vec![false; n];
    // After the heading (LEVEL DEVICE ...): badge mark, level, device, ...
    for l in lines.skip(1) {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let id = cols
            .get(2)
            .and_then(|d| d.strip_prefix(workloads::STATUS_DEVICE_PREFIX))
            .and_then(|id| id.parse::<usize>().ok())
            .filter(|&id| id < n)
            .unwrap_or_else(|| panic!("a status line without a device of the site: {l:?}"));
        assert_eq!(cols[1], workloads::status_level(id), "status gives the wrong level: {l:?}");
        assert!(!listed[id], "status lists a device twice: {l:?}");
        listed[id] = true;
    }
    for (id, &listed) in listed.iter().enumerate() {
        let shown = all || workloads::status_level(id) != "ok";
        assert_eq!(listed, shown, "status {} {}{id}", if shown { "leaves out" } else { "lists" }, workloads::STATUS_DEVICE_PREFIX);
    }
}

/// User+system CPU time of a process in clock ticks, from `/proc/PID/stat`:
/// its own, or (`children`) that of its children it has waited for.
fn cpu_ticks(pid: &str, children: bool) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The fields after the command's closing parenthesis start at the third (state):
    // utime and stime are the 14th and 15th, cutime and cstime the 16th and 17th.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let at = if children { 13 } else { 11 };
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).expect("a CPU time in /proc/PID/stat");
    field(at) + field(at + 1)
}

/// The CPU time (user+system, ms) of one `blackbox ARGS`, and of the
/// follower answering it: the means of CPU_RUNS runs one after the other,
/// because the kernel counts process CPU time in ticks.
fn cpu_per_run(bin: &Path, dir: &Path, args: &[&str], out: &Path, follower: Option<&Follower>) -> (f64, Option<f64>) {
    let (client, held) = (cpu_ticks("self", true), follower.map(Follower::cpu_ticks));
    for _ in 0..CPU_RUNS {
        let (_, status) = time_to(bin, dir, args, out);
        assert!(status.success(), "{}", failure(args, status, dir));
    }
    let per_run = |ticks: u64| ticks as f64 * TICK_MS / CPU_RUNS as f64;
    (per_run(cpu_ticks("self", true) - client), follower.zip(held).map(|(f, held)| per_run(f.cpu_ticks() - held)))
}

/// `blackbox index --follow` running in a directory; stopped (SIGTERM) when dropped.
#[derive(Debug)]
struct Follower {
    child: Option<Child>,
    started: Instant,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Follower {
    fn start(bin: &Path, dir: &Path) -> Self {
        let stderr = dir.join("follower.err");
        let child = Command::new(bin)
            .current_dir(dir)
            .args(["index", "--follow"])
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("follower's stderr file"))
            .spawn()
            .expect("start blackbox index --follow");
        Follower { child: Some(child), started: Instant::now(), socket: dir.join("cache").join("query.sock"), stderr }
    }

    /// Its CPU time so far, in clock ticks (every thread's, those that ended too).
    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(&self.child.as_ref().expect("a running follower").id().to_string(), false)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls until the socket exists and `answers` (a query through it)
    /// succeeds; returns how long that took from the start. At most a minute.
    fn wait_ready(&mut self, mut answers: impl FnMut() -> bool) -> Duration {
        loop {
            let child = self.child.as_mut().expect("a running follower");
            if let Some(status) = child.try_wait().expect("the follower's status") {
                panic!("blackbox index --follow exited ({status}) before answering a query: {}", self.stderr());
            }
            if self.socket.exists() && answers() {
                return self.started.elapsed();
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(60),
                "blackbox index --follow did not answer a query through {} within a minute: {}",
                self.socket.display(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits (at most 30 s) for a clean exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = kill_process(Pid::from_child(&child), Signal::TERM);
        let status = wait_bounded(&mut child, Duration::from_secs(30));
        match status {
            Some(status) => assert!(status.success(), "blackbox index --follow exited with {status} on SIGTERM: {}", self.stderr()),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("blackbox index --follow did not stop within 30 s of SIGTERM");
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // A benchmark that failed half-way must not leave a follower running.
        if let Some(mut child) = self.child.take() {
            let _ = kill_process(Pid::from_child(&child), Signal::TERM);
            if wait_bounded(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("a child's status") {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().expect("meta");
            total += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
        }
    }
    total
}

/// The file a run's stderr goes to, read back when it fails.
fn stderr_file(dir: &Path) -> PathBuf {
    dir.join("bench-stderr.txt")
}

fn failure(args: &[&str], status: ExitStatus, dir: &Path) -> String {
    format!("blackbox {args:?} failed ({status}): {}", std::fs::read_to_string(stderr_file(dir)).unwrap_or_default())
}

/// Runs the binary and returns wall time and peak resident memory (VmHWM, read until exit).
fn timed(bin: &Path, dir: &Path, args: &[&str]) -> (Duration, f64) {
    let stderr = File::create(stderr_file(dir)).expect("stderr file");
    let start = Instant::now();
    let mut child = Command::new(bin).current_dir(dir).args(args).stderr(stderr).stdout(Stdio::null()).spawn().expect("spawn");
    let status_file = format!("/proc/{}/status", child.id());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Memory is sampled on another thread, so that the wall time ends
        // exactly when the process does.
        let sampler = scope.spawn(|| {
            let mut hwm_kb = 0f64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(status) = std::fs::read_to_string(&status_file) {
                    if let Some(kb) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    {
                        hwm_kb = f64::max(hwm_kb, kb);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            hwm_kb
        });
        let status = child.wait().expect("wait");
        let elapsed = start.elapsed();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(status.success(), "{}", failure(args, status, dir));
        (elapsed, sampler.join().expect("memory sampler") / 1024.0)
    })
}

/// Runs the binary with its standard output to `out` and returns the wall
/// time and exit status; no memory sampler competes for the two cores.
fn time_to(bin: &Path, dir: &Path, args: &[&str], out: &Path) -> (Duration, ExitStatus) {
    let stdout = File::create(out).expect("output file");
    let stderr = File::create(stderr_file(dir)).expect("stderr file");
    let start = Instant::now();
    let status = Command::new(bin).current_dir(dir).args(args).stdout(stdout).stderr(stderr).status().expect("run blackbox");
    (start.elapsed(), status)
}
