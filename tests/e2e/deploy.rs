//! The systemd units shipped in docs/deploy are valid units for this binary.

use crate::harness::*;

#[test]
fn the_shipped_systemd_units_verify_without_warnings() {
    let Ok(version) = std::process::Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed, so the units in docs/deploy cannot be checked here");
        return;
    };
    assert!(version.status.success());
    let dir = Dir::new();
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy");
    let mut units = Vec::new();
    for name in ["blackbox-capture.service", "blackbox-index.service"] {
        let text = std::fs::read_to_string(deploy.join(name)).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/blackbox "), "{name}");
        // Point the unit at the binary under test, which must accept its arguments.
        let unit = dir.path().join(name);
        std::fs::write(&unit, text.replace("/usr/local/bin/blackbox", BIN)).unwrap();
        let exec = text.lines().find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/blackbox ")).unwrap();
        let mut args: Vec<&str> = exec.split(' ').collect();
        args.push("--help");
        let help = dir.run(&args);
        assert!(help.status.success(), "{name}: blackbox rejects `{exec}`: {}", stderr(&help));
        units.push(unit);
    }
    let out = std::process::Command::new("systemd-analyze").arg("verify").args(&units).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(), "{}{}", stdout(&out), stderr(&out));
}
