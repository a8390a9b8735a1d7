//! Reversible escaping of device bytes into one line of UTF-8 text.
//!
//! A device may send anything: NUL bytes, line noise at the wrong baud rate,
//! invalid UTF-8. The log files must stay valid UTF-8 with exactly one record
//! per line, so every byte that is a control character (other than TAB) or
//! that is not part of valid UTF-8 is written as `\xHH` (upper-case hex), and
//! a backslash is written as `\\`. Nothing else is changed, so the common
//! case (printable ASCII) is copied as it is.

/// Appends the escaped form of `bytes` to `out`.
pub fn escape_into(bytes: &[u8], out: &mut String) {
    if bytes.iter().all(|&b| is_plain_ascii(b)) {
        // Every byte is printable ASCII other than a backslash, hence valid UTF-8.
        out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push('\t'),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => push_hex(c as u8, out),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_hex(b, out);
        }
    }
}

/// Returns the escaped form of `bytes`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(bytes, &mut out);
    out
}

/// Reverses [`escape`]. A backslash that does not start `\\` or `\xHH` is kept
/// as it is, so text written by other tools (JeeMon never escaped) reads back
/// unchanged unless it happens to contain one of the two escapes.
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'\\') {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x') {
                if let (Some(h), Some(l)) = (bytes.get(i + 2).and_then(|&c| hex_value(c)), bytes.get(i + 3).and_then(|&c| hex_value(c))) {
                    out.push(h << 4 | l);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn is_plain_ascii(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'\\'
}

fn push_hex(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('\\');
    out.push('x');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xf)] as char);
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &[u8], expected: &str) {
        assert_eq!(escape(input), expected);
        assert_eq!(unescape(expected), input);
    }

    #[test]
    fn plain_text_is_unchanged() {
        check(b"OK 2 1 115 179 0", "OK 2 1 115 179 0");
        check("temp=21.5 \u{b0}C\ttab".as_bytes(), "temp=21.5 \u{b0}C\ttab");
    }

    #[test]
    fn controls_backslash_and_invalid_utf8_are_escaped() {
        check(b"a\0b", "a\\x00b");
        check(b"\r\n", "\\x0D\\x0A");
        check(b"\x7f", "\\x7F");
        check(b"back\\slash", "back\\\\slash");
        check(b"\xff\xfe ok", "\\xFF\\xFE ok");
        // A truncated UTF-8 sequence: the lead bytes are escaped one by one.
        check(b"\xe2\x82", "\\xE2\\x82");
        check(b"\\x41", "\\\\x41");
    }

    #[test]
    fn unknown_escapes_read_back_literally() {
        assert_eq!(unescape("C:\\temp \\q \\x4"), b"C:\\temp \\q \\x4");
    }

    proptest! {
        #[test]
        fn escaping_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = escape(&bytes);
            prop_assert!(!text.contains('\n') && !text.contains('\r'));
            prop_assert!(text.chars().all(|c| c == '\t' || !c.is_ascii_control()));
            prop_assert_eq!(unescape(&text), bytes);
        }
    }
}
