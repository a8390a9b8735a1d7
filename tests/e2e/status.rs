//! `status` and `health` on the real JeeLabs day: the colours the binary
//! gives are checked against an independent computation from the exported
//! readings, and the drill-down shows the log lines behind a result.

use crate::harness::{real_site, stdout, HOUSEMON};
use std::collections::BTreeMap;

const CHECKS: &str = r#"
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
    let mut last_temp: BTreeMap<String, f64> = BTreeMap::new();
    for line in ok(&dir.run(&["export", "--format", "jsonl"])).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let sensor = v["sensor"].as_str().unwrap();
        let (device, field) = sensor.rsplit_once('/').unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap().timestamp_millis();
        let e = last_seen.entry(device.to_string()).or_insert(t);
        *e = (*e).max(t);
        if field == "temp" && device.contains("/roomNode-") {
            last_temp.insert(device.to_string(), v["value"].as_f64().unwrap());
        }
    }
    assert!(
        last_temp.values().any(|&t| t > 17.2) && last_temp.values().any(|&t| t <= 17.2),
        "the day has warm and cool rooms: {last_temp:?}"
    );
    // Judged one and three hours after midnight: some devices grey, none black yet.
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
                } else if last_temp.get(device).is_some_and(|&t| t > 17.2) {
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
    let (warm, temp) = last_temp.iter().find(|(_, &t)| t > 17.2).unwrap();
    let text = ok(&dir.run(&["status", warm]));
    assert!(text.contains("room too warm") && text.contains(&format!("{warm}/temp is")), "{text}");
    let cause = text.lines().find(|l| l.trim_start().starts_with("20121130.txt:")).expect("the line behind the result");
    let node = warm.rsplit('-').next().unwrap();
    assert!(
        cause.contains(&format!(" OK {node} ")) || cause.contains(&format!(" OK {} ", node.parse::<u32>().unwrap() | 32)),
        "{cause} (last temp {temp})"
    );
    // Then the device's last five lines, from its newest day.
    let tail: Vec<&str> = text.lines().skip_while(|l| !l.contains("last lines from the device:")).skip(1).collect();
    assert_eq!(tail.len(), 5, "{text}");
    assert!(tail.iter().all(|l| l.trim_start().starts_with("20121130.txt:") && l.contains(" usb-A40117UK OK ")), "{text}");
    // Without --all, only the devices that are not green, and a summary.
    let table = ok(&dir.run(&["status"]));
    assert!(table.lines().next().unwrap().contains("warning"), "{table}");
    assert!(!table.lines().skip(2).any(|l| l.contains(" ok ")), "{table}");
    // The history: the warm room's transitions, oldest first.
    let history = ok(&dir.run(&["health", "--device", warm]));
    let times: Vec<&str> = history.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert!(!times.is_empty() && times.windows(2).all(|w| w[0] <= w[1]), "{history}");
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
