//! The indexer against the scenarios of SCENARIOS.md (19 to 28) and the real day.

use decode::Decoders;
use index::{value_json, Index, Reset};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const HOUSEMON: &str = "[rf12.nodes]\n2 = \"roomNode\"\n3 = \"radioBlip\"\n4 = \"roomNode\"\n5 = \"roomNode\"\n6 = \"roomNode\"\n9 = \"homePower\"\n10 = \"roomNode\"\n11 = \"roomNode\"\n12 = \"roomNode\"\n13 = \"roomNode\"\n23 = \"roomNode\"\n24 = \"roomNode\"\n";

struct Site {
    dir: tempfile::TempDir,
    config: config::Config,
}

impl Site {
    fn new(config: &str) -> Self {
        Self { dir: tempfile::tempdir().unwrap(), config: config::Config::parse(config, Path::new("t.toml")).unwrap() }
    }
    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn day(&self, name: &str) -> PathBuf {
        self.logs().join(&name[..4]).join(format!("{name}.txt"))
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::create_dir_all(self.day(name).parent().unwrap()).unwrap();
        std::fs::write(self.day(name), text).unwrap();
    }
    fn append(&self, name: &str, text: &str) {
        std::fs::OpenOptions::new().append(true).open(self.day(name)).unwrap().write_all(text.as_bytes()).unwrap();
    }
    fn decoders(&self) -> Decoders {
        Decoders::new(&self.config, &[]).unwrap()
    }
    /// Opens the cache. sled's background threads can hold its lock for a
    /// moment after the previous `Index` of this process is dropped (seen
    /// once in CI as `Busy`): wait until the lock is free, at most 5 s.
    fn open(&self) -> (Index, Option<Reset>) {
        Index::open_waiting(&self.cache(), &index::fingerprint(&self.config, &[]), std::time::Duration::from_secs(5), || {}).unwrap()
    }
    /// Opens, catches up, and returns the export as JSON lines.
    fn index(&self) -> Vec<String> {
        let (mut idx, _) = self.open();
        idx.catch_up(&self.logs(), &self.decoders(), &mut |_| true).unwrap();
        export(&idx)
    }
    /// The export of a cache built from scratch elsewhere.
    fn fresh_export(&self) -> Vec<String> {
        let other = tempfile::tempdir().unwrap();
        let (mut idx, _) = Index::open(&other.path().join("c"), &index::fingerprint(&self.config, &[])).unwrap();
        idx.catch_up(&self.logs(), &self.decoders(), &mut |_| true).unwrap();
        export(&idx)
    }
}

fn export(idx: &Index) -> Vec<String> {
    let mut out = Vec::new();
    idx.export(None, None, &mut |t, s, v| {
        out.push(format!("{{\"time\":\"{}\",\"sensor\":\"{s}\",\"value\":{}}}", logfile::time::rfc3339_millis(t), value_json(v)));
        Ok(())
    })
    .unwrap();
    out
}

fn real_day_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/20121130.txt.gz");
    assert!(path.exists(), "this test needs the real JeeLabs day at {} (../shared/data beside the project)", path.display());
    let mut text = String::new();
    flate2_read(&path, &mut text);
    text
}

fn flate2_read(path: &Path, out: &mut String) {
    let bytes = std::fs::read(path).unwrap();
    let mut d = flate2_decoder(&bytes);
    d.read_to_string(out).unwrap();
}

fn flate2_decoder(bytes: &[u8]) -> impl Read + '_ {
    flate2::read::GzDecoder::new(bytes)
}

#[test]
fn the_real_day_answers_the_documented_query() {
    let site = Site::new(HOUSEMON);
    site.write("20121130", &real_day_text());
    let (mut idx, reset) = site.open();
    assert_eq!(reset, None);
    let done = idx.catch_up(&site.logs(), &site.decoders(), &mut |_| true).unwrap();
    assert_eq!(done.lines, 30_429);
    let mut temps = Vec::new();
    assert!(idx
        .query("usb-A40117UK/roomNode-2/temp", None, None, &mut |t, v| {
            temps.push(format!("{}={}", logfile::time::rfc3339_millis(t), value_json(v)));
            Ok(())
        })
        .unwrap());
    assert!(temps.contains(&"2012-11-30T00:04:53.611Z=17.9".to_string()), "{:?}", &temps[..5]);
    let stats = idx.stats().unwrap();
    assert_eq!(stats.sources[0].source, "usb-A40117UK");
    let s = &stats.sources[0].counts;
    assert_eq!(s.lines, 30_429);
    assert_eq!(s.decoded + s.recognised + s.undecoded, 30_429);
    assert_eq!(s.recognised, 1_605 + 1_385 + 148, "? DF and -> ack lines are recognised");
    assert_eq!(s.undecoded, 0);
    let schema = idx.schema().unwrap();
    let temp = schema.iter().find(|r| r.sensor == "usb-A40117UK/roomNode-2/temp").unwrap();
    assert_eq!((temp.kind.as_str(), temp.unit.as_deref()), ("float", Some("°C")));
    assert!(schema.iter().any(|r| r.sensor == "usb-A40117UK/node-19/b1"), "unmapped nodes keep their bytes");
}

/// Scenarios 19 and 20: indexing in pieces, with a partial last line, gives the same cache.
#[test]
fn indexing_in_pieces_with_partial_lines_equals_indexing_at_once() {
    let text = real_day_text();
    let site = Site::new(HOUSEMON);
    let mut cut = 0usize;
    site.write("20121130", "");
    let mut exports = Vec::new();
    // Append in uneven pieces, each usually ending mid-line.
    for piece in [1000, 77_777, 5, 300_000, 1_000_000, usize::MAX] {
        let end = cut.saturating_add(piece).min(text.len());
        site.append("20121130", &text[cut..end]);
        cut = end;
        exports.push(site.index());
        if cut == text.len() {
            break;
        }
    }
    let whole = site.fresh_export();
    assert_eq!(exports.last().unwrap(), &whole);
    // A partial line is never indexed: every intermediate export is a prefix of the whole.
    for e in &exports {
        assert_eq!(&whole[..e.len()], &e[..]);
    }
}

/// Scenario 21: the cursor lies beyond the end of a file (its tail was lost).
#[test]
fn a_shortened_file_is_reindexed_and_stale_data_removed() {
    let site = Site::new(HOUSEMON);
    site.write("20121130", "L 00:00:01.000 s OK 2 1 115 179 0\nL 00:00:02.000 s OK 2 1 115 180 0\n");
    assert_eq!(site.index().len(), 10);
    site.write("20121130", "L 00:00:01.000 s OK 2 1 115 179 0\n");
    let after = site.index();
    assert_eq!(after.len(), 5);
    assert_eq!(after, site.fresh_export());
}

/// Scenario 22: bytes before the cursor changed.
#[test]
fn a_file_changed_under_a_valid_offset_is_detected_by_its_hash() {
    let site = Site::new(HOUSEMON);
    site.write("20121130", "L 00:00:01.000 s OK 2 1 115 179 0\n");
    site.index();
    // Same length, other content, then more lines: the cursor's offset is still inside the file.
    site.write("20121130", "L 00:00:01.000 s OK 2 1 115 181 0\nL 00:00:03.000 s OK 2 1 115 182 0\n");
    let after = site.index();
    assert!(after[3].contains("\"value\":18.1"), "{after:?}");
    assert_eq!(after, site.fresh_export());
}

/// Scenario 23: two days with identical content are two days.
#[test]
fn identical_days_are_told_apart_by_their_date() {
    let site = Site::new(HOUSEMON);
    let line = "L 00:00:01.000 s OK 2 1 115 179 0\n";
    site.write("20121130", line);
    site.write("20121201", line);
    let e = site.index();
    assert_eq!(e.len(), 10);
    assert!(e[0].contains("2012-11-30T00:00:01.000Z") && e[5].contains("2012-12-01T00:00:01.000Z"));
}

/// Scenario 24: a damaged cache is moved aside and rebuilt.
#[test]
fn a_damaged_cache_is_moved_aside_and_rebuilt() {
    let site = Site::new(HOUSEMON);
    site.write("20121130", "L 00:00:01.000 s OK 2 1 115 179 0\n");
    let before = site.index();
    // Overwrite every file of the cache with garbage.
    for entry in walk(&site.cache()) {
        std::fs::write(&entry, vec![0xA5u8; 4096]).unwrap();
    }
    let (mut idx, reset) = site.open();
    assert!(matches!(reset, Some(Reset::MovedAside(ref p)) if p.exists()), "{reset:?}");
    idx.catch_up(&site.logs(), &site.decoders(), &mut |_| true).unwrap();
    assert_eq!(export(&idx), before);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Scenario 25: another decoder configuration rebuilds the cache.
#[test]
fn a_changed_configuration_rebuilds_the_cache() {
    let mut site = Site::new(HOUSEMON);
    site.write("20121130", "L 00:00:01.000 s OK 2 1 115 179 0\n");
    assert!(site.index()[0].contains("roomNode-2"));
    site.config = config::Config::parse("[rf12.nodes]\n2 = { driver = \"roomNode\", name = \"kitchen\" }\n", Path::new("t.toml")).unwrap();
    let (mut idx, reset) = site.open();
    assert_eq!(reset, Some(Reset::Config));
    idx.catch_up(&site.logs(), &site.decoders(), &mut |_| true).unwrap();
    let e = export(&idx);
    assert!(e.iter().all(|l| l.contains("/kitchen/")), "{e:?}");
    assert_eq!(e, site.fresh_export());
}

/// Scenarios 26 and 27: days in order after a long gap; deleted and compressed days.
#[test]
fn days_in_order_and_retention_deleting_or_compressing_days() {
    let site = Site::new(HOUSEMON);
    for (i, day) in ["20121128", "20121129", "20121130"].iter().enumerate() {
        site.write(day, &format!("L 00:00:01.000 s OK 2 1 115 {} 0\n", 170 + i));
    }
    let all = site.index();
    assert_eq!(all.len(), 15);
    assert!(all[3].contains("\"value\":17") && all[13].contains("\"value\":17.2"));
    // Retention compresses the middle day: nothing changes.
    let plain = site.day("20121129");
    let gz = plain.with_extension("txt.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&plain).unwrap();
    assert_eq!(site.index(), all);
    // Retention deletes the oldest day: its readings go, as they would from a rebuild.
    std::fs::remove_file(site.day("20121128")).unwrap();
    let after = site.index();
    assert_eq!(after, all[5..]);
    assert_eq!(after, site.fresh_export());
}

#[test]
fn overlong_and_cut_pieces_are_kept_but_not_decoded() {
    let site = Site::new(HOUSEMON);
    site.write(
        "20121130",
        "# 00:00:01.000 cut source=s reason=overlong bytes=8\nL 00:00:01.000 s OK 2 1 1\n# 00:00:01.000 cut source=s reason=overlong bytes=8\nL 00:00:01.000 s 15 179 0\nL 00:00:01.000 s  0\n# 00:00:02.000 cut source=s reason=disconnect bytes=8\nL 00:00:02.000 s OK 2 1 1\nL 00:00:03.000 s OK 2 1 115 179 0\n",
    );
    let (mut idx, _) = site.open();
    idx.catch_up(&site.logs(), &site.decoders(), &mut |_| true).unwrap();
    let s = &idx.stats().unwrap().sources[0].counts;
    assert_eq!((s.lines, s.partial, s.decoded), (5, 4, 1));
    assert_eq!(export(&idx).len(), 5);
}

#[test]
fn events_are_stored_with_file_line_and_text() {
    let site = Site::new("[[event]]\nmatch = \"Fault 17\"\ncode = \"F17\"\nlevel = \"critical\"\ndescription = \"battery\"\n");
    site.write(
        "20121130",
        "L 00:00:01.000 ups No faults\nL 00:00:02.000 ups Fault 17: battery\n# 00:00:03.000 stop\nL 00:00:04.000 ups Fault 17: battery\n",
    );
    let (mut idx, _) = site.open();
    idx.catch_up(&site.logs(), &site.decoders(), &mut |_| true).unwrap();
    let ev = idx.events(None, None).unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!((ev[0].file.as_str(), ev[0].line, ev[0].code.as_str(), ev[0].level.as_str()), ("20121130.txt", 2, "F17", "critical"));
    assert_eq!(ev[1].text, "Fault 17: battery");
    assert_eq!(idx.stats().unwrap().events, [("F17".to_string(), 2)]);
}
