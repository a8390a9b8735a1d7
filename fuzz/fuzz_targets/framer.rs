//! The line framer: any bytes in any chunks. Lines never contain a
//! terminator, never exceed the limit, and together hold every byte that was
//! not a terminator, in order (pieces of an overlong line included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logfile::{Frame, Framer};

fuzz_target!(|input: (u8, Vec<Vec<u8>>)| {
    let (limit, chunks) = input;
    let limit = usize::from(limit).max(1);
    let mut framer = Framer::new(limit);
    let mut got = Vec::new();
    for chunk in &chunks {
        framer.push(chunk, |frame: Frame<'_>| {
            let bytes = match frame {
                Frame::Line(b) => b,
                Frame::Overlong(b) => {
                    assert_eq!(b.len(), limit, "an overlong piece is exactly the limit");
                    b
                }
            };
            assert!(!bytes.is_empty() && bytes.len() <= limit, "a line of {} bytes with limit {limit}", bytes.len());
            assert!(!bytes.iter().any(|&b| b == b'\n' || b == b'\r'), "a terminator inside a line");
            got.extend_from_slice(bytes);
        });
    }
    if let Some(rest) = framer.take_pending() {
        got.extend_from_slice(&rest);
    }
    let want: Vec<u8> = chunks.concat().into_iter().filter(|&b| b != b'\n' && b != b'\r').collect();
    assert_eq!(got, want);
});
