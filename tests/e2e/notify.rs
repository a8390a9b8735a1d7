//! Notifications, end to end: the follower tells a real HTTP receiver (in
//! the test), a command and a simulated GSM modem on a pseudo-terminal
//! about changes it indexes from log lines written by the test; it is
//! killed at random moments and restarted, the cache is deleted and
//! rebuilt, and what was told is compared with the transitions stored.

use crate::harness::{stdout, Dir, Proc, DEADLINE};
use serde_json::Value;
use sim::modem::{Behaviour, PtyModem};
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the receiver answers to one request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

/// A webhook receiver: answers from its script (then 200), keeps every
/// JSON body it answered with a 2xx.
struct Hook {
    url: String,
    got: Arc<(Mutex<Vec<Value>>, Condvar)>,
    requests: Arc<Mutex<usize>>,
}

impl Hook {
    fn start(script: &[Answer]) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let got: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let requests = Arc::new(Mutex::new(0));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (g, r) = (got.clone(), requests.clone());
        std::thread::spawn(move || {
            let mut hung = Vec::new();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let Some(body) = read_request(&mut conn) else { continue };
                *r.lock().unwrap() += 1;
                let answer = script.lock().unwrap().pop_front().unwrap_or(Answer::Status(200));
                match answer {
                    Answer::Hang => hung.push(conn),
                    Answer::Status(code) => {
                        let _ = write!(conn, "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                        if (200..300).contains(&code) {
                            let v: Value = serde_json::from_slice(&body).expect("the webhook body is JSON");
                            g.0.lock().unwrap().push(v);
                            g.1.notify_all();
                        }
                    }
                }
            }
        });
        Hook { url, got, requests }
    }

    /// Waits (bounded) until `n` messages were received; returns them all.
    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let mut got = self.got.0.lock().unwrap();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} messages received, waited for {n}: {got:#?}", got.len());
            got = self.got.1.wait_timeout(got, left).unwrap().0;
        }
        got.clone()
    }

    fn received(&self) -> Vec<Value> {
        self.got.0.lock().unwrap().clone()
    }
}

/// One HTTP request's body (None when the client went away).
fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    assert!(head.starts_with("post /hook http/1.1"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok())?;
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[head_end..head_end + len].to_vec())
}

/// Appends a reading of `device` (`temp`) at `at_ms` to the day's log file.
fn reading(dir: &Dir, at_ms: i64, device: &str, temp: f64) {
    reading_in(&dir.logs(), at_ms, device, temp);
}

fn reading_in(logs: &std::path::Path, at_ms: i64, device: &str, temp: f64) {
    let t = chrono::DateTime::from_timestamp_millis(at_ms).expect("time");
    let path = logs.join(t.format("%Y").to_string()).join(format!("{}.txt", t.format("%Y%m%d")));
    std::fs::create_dir_all(path.parent().expect("year")).expect("mkdir");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open day");
    writeln!(f, "L {} lab {{\"id\":\"{device}\",\"temp\":{temp}}}", t.format("%H:%M:%S%.3f")).expect("append");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const SITE: &str = r#"
site = "lab"
[[source]]
name = "lab"
stdin = true
decoder = "json"
device = ["id"]

[[check]]
name = "too hot"
sensors = ["lab/*/temp"]
kind = "range"
max = 25
level = "critical"
clear_for = "0s"
"#;

fn follower(dir: &Dir) -> (Proc, crate::harness::StderrLines) {
    let mut p = dir.spawn(&["index", "--follow"]);
    let mut err = p.stderr_lines();
    err.wait_for("notifications on");
    (p, err)
}

/// The devices of a message's alerts, with the level each went to and its status.
fn alerts(m: &Value) -> Vec<(String, String, String)> {
    m["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| (a["labels"]["device"].as_str().unwrap().into(), a["to"].as_str().unwrap().into(), a["status"].as_str().unwrap().into()))
        .collect()
}

fn ledger(dir: &Dir) -> Vec<Value> {
    let o = dir.run(&["notify", "log", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(&o).lines().map(|l| serde_json::from_str(l).expect("a ledger record")).collect()
}

#[test]
fn a_dead_webhook_falls_back_to_the_command_then_the_modem() {
    let dir = Dir::new();
    let hook = Hook::start(&[Answer::Hang; 3]);
    let modem = PtyModem::start(Behaviour::Good, true).expect("modem");
    let config = format!(
        "{SITE}\n[[notify]]\nname = \"on call\"\nwebhook = \"{}\"\ncommand = [\"sh\", \"-c\", \"echo no route to pager >&2; exit 3\"]\n\
modem = {{ port = \"{}\", to = [\"+15551234\"] }}\ngroup_wait = \"200ms\"\ntimeout = \"2s\"\n",
        hook.url,
        modem.port()
    );
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    let now = now_ms();
    reading(&dir, now - 1000, "a", 20.0);
    let (_follower, mut err) = follower(&dir);
    reading(&dir, now_ms(), "a", 31.5);
    // While the webhook hangs (three tries of 2 s), the cache keeps up.
    let deadline = Instant::now() + DEADLINE;
    while *hook.requests.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "the webhook was never tried");
        std::thread::sleep(Duration::from_millis(20));
    }
    reading(&dir, now_ms(), "a", 32.5);
    loop {
        let q = stdout(&dir.run(&["query", "lab/a/temp", "--format", "csv"]));
        if q.contains("32.5") {
            break;
        }
        assert!(Instant::now() < deadline, "the new reading is not in the cache: {q}");
    }
    assert!(modem.sent().is_empty(), "indexing waited for the channels");
    assert!(*hook.requests.lock().unwrap() < 3, "indexing waited for the webhook's tries");
    err.wait_for("notified \"on call\" by modem");
    let sms = modem.sent();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].to, "+15551234");
    assert!(sms[0].text.starts_with("lab: CRITICAL lab/a: lab/a/temp reached 31.5, above 25"), "{:?}", sms[0].text);
    assert!(sms[0].text.chars().count() <= 160);
    // The ledger says what was tried before: three webhook tries, three command tries.
    let last = ledger(&dir).pop().expect("a record");
    assert_eq!(last["outcome"], "sent");
    assert_eq!(last["channel"], "modem");
    let failed: Vec<&str> = last["failures"].as_array().unwrap().iter().map(|f| f["channel"].as_str().unwrap()).collect();
    assert_eq!(failed, ["webhook", "webhook", "webhook", "command", "command", "command"]);
    assert!(last["failures"][3]["error"].as_str().unwrap().contains("exited with status 3: no route to pager"), "{last}");
    assert_eq!(*hook.requests.lock().unwrap(), 3);
    assert!(hook.received().is_empty());
    // `status` lists it.
    let status = stdout(&dir.run(&["status"]));
    assert!(status.contains("notifications: 1 sent, 0 failed") && status.contains("by modem"), "{status}");
}

#[test]
fn notify_test_retries_5xx_not_4xx_and_reports_each_channel() {
    let dir = Dir::new();
    let hook = Hook::start(&[Answer::Status(500), Answer::Status(503), Answer::Status(200), Answer::Status(404)]);
    let refusing = PtyModem::start(Behaviour::CmsError(500), true).expect("modem");
    let told = dir.path().join("told.txt");
    let config = format!(
        "{SITE}\n[[notify]]\nname = \"ops\"\nwebhook = \"{}\"\ncommand = [\"sh\", \"-c\", \"cat > '{}'; echo \\\"$BLACKBOX_KIND $BLACKBOX_SITE\\\" >> '{}'\"]\n\
modem = {{ port = \"{}\", to = [\"+15551234\"] }}\ntimeout = \"2s\"\n",
        hook.url,
        told.display(),
        told.display(),
        refusing.port()
    );
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    let o = dir.run(&["notify", "test"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "the modem failed: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("webhook") && lines[0].contains("answered 500"), "{out}");
    assert!(lines[1].contains("answered 503"), "{out}");
    assert!(lines[2].contains("webhook  sent:") && lines[2].contains("answered 200"), "{out}");
    assert!(lines[3].contains("command  sent"), "{out}");
    assert!(out.contains("+CMS ERROR: 500") && out.contains("modem    FAILED after 3 tries"), "{out}");
    assert_eq!(hook.received()[0]["kind"], "test");
    let text = std::fs::read_to_string(&told).unwrap();
    assert!(text.contains("test message from blackbox") && text.ends_with("test lab\n"), "{text}");
    // A refusal (4xx) is not tried again.
    let o = dir.run(&["notify", "test", "--route", "ops"]);
    let out = stdout(&o);
    assert!(out.contains("answered 404 (a refusal: not tried again)") && out.contains("webhook  FAILED after 1 try"), "{out}");
    assert_eq!(*hook.requests.lock().unwrap(), 4);
    let o = dir.run(&["notify", "test", "--route", "nobody"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no [[notify]] is named \"nobody\" (there are \"ops\")"));
    // Every test is in the ledger.
    assert_eq!(ledger(&dir).len(), 6);
}

#[test]
fn a_power_cut_is_one_message_then_ack_silence_and_resolved() {
    let dir = Dir::new();
    let hook = Hook::start(&[]);
    let config = format!("{SITE}\n[[notify]]\nname = \"ops\"\nwebhook = \"{}\"\ngroup_wait = \"1s\"\nrepeat = \"1h\"\n", hook.url);
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("n{i:02}")).collect();
    let start = now_ms();
    for n in &names {
        reading(&dir, start - 2000, n, 20.0);
    }
    let (_follower, _err) = follower(&dir);
    // Twenty devices overheat at once: one message.
    let t = now_ms();
    for (i, n) in names.iter().enumerate() {
        reading(&dir, t + i as i64, n, 30.0);
    }
    let got = hook.wait_for(1);
    assert_eq!(got[0]["kind"], "change");
    let a = alerts(&got[0]);
    assert_eq!(a.len(), 20, "{a:?}");
    assert!(a.iter().all(|(_, level, status)| level == "critical" && status == "firing"));
    assert!(got[0]["text"].as_str().unwrap().starts_with("lab: 20 devices: 20 CRITICAL"), "{}", got[0]["text"]);

    // One is acknowledged; an hour later the others are repeated.
    let o = dir.run(&["ack", "lab/n03", "--note", "known"]);
    assert!(stdout(&o).starts_with("acknowledged lab/n03 (critical since"), "{}", String::from_utf8_lossy(&o.stderr));
    let hour = t + 3_600_000 + 60_000;
    dir.set_clock(&chrono::DateTime::from_timestamp_millis(hour).unwrap().to_rfc3339());
    let got = hook.wait_for(2);
    assert_eq!(got[1]["kind"], "repeat");
    let repeated: Vec<String> = alerts(&got[1]).into_iter().map(|(d, ..)| d).collect();
    assert_eq!(repeated.len(), 19, "{repeated:?}");
    assert!(!repeated.contains(&"lab/n03".to_string()));

    // Maintenance on n00..n09: their changes are not told; n15's is.
    let o = dir.run(&["silence", "lab/n0*", "--for", "2h", "--note", "batteries"]);
    assert!(stdout(&o).starts_with("silenced lab/n0* until"), "{}", String::from_utf8_lossy(&o.stderr));
    let t = now_ms() + (hour - t);
    reading(&dir, t, "n01", 20.0);
    reading(&dir, t + 1, "n15", 20.0);
    let got = hook.wait_for(3);
    assert_eq!(got[2]["kind"], "change");
    assert_eq!(alerts(&got[2]), [("lab/n15".to_string(), "ok".to_string(), "resolved".to_string())]);
    assert_eq!(got[2]["status"], "resolved");
    // As Alertmanager's: the labels and fingerprint of the alert it ends.
    let firing = got[0]["alerts"].as_array().unwrap().iter().find(|a| a["labels"]["device"] == "lab/n15").unwrap();
    assert_eq!(got[2]["alerts"][0]["labels"], firing["labels"]);
    assert_eq!(got[2]["alerts"][0]["fingerprint"], firing["fingerprint"]);
    assert_eq!(got[2]["alerts"][0]["startsAt"], firing["startsAt"]);
    assert_eq!(firing["check"], "too hot");
    let status = stdout(&dir.run(&["status"]));
    assert!(status.contains("silenced lab/n0* until") && status.contains("(batteries)"), "{status}");
    assert!(status.contains("acknowledged lab/n03 (critical) until it changes (known)"), "{status}");
    // The silence ends: what changed meanwhile and stands is told (as a
    // change, since it is minutes old; an older one would be in a summary).
    dir.run(&["silence", "--clear", "lab/n0*"]);
    let got = hook.wait_for(4);
    assert_eq!(got[3]["kind"], "change");
    assert_eq!(alerts(&got[3]), [("lab/n01".to_string(), "ok".to_string(), "resolved".to_string())]);
    assert_eq!(hook.received().len(), 4);
}

/// Device transitions the cache stores that the route covers, as their stable ids.
fn told_ids_expected(dir: &Dir) -> BTreeMap<String, String> {
    let o = dir.run(&["health", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut ids = BTreeMap::new();
    for t in stdout(&o).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()) {
        let subject = t["subject"].as_str().unwrap();
        if subject.matches('/').count() != 1 || subject.contains(' ') {
            continue;
        }
        let (from, to) = (t["from"].as_str().unwrap(), t["to"].as_str().unwrap());
        if to != "critical" && from != "critical" {
            continue;
        }
        let at = chrono::DateTime::parse_from_rfc3339(t["time"].as_str().unwrap()).unwrap().timestamp_millis();
        let level = health::Level::parse(to).unwrap();
        ids.insert(alert::Item::id_of("hooks", subject, level, at), format!("{subject} {to} {}", t["time"]));
    }
    ids
}

#[test]
fn each_change_is_told_once_through_kills_rebuilds_and_config_changes() {
    let dir = Dir::new();
    let hook = Hook::start(&[]);
    let route = |extra: &str| format!("{SITE}{extra}\n[[notify]]\nname = \"hooks\"\nwebhook = \"{}\"\ngroup_wait = \"300ms\"\n", hook.url);
    std::fs::write(dir.path().join("blackbox.toml"), route("")).unwrap();
    let devices = ["k0", "k1", "k2", "k3"];
    for d in devices {
        reading(&dir, now_ms() - 1000, d, 20.0);
    }
    // Devices flip between too hot and fine while the follower is killed at random moments.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (logs, writing) = (dir.logs(), writing.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let d = devices[n % devices.len()];
                let temp = if (n / devices.len()).is_multiple_of(2) { 30.0 } else { 20.0 };
                reading_in(&logs, now_ms(), d, temp);
                n += 1;
                // The pace of the devices, not a synchronisation.
                std::thread::sleep(Duration::from_millis(70));
            }
            n
        })
    };
    let mut rng = sim::Rng::new(7);
    let kills = 8;
    for _ in 0..kills {
        let p = dir.spawn(&["index", "--follow"]);
        // A random moment: while starting, catching up, or sending.
        std::thread::sleep(Duration::from_millis(300 + rng.below(900)));
        p.kill();
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let lines = writer.join().unwrap();
    assert!(lines > 40, "{lines} lines written");
    let (last, _err) = follower(&dir);
    let expected = told_ids_expected(&dir);
    assert!(expected.len() > 30, "{} transitions", expected.len());
    // Wait until every change was told.
    let deadline = Instant::now() + DEADLINE;
    let seen = |msgs: &[Value]| -> Vec<String> {
        msgs.iter().flat_map(|m| m["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string())).collect()
    };
    loop {
        let got = hook.received();
        let ids = seen(&got);
        if expected.keys().all(|k| ids.contains(k)) {
            break;
        }
        assert!(Instant::now() < deadline, "not told: {:?}", expected.iter().filter(|(k, _)| !ids.contains(k)).collect::<Vec<_>>());
        hook.wait_for(got.len() + 1);
    }
    let got = hook.received();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut resent = 0;
    for m in &got {
        let ids = seen(std::slice::from_ref(m));
        if ids.iter().any(|i| count.contains_key(i)) {
            resent += 1;
        }
        for i in ids {
            *count.entry(i).or_default() += 1;
        }
    }
    assert!(count.keys().all(|k| expected.contains_key(k)), "told something that is not a stored change");
    assert!(count.values().all(|&n| n <= 2), "{count:?}");
    // Only a kill between sending and recording repeats a message.
    assert!(resent <= kills, "{resent} messages repeated after {kills} kills");
    last.terminate();

    // Deleting the cache, rebuilding it, changing the checks: nothing is told again.
    let told_before = got.len();
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    assert!(dir.run(&["index"]).status.success());
    assert!(dir.run(&["rebuild"]).status.success());
    let extra = "\n[[check]]\nname = \"too cold\"\nsensors = [\"lab/*/temp\"]\nkind = \"range\"\nmin = -40\n";
    std::fs::write(dir.path().join("blackbox.toml"), route(extra)).unwrap();
    let (_follower, _err) = follower(&dir);
    // A new change after all that: the next message is about it alone.
    reading(&dir, now_ms(), "k9", 40.0);
    let got = hook.wait_for(told_before + 1);
    assert_eq!(alerts(&got[told_before]), [("lab/k9".to_string(), "critical".to_string(), "firing".to_string())]);
}

#[test]
fn after_downtime_one_summary_says_what_stands() {
    let dir = Dir::new();
    let hook = Hook::start(&[]);
    let config = format!("{SITE}\n[[notify]]\nname = \"ops\"\nwebhook = \"{}\"\ngroup_wait = \"300ms\"\n", hook.url);
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    // While nobody watched: a overheated, b overheated and recovered, c overheated.
    let now = now_ms();
    let min = 60_000;
    reading(&dir, now - 40 * min, "a", 20.0);
    reading(&dir, now - 40 * min, "b", 20.0);
    reading(&dir, now - 40 * min, "c", 20.0);
    reading(&dir, now - 30 * min, "a", 30.0);
    reading(&dir, now - 25 * min, "b", 30.0);
    reading(&dir, now - 20 * min, "b", 20.0);
    reading(&dir, now - 15 * min, "c", 30.0);
    let (_follower, _err) = follower(&dir);
    let got = hook.wait_for(1);
    assert_eq!(got[0]["kind"], "summary");
    assert!(
        got[0]["text"].as_str().unwrap().starts_with("lab: while blackbox was not watching: 2 devices: 2 CRITICAL"),
        "{}",
        got[0]["text"]
    );
    let a = alerts(&got[0]);
    assert_eq!(a, [("lab/a".into(), "critical".into(), "firing".into()), ("lab/c".into(), "critical".into(), "firing".into())]);
    // Nothing else about the past: the next message is about a live change alone.
    reading(&dir, now_ms(), "b", 35.0);
    let got = hook.wait_for(2);
    assert_eq!((got[1]["kind"].as_str(), alerts(&got[1])), (Some("change"), vec![("lab/b".into(), "critical".into(), "firing".into())]));
}
