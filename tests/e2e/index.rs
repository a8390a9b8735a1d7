//! The indexer and the read commands end to end.

use crate::harness::*;
use rustix::process::Signal;
use std::time::{Duration, Instant};

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "status {:?}\nstderr: {}", out.status, stderr(out));
    stdout(out)
}

#[test]
fn the_documented_query_on_the_real_day() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let json = ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--format", "json"]));
    assert!(
        json.lines().any(|l| l == r#"{"time":"2012-11-30T00:04:53.611Z","sensor":"usb-A40117UK/roomNode-2/temp","value":17.9}"#),
        "{}",
        &json[..300]
    );
    let table = ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2012-11-30 00:04", "--to", "2012-11-30 00:10"]));
    assert_eq!(table, "2012-11-30T00:04:53.611Z  17.9 °C\n");
    let csv = ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--format", "csv", "--to", "2012-11-30 00:10"]));
    // Relative times, as the README and the demo's hints write them (a leading hyphen is a value).
    dir.set_clock("2012-11-30T00:10:00Z");
    assert_eq!(
        ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "-6m", "--to", "-5m"])),
        "2012-11-30T00:04:53.611Z  17.9 °C\n"
    );
    assert_eq!(csv, "time,sensor,value\n2012-11-30T00:04:53.611Z,usb-A40117UK/roomNode-2/temp,17.9\n");
    // Issue 12: the same format names for query and export; json stays an alias of jsonl.
    assert_eq!(ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--format", "jsonl"])), json);
    let export = ok(&dir.run(&["export", "--to", "2012-11-30 00:05"]));
    assert_eq!(ok(&dir.run(&["export", "--to", "2012-11-30 00:05", "--format", "json"])), export);
    assert!(export.lines().any(|l| l == r#"{"time":"2012-11-30T00:04:53.611Z","sensor":"usb-A40117UK/roomNode-2/temp","value":17.9}"#));
    let table = ok(&dir.run(&["export", "--to", "2012-11-30 00:05", "--format", "table"]));
    assert_eq!(table.lines().count(), export.lines().count());
    assert!(
        table.lines().any(|l| l.starts_with("2012-11-30T00:04:53.611Z  usb-A40117UK/roomNode-2/temp ") && l.ends_with("  17.9 °C")),
        "{table}"
    );
    // A reversed range is a usage error; an empty one says so on stderr and is not an error.
    let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "-10m", "--to", "-20m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: the range is reversed: --from -10m (2012-11-30T00:0"), "{}", stderr(&out));
    let out = dir.run(&["export", "--from", "-10m", "--to", "-20m"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2012-12-01"]);
    assert_eq!(ok(&out), "");
    assert!(
        stderr(&out).starts_with("blackbox: no readings of usb-A40117UK/roomNode-2/temp from 2012-12-01T00:00:00.000Z on;"),
        "{}",
        stderr(&out)
    );
    let out = dir.run(&["-q", "export", "--from", "2012-12-01"]);
    assert_eq!((ok(&out).as_str(), stderr(&out).as_str()), ("", ""), "-q leaves the note out");
    let stats = ok(&dir.run(&["stats"]));
    assert!(stats.contains("usb-A40117UK") && stats.contains("30429") && stats.contains("27291"), "{stats}");
    let schema = ok(&dir.run(&["schema"]));
    assert!(schema.lines().any(|l| l.starts_with("usb-A40117UK/roomNode-2/temp") && l.contains("float") && l.contains("°C")), "{schema}");
    let out = dir.run(&["query", "usb-A40117UK/roomNode-99/temp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("similar: usb-A40117UK/roomNode-2/temp, usb-A40117UK/roomNode-4/temp"), "{}", stderr(&out));
    // The archive was read as it is, not written.
    assert_eq!(std::fs::read(dir.logs().join("20121130.txt.gz")).unwrap(), std::fs::read(real_day()).unwrap());
}

#[test]
fn read_commands_never_create_a_cache() {
    let dir = real_site();
    let out = dir.run(&["stats"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("there is no cache at cache: run `blackbox index`"), "{}", stderr(&out));
    assert!(!dir.path().join("cache").exists());
}

#[test]
fn rebuild_swaps_in_a_cache_equal_to_a_fresh_index() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let before = ok(&dir.run(&["export"]));
    let out = dir.run(&["rebuild"]);
    ok(&out);
    assert!(stderr(&out).contains("rebuilt cache from 1 day, 30429 lines"), "{}", stderr(&out));
    assert!(!dir.path().join("cache.rebuild").exists());
    assert_eq!(ok(&dir.run(&["export"])), before);
}

/// Scenario 19 end to end: a real capture writes from a pseudo-terminal while
/// `index --follow` runs and is killed at random moments.
#[test]
fn follow_with_random_kills_ends_equal_to_rebuild_and_to_a_fresh_index() {
    let dir = Dir::new();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{CHECKS}{COUNTERS}")).unwrap();
    let mut pty = Pty::new();
    let capture = dir.spawn(&["capture", "--port", &pty.path, "--source", "usb-SIM"]);
    dir.wait_for("capture", |l| l.iter().any(|l| l.contains(" connect ")));
    let mut sim = sim::Rf12Demo::new(19);
    let mut rng = sim::Rng::new(19);
    let mut sent = 0;
    for round in 0..6 {
        let follower = dir.spawn(&["index", "--follow"]);
        let kill_after = Duration::from_millis(50 + rng.below(400));
        let start = Instant::now();
        while start.elapsed() < kill_after {
            for _ in 0..20 {
                pty.send(format!("{}\r\n", sim.next_line()).as_bytes());
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if round % 2 == 0 {
            follower.kill();
        } else {
            follower.signal(Signal::TERM);
            // A clean stop, or, if the signal beat the handler at process start, the signal's default action:
            // never a crash. (Stopping during the first catch-up is tested on its own, strictly.)
            let status = follower.wait().status;
            use std::os::unix::process::ExitStatusExt;
            assert!(status.success() || status.signal() == Some(15), "follower ended with {status:?}");
        }
    }
    dir.wait_for("every line captured", |l| l.iter().filter(|l| l.starts_with("L ")).count() == sent);
    capture.terminate();
    // The followers indexed live: their cache already holds readings before any catch-up.
    let live = ok(&dir.run(&["export"])).lines().count();
    assert!(live > 0, "the followers indexed nothing");
    ok(&dir.run(&["index"]));
    let followed = ok(&dir.run(&["export"]));
    assert!(followed.lines().count() >= live);
    assert!(followed.lines().count() > sent, "{} readings from {sent} lines", followed.lines().count());
    // Health too: the same transitions, decided at the same lines, however the followers were stopped.
    let health = ok(&dir.run(&["health", "--format", "json"]));
    assert!(health.contains("\"to\":\"warning\""), "the checks judged nothing: {health}");
    // And the rollups (the hour that holds now is partial: not compared, it may end between two reads).
    let rollups = || ok(&dir.run(&["export", "--every", "1h"])).replace("\"partial\":true", "\"partial\":false");
    let rolled = rollups();
    assert!(rolled.contains("\"kind\":\"counter\"") && rolled.contains("\"kind\":\"gauge\""), "{rolled}");
    ok(&dir.run(&["rebuild"]));
    assert_eq!(ok(&dir.run(&["export"])), followed, "the followed cache differs from a rebuild");
    assert_eq!(ok(&dir.run(&["health", "--format", "json"])), health, "the followed health differs from a rebuild");
    assert_eq!(rollups(), rolled, "the followed rollups differ from a rebuild");
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    ok(&dir.run(&["index"]));
    assert_eq!(ok(&dir.run(&["export"])), followed, "the followed cache differs from a fresh index");
    assert_eq!(ok(&dir.run(&["health", "--format", "json"])), health, "the followed health differs from a fresh index");
    assert_eq!(rollups(), rolled, "the followed rollups differ from a fresh index");
}

/// The homePower node's counters, as cumulative meters.
const COUNTERS: &str = r#"
[[counter]]
sensors = ["*/homePower-*/c?"]
wrap = 65536
scale = 0.5
unit = "Wh"
"#;

/// Checks that judge the simulated and the real nodes: a room too warm, a
/// temperature that jumps, a sensor that falls silent for a moment.
const CHECKS: &str = r#"
[[check]]
name = "warm"
sensors = ["*/roomNode-*/temp"]
kind = "range"
max = 17.5
clear_for = "0s"

[[check]]
name = "jump"
sensors = ["*/*/temp"]
kind = "rate"
max_change = 0.3
per = "1s"

[[check]]
name = "quiet"
sensors = ["*/*/temp"]
kind = "stale"
after = "100ms"
"#;

/// Killing a bulk index at a random moment, then indexing again, gives the same cache.
#[test]
fn a_killed_catch_up_resumes_to_the_same_cache() {
    let dir = real_site();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{CHECKS}{COUNTERS}")).unwrap();
    // Several days so that the kill lands between batches and between days.
    for d in ["20121201", "20121202"] {
        std::fs::copy(real_day(), dir.logs().join(format!("{d}.txt.gz"))).unwrap();
    }
    // Kills at random moments (fault injection, not synchronisation): the
    // first index of three days takes over a second in a debug build, so
    // most land in the middle of a day, between two of its commits (a cursor
    // committed halfway once made the next run skip the rest of the day).
    let mut rng = sim::Rng::new(7);
    for _ in 0..6 {
        let p = dir.spawn(&["index"]);
        std::thread::sleep(Duration::from_millis(30 + rng.below(400)));
        p.kill();
    }
    ok(&dir.run(&["index"]));
    let resumed = ok(&dir.run(&["export"]));
    let health = ok(&dir.run(&["health", "--format", "json"]));
    assert!(health.lines().count() > 10, "the checks judged nothing: {health}");
    let rollups = ok(&dir.run(&["export", "--every", "1h"]));
    // Three days of hours of every sensor (the first two stored, the last made from its readings).
    assert!(rollups.lines().filter(|l| l.contains("homePower-9/c1")).count() == 72, "{rollups}");
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    ok(&dir.run(&["index"]));
    assert_eq!(ok(&dir.run(&["export"])), resumed);
    assert_eq!(ok(&dir.run(&["health", "--format", "json"])), health, "health after kills differs from a fresh index");
    assert_eq!(ok(&dir.run(&["export", "--every", "1h"])), rollups, "rollups after kills differ from a fresh index");
    assert_eq!(resumed.lines().count(), 3 * 156_135);
}

/// Scenario 28: the cache cannot be written. As root (CI), a tmpfs holding
/// the cache is remounted read-only, so writes fail in the middle of
/// indexing; otherwise (root ignores permissions) the cache's files are made
/// read-only, so opening it for writing fails.
#[test]
fn a_cache_that_cannot_be_written_reports_the_error_and_keeps_its_cursor() {
    use std::os::unix::fs::PermissionsExt;
    let dir = real_site();
    let root = rustix::process::geteuid().is_root();
    let fs = dir.path().join("cachefs");
    std::fs::create_dir(&fs).unwrap();
    let mount = |args: &[&str]| assert!(std::process::Command::new("mount").args(args).status().unwrap().success(), "mount {args:?}");
    struct Unmount(Option<std::path::PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if let Some(fs) = &self.0 {
                let _ = std::process::Command::new("umount").arg(fs).status();
            }
        }
    }
    let _guard = if root {
        mount(&["-t", "tmpfs", "-o", "size=64m", "tmpfs", fs.to_str().unwrap()]);
        Unmount(Some(fs.clone()))
    } else {
        Unmount(None)
    };
    let cache_dir = fs.join("cache");
    let cache = cache_dir.to_str().unwrap();
    ok(&dir.run(&["index", "--cache", cache]));
    let before = ok(&dir.run(&["export", "--cache", cache]));
    std::fs::write(dir.logs().join("20121201.txt"), "L 00:00:01.000 usb-A40117UK OK 2 1 115 179 0\n").unwrap();
    let set_mode = |file_mode: u32, dir_mode: u32| {
        for e in std::fs::read_dir(&cache_dir).unwrap() {
            let e = e.unwrap();
            let mode = if e.file_type().unwrap().is_dir() { dir_mode } else { file_mode };
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    };
    if root {
        mount(&["-o", "remount,ro", fs.to_str().unwrap()]);
    } else {
        set_mode(0o444, 0o555);
    }
    let out = dir.run(&["index", "--cache", cache]);
    assert!(!out.status.success(), "indexing into a read-only cache succeeded");
    assert!(stderr(&out).contains(cache), "the error does not name the cache: {}", stderr(&out));
    if root {
        mount(&["-o", "remount,rw", fs.to_str().unwrap()]);
    } else {
        set_mode(0o644, 0o755);
    }
    assert_eq!(ok(&dir.run(&["export", "--cache", cache])), before, "the cache changed although it could not be written");
    ok(&dir.run(&["index", "--cache", cache]));
    let after = ok(&dir.run(&["export", "--cache", cache]));
    assert_eq!(after.lines().count(), before.lines().count() + 5);
}

/// Queries keep answering from the current cache while a rebuild runs.
#[test]
fn queries_answer_from_the_old_cache_during_a_rebuild() {
    let dir = real_site();
    for d in ["20121201", "20121202", "20121203"] {
        std::fs::copy(real_day(), dir.logs().join(format!("{d}.txt.gz"))).unwrap();
    }
    ok(&dir.run(&["index"]));
    let expected = ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--to", "2012-11-30 01:00"]));
    let rebuild = dir.spawn(&["rebuild"]);
    let building = dir.path().join("cache.rebuild");
    let start = Instant::now();
    while !building.exists() {
        assert!(start.elapsed() < DEADLINE, "the rebuild never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut answered = 0;
    while building.exists() {
        let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--to", "2012-11-30 01:00"]);
        if building.exists() {
            assert_eq!(ok(&out), expected);
            answered += 1;
        }
    }
    assert!(rebuild.wait().status.success());
    assert!(answered > 0, "the rebuild finished before a query could run during it");
    assert_eq!(ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--to", "2012-11-30 01:00"])), expected);
}

/// While `index --follow` holds the cache, the read commands are answered by it.
#[test]
fn queries_are_answered_by_the_follower_and_see_new_lines() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let expected = ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--to", "2012-11-30 01:00", "--format", "json"]));
    let follower = dir.spawn(&["index", "--follow"]);
    let socket = dir.path().join("cache/query.sock");
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < DEADLINE, "the follower never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--to", "2012-11-30 01:00", "--format", "json"])), expected);
    assert!(ok(&dir.run(&["stats"])).contains("30429"));
    // The follower's notes reach the client's stderr.
    let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2013-01-01"]);
    assert_eq!(ok(&out), "");
    assert!(stderr(&out).starts_with("blackbox: no readings of usb-A40117UK/roomNode-2/temp from 2013-01-01"), "{}", stderr(&out));
    let out = dir.run(&["query", "usb-A40117UK/roomNode-99/temp"]);
    assert_eq!(out.status.code(), Some(2), "the follower's exit status is relayed");
    assert!(stderr(&out).contains("no sensor"), "{}", stderr(&out));
    // Issue 12: what to do instead, in words that fit the command.
    let out = dir.run(&["rebuild"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("rebuild-while-following", stderr(&out));
    let out = dir.run(&["index"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot index into cache: a running `blackbox index --follow`"), "{}", stderr(&out));
    // A new day arrives while following: the next query sees it.
    std::fs::write(dir.logs().join("20121201.txt"), "L 00:00:01.000 usb-A40117UK OK 2 1 115 200 0\n").unwrap();
    let start = Instant::now();
    loop {
        let got = ok(&dir.run(&["query", "usb-A40117UK/roomNode-2/temp", "--from", "2012-12-01"]));
        if got == "2012-12-01T00:00:01.000Z  20 °C\n" {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the follower did not index the new day: {got:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = follower.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!socket.exists(), "the socket outlived the follower");
}

/// Scenario 25 through the binary: a new configuration rebuilds beside the cache.
#[test]
fn a_changed_configuration_is_rebuilt_beside_the_cache_and_swapped_in() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    assert!(ok(&dir.run(&["schema"])).contains("usb-A40117UK/roomNode-2/temp"));
    std::fs::write(
        dir.path().join("blackbox.toml"),
        HOUSEMON.replace("2 = \"roomNode\"", "2 = { driver = \"roomNode\", name = \"kitchen\" }"),
    )
    .unwrap();
    let stale = dir.run(&["schema"]);
    assert!(stderr(&stale).contains("was built with another configuration of its decoders or checks"), "{}", stderr(&stale));
    let out = dir.run(&["index"]);
    ok(&out);
    assert!(
        stderr(&out).contains("the configuration of decoders or checks changed since cache was built; building a new one beside it"),
        "{}",
        stderr(&out)
    );
    // Issue 12: the summary counts the rebuild's work, not only what came after it.
    assert!(stderr(&out).contains("blackbox: indexed 30429 lines ("), "{}", stderr(&out));
    assert!(stderr(&out).contains(" of 1 day into the new cache in "), "{}", stderr(&out));
    let schema = ok(&dir.run(&["schema"]));
    assert!(schema.contains("usb-A40117UK/kitchen/temp") && !schema.contains("roomNode-2/"), "{schema}");
    let rebuilt = ok(&dir.run(&["export"]));
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    ok(&dir.run(&["index"]));
    assert_eq!(ok(&dir.run(&["export"])), rebuilt);
}

/// A cache in another format (written by another blackbox version) is never
/// read: read commands say how to rebuild it, and `index` rebuilds it.
#[test]
fn a_cache_of_another_format_is_refused_by_queries_and_rebuilt_by_index() {
    let dir = real_site();
    ok(&dir.run(&["index"]));
    let before = ok(&dir.run(&["export"]));
    {
        // Formats before the first stored a version read as format 0.
        let db = sled::open(dir.path().join("cache")).unwrap();
        assert!(db.remove(b"Mversion").unwrap().is_some(), "the cache has no version key");
        db.flush().unwrap();
    }
    let out = dir.run(&["query", "usb-A40117UK/roomNode-2/temp"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "answers came from a cache of another format");
    let expected = format!("is in cache format 0, and this blackbox reads format {}: run `blackbox index`", index::FORMAT_VERSION);
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    let out = dir.run(&["index"]);
    ok(&out);
    assert!(stderr(&out).contains("the cache format changed"), "{}", stderr(&out));
    assert_eq!(ok(&dir.run(&["export"])), before);
}

/// SIGTERM at once, during the first catch-up, still stops the follower cleanly.
#[test]
fn a_follower_stopped_during_its_first_catch_up_exits_cleanly() {
    let dir = real_site();
    for d in ["20121201", "20121202"] {
        std::fs::copy(real_day(), dir.logs().join(format!("{d}.txt.gz"))).unwrap();
    }
    let follower = dir.spawn(&["index", "--follow"]);
    // Wait until it is indexing (the cache exists), then stop it.
    let start = Instant::now();
    while !dir.path().join("cache").exists() {
        assert!(start.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(1));
    }
    follower.signal(Signal::TERM);
    let out = follower.wait();
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert!(stderr(&out).contains("stopped following"), "{}", stderr(&out));
    // It stopped within the catch-up (three days take seconds here), not after it.
    assert!(stderr(&out).contains("stopped before the end on a signal"), "{}", stderr(&out));
    // What it indexed is consistent: a later run completes it to the same cache as a fresh one.
    ok(&dir.run(&["index"]));
    let resumed = ok(&dir.run(&["export"]));
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    ok(&dir.run(&["index"]));
    assert_eq!(ok(&dir.run(&["export"])), resumed);
}

#[test]
fn quiet_leaves_only_errors_on_stderr_and_diagnostics_are_plain_in_a_pipe() {
    let dir = real_site();
    let loud = dir.run(&["index"]);
    assert!(loud.status.success() && stderr(&loud).contains("indexed 30429 new lines"), "{}", stderr(&loud));
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let quiet = dir.run(&["index", "-q"]);
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "", "-q prints nothing but errors");
    let failed = dir.run(&["-q", "query", "usb-A40117UK/roomNode-2/temp", "--from", "yesterday-ish"]);
    assert_eq!(failed.status.code(), Some(2));
    assert!(stderr(&failed).contains("--from"), "errors still show with -q: {}", stderr(&failed));
    // -v diagnostics (tracing) carry no colour codes when stderr is not a terminal.
    let verbose = dir.cmd(&["-vv", "index"]).env_remove("NO_COLOR").output().unwrap();
    assert!(verbose.status.success());
    assert!(!stderr(&verbose).contains('\x1b'), "{}", stderr(&verbose));
}

/// Issue 12, part 3: the node map HouseMon used names types blackbox has no
/// driver for (otRelay, smaRelay, p1scanner, ookRelay). The real day indexes
/// with the shipped example configuration: a warning per entry naming the
/// file and line, and those nodes under their names with their raw bytes.
#[test]
fn the_real_day_indexes_with_node_types_that_have_no_driver() {
    let dir = real_site();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/jeelabs.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    assert!(text.contains("14 = \"otRelay\""), "the example maps HouseMon's node types");
    std::fs::write(dir.path().join("blackbox.toml"), &text).unwrap();
    let out = dir.run(&["index"]);
    ok(&out);
    let line_of = |entry: &str| text.lines().position(|l| l.starts_with(entry)).unwrap() + 1;
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("blackbox: warning: ")).collect();
    assert_eq!(warnings.len(), 4, "{err}");
    assert!(warnings[0].starts_with(&format!("blackbox: warning: blackbox.toml:{}: [rf12.nodes] 14: ", line_of("14 ="))), "{warnings:?}");
    insta::assert_snapshot!("index-node-types-without-a-driver", warnings.join("\n"));
    let schema = ok(&dir.run(&["schema"]));
    for sensor in
        ["usb-A40117UK/otRelay-14/b1", "usb-A40117UK/smaRelay-15/b1", "usb-A40117UK/ookRelay-19/b1", "usb-A40117UK/roomNode-2/temp"]
    {
        assert!(schema.lines().any(|l| l.starts_with(sensor)), "no {sensor} in\n{schema}");
    }
    assert!(!schema.contains("/node-14/") && !schema.contains("/node-19/"), "{schema}");
    // Every line of the day was indexed, as with the map of built-in drivers only.
    assert!(ok(&dir.run(&["stats"])).contains("30429"));
    // The read commands do not decode, so they do not repeat the warnings.
    let query = dir.run(&["query", "usb-A40117UK/otRelay-14/b1", "--to", "2012-11-30 00:01"]);
    assert!(!ok(&query).is_empty() && !stderr(&query).contains("warning"), "{}", stderr(&query));
}
