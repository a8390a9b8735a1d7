//! `bench mqtt`: forwarding and mirroring through a real mosquitto started
//! here on a free loopback port (Debian's; `scripts/test` installs it).
//!
//! - The forwarder's rate from a backlog: a site's follower with its cursor
//!   at the start of 100,000 lines, until its cursor (moved only past lines
//!   the broker acknowledged) reaches the end; beside `mosquitto_pub -l -q
//!   1` publishing the very messages a subscriber saw the forwarder send
//!   (the same count and payloads, one topic, a subscriber too), in the
//!   same run. The broker runs with `set_tcp_nodelay true`.
//! - 100 simulated sites at 10 lines a second each into one mosquitto and
//!   one mirror (issue 17: mirror lag under 2 s at the 99th percentile):
//!   one process holds 100 connections and publishes what each site's
//!   forwarder would (its raw messages and heads made by the forward
//!   crate's own functions); the lag from the publish to the line's append
//!   in the mirror's copy, beside a plain subscriber's to the same raw
//!   topics; every copy must equal its site's lines.
//! - The same with 100 real follower processes on this machine (this bench
//!   appending to their day files): the whole way from a site's log to the
//!   copy, the sites' own CPU included (no target: on a real fleet each site
//!   has its own board; here a hundred share 2 cores with the rest).

use crate::Row;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LAG_P99_LIMIT_MS: f64 = 2000.0;
const BACKLOG_LINES: usize = 100_000;
const SITES: usize = 100;
const SITE_RATE: u64 = 10;
const RUN_SECS: u64 = 30;
const DAY: &str = "20261129";

fn have(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/usr/local/bin"].iter().any(|d| Path::new(d).join(program).exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        crate::stop_child(&mut self.0);
    }
}

fn mosquitto(dir: &Path) -> (Killed, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nuser root\nset_tcp_nodelay true\n"),
    )
    .expect("conf");
    let child = Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mosquitto");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), port)
}

/// A site directory forwarding to `port` as `name`.
fn site(dir: &Path, name: &str, port: u16) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(d.join("logs").join(&DAY[..4])).expect("site");
    std::fs::write(
        d.join("blackbox.toml"),
        format!(
            "site = \"{name}\"\n[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nprefix = \"bench\"\n"
        ),
    )
    .expect("config");
    d
}

fn day_file(site: &Path) -> PathBuf {
    site.join("logs").join(&DAY[..4]).join(format!("{DAY}.txt"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn mqtt_bench(bin: &Path, rows: &mut Vec<Row>) {
    if !have("mosquitto") || !have("mosquitto_pub") || !have("mosquitto_sub") {
        println!("mqtt: skipped: mosquitto, mosquitto_pub and mosquitto_sub are needed (scripts/test installs them)");
        rows.push(Row::new("mqtt: (mosquitto missing, not measured)", "-".into(), "-".into(), "-".into()).target("measured", false));
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    backlog(bin, tmp.path(), rows);
    if std::env::var("BENCH_MQTT_FLEET").as_deref() == Ok("0") {
        return;
    }
    println!();
    simulated(bin, tmp.path(), rows);
    println!();
    followers(bin, tmp.path(), rows);
}

/// The forwarder's rate from a backlog, and `mosquitto_pub` of the same messages.
fn backlog(bin: &Path, tmp: &Path, rows: &mut Vec<Row>) {
    let (_broker, port) = mosquitto(tmp);
    let site = site(&tmp.join("backlog"), "backlog", port);
    let mut text = String::with_capacity(BACKLOG_LINES * 60);
    for i in 0..BACKLOG_LINES {
        let ms = i as u64 * 50;
        text.push_str(&format!(
            "L {:02}:{:02}:{:02}.{:03} lab {{\"id\":\"n{}\",\"temp\":{}.{},\"hum\":{}}}\n",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000,
            i % 10,
            15 + i % 10,
            i % 10,
            40 + i % 30
        ));
    }
    std::fs::write(day_file(&site), &text).expect("backlog");
    // The forwarder's cursor at the start of the backlog (a first start would begin at its end).
    std::fs::create_dir_all(site.join("state")).expect("state");
    std::fs::write(site.join("state/mqtt-cursor.json"), format!("{{\"day\":\"{DAY}\",\"offset\":0}}")).expect("cursor");
    let indexed = Command::new(bin).current_dir(&site).arg("index").stderr(Stdio::null()).status().expect("index");
    assert!(indexed.success(), "index of the backlog failed");
    // A subscriber keeps every payload: the baseline publishes the same ones.
    let payloads = tmp.join("payloads.txt");
    let mut sub = Killed(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "bench/backlog/#", "-F", "%p"])
            .stdout(std::fs::File::create(&payloads).expect("payloads"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let end = text.len() as u64;
    let start = Instant::now();
    let follower = Killed(
        Command::new(bin)
            .current_dir(&site)
            .args(["index", "--follow"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("follow"),
    );
    let cursor = site.join("state/mqtt-cursor.json");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let c = std::fs::read_to_string(&cursor).unwrap_or_default();
        if c.contains(&format!("\"offset\":{end}")) {
            break;
        }
        assert!(Instant::now() < deadline, "the forwarder did not reach the end of the backlog: {c}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed().as_secs_f64();
    drop(follower);
    // Every message of every line reached the subscriber (raw, JSON, two values; the retained head too).
    let expected = BACKLOG_LINES * 4;
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = loop {
        let n = BufReader::new(std::fs::File::open(&payloads).expect("payloads")).lines().count();
        if n >= expected || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    crate::stop_child(&mut sub.0);
    assert!(count >= expected, "the subscriber got {count} messages of {expected}");
    let rate = BACKLOG_LINES as f64 / took;
    let msg_rate = count as f64 / took;
    // The baseline: the same messages, from a file, by mosquitto_pub with QoS 1,
    // to a subscriber as the forwarder's were.
    let mut base_sub = Killed(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "bench/baseline", "-F", "%p"])
            .stdout(std::fs::File::create(tmp.join("baseline.txt")).expect("baseline"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let pub_start = Instant::now();
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "bench/baseline", "-l"])
        .stdin(std::fs::File::open(&payloads).expect("payloads"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("mosquitto_pub");
    let pub_took = pub_start.elapsed().as_secs_f64();
    assert!(status.success(), "mosquitto_pub failed");
    crate::stop_child(&mut base_sub.0);
    let pub_rate = count as f64 / pub_took;
    println!(
        "mqtt: forwarder {rate:.0} lines/s ({msg_rate:.0} messages/s, {count} messages acknowledged for {BACKLOG_LINES} lines in {took:.2} s, start included); mosquitto_pub -q 1 of the same messages {pub_rate:.0} messages/s"
    );
    rows.push(Row::new(
        "mqtt: forwarder from a backlog, messages/s (QoS 1, acked)",
        format!("{msg_rate:.0}/s"),
        format!("{pub_rate:.0}/s"),
        format!("{:.2}x", msg_rate / pub_rate),
    ));
}

/// 100 sites at 10 lines a second into one broker and one mirror: the mirror's lag.
/// The lag figures of one fleet run, in milliseconds.
struct Lags {
    /// From a line's append (or publish) to its append in the mirror's copy.
    mirror: Vec<f64>,
    /// From the same moment to a plain subscriber's receipt of it.
    subscriber: Vec<f64>,
}

impl Lags {
    fn report(mut self, what: &str, total: u64) -> (f64, f64) {
        assert_eq!(self.mirror.len() as u64, total, "{what}: the mirror's copies hold {} lines of {total}", self.mirror.len());
        assert!(!self.subscriber.is_empty(), "{what}: the subscriber got nothing");
        let (m50, m99) = (percentile(&mut self.mirror, 0.5), percentile(&mut self.mirror, 0.99));
        let (s50, s99) = (percentile(&mut self.subscriber, 0.5), percentile(&mut self.subscriber, 0.99));
        println!(
            "mqtt: {what}: mirror lag median {m50:.0} ms, p99 {m99:.0} ms ({} lines); a plain subscriber of the raw lines: median {s50:.0} ms, p99 {s99:.0} ms ({} lines)",
            self.mirror.len(),
            self.subscriber.len()
        );
        (m99, s99)
    }
}

/// One mosquitto, one mirror, a plain subscriber and a watch on the
/// mirror's copies: what both fleet runs share.
struct Central {
    broker: Killed,
    port: u16,
    mirror: Killed,
    mirror_started: Instant,
    dir: PathBuf,
    sub: Killed,
    sub_lags: Arc<Mutex<Vec<f64>>>,
    done: Arc<AtomicBool>,
    mirror_lags: Arc<Mutex<Vec<f64>>>,
    watcher: std::thread::JoinHandle<()>,
}

impl Central {
    fn start(bin: &Path, tmp: &Path, name: &str) -> Central {
        let broker_dir = tmp.join(format!("{name}-broker"));
        std::fs::create_dir_all(&broker_dir).expect("broker directory");
        let (broker, port) = mosquitto(&broker_dir);
        let dir = tmp.join(format!("{name}-central"));
        std::fs::create_dir_all(&dir).expect("central");
        let mirror_started = Instant::now();
        let mirror = Killed(
            Command::new(bin)
                .current_dir(&dir)
                .args(["mirror", "--mqtt", &format!("mqtt://127.0.0.1:{port}"), "--dir", "sites", "--prefix", "bench"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mirror"),
        );
        // The baseline: a plain subscriber to the same raw lines.
        let mut sub = Killed(
            Command::new("stdbuf")
                .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "bench/+/raw/#", "-F", "%p"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto_sub"),
        );
        let sub_lags = Arc::new(Mutex::new(Vec::new()));
        {
            let out = sub.0.stdout.take().expect("stdout");
            let lags = sub_lags.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(t) = sent_ms(&l) {
                        lags.lock().expect("lags").push((now_ms() - t) as f64);
                    }
                }
            });
        }
        // The mirror's side: the copies, looked at every 10 ms.
        let done = Arc::new(AtomicBool::new(false));
        let mirror_lags = Arc::new(Mutex::new(Vec::new()));
        let watcher = {
            let (done, lags) = (done.clone(), mirror_lags.clone());
            let copies: Vec<PathBuf> = (0..SITES).map(|i| day_file(&dir.join("sites").join(site_name(i)))).collect();
            std::thread::spawn(move || {
                let mut seen = vec![0usize; copies.len()];
                while !done.load(Ordering::SeqCst) {
                    for (i, c) in copies.iter().enumerate() {
                        let Ok(text) = std::fs::read_to_string(c) else { continue };
                        let now = now_ms();
                        // Only whole lines: the newest may be half written.
                        let upto = text.rfind('\n').map_or(0, |e| e + 1);
                        if upto > seen[i] {
                            let mut l = lags.lock().expect("lags");
                            for line in text[seen[i]..upto].lines() {
                                if let Some(t) = sent_ms(line) {
                                    l.push((now - t) as f64);
                                }
                            }
                            seen[i] = upto;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Central { broker, port, mirror, mirror_started, dir, sub, sub_lags, done, mirror_lags, watcher }
    }

    /// Waits (bounded) until the copies hold `total` lines, then stops the
    /// watch and the subscriber; the lags, the mirror's copies and the
    /// broker (still running, for the caller to stop after its clients),
    /// and says what the mirror and the broker cost.
    fn finish(mut self, total: u64) -> (Lags, PathBuf, Killed) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while (self.mirror_lags.lock().expect("lags").len() as u64) < total && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.done.store(true, Ordering::SeqCst);
        let _ = self.watcher.join();
        let span = self.mirror_started.elapsed().as_secs_f64();
        let (mirror_cpu, broker_cpu) = (cpu_seconds(self.mirror.0.id()), cpu_seconds(self.broker.0.id()));
        println!(
            "mqtt: over {span:.0} s the mirror used {mirror_cpu:.1} s of CPU ({:.1} %), mosquitto {broker_cpu:.1} s ({:.1} %)",
            100.0 * mirror_cpu / span,
            100.0 * broker_cpu / span
        );
        crate::stop_child(&mut self.sub.0);
        let lags = Lags { mirror: self.mirror_lags.lock().expect("lags").clone(), subscriber: self.sub_lags.lock().expect("lags").clone() };
        (lags, self.dir.join("sites"), self.broker)
    }
}

fn site_name(i: usize) -> String {
    format!("s{i:03}")
}

/// Line `n` of a site: a JSON reading that carries the moment it was written.
fn fleet_line(n: u64) -> String {
    let ms = (n * 100) % 86_400_000;
    format!(
        "L {:02}:{:02}:{:02}.{:03} lab {{\"id\":\"n1\",\"sent\":{}}}\n",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000,
        now_ms()
    )
}

/// Calls `each(n, site)` for line `n` of every site, 10 lines a second per
/// site, the sites spread evenly over each tenth of a second.
fn paced(mut each: impl FnMut(u64, usize)) {
    let start = Instant::now();
    let tick = Duration::from_millis(1000 / SITE_RATE);
    for n in 0..SITE_RATE * RUN_SECS {
        for i in 0..SITES {
            let due = start + tick * n as u32 + tick * i as u32 / SITES as u32;
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(w);
            }
            each(n, i);
        }
    }
}

/// 100 simulated sites: one process holding 100 MQTT connections, each
/// publishing what a site's forwarder publishes for its lines (the raw
/// message and the head from the forward crate's own functions, and a JSON
/// and a value message like those a forwarder sends for such a line), QoS
/// 1, 10 lines a second. The lag runs from the publish to the line's
/// append in the mirror's copy: the mirror's and the broker's part, which
/// is what one central machine must keep up with. Afterwards every copy
/// must equal its site's lines byte for byte.
fn simulated(bin: &Path, tmp: &Path, rows: &mut Vec<Row>) {
    let central = Central::start(bin, tmp, "simulated");
    let done = Arc::new(AtomicBool::new(false));
    let broken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..SITES {
        let mut opts = rumqttc::MqttOptions::new(format!("sim-{}", site_name(i)), "127.0.0.1", central.port);
        opts.set_keep_alive(Duration::from_secs(15));
        let (client, mut conn) = rumqttc::Client::new(opts, 1000);
        let stop = done.clone();
        let broken = broken.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(Err(e)) = conn.recv_timeout(Duration::from_millis(500)) {
                    if !stop.load(Ordering::SeqCst) {
                        eprintln!("simulated site {i}: the connection broke: {e}");
                        broken.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
            }
        });
        clients.push(client);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut texts = vec![String::new(); SITES];
    let mut heads = Instant::now();
    let publish = |c: &rumqttc::Client, (topic, payload): (String, Vec<u8>), retain: bool| {
        c.publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload).expect("publish");
    };
    paced(|n, i| {
        let site = site_name(i);
        let line = fleet_line(n);
        let offset = texts[i].len() as u64;
        texts[i].push_str(&line);
        let text = line.trim_end();
        let c = &clients[i];
        publish(c, forward::raw_message("bench", &site, DAY, offset, text), false);
        let sent = sent_ms(text).unwrap_or(0);
        let json = format!("{{\"id\":\"{site}/{DAY}/{offset}\",\"time\":\"2026-11-29T00:00:00.000Z\",\"fields\":{{\"sent\":{sent}}}}}");
        publish(c, (format!("bench/{site}/lab/n1"), json.into_bytes()), false);
        publish(c, (format!("bench/{site}/lab/n1/sent"), sent.to_string().into_bytes()), false);
        if i + 1 == SITES && heads.elapsed() >= Duration::from_secs(1) {
            heads = Instant::now();
            for (j, c) in clients.iter().enumerate() {
                let head = forward::Cursor { day: DAY.into(), offset: texts[j].len() as u64 };
                publish(c, forward::head_message("bench", &site_name(j), &head), true);
            }
        }
    });
    for (j, c) in clients.iter().enumerate() {
        let head = forward::Cursor { day: DAY.into(), offset: texts[j].len() as u64 };
        publish(c, forward::head_message("bench", &site_name(j), &head), true);
    }
    let total = SITES as u64 * SITE_RATE * RUN_SECS;
    let (lags, sites, broker) = central.finish(total);
    done.store(true, Ordering::SeqCst);
    drop(broker);
    assert_eq!(broken.load(Ordering::SeqCst), 0, "simulated sites lost their connections");
    for (i, text) in texts.iter().enumerate() {
        let copy = std::fs::read_to_string(day_file(&sites.join(site_name(i)))).unwrap_or_default();
        assert!(copy == *text, "the mirror's copy of {} differs from the site's lines", site_name(i));
    }
    let (m99, s99) =
        lags.report(&format!("{SITES} simulated sites x {SITE_RATE} lines/s for {RUN_SECS} s into one mosquitto and one mirror"), total);
    rows.push(
        Row::new(
            "mqtt: mirror lag p99, 100 simulated sites x 10 lines/s",
            format!("{m99:.0} ms"),
            format!("{s99:.0} ms"),
            format!("{:.1}x", m99 / s99.max(1.0)),
        )
        .target(format!("< {LAG_P99_LIMIT_MS} ms"), m99 < LAG_P99_LIMIT_MS),
    );
}

/// 100 sites as 100 real follower processes (capture's place taken by
/// this bench appending to their day files), all on this machine: the
/// whole way from a site's log to the mirror's copy, with the sites' own
/// cost in it. No target: on a real fleet every site has its own board.
fn followers(bin: &Path, tmp: &Path, rows: &mut Vec<Row>) {
    let central = Central::start(bin, tmp, "followers");
    let sites: Vec<PathBuf> = (0..SITES).map(|i| site(&tmp.join("fleet"), &site_name(i), central.port)).collect();
    let mut followers = Vec::new();
    for s in &sites {
        followers.push(Killed(
            Command::new(bin)
                .current_dir(s)
                .args(["index", "--follow"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("follow"),
        ));
    }
    // Each follower says when it forwards.
    for f in followers.iter_mut() {
        let err = f.0.stderr.take().expect("stderr");
        let mut r = BufReader::new(err);
        let mut line = String::new();
        while !line.contains("forwarding to mqtt://") {
            line.clear();
            assert!(r.read_line(&mut line).expect("stderr") > 0, "a follower ended");
        }
        std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
    }
    std::thread::sleep(Duration::from_millis(500));
    let cpu_before: f64 = followers.iter().map(|f| cpu_seconds(f.0.id())).sum();
    let started = Instant::now();
    let mut files: Vec<std::fs::File> =
        sites.iter().map(|s| std::fs::OpenOptions::new().create(true).append(true).open(day_file(s)).expect("day file")).collect();
    paced(|n, i| files[i].write_all(fleet_line(n).as_bytes()).expect("append"));
    let cpu = followers.iter().map(|f| cpu_seconds(f.0.id())).sum::<f64>() - cpu_before;
    println!(
        "mqtt: the {SITES} followers used {cpu:.1} s of CPU over {:.0} s ({:.2} % of a core each)",
        started.elapsed().as_secs_f64(),
        100.0 * cpu / started.elapsed().as_secs_f64() / SITES as f64
    );
    let total = SITES as u64 * SITE_RATE * RUN_SECS;
    let (lags, _, _broker) = central.finish(total);
    let (m99, s99) = lags.report(&format!("{SITES} follower processes x {SITE_RATE} lines/s for {RUN_SECS} s, all on this machine"), total);
    rows.push(Row::new(
        "mqtt: log-to-copy lag p99, 100 follower processes here",
        format!("{m99:.0} ms"),
        format!("{s99:.0} ms"),
        format!("{:.1}x", m99 / s99.max(1.0)),
    ));
    drop(followers);
}

/// A process's CPU time so far (user and system), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: the state (not a number), then ppid ... cmajflt, utime, stime.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Without the state, utime and stime are the 11th and 12th numbers.
    // USER_HZ: 100 on Linux, whatever the kernel's own tick.
    let ticks = 100.0;
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / ticks
}

/// The `"sent":MS` a line carries.
fn sent_ms(line: &str) -> Option<i64> {
    // `"sent":` in a line, `\"sent\":` in a raw message's JSON string.
    let i = line.find("sent")? + 4;
    let digits: String = line[i..].trim_start_matches(['\\', '"', ':']).chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sent_time_is_found_in_lines_and_in_raw_messages() {
        assert_eq!(super::sent_ms("L 00:00:00.100 lab {\"id\":\"n1\",\"sent\":1764500000123}"), Some(1764500000123));
        let raw = r#"{"id":"s/d/0","day":"d","offset":0,"line":"L 00:00:00.100 lab {\"id\":\"n1\",\"sent\":1764500000123}"}"#;
        assert_eq!(super::sent_ms(raw), Some(1764500000123));
    }
}
