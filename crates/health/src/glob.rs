//! Globs over ids made of `/`-separated parts (`SOURCE/DEVICE/FIELD`):
//! `*` matches any run of characters within one part, `?` one character,
//! `**` any run across parts; everything else matches itself.

use serde::{Deserialize, Serialize};

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glob {
    text: String,
}

impl Glob {
    pub fn new(text: &str) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("an empty glob matches nothing".into());
        }
        Ok(Glob { text: text.to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `id` matches the whole glob.
    pub fn matches(&self, id: &str) -> bool {
        matches(self.text.as_bytes(), id.as_bytes())
    }
}

/// Iterative matching with one backtrack point per star kind (the classic
/// wildcard algorithm): linear in practice, never exponential.
fn matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // The last star: where in the pattern after it, where in the text it
    // started, and whether it may cross a `/`.
    let mut star: Option<(usize, usize, bool)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    let deep = p.get(pi + 1) == Some(&b'*');
                    pi += if deep { 2 } else { 1 };
                    star = Some((pi, si, deep));
                    continue;
                }
                b'?' if s[si] != b'/' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                c if c != b'?' && c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            // The star takes one more character, if it may.
            Some((after, start, deep)) if deep || s[start] != b'/' => {
                star = Some((after, start + 1, deep));
                pi = after;
                si = start + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn stars_stay_within_a_part() {
        assert!(m("*/roomNode-*/temp", "usb-A/roomNode-5/temp"));
        assert!(!m("*/roomNode-*/temp", "usb-A/roomNode-5/humi"));
        assert!(!m("*/temp", "usb-A/roomNode-5/temp"));
        assert!(m("**/temp", "usb-A/roomNode-5/temp"));
        assert!(m("usb-A/**", "usb-A/roomNode-5/temp"));
        assert!(m("usb-?/*/*", "usb-A/x/y"));
        assert!(!m("usb-?/*", "usb-/x"));
        assert!(m("*", "ups"));
        assert!(!m("*", "a/b"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
    }

    proptest::proptest! {
        /// A glob made from an id by replacing any part with `*` matches it.
        #[test]
        fn a_part_replaced_by_a_star_still_matches(parts in proptest::collection::vec("[a-z0-9-]{1,8}", 1..4), which in 0usize..4) {
            let id = parts.join("/");
            let mut p = parts.clone();
            let w = which % p.len();
            p[w] = "*".into();
            proptest::prop_assert!(m(&p.join("/"), &id));
            proptest::prop_assert!(m("**", &id));
        }
    }
}
