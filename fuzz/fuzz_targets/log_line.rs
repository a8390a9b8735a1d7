//! The log line parser and the escaping: any text. Parsing never panics; a
//! reading's text unescapes to bytes that escape back to a line that parses
//! to the same bytes (the format's round trip), and metadata arguments can
//! all be looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logfile::{escape, parse_line, unescape, Line};

fuzz_target!(|input: (&str, &[u8])| {
    let (line, device_bytes) = input;
    match parse_line(line) {
        Ok(Line::Reading { time, source, text }) => {
            assert!(!source.is_empty() && !source.contains(' '));
            let bytes = unescape(text);
            let mut again = String::new();
            logfile::record::format_reading(&mut again, time, source, &bytes);
            match parse_line(again.trim_end_matches('\n')) {
                Ok(Line::Reading { text: t2, source: s2, time: time2 }) => {
                    assert_eq!((s2, time2), (source, time));
                    assert_eq!(unescape(t2), bytes, "a reading's bytes changed in a round trip");
                }
                other => panic!("a formatted reading did not parse back: {other:?}"),
            }
        }
        Ok(Line::Meta { args, .. }) => {
            for key in ["source", "reason", "bytes", "text", "delta_ms", "file"] {
                let _ = args.get(key);
            }
        }
        Err(_) => {}
    }
    // Whatever a device sends survives escaping exactly.
    assert_eq!(unescape(&escape(device_bytes)), device_bytes);
});
