//! `blackbox verify` end to end.

use crate::harness::*;

fn three_days(dir: &Dir) -> Vec<std::path::PathBuf> {
    let logs = dir.logs();
    std::fs::create_dir_all(logs.join("2026")).unwrap();
    let a = "L 23:00:00.000 s a\n";
    let b = format!("# 00:00:01.000 previous 20261120.txt {}\nL 00:00:01.000 s b\n", a.len());
    let c = format!("# 00:00:02.000 previous 20261121.txt {}\nL 00:00:02.000 s c\n", b.len());
    let paths: Vec<_> = ["20261120.txt", "20261121.txt", "20261122.txt"].iter().map(|n| logs.join("2026").join(n)).collect();
    for (p, t) in paths.iter().zip([a.to_string(), b, c]) {
        std::fs::write(p, t).unwrap();
    }
    paths
}

#[test]
fn a_good_chain_passes() {
    let dir = Dir::new();
    three_days(&dir);
    let out = dir.verify();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("3 files, 5 lines, 3 readings: ok\n"), "{}", stdout(&out));
}

#[test]
fn a_truncated_file_a_missing_file_and_bad_lines_are_reported_with_file_and_line() {
    let dir = Dir::new();
    let paths = three_days(&dir);
    // Truncate the first day, remove the middle one... no: change the middle one.
    std::fs::write(&paths[0], "L 23:00:00.000 s\n").unwrap();
    let mut c = std::fs::read_to_string(&paths[2]).unwrap();
    c.push_str("L 00:00:01.500 s back in time\nnonsense\n");
    std::fs::write(&paths[2], c).unwrap();
    let out = dir.verify();
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(
        report.contains("20261121.txt:1: error: 20261120.txt is 17 bytes but was 19 when this day began: it was truncated"),
        "{report}"
    );
    assert!(report.contains("20261122.txt:3: error: time goes back from 00:00:02.000 to 00:00:01.500"), "{report}");
    assert!(report.contains("20261122.txt:4: error: line is neither a reading"), "{report}");
    std::fs::remove_file(&paths[1]).unwrap();
    let report = stdout(&dir.verify());
    assert!(report.contains("20261122.txt:1: error: the previous file 20261121.txt"), "{report}");
    assert!(report.contains("is missing"), "{report}");
}

#[test]
fn an_old_archive_without_headers_is_reported_as_such_not_as_corruption() {
    let dir = Dir::new();
    let logs = dir.logs();
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::copy(real_day(), logs.join("20121130.txt.gz")).unwrap();
    std::fs::write(logs.join("20121201.txt"), "L 00:00:00.062 usb-A40117UK OK 19 96 12 11 30 1 0 0\n").unwrap();
    let out = dir.verify();
    assert!(out.status.success(), "{}", stdout(&out));
    let report = stdout(&out);
    assert!(report.contains("note: no file has a `previous` header: an archive written before blackbox"), "{report}");
    assert!(report.contains("2 files, 30430 lines, 30430 readings: ok"), "{report}");
}

/// Scenario 4: a power cut right after a new day's file was created leaves it empty.
#[test]
fn an_empty_day_is_tolerated() {
    let dir = Dir::new();
    let paths = three_days(&dir);
    std::fs::write(dir.logs().join("2026/20261123.txt"), "").unwrap();
    let out = dir.verify();
    assert!(out.status.success(), "{}", stdout(&out));
    let _ = paths;
}

#[test]
fn a_missing_log_directory_is_a_setup_error() {
    let dir = Dir::new();
    let out = dir.run(&["verify", "--logs", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere is not a directory"), "{}", stderr(&out));
}
