//! Every decoder on any line, with state carried from line to line as the
//! indexer carries it (a dataflash receiver's replays included). Never panics; decoded fields have names and finite
//! numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[rf12.nodes]
2 = "roomNode"
3 = "radioBlip"
4 = "slowLogger"
5 = "lightNode"
9 = "homePower"
10 = "custom"
11 = [ { driver = "roomNode", to = "2012-12-01" }, { driver = "custom", from = "2012-12-01", name = "reflashed" } ]

[[driver]]
name = "custom"
fields = [ { name = "a", bits = 3 }, { name = "b", bits = 13, signed = true, scale = 0.01, unit = "V" }, { name = "c", bits = 40 } ]

[[source]]
name = "json"
stdin = true
decoder = "json"
device = ["model", "id"]

[[source]]
name = "kv"
stdin = true
decoder = "kv"

[[source]]
name = "csv"
stdin = true
decoder = "csv"

[[source]]
name = "csv-fixed"
stdin = true
decoder = "csv"
columns = ["t", "h"]
separator = ";"

[[source]]
name = "regex"
stdin = true
decoder = "regex"
regex = '^(?P<device>\w+) (?P<volts>[0-9.]+)V(?: (?P<state>\w+))?'

[[source]]
name = "rf12"
stdin = true
decoder = "rf12demo"

[[source]]
name = "jeelink"
port = "/dev/null"
decoder = "rf12demo"
dataflash = true

[[event]]
match = "Fault"
code = "F"
level = "error"
"#;

const SOURCES: [&str; 8] = ["json", "kv", "csv", "csv-fixed", "regex", "rf12", "auto", "jeelink"];

fuzz_target!(|input: Vec<(u8, i64, &str)>| {
    thread_local! {
        static DECODERS: decode::Decoders = {
            let config: config::Config = toml::from_str(CONFIG).expect("the fuzz configuration parses");
            let names: Vec<String> = config.sources.iter().map(|s| s.name.clone().unwrap_or_default()).collect();
            decode::Decoders::new(&config, &names).expect("the fuzz configuration compiles")
        };
    }
    DECODERS.with(|decoders| {
        let mut states: Vec<decode::SourceState> = vec![Default::default(); SOURCES.len()];
        for (which, time, line) in input {
            let i = usize::from(which) % SOURCES.len();
            let _ = decoders.events(SOURCES[i], line);
            if line.is_empty() {
                // Capture reconnected (a `connect` line): a dataflash replay is due.
                decoders.connected(SOURCES[i], &mut states[i]);
                continue;
            }
            if let decode::Outcome::Decoded { device, fields } | decode::Outcome::Replayed { device, fields, .. } =
                decoders.decode(SOURCES[i], time, line, &mut states[i])
            {
                assert!(!device.is_empty());
                for f in fields {
                    assert!(!f.name.is_empty(), "a field without a name from {line:?}");
                    if let decode::Value::Float(x) = f.value {
                        assert!(x.is_finite(), "{x} from {line:?}");
                    }
                }
            }
        }
    });
});
