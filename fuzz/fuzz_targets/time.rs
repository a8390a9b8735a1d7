//! The time parser (`--from`, `--to`, `--since`, node map ranges): any text.
//! Never panics; an accepted time printed as RFC 3339 parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logfile::time::{parse_time, rfc3339_millis};

fuzz_target!(|input: (&str, i64)| {
    let (text, now) = input;
    // Any "now" a clock could give: the years 0 to 9999.
    let now = now.rem_euclid(253_402_300_800_000) - 62_167_219_200_000;
    if let Ok(t) = parse_time(text, Some(now)) {
        if (-62_167_219_200_000..253_402_300_800_000).contains(&t) {
            let printed = rfc3339_millis(t);
            assert_eq!(parse_time(&printed, None), Ok(t), "{text:?} gave {printed}");
        }
    }
});
