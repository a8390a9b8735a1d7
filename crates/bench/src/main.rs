//! `just bench`: the real `blackbox` binary's capture throughput and
//! memory, indexer speed, size, memory, query and status time, and `tail -f`
//! latency, each figure beside a baseline measured in the same run (`cat`
//! of the same input, `grep -c OK` over the same files, process start, GNU
//! `tail -F`). Every run is checked to have done its work (captured every
//! line, indexed every packet, answered the full day, listed every device
//! at its level), so a figure never comes from a broken run.
//!
//! Usage: bench                  everything, then one table (`just bench`)
//!        bench capture [LINES]  capture (default 1000000 lines)
//!        bench index [LINES] [--workload W]   indexer on each workload (default
//!                               5000000 lines each; W: mixed, homepower, sensors)
//!        bench tail [SAMPLES]   `tail -f` latency (default 300 lines)
//!        bench web              the dashboard: server times, live latency, memory
//!        bench mqtt             forwarder rate from a backlog, mirror lag of 100 sites (needs mosquitto)
//!        bench index-data DIR [LINES [DAYS]] [--workload W]   a workload's logs, kept
//!        bench year-data DIR    the query benchmark's year of logs, kept
//!        bench status-data DIR  the status benchmark's site of 1,000 devices, kept
//! The binary is target/release/blackbox or $BLACKBOX_BIN. `bench index`
//! with LINES >= 5000000 also rebuilds 15000000 lines over 30 days for its
//! memory (BENCH_BIG=0 skips that, BENCH_BIG=1 runs it with fewer LINES).
//! Exit status 1 when a target is missed.

mod index;
mod mqtt;
mod web;
mod workloads;

use rustix::process::{kill_process, Pid, Signal};
use serialport::SerialPort;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use workloads::Workload;

const FLOOR_STDIN: f64 = 200_000.0;
const RSS_LIMIT_MB: f64 = 16.0;
const END: &str = "END-OF-BENCHMARK";

/// One line of the summary table: a figure, its baseline measured in the
/// same run, and the target it is held to.
#[derive(Debug)]
struct Row {
    measure: String,
    value: String,
    baseline: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn new(measure: impl Into<String>, value: String, baseline: String, ratio: String) -> Self {
        Row { measure: measure.into(), value, baseline, ratio, target: String::new(), met: None }
    }

    fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = target.into();
        self.met = Some(met);
        self
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--workload NAME` (or `--workload=NAME`) anywhere; the rest are positional.
    let mut workload = None;
    if let Some(i) = args.iter().position(|a| a == "--workload" || a.starts_with("--workload=")) {
        let flag = args.remove(i);
        let name = match flag.strip_prefix("--workload=") {
            Some(name) => name.to_string(),
            None if i < args.len() => args.remove(i),
            None => String::new(),
        };
        let Some(w) = Workload::parse(&name) else {
            let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
            eprintln!("bench: unknown workload {name:?}; one of {}", names.join(", "));
            return ExitCode::from(2);
        };
        workload = Some(w);
    }
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    // The data sets need no binary: a profiler can be pointed at them on any machine.
    match args.first().map(String::as_str) {
        // A workload's data set, kept for profiling: `bench index-data DIR [LINES [DAYS]] [--workload W]`.
        Some("index-data") => {
            let Some(dir) = args.get(1) else {
                eprintln!("bench: usage: bench index-data DIR [LINES [DAYS]] [--workload mixed|homepower|sensors]");
                return ExitCode::from(2);
            };
            let workload = workload.unwrap_or(Workload::Mixed);
            let lines = arg(2, 5_000_000);
            let data = workloads::write(Path::new(dir), workload, lines, arg(3, workload.days(lines)));
            println!(
                "{dir}: blackbox.toml and logs/ ({} lines of the {} workload in {} days, {:.1} MB); try `blackbox rebuild` there",
                data.lines,
                workload.name(),
                data.days,
                data.log_bytes as f64 / 1e6
            );
            return ExitCode::SUCCESS;
        }
        // The query benchmark's year of data, kept for profiling: `bench
        // year-data DIR`; with --temperatures, the dashboard benchmark's.
        Some("year-data") => {
            let (Some(dir), temperatures @ (None | Some("--temperatures")), None) =
                (args.get(1), args.get(2).map(String::as_str), args.get(3))
            else {
                eprintln!("bench: usage: bench year-data DIR [--temperatures]");
                return ExitCode::from(2);
            };
            if temperatures.is_some() {
                workloads::year_temperatures(Path::new(dir));
            } else {
                workloads::year_data(Path::new(dir));
            }
            println!("{dir}: blackbox.toml and logs/ (a year, one line of 20 values a minute); try `blackbox index` there");
            return ExitCode::SUCCESS;
        }
        // The status benchmark's site of 1,000 devices, kept for profiling: `bench status-data DIR`.
        Some("status-data") => {
            let Some(dir) = args.get(1) else {
                eprintln!("bench: usage: bench status-data DIR");
                return ExitCode::from(2);
            };
            let site = workloads::status_data(Path::new(dir));
            println!(
                "{dir}: blackbox.toml (6 checks) and logs/ ({} lines from {} devices in 2 days, {:.1} MB); try `blackbox rebuild` and `blackbox status --at {}` there",
                site.lines,
                workloads::STATUS_DEVICES,
                site.log_bytes as f64 / 1e6,
                logfile::time::rfc3339_millis(site.end_ms)
            );
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let Some(bin) = binary() else { return ExitCode::from(2) };
    let mut rows = Vec::new();
    match args.first().map(String::as_str) {
        None | Some("all") => {
            capture_bench(&bin, 1_000_000, &mut rows);
            println!();
            index::index_bench(&bin, 5_000_000, workload, &mut rows);
            println!();
            tail_bench(&bin, 300, &mut rows);
            println!();
            web::web_bench(&bin, &mut rows);
            println!();
            mqtt::mqtt_bench(&bin, &mut rows);
        }
        Some("capture") => capture_bench(&bin, arg(1, 1_000_000), &mut rows),
        Some("index") => index::index_bench(&bin, arg(1, 5_000_000), workload, &mut rows),
        Some("tail") => tail_bench(&bin, arg(1, 300), &mut rows),
        Some("web") => web::web_bench(&bin, &mut rows),
        Some("mqtt") => mqtt::mqtt_bench(&bin, &mut rows),
        // `bench LINES`, as before: capture only.
        Some(n) if n.parse::<usize>().is_ok() => capture_bench(&bin, arg(0, 1_000_000), &mut rows),
        Some(other) => {
            eprintln!(
                "bench: unknown benchmark {other:?}; use capture, index, tail, web, mqtt, index-data, year-data, status-data or nothing for all"
            );
            return ExitCode::from(2);
        }
    }
    let width = rows.iter().map(|r| r.measure.chars().count()).max().unwrap_or(0).max(56);
    println!("\nsummary ({} cores; each figure beside its baseline measured in the same run)\n", cores());
    println!("{:<width$} {:>12} {:>14} {:>8}  target", "measurement", "value", "baseline", "ratio");
    for r in &rows {
        let status = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!("{:<width$} {:>12} {:>14} {:>8}  {:<22} {status}", r.measure, r.value, r.baseline, r.ratio, r.target);
    }
    if rows.iter().any(|r| r.met == Some(false)) {
        println!("\na target was missed");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn capture_bench(bin: &Path, lines: usize, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let work = tmp.path();
    let mut sim = sim::Rf12Demo::new(42);
    let texts: Vec<String> = (0..lines).map(|_| sim.next_line()).collect();
    let input = join(&texts, "\n");
    let few = lines.min(20_000);
    let few_input = join(&texts[..few], "\n");
    let pty_lines = lines.min(200_000);
    let pty_input = join(&texts[..pty_lines], "\r\n");
    let bin = bin.to_path_buf();

    println!(
        "blackbox capture benchmark: simulated RF12demo lines ({:.1} bytes per line), {} cores",
        input.len() as f64 / lines as f64,
        cores()
    );
    println!("each figure is the median of 3 runs; the baseline is `cat` of the same input to a file, measured in the same run\n");
    println!("{:<34} {:>9} {:>12} {:>14} {:>9}", "measurement", "lines", "lines/s", "cat lines/s", "ratio");
    let (rate, base) =
        row("stdin, sync interval=1000", lines, || run_stdin(&bin, work, &input, lines, "interval=1000"), || cat_stdin(work, &input));
    rows.push(
        Row::new("capture lines/s, stdin (baseline: cat)", format!("{rate:.0}"), format!("{base:.0}"), format!("{:.2}x", rate / base))
            .target(format!(">= {FLOOR_STDIN:.0}"), rate >= FLOOR_STDIN),
    );
    row("stdin, sync always", few, || run_stdin(&bin, work, &few_input, few, "always"), || cat_stdin(work, &few_input));
    let (rate, base) =
        row("pty, sync interval=1000", pty_lines, || run_pty(&bin, work, &pty_input, "interval=1000"), || cat_pty(work, &pty_input));
    rows.push(Row::new("capture lines/s, pty (baseline: cat)", format!("{rate:.0}"), format!("{base:.0}"), format!("{:.2}x", rate / base)));
    let few_pty = join(&texts[..few], "\r\n");
    row("pty, sync always", few, || run_pty(&bin, work, &few_pty, "always"), || cat_pty(work, &few_pty));

    let rss = three_source_rss(&bin, work, &texts[..pty_lines]);
    println!(
        "\npeak resident memory (VmHWM) of a capture with 3 pty sources, {pty_lines} lines each: {rss:.1} MB (limit {RSS_LIMIT_MB} MB)"
    );
    rows.push(
        Row::new("capture peak RSS, 3 pty sources at full speed", format!("{rss:.1} MB"), String::new(), String::new())
            .target(format!("<= {RSS_LIMIT_MB} MB"), rss <= RSS_LIMIT_MB),
    );
}

fn join(texts: &[String], eol: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(texts.len() * 32);
    for t in texts {
        out.extend_from_slice(t.as_bytes());
        out.extend_from_slice(eol.as_bytes());
    }
    out
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Runs `measure` and `baseline` three times each, alternating, and prints the medians.
fn row(name: &str, lines: usize, mut measure: impl FnMut() -> Duration, mut baseline: impl FnMut() -> Duration) -> (f64, f64) {
    let mut m = Vec::new();
    let mut b = Vec::new();
    for _ in 0..3 {
        m.push(measure());
        b.push(baseline());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[1]
    };
    let (m, b) = (median(&mut m), median(&mut b));
    let rate = lines as f64 / m.as_secs_f64();
    let base = lines as f64 / b.as_secs_f64();
    println!("{name:<34} {lines:>9} {rate:>12.0} {base:>14.0} {:>8.2}x", rate / base);
    (rate, base)
}

fn fresh(work: &Path, name: &str) -> PathBuf {
    let p = work.join(name);
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn input_file(work: &Path, input: &[u8]) -> PathBuf {
    let path = work.join("input.txt");
    std::fs::write(&path, input).expect("write input");
    path
}

fn run_stdin(bin: &Path, work: &Path, input: &[u8], lines: usize, sync: &str) -> Duration {
    let file = input_file(work, input);
    let logs = fresh(work, "logs");
    let start = Instant::now();
    let status = Command::new(bin)
        .args(["capture", "--stdin", "--source", "bench", "--sync", sync, "--logs"])
        .arg(&logs)
        .stdin(File::open(&file).expect("input"))
        .status()
        .expect("run blackbox");
    let elapsed = start.elapsed();
    assert!(status.success(), "capture failed");
    let readings = count_readings(&logs);
    assert_eq!(readings, lines, "capture lost lines: the figure would be meaningless");
    elapsed
}

fn cat_stdin(work: &Path, input: &[u8]) -> Duration {
    let file = input_file(work, input);
    let out = File::create(work.join("cat.out")).expect("cat output");
    let start = Instant::now();
    let status = Command::new("cat").stdin(File::open(&file).expect("input")).stdout(out).status().expect("run cat");
    let elapsed = start.elapsed();
    assert!(status.success());
    elapsed
}

fn count_readings(logs: &Path) -> usize {
    let mut n = 0;
    for year in std::fs::read_dir(logs).expect("logs") {
        let year = year.expect("entry").path();
        if year.is_dir() {
            for day in std::fs::read_dir(year).expect("year") {
                let text = std::fs::read(day.expect("day").path()).expect("read day");
                n += text.split(|&b| b == b'\n').filter(|l| l.starts_with(b"L ")).count();
            }
        }
    }
    n
}

/// Writes `input` then an end marker into a fresh pseudo-terminal and returns
/// the time until `done` sees the marker.
fn through_pty(input: &[u8], start_reader: impl FnOnce(&str) -> (Child, PathBuf)) -> Duration {
    let (mut master, slave) = serialport::TTYPort::pair().expect("pty");
    let path = slave.name().expect("pty name");
    let (child, watch) = start_reader(&path);
    // Wait for the reader to have the terminal open: a first line must come through.
    master.write_all(b"ready\r\n").expect("write");
    wait_for_tail(&watch, "ready");
    let mut data = input.to_vec();
    data.extend_from_slice(format!("{END}\r\n").as_bytes());
    let start = Instant::now();
    let mut writer = master.try_clone_native().expect("clone");
    let t = std::thread::spawn(move || writer.write_all(&data));
    wait_for_tail(&watch, END);
    let elapsed = start.elapsed();
    t.join().expect("writer").expect("write");
    stop(child);
    drop(slave);
    elapsed
}

fn run_pty(bin: &Path, work: &Path, input: &[u8], sync: &str) -> Duration {
    let logs = fresh(work, "logs");
    through_pty(input, |path| {
        let child = Command::new(bin)
            .args(["capture", "--source", "bench", "--sync", sync, "--port", path, "--logs"])
            .arg(&logs)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn blackbox");
        (child, logs.clone())
    })
}

fn cat_pty(work: &Path, input: &[u8]) -> Duration {
    let out_dir = fresh(work, "cat");
    std::fs::create_dir_all(&out_dir).expect("dir");
    through_pty(input, |path| {
        let out = File::create(out_dir.join("out.txt")).expect("cat output");
        let child = Command::new("cat").arg(path).stdout(out).spawn().expect("spawn cat");
        (child, out_dir.clone())
    })
}

/// Waits until the newest file under `dir` ends with a line containing `marker`.
fn wait_for_tail(dir: &Path, marker: &str) {
    let start = Instant::now();
    loop {
        if let Some(file) = newest_file(dir) {
            let mut f = File::open(&file).expect("open");
            let len = f.metadata().expect("len").len();
            let mut tail = String::new();
            f.seek(SeekFrom::Start(len.saturating_sub(256))).expect("seek");
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).expect("read");
            tail.push_str(&String::from_utf8_lossy(&bytes));
            if tail.contains(marker) {
                return;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(300), "timed out waiting for {marker} in {}", dir.display());
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn newest_file(dir: &Path) -> Option<PathBuf> {
    let mut best: Option<PathBuf> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "txt") && best.as_ref().is_none_or(|b| p > *b) {
                best = Some(p);
            }
        }
    }
    best
}

fn stop(mut child: Child) {
    stop_child(&mut child);
}

/// SIGTERM, and the wait for it to end.
fn stop_child(child: &mut Child) {
    let _ = kill_process(Pid::from_child(child), Signal::TERM);
    let _ = child.wait();
}

/// Peak resident memory of one capture reading three pseudo-terminals at full speed.
fn three_source_rss(bin: &Path, work: &Path, texts: &[String]) -> f64 {
    let logs = fresh(work, "logs");
    let ptys: Vec<_> = (0..3).map(|_| serialport::TTYPort::pair().expect("pty")).collect();
    let mut config = String::new();
    for (i, (_, slave)) in ptys.iter().enumerate() {
        config.push_str(&format!("[[source]]\nname = \"dev{i}\"\nport = \"{}\"\n", slave.name().expect("name")));
    }
    let config_path = work.join("three.toml");
    std::fs::write(&config_path, config).expect("config");
    let child = Command::new(bin)
        .args(["capture", "--config"])
        .arg(&config_path)
        .arg("--logs")
        .arg(&logs)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn blackbox");
    let mut writers = Vec::new();
    for (i, (master, _)) in ptys.iter().enumerate() {
        let mut m = master.try_clone_native().expect("clone");
        let mut data = join(texts, "\r\n");
        data.extend_from_slice(format!("{END}-{i}\r\n").as_bytes());
        writers.push(std::thread::spawn(move || m.write_all(&data)));
    }
    for w in writers {
        w.join().expect("writer").expect("write");
    }
    // All three markers must be in the log before memory is read.
    let start = Instant::now();
    loop {
        let day = newest_file(&logs).expect("a day file");
        let text = std::fs::read_to_string(&day).expect("read");
        if (0..3).all(|i| text.contains(&format!("{END}-{i}"))) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "three-source capture did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    stop(child);
    drop(ptys);
    kb / 1024.0
}

fn binary() -> Option<PathBuf> {
    let bin = std::env::var_os("BLACKBOX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/blackbox"));
    if !bin.exists() {
        eprintln!("bench: {} not found; build it first with `cargo build --release -p cli` (just bench does)", bin.display());
        return None;
    }
    Some(bin)
}

/// Median latency target of `blackbox tail -f`, from a line being appended to it being printed.
const TAIL_MEDIAN_TARGET_MS: f64 = 50.0;

/// `blackbox tail -f` latency: lines are appended one at a time by the log
/// writer (as capture appends them), 10 ms apart; the time from the write
/// returning to the line being read from tail's stdout is measured. The
/// baseline is GNU `tail -F` (inotify) on the same file in the same run.
fn tail_bench(bin: &Path, samples: usize, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let logs = tmp.path().join("logs");
    let clock = logfile::SystemClock::new();
    use logfile::Clock;
    let mut writer = logfile::LogWriter::open(&logs, logfile::WriterOptions::default(), Box::new(logfile::RealStorage), clock.now())
        .expect("open the log writer");
    writer.reading(clock.now(), "bench", b"first").expect("write");
    writer.sync().expect("sync");
    let day = newest_file(&logs).expect("the day file");
    println!("tail -f latency: {samples} lines appended 10 ms apart by the log writer, {} cores", cores());
    println!("latency = from the append returning to the line read from the viewer's stdout\n");
    println!("{:<34} {:>9} {:>10} {:>10} {:>10}", "viewer", "lines", "median ms", "p99 ms", "max ms");
    let mut blackbox = Command::new(bin);
    blackbox.args(["tail", "-f", "-n", "0", "--logs"]).arg(&logs);
    let (ours, ours_max) = tail_latency(&mut writer, &clock, blackbox, samples, "blackbox tail -f -n 0");
    let mut gnu = Command::new("tail");
    gnu.args(["-F", "-n", "0"]).arg(&day);
    let (theirs, theirs_max) = tail_latency(&mut writer, &clock, gnu, samples, "tail -F -n 0 (GNU, baseline)");
    let mut decoded = Command::new(bin);
    decoded.args(["tail", "-f", "-n", "0", "--decoded", "--logs"]).arg(&logs);
    tail_latency(&mut writer, &clock, decoded, samples, "blackbox tail -f -n 0 --decoded");
    println!("\nratio of medians, blackbox / GNU tail: {:.2}", ours / theirs.max(1e-9));
    rows.push(
        Row::new(
            "tail -f latency, median (baseline: GNU tail -F)",
            format!("{ours:.2} ms"),
            format!("{theirs:.2} ms"),
            format!("{:.2}x", ours / theirs.max(1e-9)),
        )
        .target(format!("<= {TAIL_MEDIAN_TARGET_MS} ms"), ours <= TAIL_MEDIAN_TARGET_MS),
    );
    rows.push(Row::new(
        "tail -f latency, maximum (baseline: GNU tail -F)",
        format!("{ours_max:.2} ms"),
        format!("{theirs_max:.2} ms"),
        format!("{:.2}x", ours_max / theirs_max.max(1e-9)),
    ));
}

/// Runs one viewer and returns its median and maximum latency in ms (after printing a row).
fn tail_latency(writer: &mut logfile::LogWriter, clock: &dyn logfile::Clock, mut cmd: Command, samples: usize, name: &str) -> (f64, f64) {
    use std::io::BufRead;
    use std::sync::mpsc;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).env("NO_COLOR", "1").spawn().expect("start the viewer");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((line, Instant::now())).is_err() {
                break;
            }
        }
    });
    // The viewer prints nothing for -n 0 until it watches: append until a line shows.
    let mut warm = 0;
    loop {
        writer.reading(clock.now(), "bench", format!("warm {warm}").as_bytes()).expect("write");
        warm += 1;
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        assert!(warm < 300, "{name} printed nothing");
    }
    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let text = format!("sample {i}");
        writer.reading(clock.now(), "bench", text.as_bytes()).expect("write");
        let written = Instant::now();
        loop {
            let (line, at) = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{name} did not print {text:?}"));
            if line.ends_with(&text) {
                latencies.push(at.duration_since(written).as_secs_f64() * 1000.0);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let median = pick(0.5);
    println!("{name:<34} {samples:>9} {median:>10.2} {:>10.2} {:>10.2}", pick(0.99), pick(1.0));
    (median, pick(1.0))
}
