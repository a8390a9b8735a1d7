//! `status` and `health` on the real JeeLabs day: the colours the binary
//! gives are checked against an independent computation from the exported
//! readings, and the drill-down shows the log lines behind a result.

use crate::harness::{real_site, stdout, HOUSEMON};
use std::collections::BTreeMap;

/// The real day's checks (the dashboard's tests use them too).
pub const CHECKS: &str = r#"
[status]
grey_after = "2h"
black_after = "4h"

# No hysteresis and no clear_for: the result at the end of the day is that of the last reading.
[[check]]
name = "room too warm"
sensors = ["*/roomNode-*/temp"]
kind = "range"
max = 17.2
hysteresis = 0
clear_for = "0s"

[[check]]
name = "roomNode silent"
sensors = ["*/roomNode-*/temp"]
kind = "stale"
after = "30m"
level = "error"
"#;

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(o)
}

#[test]
fn status_colours_match_an_independent_computation() {
    let dir = real_site();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{CHECKS}")).unwrap();
    ok(&dir.run(&["index"]));
    // From the exported readings: each device's last reading, and each roomNode's last temperature.
    let mut last_seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_temp: BTreeMap<String, (i64, f64)> = BTreeMap::new();
    for line in ok(&dir.run(&["export", "--format", "jsonl"])).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let sensor = v["sensor"].as_str().unwrap();
        let (device, field) = sensor.rsplit_once('/').unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap().timestamp_millis();
        let e = last_seen.entry(device.to_string()).or_insert(t);
        *e = (*e).max(t);
        if field == "temp" && device.contains("/roomNode-") {
            last_temp.insert(device.to_string(), (t, v["value"].as_f64().unwrap()));
        }
    }
    assert!(
        last_temp.values().any(|&(_, t)| t > 17.2) && last_temp.values().any(|&(_, t)| t <= 17.2),
        "the day has warm and cool rooms: {last_temp:?}"
    );
    // Judged one and three hours after midnight: some devices grey, none
    // black yet; a roomNode not heard for 30 minutes is stale *now* (no
    // line since the day's last is silence).
    for (at, at_text) in [(1_354_323_600_000i64, "2012-12-01T01:00:00Z"), (1_354_330_800_000, "2012-12-01T03:00:00Z")] {
        dir.set_clock(at_text);
        let json: serde_json::Value = serde_json::from_str(&ok(&dir.run(&["status", "--all", "--format", "json"]))).unwrap();
        let got: BTreeMap<String, String> = json["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["device"].as_str().unwrap().to_string(), d["level"].as_str().unwrap().to_string()))
            .collect();
        let expected: BTreeMap<String, String> = last_seen
            .iter()
            .map(|(device, &seen)| {
                let quiet = at - seen;
                let level = if quiet >= 4 * 3_600_000 {
                    "black"
                } else if quiet >= 2 * 3_600_000 {
                    "grey"
                } else if last_temp.get(device).is_some_and(|&(seen, _)| at - seen >= 30 * 60_000) {
                    "error"
                } else if last_temp.get(device).is_some_and(|&(_, t)| t > 17.2) {
                    "warning"
                } else {
                    "ok"
                };
                (device.clone(), level.to_string())
            })
            .collect();
        assert_eq!(got, expected, "at {at_text}");
        // The site is the worst of its devices, and --nagios says so by its exit code.
        let worst =
            ["ok", "warning", "error", "critical", "grey", "black"].iter().rposition(|l| expected.values().any(|v| v == l)).unwrap();
        assert_eq!(json["level"], ["ok", "warning", "error", "critical", "grey", "black"][worst]);
        let nagios = dir.run(&["status", "--nagios"]);
        assert_eq!(nagios.status.code(), Some([0, 1, 2, 2, 3, 3][worst]), "{}", stdout(&nagios));
        assert!(stdout(&nagios).starts_with("BLACKBOX "), "{}", stdout(&nagios));
    }
    dir.set_clock("2012-12-01T00:30:00Z");
    // The drill-down of a warm room names the check and shows the log line that made it warm.
    let (warm, (_, temp)) = last_temp.iter().find(|(_, &(_, t))| t > 17.2).unwrap();
    let text = ok(&dir.run(&["status", warm]));
    assert!(text.contains("room too warm") && text.contains(&format!("{warm}/temp reached")), "{text}");
    let cause = text.lines().find(|l| l.trim_start().starts_with("20121130.txt.gz:")).expect("the line behind the result");
    let node = warm.rsplit('-').next().unwrap();
    assert!(
        cause.contains(&format!(" OK {node} ")) || cause.contains(&format!(" OK {} ", node.parse::<u32>().unwrap() | 32)),
        "{cause} (last temp {temp})"
    );
    // Then the device's last five lines, named by their file (gzipped here).
    let tail: Vec<&str> = text.lines().skip_while(|l| !l.contains("last lines from the device:")).skip(1).collect();
    assert_eq!(tail.len(), 5, "{text}");
    assert!(tail.iter().all(|l| l.trim_start().starts_with("20121130.txt.gz:") && l.contains(" usb-A40117UK OK ")), "{text}");
    // Without --all, only the devices that are not green, and a summary.
    let table = ok(&dir.run(&["status"]));
    // (At 00:30 the roomNodes last heard before 00:00 are stale: error.)
    assert!(table.lines().next().unwrap().contains("error     site: "), "{table}");
    assert!(!table.lines().skip(2).any(|l| l.contains(" ok ")), "{table}");
    // The history: the warm room's transitions, oldest first.
    let history = ok(&dir.run(&["health", "--device", warm]));
    let times: Vec<&str> = history.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert!(!times.is_empty() && times.windows(2).all(|w| w[0] <= w[1]), "{history}");
    // --device takes a device as `status DEVICE` does (its name alone when
    // unique), and says when there is no such device.
    let (_, name) = warm.split_once('/').unwrap();
    assert_eq!(ok(&dir.run(&["health", "--device", name])), history);
    assert_eq!(dir.run(&["health", "--device", "roomNode-99"]).status.code(), Some(2));
}

/// A site with nothing indexed (no logs yet, or a wrong log directory) is
/// not "OK" to a monitoring system: UNKNOWN, exit code 3.
#[test]
fn nagios_says_unknown_when_there_is_nothing_to_judge() {
    let dir = crate::harness::Dir::new();
    std::fs::create_dir_all(dir.logs()).unwrap();
    ok(&dir.run(&["index"]));
    let out = dir.run(&["status", "--nagios"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("BLACKBOX UNKNOWN - no devices"), "{}", stdout(&out));
}

/// A reader (`status` from a monitoring probe) holds the cache for a
/// moment: `index` (and a follower starting) waits for it instead of
/// taking it for a follower and giving up.
#[test]
fn index_waits_for_a_reader_that_holds_the_cache() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    // This test holds the cache's lock as a reader would.
    let held = index::Index::open_read(&dir.path().join("cache"), "any").unwrap();
    let mut indexing = dir.spawn(&["index"]);
    let mut err = indexing.stderr_lines();
    err.wait_for("is busy (another blackbox reads it?); waiting up to");
    drop(held);
    let out = indexing.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `status` with a configuration other than the cache's (a forgotten
/// `--config`) says so and exits 2; it never judges the stored state with
/// checks that are not its own.
#[test]
fn status_refuses_a_cache_built_with_other_checks() {
    let dir = real_site();
    std::fs::write(dir.path().join("checks.toml"), format!("{HOUSEMON}{CHECKS}")).unwrap();
    ok(&dir.run(&["--config", "checks.toml", "index"]));
    for args in [&["status"][..], &["status", "--all"], &["status", "--nagios"], &["status", "usb-A40117UK/roomNode-12"]] {
        let out = dir.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("was built with another configuration"), "{args:?}");
    }
    // The stored history still reads, with a warning.
    let out = dir.run(&["health"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("warning"), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&dir.run(&["--config", "checks.toml", "status"]));
}

#[test]
fn check_errors_name_the_file_and_line() {
    let dir = real_site();
    std::fs::write(
        dir.path().join("blackbox.toml"),
        format!("{HOUSEMON}\n[[check]]\nname = \"x\"\nsensors = [\"*/*/temp\"]\nkind = \"range\"\nmin = 30\nmax = 10\n"),
    )
    .unwrap();
    let out = dir.run(&["index"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = HOUSEMON.lines().count() + 2;
    assert!(err.contains(&format!("blackbox.toml:{line}: check \"x\": min (30) is above max (10)")), "{err}");
}

/// The UPS of the SEB article: two firmware versions print their faults
/// differently; codes 101 (critical) and 201 (warning) set the UPS's level
/// for an hour after each, 100 clears it. Every code maps to its level and
/// colour, and `events --code 101` lists exactly its lines.
#[test]
fn ups_fault_codes_map_to_levels_and_events_list_their_lines() {
    let dir = crate::harness::Dir::new();
    let config = r#"
[[event]]
regex = "^(Fault|FLT) 101"
code = "101"
level = "critical"
description = "inverter fault"

[[event]]
regex = "^(Fault|FLT) 201"
code = "201"
level = "warning"
description = "battery low"

[[event]]
regex = "^(Fault|FLT) 100"
code = "100"
description = "faults cleared"

[[check]]
name = "ups critical"
kind = "event"
sensors = ["ups"]
codes = ["101"]
clear = ["100"]
hold = "1h"
level = "critical"

[[check]]
name = "ups warning"
kind = "event"
sensors = ["ups"]
codes = ["201"]
hold = "1h"
"#;
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    // Firmware 1 says "Fault NNN", firmware 2 (after 12:00) "FLT NNN: text".
    let lines = [
        "L 10:00:00.000 ups Fault 201",
        "L 10:10:00.000 ups load=40",
        "L 10:20:00.000 ups Fault 101",
        "L 10:30:00.000 ups Fault 100",
        "L 12:00:00.000 ups FLT 101: inverter",
        "L 12:05:00.000 ups FLT 201: battery",
        "L 14:00:00.000 ups load=41",
    ];
    std::fs::create_dir_all(dir.logs().join("2026")).unwrap();
    std::fs::write(dir.logs().join("2026").join("20261121.txt"), lines.join("\n") + "\n").unwrap();
    ok(&dir.run(&["index"]));
    // Exactly the lines of code 101, with their file and line numbers.
    let listed: Vec<String> = ok(&dir.run(&["events", "--code", "101", "--format", "json"]))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}:{} {}", v["file"].as_str().unwrap(), v["line"], v["text"].as_str().unwrap())
        })
        .collect();
    assert_eq!(listed, ["20261121.txt:3 Fault 101", "20261121.txt:5 FLT 101: inverter"]);
    // The UPS's levels over the day: each code to its level, cleared by 100 or at the end of its hold.
    let history: Vec<String> = ok(&dir.run(&["health", "--device", "ups", "--format", "json"]))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["subject"] == "ups")
        .map(|v| format!("{} {}", &v["time"].as_str().unwrap()[11..16], v["to"].as_str().unwrap()))
        .collect();
    assert_eq!(history, ["10:00 warning", "10:20 critical", "10:30 warning", "11:00 ok", "12:00 critical", "13:00 warning", "13:05 ok"]);
    dir.set_clock("2026-11-21T12:30:00Z");
    let status: serde_json::Value = serde_json::from_str(&ok(&dir.run(&["status", "--format", "json"]))).unwrap();
    // The stored level at the end of the data: ok again (both holds ended by 14:00).
    assert_eq!(status["level"], "ok", "{status}");
}

/// A Brewer spectrophotometer's diagnostic codes 11 to 47, each with its level
/// and what it means. The grouping (11-19 warning, 20-35 error, 36-47
/// critical) and the descriptions are crafted for this test: the instrument's
/// own table is not available.
const BREWER_CODES: [(u32, &str, &str); 37] = [
    (11, "warning", "lamp intensity low"),
    (12, "warning", "standard lamp intensity drifting"),
    (13, "warning", "internal humidity high"),
    (14, "warning", "instrument temperature outside calibration range"),
    (15, "warning", "mercury lamp test marginal"),
    (16, "warning", "dark count high"),
    (17, "warning", "azimuth tracker slow"),
    (18, "warning", "zenith prism position uncertain"),
    (19, "warning", "clock drift above 10 s"),
    (20, "error", "mercury calibration failed"),
    (21, "error", "micrometer step error"),
    (22, "error", "filter wheel 1 position error"),
    (23, "error", "filter wheel 2 position error"),
    (24, "error", "iris not responding"),
    (25, "error", "slit mask motor stalled"),
    (26, "error", "azimuth tracker lost home"),
    (27, "error", "zenith prism lost home"),
    (28, "error", "photomultiplier dead time out of range"),
    (29, "error", "standard lamp ratios out of range"),
    (30, "error", "counts saturated"),
    (31, "error", "A/D converter timeout"),
    (32, "error", "heater failure"),
    (33, "error", "sun sensor obstructed"),
    (34, "error", "GPS time sync lost"),
    (35, "error", "command response timeout"),
    (36, "critical", "photomultiplier high voltage failed"),
    (37, "critical", "micrometer lost its reference"),
    (38, "critical", "azimuth motor overcurrent"),
    (39, "critical", "zenith motor overcurrent"),
    (40, "critical", "+5 V supply out of range"),
    (41, "critical", "+12 V supply out of range"),
    (42, "critical", "high voltage supply out of range"),
    (43, "critical", "internal temperature critical"),
    (44, "critical", "water ingress detected"),
    (45, "critical", "main board not responding"),
    (46, "critical", "shutter stuck open"),
    (47, "critical", "firmware checksum error"),
];

/// Four Brewers share the table. From the Brewer table (issue 13) a
/// configuration is generated: one `[[event]]` per code, one event check per
/// level. On a crafted day where the instruments emit every code (some
/// several times) among ordinary lines, every code maps to its level and
/// colour, `events --code N` lists exactly the lines of code N, and each
/// instrument's status is the worst level it emitted, with its colour.
#[test]
fn brewer_codes_map_to_levels_and_colours_and_events_list_their_lines() {
    const LEVELS: [&str; 3] = ["warning", "error", "critical"];
    // The colours of DESIGN (docs/configuration.md, `[status]`).
    let colour = |level: &str| match level {
        "warning" => "yellow",
        "error" => "orange",
        "critical" => "red",
        other => panic!("no colour for {other}"),
    };
    let rank = |level: &str| LEVELS.iter().position(|l| *l == level).unwrap();
    let entry = |code: u32| BREWER_CODES.iter().find(|(c, _, _)| *c == code).unwrap();
    assert_eq!(BREWER_CODES.map(|(c, _, _)| c), std::array::from_fn(|i| 11 + i as u32), "codes 11 to 47, once each");
    const INSTRUMENTS: [&str; 4] = ["brewer-1", "brewer-2", "brewer-3", "brewer-4"];

    // The configuration, from the table.
    let mut config = String::new();
    for (code, level, description) in BREWER_CODES {
        config +=
            &format!("[[event]]\nregex = '^ERR {code}\\b'\ncode = \"{code}\"\nlevel = \"{level}\"\ndescription = \"{description}\"\n\n");
    }
    let sensors = INSTRUMENTS.map(|s| format!("\"{s}\"")).join(", ");
    for level in LEVELS {
        let codes = BREWER_CODES.iter().filter(|(_, l, _)| *l == level).map(|(c, _, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        // A hold longer than the day: every event is still held at its end.
        config += &format!(
            "[[check]]\nname = \"brewer {level}\"\nkind = \"event\"\nsensors = [{sensors}]\ncodes = [{codes}]\nhold = \"48h\"\nlevel = \"{level}\"\n\n"
        );
    }
    let dir = crate::harness::Dir::new();
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();

    // The codes each instrument emits, in order: brewer-1 only warnings,
    // brewer-2 up to errors, brewer-3 and brewer-4 up to critical.
    let plan: [Vec<u32>; 4] = [
        (11..=19).chain([11, 15, 11]).collect(),
        [12].into_iter().chain(20..=27).chain([23, 19]).collect(),
        (28..=41).chain([23, 30]).collect(),
        [13].into_iter().chain(42..=47).chain([36, 47, 47]).collect(),
    ];
    let ordinary = ["HG 302.126 nm ok", "SL R5 1620 R6 325", "TE 23.4 C", "DS 44 4712 1203 889", "SUMMARY ERR 0 WARN 0"];
    // The day's lines, round by round: each instrument's next code, and now
    // and then an ordinary line; times increase by a little over a minute.
    struct Line {
        time: String,
        source: &'static str,
        text: String,
        code: Option<u32>,
    }
    let mut day: Vec<Line> = Vec::new();
    let mut push = |source: &'static str, text: String, code: Option<u32>| {
        let ms = 6 * 3_600_000 + day.len() as u64 * 61_237;
        let time = format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        day.push(Line { time, source, text, code });
    };
    for round in 0..plan.iter().map(Vec::len).max().unwrap() {
        for (i, source) in INSTRUMENTS.into_iter().enumerate() {
            if let Some(&code) = plan[i].get(round) {
                // Bare, or with the instrument's own words.
                let text = if (round + i) % 3 == 0 { format!("ERR {code}") } else { format!("ERR {code}: {}", entry(code).2) };
                push(source, text, Some(code));
            }
            if (round + i) % 2 == 0 {
                push(source, ordinary[(round + i) % ordinary.len()].to_string(), None);
            }
        }
        if round == 5 {
            // A code outside the table is no event.
            push("brewer-3", "ERR 48: not in the table".to_string(), None);
        }
    }
    let emitted: Vec<u32> = day.iter().filter_map(|l| l.code).collect();
    assert!((11..=47).all(|c| emitted.contains(&c)), "every code at least once");
    assert!(
        emitted.iter().filter(|&&c| c == 47).count() > 2 && emitted.iter().filter(|&&c| c == 23).count() > 2,
        "some codes several times"
    );
    std::fs::create_dir_all(dir.logs().join("2026")).unwrap();
    let text: String = day.iter().map(|l| format!("L {} {} {}\n", l.time, l.source, l.text)).collect();
    std::fs::write(dir.logs().join("2026").join("20260312.txt"), text).unwrap();
    let indexed = dir.run(&["index"]);
    ok(&indexed);
    // The instruments have no [[source]] table and no readings, but they
    // logged lines: the checks' globs match them, so no warning.
    let warnings = String::from_utf8_lossy(&indexed.stderr);
    assert!(!warnings.contains("matches no"), "{warnings}");

    // An event as `events --format json` shows it, and as the day says it should be.
    let shown = |v: &serde_json::Value| {
        format!(
            "{} {} {} {} {} {}:{} {}",
            v["time"].as_str().unwrap(),
            v["source"].as_str().unwrap(),
            v["code"].as_str().unwrap(),
            v["level"].as_str().unwrap(),
            v["description"].as_str().unwrap(),
            v["file"].as_str().unwrap(),
            v["line"],
            v["text"].as_str().unwrap()
        )
    };
    let listed = |args: &[&str]| -> Vec<String> {
        ok(&dir.run(args)).lines().map(|l| shown(&serde_json::from_str::<serde_json::Value>(l).unwrap())).collect()
    };
    let expected = |keep: &dyn Fn(u32) -> bool| -> Vec<String> {
        day.iter()
            .enumerate()
            .filter_map(|(n, l)| {
                let (code, level, description) = entry(l.code.filter(|&c| keep(c))?);
                Some(format!("2026-03-12T{}Z {} {code} {level} {description} 20260312.txt:{} {}", l.time, l.source, n + 1, l.text))
            })
            .collect()
    };
    for (code, _, _) in BREWER_CODES {
        let got = listed(&["events", "--code", &code.to_string(), "--format", "json"]);
        assert!(!got.is_empty(), "code {code}");
        assert_eq!(got, expected(&|c| c == code), "code {code}");
    }
    for level in LEVELS {
        assert_eq!(listed(&["events", "--level", level, "--format", "json"]), expected(&|c| entry(c).1 == level), "level {level}");
    }
    // Every event of the day, and nothing else (neither ordinary lines nor code 48).
    assert_eq!(listed(&["events", "--format", "json"]), expected(&|_| true));

    // Each instrument: a failing result per level it emitted, since its first
    // event of that level (the hold never ends within the day), and its level
    // and colour the worst of them.
    dir.set_clock("2026-03-12T12:00:00Z");
    let status: serde_json::Value = serde_json::from_str(&ok(&dir.run(&["status", "--all", "--format", "json"]))).unwrap();
    let devices = status["devices"].as_array().unwrap();
    assert_eq!(devices.iter().map(|d| d["device"].as_str().unwrap()).collect::<Vec<_>>(), INSTRUMENTS, "{status}");
    let mut worst_of_site = 0;
    for d in devices {
        let source = d["device"].as_str().unwrap();
        assert_eq!(d["source"], source);
        // level -> the time and file line of the instrument's first event at
        // that level, and the messages of all its events at that level.
        let mut first: BTreeMap<usize, (String, usize, Vec<String>)> = BTreeMap::new();
        for (n, l) in day.iter().enumerate().filter(|(_, l)| l.source == source) {
            if let Some(code) = l.code {
                let (_, level, description) = entry(code);
                let e = first.entry(rank(level)).or_insert((format!("2026-03-12T{}Z", l.time), n + 1, Vec::new()));
                e.2.push(format!("event {code}: {description}"));
            }
        }
        let mut results: BTreeMap<String, (String, String)> = BTreeMap::new();
        for r in d["results"].as_array().unwrap() {
            assert_eq!(r["sensor"], source);
            let cause = &r["cause"];
            let got = format!(
                "{} {} {}:{} {}",
                r["level"].as_str().unwrap(),
                r["since"].as_str().unwrap(),
                cause["file"].as_str().unwrap(),
                cause["line"],
                cause["time"].as_str().unwrap()
            );
            results.insert(r["check"].as_str().unwrap().to_string(), (got, r["message"].as_str().unwrap().to_string()));
        }
        let expected_results: BTreeMap<String, String> = first
            .iter()
            .map(|(&rank, (time, line, _))| {
                (format!("brewer {}", LEVELS[rank]), format!("{} {time} 20260312.txt:{line} {time}", LEVELS[rank]))
            })
            .collect();
        assert_eq!(results.iter().map(|(k, (got, _))| (k.clone(), got.clone())).collect::<BTreeMap<_, _>>(), expected_results, "{source}");
        // The message is that of the first event at that level, like `since`
        // and the cause (later events extend the hold).
        for (&rank, (_, _, messages)) in &first {
            let message = &results[&format!("brewer {}", LEVELS[rank])].1;
            assert_eq!(message, &messages[0], "{source}");
        }
        let (&worst, (since, _, messages)) = first.last_key_value().unwrap();
        let level = LEVELS[worst];
        assert_eq!(
            (d["level"].as_str().unwrap(), d["colour"].as_str().unwrap(), d["since"].as_str().unwrap()),
            (level, colour(level), since.as_str()),
            "{source}"
        );
        assert_eq!(d["why"], messages[0].as_str(), "{source}");
        worst_of_site = worst_of_site.max(worst);
    }
    // The crafted day gives each level to some instrument.
    let levels: Vec<&str> = devices.iter().map(|d| d["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["warning", "error", "critical", "critical"]);
    // The site: the worst of its instruments, and a count per colour.
    assert_eq!(
        (status["level"].as_str().unwrap(), status["colour"].as_str().unwrap()),
        (LEVELS[worst_of_site], colour(LEVELS[worst_of_site]))
    );
    for level in ["ok", "warning", "error", "critical", "grey", "black"] {
        assert_eq!(status["counts"][level], levels.iter().filter(|&&l| l == level).count(), "{level}: {status}");
    }
}
