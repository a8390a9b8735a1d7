//! Decoders through one `check` helper, golden vectors from the real JeeLabs
//! day, and the whole day against an independent computation.

use decode::{Decoders, Outcome, SourceState, Value};
use std::io::Read;
use std::path::Path;

/// The node map HouseMon used for the real day (drivers blackbox has built in).
const HOUSEMON: &str = r#"
[rf12.nodes]
2 = "roomNode"
3 = "radioBlip"
4 = "roomNode"
5 = "roomNode"
6 = "roomNode"
9 = "homePower"
10 = "roomNode"
11 = "roomNode"
12 = "roomNode"
13 = "roomNode"
23 = "roomNode"
24 = "roomNode"
"#;

fn decoders(config: &str, sources: &[&str]) -> Decoders {
    let c = config::Config::parse(config, Path::new("test.toml")).unwrap();
    let names: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    Decoders::new(&c, &names).unwrap()
}

fn render(o: &Outcome) -> String {
    match o {
        Outcome::Decoded { device, fields } => {
            let f: Vec<String> = fields.iter().map(|f| format!("{}={}{}", f.name, f.value, f.unit.as_deref().unwrap_or(""))).collect();
            format!("{device} {}", f.join(" "))
        }
        Outcome::Replayed { time_ms, approximate, device, fields } => {
            let f: Vec<String> = fields.iter().map(|f| format!("{}={}{}", f.name, f.value, f.unit.as_deref().unwrap_or(""))).collect();
            format!("{device} {} @{time_ms}{}", f.join(" "), if *approximate { "~" } else { "" })
        }
        Outcome::Recognised { kind } => format!("({kind})"),
        Outcome::Undecoded => "(undecoded)".into(),
    }
}

/// Decodes `lines` in order from one source and compares the rendering of the last.
fn check(config: &str, source_toml: &str, lines: &[&str], expected: &str) {
    let text = format!("{config}\n{source_toml}");
    let c = config::Config::parse(&text, Path::new("test.toml")).unwrap();
    let names: Vec<String> = c.sources.iter().map(|s| s.name.clone().unwrap_or_else(|| "src".into())).collect();
    let d = Decoders::new(&c, &names).unwrap();
    let mut state = SourceState::default();
    let source = names.first().map(String::as_str).unwrap_or("usb-A40117UK");
    let mut last = Outcome::Undecoded;
    for l in lines {
        last = d.decode(source, 0, l, &mut state);
    }
    assert_eq!(render(&last), expected, "lines {lines:?}");
}

#[test]
fn rf12demo_golden_vectors_from_the_real_day() {
    check(HOUSEMON, "", &["OK 2 1 115 179 0"], "roomNode-2 light=1 moved=1 humi=57% temp=17.9°C lobat=0");
    // Header 34 is node 2 with the ACK bit set.
    check(HOUSEMON, "", &["OK 34 1 115 179 0"], "roomNode-2 light=1 moved=1 humi=57% temp=17.9°C lobat=0");
    check(HOUSEMON, "", &["OK 3 176 209 16 0"], "radioBlip-3 ping=1102256 age=816days");
    check(HOUSEMON, "", &["OK 19 96 12 11 30 1 0 0"], "node-19 b1=96 b2=12 b3=11 b4=30 b5=1 b6=0 b7=0");
    check(HOUSEMON, "", &["OK 2 1 115 179 0 (-66)"], "roomNode-2 light=1 moved=1 humi=57% temp=17.9°C lobat=0 rssi=-66dB");
    check(HOUSEMON, "", &["? 4 254 249 127 35 0 15 225 216"], "(bad crc)");
    check(HOUSEMON, "", &["DF S 3129 63 222769"], "(dataflash)");
    check(HOUSEMON, "", &["-> ack"], "(ack)");
    check(HOUSEMON, "", &["[RF12demo.12] _ i31* g5 @ 868 MHz"], "(banner)");
    check(HOUSEMON, "", &["this is not a packet"], "(undecoded)");
    // A packet too short for its driver keeps its bytes.
    check(HOUSEMON, "", &["OK 2 1 115"], "roomNode-2 b1=1 b2=115");
}

#[test]
fn node_map_names_sources_and_time_ranges() {
    let cfg = r#"
        [rf12]
        node_mask = 31
        [rf12.nodes]
        9 = { driver = "homePower", name = "meter" }
        5 = [ { driver = "roomNode", to = "1970-01-02" }, { driver = "lightNode", from = "1970-01-02" } ]
        6 = { driver = "roomNode", source = "usb-OTHER" }
    "#;
    let d = decoders(cfg, &[]);
    let mut st = SourceState::default();
    let day = 86_400_000;
    assert!(render(&d.decode("usb-A", 0, "OK 9 100 0 196 9 0 0 0 0 0 0 0 0", &mut st)).starts_with("meter c1=100Wh/2 p1=7200W"));
    assert!(render(&d.decode("usb-A", day - 1, "OK 5 1 115 179 0", &mut st)).starts_with("roomNode-5 "));
    assert_eq!(render(&d.decode("usb-A", day, "OK 5 200", &mut st)), "lightNode-5 light=200");
    assert_eq!(render(&d.decode("usb-A", 0, "OK 6 7", &mut st)), "node-6 b1=7");
    assert!(render(&d.decode("usb-OTHER", 0, "OK 6 1 115 179 0", &mut st)).starts_with("roomNode-6 "));
}

#[test]
fn the_banner_sets_band_and_group_for_later_lines() {
    let d = decoders(HOUSEMON, &[]);
    let mut st = SourceState::default();
    d.decode("usb-A", 0, "[RF12demo.12] _ i31* g5 @ 868 MHz", &mut st);
    assert_eq!((st.receiver.band, st.receiver.group), (Some(868), Some(5)));
    d.decode("usb-A", 0, "[RF12demo.12] _ i1 g212 @ 433 MHz", &mut st);
    assert_eq!((st.receiver.band, st.receiver.group), (Some(433), Some(212)));
}

#[test]
fn configured_drivers_and_errors() {
    let cfg = r#"
        [rf12.nodes]
        7 = "tiny"
        [[driver]]
        name = "tiny"
        fields = [ { name = "temp", bits = 12, signed = true, scale = 0.0625, unit = "°C" }, { name = "pad", bits = 4, skip = true } ]
    "#;
    // 0xFF0 = -16 → -1.0 °C
    check(cfg, "", &["OK 7 240 15"], "tiny-7 temp=-1°C");
    // Errors name the file and the line of the entry.
    let bad = config::Config::parse("[rf12.nodes]\n2 = \"roomNode\"\n\n[[event]]\ncode = \"X\"\n", Path::new("b.toml")).unwrap();
    let e = Decoders::new(&bad, &[]).unwrap_err().to_string();
    assert!(e.starts_with("b.toml:4: [[event]] 1 (\"X\"): give match"), "{e}");
    let bad = config::Config::parse("[[source]]\nstdin = true\ndecoder = \"xml\"\n", Path::new("b.toml")).unwrap();
    let e = Decoders::new(&bad, &["stdin".into()]).unwrap_err().to_string();
    assert!(e.starts_with("b.toml:1: source \"stdin\": unknown decoder \"xml\""), "{e}");
    let bad = config::Config::parse("[rf12.nodes]\n300 = \"roomNode\"\n", Path::new("b.toml")).unwrap();
    let e = Decoders::new(&bad, &[]).unwrap_err().to_string();
    assert!(e.starts_with("b.toml:2: [rf12.nodes]: \"300\" is not a node id"), "{e}");
}

/// Issue 12: a node map copied from HouseMon names node types blackbox has
/// no driver for. That is a warning, not an error: the node keeps its name
/// and its raw bytes, so adding the driver later only adds decoded fields.
#[test]
fn a_node_type_without_a_driver_keeps_its_name_and_its_raw_bytes() {
    let map = "[rf12.nodes]\n2 = \"roomNode\"\n14 = \"otRelay\"\n19 = { driver = \"ookRelay\", source = \"usb-A\" }\n";
    let c = config::Config::parse(map, Path::new("site.toml")).unwrap();
    let d = Decoders::new(&c, &[]).unwrap();
    let warnings = d.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(
        warnings[0],
        "site.toml:3: [rf12.nodes] 14: blackbox has no driver \"otRelay\", so node 14 is kept as otRelay-14 with its raw bytes as fields b1, b2, ...; built-ins are roomNode, radioBlip, homePower, slowLogger, lightNode, or declare it with [[driver]]"
    );
    assert!(
        warnings[1].starts_with("site.toml:4: [rf12.nodes] 19: blackbox has no driver \"ookRelay\", so node 19 is kept as ookRelay-19 ")
    );
    let mut st = SourceState::default();
    assert_eq!(render(&d.decode("usb-A", 0, "OK 14 1 2 3", &mut st)), "otRelay-14 b1=1 b2=2 b3=3");
    assert_eq!(render(&d.decode("usb-A", 0, "OK 19 7 (-70)", &mut st)), "ookRelay-19 b1=7 rssi=-70dB");
    assert_eq!(render(&d.decode("usb-B", 0, "OK 19 7", &mut st)), "node-19 b1=7", "the entry is for usb-A only");
    assert!(render(&d.decode("usb-A", 0, "OK 2 1 115 179 0", &mut st)).starts_with("roomNode-2 light=1 "), "other nodes are unaffected");
    // The driver declared later: the same device, now with decoded fields.
    let with_driver =
        format!("{map}[[driver]]\nname = \"otRelay\"\nfields = [ {{ name = \"flame\", bits = 8 }}, {{ name = \"water\", bits = 8 }} ]\n");
    check(&with_driver, "", &["OK 14 1 2 3"], "otRelay-14 flame=1 water=2");
    assert_eq!(decoders(&with_driver, &[]).warnings().len(), 1, "only ookRelay is still missing");
}

#[test]
fn json_rtl433_style_with_device_fields() {
    let src = "[[source]]\nname = \"rtl\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"model\", \"id\"]\n";
    check(
        "",
        src,
        &[r#"{"time":"2024-01-01 10:00:00","model":"Acurite-Tower","id":1234,"temperature_C":21.5,"humidity":40,"battery_ok":true}"#],
        "Acurite-Tower-1234 temperature_C=21.5°C humidity=40 battery_ok=true",
    );
    // Another model with other fields lives beside it.
    check(
        "",
        src,
        &[r#"{"model":"Fineoffset-WH2","id":7,"temperature_C":-3.2,"mic":"CRC"}"#],
        "Fineoffset-WH2-7 temperature_C=-3.2°C mic=CRC",
    );
    check("", src, &["not json"], "(undecoded)");
    check("", src, &[r#"{"model":"x","nested":{"a":1,"b":[2,3]}}"#], "x nested.a=1 nested.b.0=2 nested.b.1=3");
}

#[test]
fn key_values_csv_and_regex() {
    check(
        "",
        "[[source]]\nname = \"ups\"\nstdin = true\ndecoder = \"kv\"\n",
        &["temp=21.5C humi=40% state=on, msg=\"ok\""],
        "ups temp=21.5°C humi=40% state=true msg=ok",
    );
    let csv = "[[source]]\nname = \"o3\"\nstdin = true\ndecoder = \"csv\"\n";
    check("", csv, &["time_s,ozone,flow"], "(csv header)");
    check("", csv, &["time_s,ozone,flow", "12,41.5,0.8"], "o3 time_s=12 ozone=41.5 flow=0.8");
    check("", csv, &["12,41.5,0.8"], "(undecoded)");
    check(
        "",
        "[[source]]\nname = \"o3\"\nstdin = true\ndecoder = \"csv\"\ncolumns = [\"a\", \"b\"]\nseparator = \";\"\n",
        &["1;x"],
        "o3 a=1 b=x",
    );
    let re = "[[source]]\nname = \"bc\"\nstdin = true\ndecoder = \"regex\"\nregex = '^(?P<device>\\w+): T=(?P<temp>[-\\d.]+) P=(?P<pressure>\\d+)hPa'\n";
    check("", re, &["boiler: T=61.5 P=1013hPa"], "boiler temp=61.5 pressure=1013");
    check("", re, &["something else"], "(undecoded)");
}

#[test]
fn auto_recognises_rf12_json_and_key_values() {
    check(HOUSEMON, "", &["OK 2 1 115 179 0"], "roomNode-2 light=1 moved=1 humi=57% temp=17.9°C lobat=0");
    check(HOUSEMON, "", &[r#"{"temperature_C": 20}"#], "usb-A40117UK temperature_C=20°C");
    check(HOUSEMON, "", &["vbat=3.31V"], "usb-A40117UK vbat=3.31V");
    check(HOUSEMON, "", &["Fault 17: battery"], "(undecoded)");
}

#[test]
fn events_match_substrings_and_regexes_per_source() {
    let cfg = r#"
        [[event]]
        match = "Fault 17"
        code = "F17"
        level = "critical"
        description = "battery fault"
        [[event]]
        regex = "^Fault (\\d+)"
        code = "FAULT"
        level = "warning"
        source = "ups"
    "#;
    let d = decoders(cfg, &[]);
    let codes = |src: &str, text: &str| d.events(src, text).iter().map(|e| format!("{}:{}", e.code, e.level)).collect::<Vec<_>>();
    assert_eq!(codes("ups", "Fault 17: battery"), ["F17:critical", "FAULT:warning"]);
    assert_eq!(codes("other", "Fault 17: battery"), ["F17:critical"]);
    assert!(codes("ups", "all good").is_empty());
}

/// Decoding the real day: every roomNode packet equals an independent
/// computation done differently (one 32-bit integer and masks).
#[test]
fn every_room_node_packet_of_the_real_day_matches_an_independent_computation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/20121130.txt.gz");
    assert!(path.exists(), "this test needs the real JeeLabs day at {} (../shared/data beside the project)", path.display());
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
    let d = decoders(HOUSEMON, &[]);
    let mut st = SourceState::default();
    let room_nodes = [2u8, 4, 5, 6, 10, 11, 12, 13, 23, 24];
    let (mut checked, mut undecoded) = (0, 0);
    for line in text.lines() {
        let reading = line.splitn(4, ' ').nth(3).unwrap();
        let outcome = d.decode("usb-A40117UK", 0, reading, &mut st);
        if matches!(outcome, Outcome::Undecoded) {
            undecoded += 1;
        }
        let Some(rest) = reading.strip_prefix("OK ") else { continue };
        let bytes: Vec<u32> = rest.split(' ').map(|b| b.parse().unwrap()).collect();
        let node = (bytes[0] & 0x1f) as u8;
        if !room_nodes.contains(&node) || bytes.len() < 5 {
            continue;
        }
        let v = bytes[1] | bytes[2] << 8 | bytes[3] << 16 | bytes[4] << 24;
        let temp_raw = ((v >> 16) & 0x3ff) as i32;
        let temp_tenths = if temp_raw >= 512 { temp_raw - 1024 } else { temp_raw };
        let expected = [
            ("light", Value::Int(i64::from(v & 0xff))),
            ("moved", Value::Int(i64::from((v >> 8) & 1))),
            ("humi", Value::Int(i64::from((v >> 9) & 0x7f))),
            ("temp", Value::Float(f64::from(temp_tenths) / 10.0)),
            ("lobat", Value::Int(i64::from((v >> 26) & 1))),
        ];
        let Outcome::Decoded { device, fields } = outcome else { panic!("{reading}: not decoded") };
        assert_eq!(&*device, format!("roomNode-{node}"));
        let got: Vec<(&str, Value)> = fields.iter().map(|f| (&*f.name, f.value.clone())).collect();
        assert_eq!(got, expected, "{line}");
        checked += 1;
    }
    assert!(checked > 2000, "only {checked} roomNode packets checked");
    assert_eq!(undecoded, 0, "every line of the real day is an RF12demo line");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Bad input is data: no decoder panics, and decoding is a pure function.
        #[test]
        fn decoders_never_panic_and_are_deterministic(text in "(OK |\\? |DF |\\{|\\[RF12)?[ -~]{0,60}", kind in prop::sample::select(vec!["auto", "rf12demo", "json", "kv", "csv", "regex", "none"])) {
            let src = format!("{HOUSEMON}\n[[source]]\nname = \"s\"\nstdin = true\ndecoder = \"{kind}\"\nregex = '(?P<a>\\d+)'\n");
            let c = config::Config::parse(&src, Path::new("p.toml")).unwrap();
            let d = Decoders::new(&c, &["s".to_string()]).unwrap();
            let (mut s1, mut s2) = (SourceState::default(), SourceState::default());
            let a = d.decode("s", 0, &text, &mut s1);
            let b = d.decode("s", 0, &text, &mut s2);
            prop_assert_eq!(a, b);
            prop_assert_eq!(s1, s2);
        }
    }
}

/// The example shipped in docs/ decodes the real day's lines.
#[test]
fn the_shipped_jeelabs_example_configuration_decodes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/jeelabs.toml");
    let c = config::Config::load(&path).unwrap();
    assert_eq!(c.sources[0].port.as_deref(), Some(Path::new("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A40117UK-if00-port0")));
    let d = Decoders::new(&c, &["usb-A40117UK".to_string()]).unwrap();
    let mut st = SourceState::default();
    assert_eq!(
        render(&d.decode("usb-A40117UK", 0, "OK 34 1 115 179 0", &mut st)),
        "roomNode-2 light=1 moved=1 humi=57% temp=17.9°C lobat=0"
    );
    // HouseMon's names for the nodes blackbox has no driver for: kept, with a warning each.
    assert_eq!(render(&d.decode("usb-A40117UK", 0, "OK 14 96 12 11", &mut st)), "otRelay-14 b1=96 b2=12 b3=11");
    let missing: Vec<&str> = d.warnings().iter().map(|w| w.split('"').nth(1).unwrap()).collect();
    assert_eq!(missing, ["otRelay", "smaRelay", "p1scanner", "ookRelay"]);
    assert!(d.warnings().iter().all(|w| w.contains("jeelabs.toml:")), "{:?}", d.warnings());
}

/// Found by the `decoders` fuzz target: an empty CSV heading or JSON key gave
/// a field with an empty name (a sensor id ending in `/`), and keys with `/`
/// or spaces broke sensor ids.
#[test]
fn field_names_are_never_empty_and_never_split_a_sensor_id() {
    let csv = "[[source]]\nname = \"c\"\nstdin = true\ndecoder = \"csv\"\n";
    check("", csv, &[" ", "\u{11}"], "c col1=\u{11}");
    check("", csv, &["a,,b", "1,2,3"], "c a=1 col2=2 b=3");
    check("", csv, &["a/b,c d", "1,2"], "c a_b=1 c_d=2");
    let json = "[[source]]\nname = \"j\"\nstdin = true\ndecoder = \"json\"\n";
    check("", json, &[r#"{"": 1, "a/b": 2, "x y": {"": true}}"#], "j _=1 a_b=2 x_y.=true");
}

/// The indexer decodes lines for which `uses_state` is false on several
/// threads, each with a state of its own: such lines must decode the same
/// whatever the state, and leave it unchanged. Checked on every line of the
/// real day and on lines of every decoder kind, against states learned from
/// a banner and a CSV header.
#[test]
fn lines_that_do_not_use_state_decode_the_same_with_any_state() {
    let config = format!(
        "{HOUSEMON}\n[[source]]\nname = \"csv\"\ndecoder = \"csv\"\n[[source]]\nname = \"fixed\"\ndecoder = \"csv\"\ncolumns = [\"a\", \"b\"]\n[[source]]\nname = \"json\"\ndecoder = \"json\"\n[[source]]\nname = \"kv\"\ndecoder = \"kv\"\n[[source]]\nname = \"rf\"\ndecoder = \"rf12demo\"\n"
    );
    let c = config::Config::parse(&config, Path::new("test.toml")).unwrap();
    let names: Vec<String> = c.sources.iter().map(|s| s.name.clone().unwrap()).collect();
    let d = Decoders::new(&c, &names).unwrap();
    let mut learned = SourceState::default();
    d.decode("rf", 0, "[RF12demo.12] _ i31* g5 @ 868 MHz", &mut learned);
    d.decode("csv", 0, "x,y", &mut learned);
    assert_ne!(learned, SourceState::default());
    let mut day = String::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/20121130.txt.gz");
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut day).unwrap();
    let mut lines: Vec<(&str, &str)> = day.lines().filter_map(|l| l.splitn(4, ' ').nth(3)).map(|t| ("usb-A40117UK", t)).collect();
    for s in ["csv", "fixed", "json", "kv", "rf", "usb-A40117UK"] {
        for t in [
            "OK 2 1 115 179 0",
            "[RF12demo.12] _ i31* g5 @ 868 MHz",
            " [RF12 x",
            "1,2",
            "a=1 b=2",
            "{\"model\":\"x\",\"t\":1}",
            "? 1 2",
            "DF S 1 2 3",
        ] {
            lines.push((s, t));
        }
    }
    let mut checked = 0;
    for (source, text) in lines {
        if d.uses_state(source, text) {
            continue;
        }
        for start in [SourceState::default(), learned.clone()] {
            let mut state = start.clone();
            let got = render(&d.decode(source, 0, text, &mut state));
            assert_eq!(state, start, "{source}: {text:?} changed the state");
            assert_eq!(got, render(&d.decode(source, 0, text, &mut SourceState::default())), "{source}: {text:?}");
        }
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} lines checked");
    assert!(d.uses_state("rf", "[RF12demo.12] _ i31* g5 @ 868 MHz") && d.uses_state("csv", "1,2") && !d.uses_state("fixed", "1,2"));
}

/// `decode_into` (the indexer's path: fields appended to a reused vector,
/// packets parsed without allocating) gives what `decode` gives, on every
/// line of the real day and on packets too long for its buffer.
#[test]
fn decode_into_equals_decode() {
    let d = decoders(HOUSEMON, &[]);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/20121130.txt.gz");
    let mut day = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut day).unwrap();
    let long = format!("OK 2 {}", vec!["7"; 100].join(" "));
    let mut texts: Vec<&str> = day.lines().filter_map(|l| l.splitn(4, ' ').nth(3)).collect();
    texts.extend(["OK 3 1 2 3 4 (-70)", "OK 9 1 2", "OK 2", "OK 99 1 (x)", " OK 4 1 2 3 4 ", &long, "temp=3 x=y", "{\"a\":1}"]);
    let mut out = vec![decode::Field::new("before", Value::Int(1), None)];
    for text in texts {
        let (mut a, mut b) = (SourceState::default(), SourceState::default());
        let expected = render(&d.decode("usb-A40117UK", 0, text, &mut a));
        out.truncate(1);
        let got = match d.decode_into("usb-A40117UK", 0, text, &mut b, &mut out) {
            decode::Found::Decoded { device } => render(&Outcome::Decoded { device, fields: out[1..].to_vec() }),
            decode::Found::Recognised { kind } => {
                assert_eq!(out.len(), 1, "{text}: fields of a recognised line");
                render(&Outcome::Recognised { kind })
            }
            decode::Found::Undecoded => {
                assert_eq!(out.len(), 1, "{text}: fields of an undecoded line");
                render(&Outcome::Undecoded)
            }
        };
        assert_eq!(got, expected, "{text}");
        assert_eq!(a, b, "{text}");
    }
}
