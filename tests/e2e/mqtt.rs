//! MQTT forwarding against a real broker (Debian's mosquitto, started here
//! on a free loopback port, with persistence so that a subscriber's session
//! survives a broker restart) and a real subscriber (`mosquitto_sub`).
//! `.ci/run` (scripts/test) installs mosquitto; without it the tests say so
//! and return, except when CI runs, where they fail.

use crate::harness::{Dir, DEADLINE};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

pub(crate) fn have(program: &str) -> bool {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/bin"].iter().any(|d| std::path::Path::new(d).join(program).exists());
    if !found {
        assert!(std::env::var("CI").is_err(), "{program} is missing (scripts/test installs Debian's mosquitto)");
        eprintln!("skipped: no {program} (run scripts/test, which installs it)");
    }
    found
}

pub(crate) struct Broker {
    child: Child,
    pub(crate) port: u16,
    dir: std::path::PathBuf,
}

impl Broker {
    /// A broker on `port`, or (when `port` is taken: another test got the
    /// same free port) on another one; the broker's `port` says which.
    pub(crate) fn start(dir: &std::path::Path, port: u16) -> Broker {
        Broker::try_on(dir, port).or_else(|| (0..5).find_map(|_| Broker::try_on(dir, free_port()))).expect("mosquitto did not start")
    }

    pub(crate) fn try_on(dir: &std::path::Path, port: u16) -> Option<Broker> {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            // As root, mosquitto would drop to its own user, which cannot write the test's directory.
            // A subscriber away (or slow) keeps every QoS 1 message queued, not the last 1,000.
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nuser root\nmax_queued_messages 0\n",
                dir.display()
            ),
        )
        .unwrap();
        let mut child =
            Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mosquitto");
        // Up when it accepts connections, and it is ours (not another test's on the same port).
        let deadline = Instant::now() + DEADLINE;
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                std::thread::sleep(std::time::Duration::from_millis(50));
                if child.try_wait().ok().flatten().is_none() {
                    return Some(Broker { child, port, dir: dir.to_path_buf() });
                }
                return None;
            }
            assert!(Instant::now() < deadline, "mosquitto did not start on port {port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGTERM: mosquitto saves its sessions and stops.
    pub(crate) fn stop(mut self) -> (std::path::PathBuf, u16) {
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), rustix::process::Signal::TERM);
        let _ = self.child.wait();
        (self.dir.clone(), self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port no other test of this run takes (tests run in parallel), and free now.
pub(crate) fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 40;
    loop {
        let port = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 40;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A persistent subscriber to `blackbox/#` (QoS 1): every message, as (topic, payload).
pub(crate) struct Sub {
    child: Child,
    rx: mpsc::Receiver<(String, String)>,
    pub(crate) got: Vec<(String, String)>,
}

impl Sub {
    fn start(port: u16) -> Sub {
        Sub::on(port, "blackbox/#", "blackbox-test-sub")
    }

    /// A persistent subscriber to `filter`, with client id `id`, once the
    /// broker confirmed the subscription.
    pub(crate) fn on(port: u16, filter: &str, id: &str) -> Sub {
        let mut child = Command::new("stdbuf")
            // Line-buffered: `-d` lines go out as they happen, not when a pipe buffer fills.
            .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", &port.to_string(), "-v", "-d", "-q", "1", "-c", "-i", id, "-t", filter])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let (subscribed_tx, subscribed) = mpsc::channel();
        let id = id.to_string();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                // `-d` adds the client's own lines (`Client <id> received SUBACK`) between the messages.
                if l.starts_with(&format!("Client {id} ")) || l.starts_with("Subscribed (mid") {
                    if l.contains("received SUBACK") {
                        let _ = subscribed_tx.send(());
                    }
                } else if let Some((t, p)) = l.split_once(' ') {
                    let _ = tx.send((t.to_string(), p.to_string()));
                }
            }
        });
        subscribed.recv_timeout(DEADLINE).expect("mosquitto_sub subscribed");
        Sub { child, rx, got: Vec::new() }
    }

    /// Waits (bounded) until `f` holds for what was received.
    pub(crate) fn wait_until(&mut self, what: &str, f: impl Fn(&[(String, String)]) -> bool) {
        let deadline = Instant::now() + DEADLINE * 2;
        while !f(&self.got) {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(m) => self.got.push(m),
                Err(_) => panic!(
                    "waited for {what}; got {} messages, raw offsets {:?}",
                    self.got.len(),
                    self.raw().iter().map(|r| r.0).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The raw lines received, as (offset, line), in the order they came.
    fn raw(&self) -> Vec<(u64, String)> {
        self.got
            .iter()
            .filter(|(t, _)| t == "blackbox/lab/raw/lab")
            .map(|(_, p)| {
                let v: Value = serde_json::from_str(p).unwrap();
                (v["offset"].as_u64().unwrap(), v["line"].as_str().unwrap().to_string())
            })
            .collect()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(dir: &Dir, n: usize, temp: f64) {
    let t = chrono::Utc::now();
    let path = dir.logs().join(t.format("%Y").to_string()).join(format!("{}.txt", t.format("%Y%m%d")));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    writeln!(f, "L {} lab {{\"id\":\"n{n}\",\"temp\":{temp}}}", t.format("%H:%M:%S%.3f")).unwrap();
}

/// The day file's lines with their byte offsets.
fn logged(dir: &Dir) -> Vec<(u64, String)> {
    let t = chrono::Utc::now();
    let path = dir.logs().join(t.format("%Y").to_string()).join(format!("{}.txt", t.format("%Y%m%d")));
    let text = std::fs::read_to_string(path).unwrap();
    let mut at = 0;
    text.lines()
        .map(|l| {
            let r = (at, l.to_string());
            at += l.len() as u64 + 1;
            r
        })
        .collect()
}

/// A site (`config`, then `[mqtt]` with `mqtt` added) forwarding to a broker of its own.
fn site(config: &str, mqtt: &str) -> (Dir, Broker) {
    let dir = Dir::new();
    let broker = Broker::start(&dir.path().join("broker"), free_port());
    let text = format!("{config}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n{mqtt}", broker.port);
    std::fs::write(dir.path().join("blackbox.toml"), text).unwrap();
    (dir, broker)
}

#[test]
fn forwarding_survives_a_broker_outage_and_a_deleted_cache_in_order_and_without_loss() {
    if !have("mosquitto") || !have("mosquitto_sub") {
        return;
    }
    let (dir, broker) = site("site = \"lab\"\n[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n", "");
    let port = broker.port;
    // Lines from before the first start are history: not forwarded (`forward --from` is for that).
    append(&dir, 0, 19.0);
    let mut sub = Sub::start(port);
    let mut follower = dir.spawn(&["index", "--follow"]);
    let mut err = follower.stderr_lines();
    err.wait_for("forwarding to mqtt://");
    sub.wait_until("online", |g| g.iter().any(|(t, p)| t == "blackbox/lab/online" && p == "online"));
    for n in 1..=5 {
        append(&dir, n, 20.0 + n as f64);
    }
    sub.wait_until("five lines", |g| g.iter().filter(|(t, _)| t == "blackbox/lab/raw/lab").count() >= 5);
    assert!(sub.got.iter().any(|(t, p)| t == "blackbox/lab/lab/n3/temp" && p == "23"), "{:?}", sub.got);
    let doc = sub.got.iter().find(|(t, _)| t == "blackbox/lab/lab/n3").map(|(_, p)| serde_json::from_str::<Value>(p).unwrap()).unwrap();
    assert_eq!(doc["fields"]["temp"], 23);
    assert!(doc["id"].as_str().unwrap().starts_with("lab/"), "{doc}");
    // Statuses, retained, once the cache has the lines.
    sub.wait_until("n3's status", |g| g.iter().any(|(t, p)| t == "blackbox/lab/status/lab/n3" && p.contains("\"level\":\"ok\"")));

    // The broker goes away; lines keep coming, over a second; it returns.
    let (bdir, port) = broker.stop();
    for n in 6..=25 {
        append(&dir, n, 20.0);
        // Pacing, as a device sends lines (nothing waits on this).
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    err.wait_for("the broker is away");
    // New lines do not hurry the reconnection: one attempt (and one
    // warning) per backoff period (0.5 s, doubling), not one per line.
    let attempts = err.drain().iter().filter(|l| l.contains("the broker is away")).count();
    assert!(attempts <= 8, "{attempts} connection attempts while 20 lines came:\n{}", err.seen.join("\n"));
    let _broker = Broker::try_on(&bdir, port).expect("mosquitto again on its port");
    sub.wait_until("all 25 lines", |g| {
        g.iter().filter(|(t, _)| t == "blackbox/lab/raw/lab").map(|(_, p)| p.clone()).collect::<std::collections::BTreeSet<_>>().len() >= 25
    });
    // Every line as logged, first seen in log order; a repeat only of a resent batch.
    let in_log = logged(&dir);
    let mut first = Vec::new();
    for r in sub.raw() {
        if !first.contains(&r) {
            first.push(r);
        }
    }
    assert_eq!(first, in_log[1..].to_vec());

    // The cache deleted and rebuilt, the follower restarted: nothing sent again.
    follower.terminate();
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let seen = sub.raw().len();
    let mut follower = dir.spawn(&["index", "--follow"]);
    follower.stderr_lines().wait_for("forwarding to mqtt://");
    append(&dir, 26, 30.0);
    sub.wait_until("line 26", |g| g.iter().any(|(t, p)| t == "blackbox/lab/raw/lab" && p.contains("n26")));
    let after: Vec<(u64, String)> = sub.raw()[seen..].to_vec();
    assert_eq!(after.len(), 1, "only the new line: {after:?}");
    assert_eq!(after[0], logged(&dir).last().unwrap().clone());
}

#[test]
fn home_assistant_finds_every_numeric_field_with_its_class_and_unit() {
    if !have("mosquitto") || !have("mosquitto_sub") {
        return;
    }
    let (dir, broker) = site("site = \"home\"\n[[source]]\nname = \"meter\"\nstdin = true\ndecoder = \"kv\"\n", "discovery = true\n");
    let port = broker.port;
    std::fs::create_dir_all(dir.logs()).unwrap();
    let mut ha = Sub::on(port, "homeassistant/#", "ha");
    let mut states = Sub::on(port, "blackbox/#", "states");
    let mut follower = dir.spawn(&["-v", "index", "--follow"]);
    let mut err = follower.stderr_lines();
    err.wait_for("forwarding to mqtt://");
    err.wait_for("listening for Home Assistant's online");
    let t = chrono::Utc::now();
    let path = dir.logs().join(t.format("%Y").to_string()).join(format!("{}.txt", t.format("%Y%m%d")));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("L {} meter temp=21.5C humidity=55% power=120W energy=1500Wh state=on\n", t.format("%H:%M:%S%.3f")))
        .unwrap();
    ha.wait_until("four configs", |g| g.iter().filter(|(t, _)| t.ends_with("/config")).count() >= 4);
    let config = |field: &str| -> Value {
        let (_, p) = ha
            .got
            .iter()
            .find(|(t, _)| t.ends_with(&format!("/{field}/config")))
            .unwrap_or_else(|| panic!("no config for {field}: {:?}", ha.got));
        serde_json::from_str(p).unwrap()
    };
    let expect = [
        ("temp", "temperature", "°C", "measurement"),
        ("humidity", "humidity", "%", "measurement"),
        ("power", "power", "W", "measurement"),
        ("energy", "energy", "Wh", "total_increasing"),
    ];
    for (field, class, unit, state_class) in expect {
        let c = config(field);
        assert_eq!(
            (c["device_class"].as_str(), c["unit_of_measurement"].as_str(), c["state_class"].as_str()),
            (Some(class), Some(unit), Some(state_class)),
            "{c}"
        );
        for key in ["name", "unique_id", "state_topic", "availability_topic", "device"] {
            assert!(!c[key].is_null(), "{field}: no {key} in {c}");
        }
        assert_eq!(c["availability_topic"], "blackbox/home/online");
        assert_eq!(c["device"]["identifiers"][0], "blackbox_home_meter_meter");
    }
    assert!(ha.got.iter().all(|(t, _)| !t.contains("/state/")), "a text field has no sensor config");
    // The state topics carry the values, as Home Assistant reads them.
    let topic = config("temp")["state_topic"].as_str().unwrap().to_string();
    states.wait_until("the temperature", |g| g.iter().any(|(t, p)| *t == topic && p == "21.5"));
    // Home Assistant's `online` (it restarted) makes the forwarder send every config again.
    let before = ha.got.iter().filter(|(t, _)| t.ends_with("/config")).count();
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "homeassistant/status", "-m", "online"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let told = err.wait_for("Home Assistant is online");
    ha.wait_until(&format!("the configs again ({told})"), |g| g.iter().filter(|(t, _)| t.ends_with("/config")).count() >= before + 4);
    // Retained: a subscriber that comes later gets them too.
    let mut late = Sub::on(port, "homeassistant/#", "late");
    late.wait_until("retained configs", |g| g.iter().filter(|(t, _)| t.ends_with("/config")).count() >= 4);
}
