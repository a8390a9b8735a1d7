//! The mirror and `forward --from` against real brokers: Debian's mosquitto
//! and Debian's nats-server (MQTT over JetStream), started here on free
//! loopback ports. Sites are real followers (`index --follow`) forwarding
//! their logs; the mirror is the real binary, killed and restarted.
//! `.ci/run` (scripts/test) installs the brokers; without them the tests
//! say so and return, except when CI runs, where they fail.

use crate::harness::{stderr, Dir, DEADLINE};
use crate::mqtt::{free_port, have, Broker, Sub};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const YESTERDAY: &str = "20261128";
const TODAY: &str = "20261129";

fn day_file(logs: &Path, day: &str) -> PathBuf {
    logs.join(&day[..4]).join(format!("{day}.txt"))
}

fn append_lines(logs: &Path, day: &str, from: usize, n: usize) {
    let path = day_file(logs, day);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let mut text = String::new();
    for i in from..from + n {
        text.push_str(&format!("L 10:{:02}:{:02}.000 lab {{\"id\":\"n{}\",\"temp\":{}.5}}\n", (i / 60) % 60, i % 60, i % 3, 15 + i % 10));
    }
    // One write per batch, as capture does.
    f.write_all(text.as_bytes()).unwrap();
}

/// A site forwarding to `url` (its follower not started yet).
fn site(name: &str, url: &str) -> Dir {
    let dir = Dir::new();
    let config = format!(
        "site = \"{name}\"\n[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n[mqtt]\nurl = \"{url}\"\n"
    );
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    std::fs::create_dir_all(dir.logs()).unwrap();
    dir
}

/// Waits (bounded) until every file `pairs` names is byte for byte its site's.
fn wait_same(pairs: &[(PathBuf, PathBuf)]) {
    let deadline = Instant::now() + DEADLINE * 3;
    loop {
        let differ: Vec<String> = pairs
            .iter()
            .filter(|(site, copy)| std::fs::read(site).ok() != std::fs::read(copy).ok())
            .map(|(site, copy)| {
                let len = |p: &Path| std::fs::metadata(p).map_or(-1, |m| m.len() as i64);
                format!("{} ({} bytes) vs {} ({} bytes)", site.display(), len(site), copy.display(), len(copy))
            })
            .collect();
        if differ.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "copies still differ: {differ:#?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The broker under test: mosquitto, or nats-server with MQTT and JetStream.
enum Engine {
    Mosquitto(Broker),
    Nats { child: Child, port: u16, _dir: tempfile::TempDir },
}

impl Engine {
    fn port(&self) -> u16 {
        match self {
            Engine::Mosquitto(b) => b.port,
            Engine::Nats { port, .. } => *port,
        }
    }

    fn nats() -> Engine {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let (port, client) = (free_port(), free_port());
            let conf = dir.path().join("nats.conf");
            std::fs::write(
                &conf,
                format!(
                    "listen: 127.0.0.1:{client}\nserver_name: blackbox_test\njetstream {{\n  store_dir: \"{}\"\n}}\nmqtt {{\n  listen: 127.0.0.1:{port}\n}}\n",
                    dir.path().join("js").display()
                ),
            )
            .unwrap();
            let mut child =
                Command::new("nats-server").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nats-server");
            let deadline = Instant::now() + DEADLINE;
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Engine::Nats { child, port, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nats-server did not start");
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Engine::Nats { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two sites and a mirror on one broker: the mirror starts with half of a
/// closed day (as rsync left it), a site's follower starts after history
/// was written (so the mirror sees a gap and asks for it), and the mirror
/// is SIGKILLed and restarted while lines keep coming. In the end every
/// copy is byte for byte its site's file and passes `verify`.
fn mirror_through_gaps_kills_and_rsynced_days(engine: &Engine) {
    let url = format!("mqtt://127.0.0.1:{}", engine.port());
    let central = Dir::new();
    let sites = central.path().join("sites");
    let north = site("north", &url);
    let south = site("south", &url);
    // North's history: yesterday (closed) and the start of today, whose header names yesterday's size.
    append_lines(&north.logs(), YESTERDAY, 0, 10);
    let size = std::fs::metadata(day_file(&north.logs(), YESTERDAY)).unwrap().len();
    let today = day_file(&north.logs(), TODAY);
    std::fs::create_dir_all(today.parent().unwrap()).unwrap();
    std::fs::write(&today, format!("# 00:00:00.001 previous {YESTERDAY}.txt {size}\n")).unwrap();
    append_lines(&north.logs(), TODAY, 0, 5);
    // The mirror has the first four lines of yesterday, copied by hand.
    let copy = day_file(&sites.join("north/logs"), YESTERDAY);
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(day_file(&north.logs(), YESTERDAY)).unwrap();
    let four: String = text.split_inclusive('\n').take(4).collect();
    std::fs::write(&copy, four).unwrap();

    let mut mirror = central.spawn(&["-v", "mirror", "--mqtt", &url, "--dir", "sites", "--client-id", "central"]);
    mirror.stderr_lines().wait_for("mirror: subscribed");
    // A second mirror into the same directory would write every line twice: refused.
    let second = central.run(&["mirror", "--mqtt", &url, "--dir", "sites", "--client-id", "another"]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(stderr(&second).contains("another mirror (pid "), "{}", stderr(&second));
    let mut n_follower = north.spawn(&["index", "--follow"]);
    n_follower.stderr_lines().wait_for("forwarding to mqtt://");
    let mut s_follower = south.spawn(&["index", "--follow"]);
    s_follower.stderr_lines().wait_for("forwarding to mqtt://");
    // New lines after the follower started: the mirror has nothing of today, asks from 0.
    append_lines(&north.logs(), TODAY, 5, 5);
    append_lines(&south.logs(), TODAY, 0, 7);
    let pairs = [
        (day_file(&north.logs(), YESTERDAY), day_file(&sites.join("north/logs"), YESTERDAY)),
        (day_file(&north.logs(), TODAY), day_file(&sites.join("north/logs"), TODAY)),
        (day_file(&south.logs(), TODAY), day_file(&sites.join("south/logs"), TODAY)),
    ];
    wait_same(&pairs);

    // The mirror is killed; lines keep coming; it comes back (its session kept by the broker).
    mirror.kill();
    for round in 0..4 {
        append_lines(&north.logs(), TODAY, 10 + round * 20, 20);
        append_lines(&south.logs(), TODAY, 7 + round * 20, 20);
    }
    let mirror = central.spawn(&["-v", "mirror", "--mqtt", &url, "--dir", "sites", "--client-id", "central"]);
    append_lines(&north.logs(), TODAY, 90, 3);
    wait_same(&pairs);
    let out = mirror.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    for s in ["north", "south"] {
        let logs = sites.join(s).join("logs");
        let out = central.run(&["verify", "--logs", logs.to_str().unwrap()]);
        assert!(out.status.success(), "verify {s}: {}", stderr(&out));
    }
    drop((n_follower, s_follower));
}

#[test]
fn the_mirror_keeps_byte_identical_copies_on_mosquitto() {
    if !have("mosquitto") {
        return;
    }
    let broker_dir = tempfile::tempdir().unwrap();
    let engine = Engine::Mosquitto(Broker::start(broker_dir.path(), free_port()));
    mirror_through_gaps_kills_and_rsynced_days(&engine);
}

#[test]
fn the_mirror_runs_unchanged_on_nats_with_jetstream() {
    if !have("nats-server") {
        return;
    }
    let engine = Engine::nats();
    mirror_through_gaps_kills_and_rsynced_days(&engine);
}

#[test]
fn forward_from_publishes_history_again_at_its_rate_for_a_new_mirror() {
    if !have("mosquitto") || !have("mosquitto_sub") {
        return;
    }
    let broker_dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(broker_dir.path(), free_port());
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let west = site("west", &url);
    append_lines(&west.logs(), YESTERDAY, 0, 30);
    append_lines(&west.logs(), TODAY, 0, 30);
    let central = Dir::new();
    let mut mirror = central.spawn(&["-v", "mirror", "--mqtt", &url, "--dir", "sites"]);
    mirror.stderr_lines().wait_for("mirror: subscribed");
    let mut sub = Sub::on(broker.port, "blackbox/west/#", "consumer");
    // Bad days are refused before anything is sent.
    let out = west.run(&["forward", "--from", "2026-13-01"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--from \"2026-13-01\""), "{}", stderr(&out));

    let started = Instant::now();
    let out = west.run(&["forward", "--from", "2026-11-28", "--rate", "40"]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("60 lines published again"), "{}", stderr(&out));
    // 60 lines at 40 a second take at least 1.5 s (the rate is a ceiling).
    assert!(took >= Duration::from_millis(1400), "took {took:?}");
    sub.wait_until("60 raw lines", |g| g.iter().filter(|(t, _)| t == "blackbox/west/raw/lab").count() >= 60);
    assert!(sub.got.iter().any(|(t, p)| t == "blackbox/west/lab/n2/temp" && p == "17.5"), "decoded values too");
    // The follower's cursor is its own: `forward` made none.
    assert!(!west.path().join("state").join("mqtt-cursor.json").exists());
    wait_same(&[
        (day_file(&west.logs(), YESTERDAY), day_file(&central.path().join("sites/west/logs"), YESTERDAY)),
        (day_file(&west.logs(), TODAY), day_file(&central.path().join("sites/west/logs"), TODAY)),
    ]);
}

/// `mqtts://` with a CA file: the forwarder checks the broker's certificate.
#[test]
fn forwarding_over_tls_checks_the_broker_certificate() {
    if !have("mosquitto") || !have("mosquitto_sub") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // A CA, a broker certificate for 127.0.0.1 signed by it, and another CA that signed nothing.
    for ca in ["ca", "other"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=test {ca}"),
            "-keyout",
            &p(&format!("{ca}.key")),
            "-out",
            &p(&format!("{ca}.pem")),
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("broker.key"),
        "-out",
        &p("broker.csr"),
    ]);
    std::fs::write(dir.path().join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("broker.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("san.ext"),
        "-out",
        &p("broker.pem"),
    ]);
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\nuser root\n",
            p("ca.pem"),
            p("broker.pem"),
            p("broker.key")
        ),
    )
    .unwrap();
    let mut broker = Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline && broker.try_wait().unwrap().is_none(), "mosquitto with TLS did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A subscriber over TLS too; `-d` says when the broker confirmed the subscription.
    let mut sub = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--cafile",
            &p("ca.pem"),
            "-d",
            "-t",
            "blackbox/tls/raw/#",
            "-C",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = sub.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let wait_line = |what: &str| loop {
        let l = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("mosquitto_sub: no {what}"));
        if l.contains(what) {
            return l;
        }
    };
    wait_line("received SUBACK");

    // The wrong CA: the forwarder refuses the broker and says why.
    let wrong = site("tls", &format!("mqtts://127.0.0.1:{port}"));
    let mut cfg = std::fs::read_to_string(wrong.path().join("blackbox.toml")).unwrap();
    cfg.push_str(&format!("ca_file = \"{}\"\n", p("other.pem")));
    std::fs::write(wrong.path().join("blackbox.toml"), &cfg).unwrap();
    let mut f = wrong.spawn(&["index", "--follow"]);
    let mut err = f.stderr_lines();
    err.wait_for("forwarding to mqtt");
    let why = err.wait_for("the broker is away");
    assert!(why.to_lowercase().contains("certificate") || why.contains("Tls"), "{why}");
    drop(f);

    let good = site("tls", &format!("mqtts://127.0.0.1:{port}"));
    let cfg = std::fs::read_to_string(good.path().join("blackbox.toml")).unwrap() + &format!("ca_file = \"{}\"\n", p("ca.pem"));
    std::fs::write(good.path().join("blackbox.toml"), cfg).unwrap();
    let mut f = good.spawn(&["index", "--follow"]);
    f.stderr_lines().wait_for("forwarding to mqtt");
    append_lines(&good.logs(), TODAY, 0, 1);
    let got = wait_line("\"offset\":0");
    assert!(got.contains("n0"), "{got}");
    let _ = sub.wait();
    drop(f);
    let _ = broker.kill();
    let _ = broker.wait();
}

/// A small deterministic generator (xorshift), seeded from the clock and
/// printed, so a failing run can be replayed with `BLACKBOX_CHAOS_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("BLACKBOX_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
        eprintln!("chaos seed {seed} (BLACKBOX_CHAOS_SEED={seed} replays it)");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Three sites forwarding at full speed through one broker into one mirror,
/// while the broker is restarted and the site followers and the mirror are
/// SIGKILLed at random moments. Afterwards every site's day file and the
/// mirror's copy have the same SHA-256, and a subscriber (a persistent
/// session, like any consumer) got every reading at least once and, after
/// dropping repeats by id, exactly once.
#[test]
fn chaos_broker_restarts_and_kills_lose_nothing_and_the_copies_match() {
    if !have("mosquitto") || !have("mosquitto_sub") {
        return;
    }
    let mut rng = Rng::new();
    let broker_dir = tempfile::tempdir().unwrap();
    let mut broker = Some(Broker::start(broker_dir.path(), free_port()));
    let port = broker.as_ref().unwrap().port;
    let url = format!("mqtt://127.0.0.1:{port}");
    let names = ["alpha", "bravo", "charlie"];
    let sites: Vec<Dir> = names.iter().map(|n| site(n, &url)).collect();
    let central = Dir::new();
    let mut sub = Sub::on(port, "blackbox/+/lab/+", "chaos-consumer");
    // Every process logs (-v) to a file of its own directory, shown when the test fails.
    let logged = |dir: &Dir, args: &[&str]| -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("chaos.log")).unwrap();
        dir.cmd(&[&["-v"], args].concat()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap()
    };
    let spawn_mirror = || logged(&central, &["mirror", "--mqtt", &url, "--dir", "sites", "--client-id", "chaos-mirror"]);
    let mut mirror = Some(spawn_mirror());
    let mut followers: Vec<Option<Child>> = sites.iter().map(|d| Some(logged(d, &["index", "--follow"]))).collect();
    for d in &sites {
        let deadline = Instant::now() + DEADLINE;
        while !std::fs::read_to_string(d.path().join("chaos.log")).unwrap_or_default().contains("forwarding to mqtt://") {
            assert!(Instant::now() < deadline, "a follower did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let kill = |c: Option<Child>| {
        let mut c = c.unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    };
    // The writers: each site gets bursts of lines as fast as it takes them, as capture writes them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = sites
        .iter()
        .map(|d| {
            let (logs, stop) = (d.logs(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 6000 {
                    append_lines(&logs, TODAY, n, 100);
                    n += 100;
                    std::thread::sleep(Duration::from_millis(15));
                }
                n
            })
        })
        .collect();
    // Chaos, for a while: a broker restart, a follower or the mirror killed and started again.
    let until = Instant::now() + Duration::from_secs(12);
    let mut done = Vec::new();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(300 + rng.below(900)));
        match rng.below(5) {
            0 => {
                let (dir, port) = broker.take().unwrap().stop();
                std::thread::sleep(Duration::from_millis(rng.below(1500)));
                broker = Some(Broker::try_on(&dir, port).expect("mosquitto again on its port"));
                done.push("broker restarted".to_string());
            }
            1 => {
                kill(mirror.take());
                mirror = Some(spawn_mirror());
                done.push("mirror killed".to_string());
            }
            k => {
                let i = rng.below(3) as usize;
                kill(followers[i].take());
                followers[i] = Some(logged(&sites[i], &["index", "--follow"]));
                done.push(format!("{} killed (k{k})", names[i]));
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    eprintln!("chaos: {done:?}; lines written {written:?}");
    // Everything arrives in the end: the copies...
    let pairs: Vec<(PathBuf, PathBuf)> = sites
        .iter()
        .zip(names)
        .map(|(d, n)| (day_file(&d.logs(), TODAY), day_file(&central.path().join("sites").join(n).join("logs"), TODAY)))
        .collect();
    let converged = std::panic::catch_unwind(|| wait_same(&pairs));
    if converged.is_err() {
        for d in sites.iter().chain([&central]) {
            let log = std::fs::read_to_string(d.path().join("chaos.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let cursor = std::fs::read_to_string(d.path().join("state/mqtt-cursor.json")).unwrap_or_default();
            eprintln!("---- {} (cursor {cursor}):\n{}", d.path().display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        panic!("the copies did not converge (seed above)");
    }
    for (site, copy) in &pairs {
        let sha = |p: &Path| {
            let out = Command::new("sha256sum").arg(p).output().unwrap();
            String::from_utf8_lossy(&out.stdout).split(' ').next().unwrap().to_string()
        };
        assert_eq!(sha(site), sha(copy), "{}", site.display());
    }
    // ...and every reading to the consumer, each id once after dropping repeats.
    let mut expected = std::collections::BTreeSet::new();
    for (d, n) in sites.iter().zip(names) {
        let text = std::fs::read_to_string(day_file(&d.logs(), TODAY)).unwrap();
        let mut at = 0;
        for l in text.split_inclusive('\n') {
            if l.starts_with("L ") {
                expected.insert(format!("{n}/{TODAY}/{at}"));
            }
            at += l.len();
        }
    }
    // Readings from before a follower's first start are history, not forwarded: there are none here.
    let ids = |got: &[(String, String)]| -> std::collections::BTreeSet<String> {
        got.iter()
            .filter_map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).ok())
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect()
    };
    // (Counting is cheap, reading every id is not: ids are read only once enough messages came.)
    let mut enough = expected.len();
    let got = loop {
        sub.wait_until("every reading", |g| g.len() >= enough);
        let got = ids(&sub.got);
        if got.len() >= expected.len() {
            break got;
        }
        enough = sub.got.len() + expected.len() - got.len();
    };
    assert_eq!(got, expected, "the consumer's readings, repeats dropped");
    let repeats = sub.got.len() - got.len();
    eprintln!("chaos: {} readings, {} repeats dropped by id", got.len(), repeats);
    for c in followers.into_iter().chain([mirror]) {
        kill(c);
    }
    drop(broker);
}

/// `demo --mqtt`: its own mosquitto, the hints to watch it, and the
/// simulated site's readings and Home Assistant configs arriving there.
#[test]
fn the_demo_with_mqtt_starts_a_broker_and_forwards_to_it() {
    if !have("mosquitto") || !have("mosquitto_sub") {
        return;
    }
    let dir = Dir::new();
    let mut demo = dir.spawn(&["demo", "--rate", "50", "--listen", "127.0.0.1:0", "--mqtt"]);
    let mut err = demo.stderr_lines();
    let line = err.wait_for("an MQTT broker (mosquitto) on 127.0.0.1:");
    let port: u16 = line.split("127.0.0.1:").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    let hint = err.wait_for("mosquitto_sub -h 127.0.0.1");
    assert!(hint.contains(&format!("-p {port}")), "{hint}");
    let mut sub = Sub::on(port, "blackbox/demo/#", "demo-watch");
    sub.wait_until("decoded readings", |g| {
        g.iter().any(|(t, _)| t.starts_with("blackbox/demo/usb-DEMO/roomNode-") && t.ends_with("/temp"))
    });
    let mut ha = Sub::on(port, "homeassistant/#", "demo-ha");
    ha.wait_until("discovery configs", |g| {
        g.iter().any(|(t, p)| t.ends_with("/temp/config") && p.contains("\"device_class\":\"temperature\""))
    });
    drop(err);
    let out = demo.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    // The broker went with the demo.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "mosquitto still listens on {port}");
}

/// A broker that wants a user and a password: the forwarder's from
/// `[mqtt] user` and `password_file`, the mirror's from `--user` and
/// `--password-file`; a wrong password is refused, and the follower says so.
#[test]
fn a_broker_with_passwords_takes_the_right_ones_and_refuses_a_wrong_one() {
    if !have("mosquitto") || !have("mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    for (user, pass) in [("cellar", "s3cret-cellar"), ("central", "s3cret-central")] {
        let flags: &[&str] = if passwords.exists() { &["-b"] } else { &["-c", "-b"] };
        let out = Command::new("mosquitto_passwd").args(flags).arg(&passwords).args([user, pass]).output().unwrap();
        assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nuser root\n", passwords.display()))
        .unwrap();
    let mut broker = Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline && broker.try_wait().unwrap().is_none(), "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("mqtt://127.0.0.1:{port}");
    let with_password = |pass: &str| {
        let s = site("cellar", &url);
        std::fs::write(s.path().join("pw"), format!("{pass}\n")).unwrap();
        let cfg = std::fs::read_to_string(s.path().join("blackbox.toml")).unwrap() + "user = \"cellar\"\npassword_file = \"pw\"\n";
        std::fs::write(s.path().join("blackbox.toml"), cfg).unwrap();
        s
    };
    // A wrong password: refused, and said.
    let wrong = with_password("not-it");
    let mut f = wrong.spawn(&["index", "--follow"]);
    let mut err = f.stderr_lines();
    let why = err.wait_for("the broker is away");
    assert!(why.contains("refused") && (why.contains("NotAuthorized") || why.contains("BadUserNamePassword")), "{why}");
    drop(err);
    drop(f);
    // The right ones: the site's lines reach a mirror that signs in too.
    let good = with_password("s3cret-cellar");
    let central = Dir::new();
    std::fs::write(central.path().join("pw"), "s3cret-central\n").unwrap();
    let mut mirror = central.spawn(&["-v", "mirror", "--mqtt", &url, "--dir", "sites", "--user", "central", "--password-file", "pw"]);
    mirror.stderr_lines().wait_for("mirror: subscribed");
    let mut f = good.spawn(&["index", "--follow"]);
    f.stderr_lines().wait_for("forwarding to mqtt://");
    append_lines(&good.logs(), TODAY, 0, 5);
    wait_same(&[(day_file(&good.logs(), TODAY), day_file(&central.path().join("sites/cellar/logs"), TODAY))]);
    drop((f, mirror));
    let _ = broker.kill();
    let _ = broker.wait();
}
