//! `blackbox demo` and `blackbox ports` end to end.

use crate::harness::*;
use rustix::process::Signal;

#[test]
fn the_demo_captures_through_a_pty_stops_on_ctrl_c_and_continues_the_same_logs() {
    let dir = Dir::new();
    let mut total = 0;
    for run in 1..=2 {
        let demo = dir.spawn(&["demo", "--rate", "200"]);
        let want = total + 20;
        dir.wait_for("20 more readings", |l| l.iter().filter(|l| l.starts_with("L ")).count() >= want);
        demo.signal(Signal::INT);
        let out = demo.wait();
        assert!(out.status.success(), "run {run}: {}", stderr(&out));
        let shown = stdout(&out);
        assert!(shown.contains(" usb-DEMO [RF12demo.12] _ i31* g5 @ 868 MHz"), "run {run}: {shown}");
        assert!(shown.contains(" usb-DEMO OK "), "run {run}");
        let lines = dir.log_lines();
        // Everything shown was written, in the same order.
        let shown_lines: Vec<&str> = shown.lines().collect();
        assert_eq!(&lines[lines.len() - shown_lines.len()..], &shown_lines[..], "run {run}: the live view differs from the log");
        assert!(lines.last().unwrap().contains(" stop reason=SIGINT"), "run {run}");
        assert!(stderr(&out).contains("Try next:"), "run {run}: {}", stderr(&out));
        total = lines.iter().filter(|l| l.starts_with("L ")).count();
    }
    assert_eq!(dir.log_lines().iter().filter(|l| l.contains(" start version=")).count(), 2);
    let v = dir.verify();
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn ports_lists_without_failing() {
    let dir = Dir::new();
    let out = dir.run(&["ports"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).is_empty());
}

#[test]
fn help_shows_every_command_with_an_example() {
    let dir = Dir::new();
    let out = dir.run(&["--help"]);
    assert!(out.status.success());
    for cmd in ["capture", "verify", "ports", "demo"] {
        assert!(stdout(&out).contains(cmd), "{cmd} missing from --help");
        let sub = dir.run(&[cmd, "--help"]);
        assert!(sub.status.success());
        assert!(stdout(&sub).contains("Example"), "{cmd} --help has no example");
    }
}
