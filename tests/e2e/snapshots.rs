//! What people read: `--help`, `tail --decoded`, `stats` and `schema`,
//! pinned with insta snapshots (tests/e2e/snapshots/). A change shows up as a
//! diff to review with `cargo insta review` (or by reading the .snap.new file).

use crate::harness::*;

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "status {:?}\nstderr: {}", out.status, stderr(out));
    stdout(out)
}

#[test]
fn help_of_every_command() {
    let dir = Dir::new();
    insta::assert_snapshot!("help", ok(&dir.run(&["--help"])));
    let commands = [
        "capture", "index", "rebuild", "query", "export", "schema", "stats", "tail", "verify", "ports", "demo", "ack", "silence", "serve",
        "passwd", "forward", "mirror",
    ];
    for command in commands.iter().map(|c| vec![*c]).chain([vec!["notify", "test"], vec!["notify", "log"]]) {
        let mut args = command.clone();
        args.push("--help");
        let help = ok(&dir.run(&args));
        let name = command.join(" ");
        assert!(help.contains("Example"), "`{name} --help` has no example:\n{help}");
        insta::assert_snapshot!(format!("help-{}", command.join("-")), help);
    }
}

#[test]
fn stats_and_schema_of_the_real_day() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    insta::assert_snapshot!("stats-real-day", ok(&dir.run(&["stats"])));
    insta::assert_snapshot!("schema-real-day", ok(&dir.run(&["schema"])));
}

#[test]
fn tail_decoded_of_the_real_day() {
    let dir = real_site();
    let out = ok(&dir.run(&["tail", "--decoded", "--since", "2012-11-30 00:04:50"]));
    let first: Vec<&str> = out.lines().take(40).collect();
    insta::assert_snapshot!("tail-decoded-real-day", first.join("\n"));
}

#[test]
fn tail_decoded_shows_metadata_cuts_events_and_raw_lines() {
    let dir = Dir::new();
    std::fs::write(
        dir.path().join("blackbox.toml"),
        "[rf12.nodes]\n2 = \"roomNode\"\n\n[[event]]\nmatch = \"ONBATT\"\ncode = \"UPS-ONBATT\"\nlevel = \"warning\"\ndescription = \"UPS on battery\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.logs().join("2026")).unwrap();
    std::fs::write(
        dir.logs().join("2026/20261121.txt"),
        "# 00:00:00.000 start version=0.1.0 pid=42\n\
         # 00:00:00.001 connect source=usb-A port=/dev/ttyUSB0 baud=57600 framing=8N1\n\
         L 00:00:01.000 usb-A [RF12demo.12] _ i31* g5 @ 868 MHz\n\
         L 00:00:02.500 usb-A OK 2 156 149 213 0 (-66)\n\
         L 00:00:03.000 usb-A OK 34 5 1\n\
         L 00:00:04.000 usb-A ? 1 2 3\n\
         L 00:00:05.000 ups {\"model\":\"APC\",\"id\":7,\"status\":\"ONBATT\",\"charge\":97.5}\n\
         L 00:00:06.000 ups volts=229.8V load=12%\n\
         L 00:00:07.000 ups \\xff\\xfe garbage\n\
         # 00:00:08.000 cut source=ups reason=overlong bytes=4096\n\
         L 00:00:08.000 ups volts=1\n\
         L 00:00:08.000 ups 2 more\n\
         # 00:00:09.000 clock-step delta_ms=-3000\n\
         # 00:00:10.000 disconnect source=usb-A error=\"No such device\"\n\
         # 00:00:11.000 stop reason=SIGTERM\n",
    )
    .unwrap();
    insta::assert_snapshot!("tail-decoded-kinds", ok(&dir.run(&["tail", "--decoded", "-n", "100"])));
    // The same through --color always: every style ends with a reset.
    let coloured = ok(&dir.run(&["tail", "--decoded", "-n", "100", "--color", "always"]));
    assert!(coloured.contains("\x1b[") && coloured.lines().all(|l| l.matches("\x1b[0m").count() == l.matches("\x1b[").count() / 2));
    // NO_COLOR (set by the harness) is overridden only by an explicit --color always.
    assert!(!ok(&dir.run(&["tail", "-n", "100", "--color", "auto"])).contains('\x1b'));
}

/// What people read when a command cannot do what they asked (issue 12):
/// said once, with what to do.
#[test]
fn error_messages() {
    let dir = Dir::new();
    let out = dir.run(&["stats", "--config", "nope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("error-missing-config", stderr(&out));
    std::fs::create_dir(dir.logs()).unwrap();
    let out = dir.run(&["tail", "-n", "-5"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("error-tail-negative-count", stderr(&out));
    let site = real_site();
    ok(&site.run(&["index"]));
    let out = site.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2012-11-30 00:10", "--to", "2012-11-30 00:05"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("error-query-reversed-range", stderr(&out));
    let out = site.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2012-11-30 00:10", "--to", "2012-11-30 00:10"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("error-query-empty-range", stderr(&out));
    let out = site.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2012-12-01", "--to", "2012-12-02"]);
    assert_eq!(ok(&out), "");
    insta::assert_snapshot!("note-query-no-readings", stderr(&out));
    let out = site.run(&["export", "--from", "2012-12-01", "--format", "csv"]);
    assert_eq!(ok(&out), "time,sensor,value\n");
    insta::assert_snapshot!("note-export-no-readings", stderr(&out));
}
