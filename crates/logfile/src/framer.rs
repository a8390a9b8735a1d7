//! Cuts a device's byte stream into lines.
//!
//! Rules (documented in docs/log-format.md):
//! - `\n`, `\r\n`, `\n\r` and a lone `\r` all end a line;
//! - a line with no bytes is not a reading. Blank lines carry nothing, and
//!   this rule is what makes every terminator convention safe: `\r\n` split
//!   across two reads can never produce a phantom empty reading;
//! - a line longer than the limit is cut into pieces of exactly `limit` bytes,
//!   and a piece is only cut once a byte beyond the limit has arrived, so a
//!   line of exactly `limit` bytes is one ordinary line.
//!
//! The output depends only on the bytes, never on how they were split into
//! reads.

/// Default limit on the length of one line, in bytes.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// A line or piece of a line, ready to be stamped and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its terminator.
    Line(&'a [u8]),
    /// The first `limit` bytes of a line that goes on; the next frame from
    /// this framer continues it.
    Overlong(&'a [u8]),
}

/// Per-source line framing state. Memory is bounded by the limit.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    limit: usize,
}

impl Framer {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self { buf: Vec::with_capacity(limit.min(DEFAULT_MAX_LINE)), limit }
    }

    /// Feeds bytes, calling `emit` for every frame they complete.
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(Frame<'_>)) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.extend(&bytes[..i], &mut emit);
                    if !self.buf.is_empty() {
                        emit(Frame::Line(&self.buf));
                        self.buf.clear();
                    }
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.extend(bytes, &mut emit);
                    bytes = &[];
                }
            }
        }
    }

    /// Bytes of the unfinished line, if any (they stay in the framer).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the unfinished line out of the framer, for example when the
    /// device disappears mid-line.
    pub fn take_pending(&mut self) -> Option<Vec<u8>> {
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }

    fn extend(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
        while !bytes.is_empty() {
            if self.buf.len() == self.limit {
                emit(Frame::Overlong(&self.buf));
                self.buf.clear();
            }
            let room = self.limit - self.buf.len();
            let n = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum F {
        L(Vec<u8>),
        O(Vec<u8>),
    }

    fn frames(chunks: &[&[u8]], limit: usize) -> Vec<F> {
        let mut framer = Framer::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            framer.push(c, |f| {
                out.push(match f {
                    Frame::Line(b) => F::L(b.to_vec()),
                    Frame::Overlong(b) => F::O(b.to_vec()),
                })
            });
        }
        out
    }

    fn check(chunks: &[&[u8]], expected: &[&str]) {
        let got: Vec<String> = frames(chunks, 8)
            .into_iter()
            .map(|f| match f {
                F::L(b) => String::from_utf8(b).unwrap(),
                F::O(b) => format!("{}+", String::from_utf8(b).unwrap()),
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn terminators() {
        check(&[b"a\nb\r\nc\rd\n\re\n"], &["a", "b", "c", "d", "e"]);
        check(&[b"a\r", b"\nb\r", b"\n"], &["a", "b"]);
        check(&[b"\r\n\r\n\n\n\r"], &[]);
        check(&[b"no terminator yet"[..5].as_ref()], &[]);
    }

    #[test]
    fn overlong_lines_are_cut_without_losing_bytes() {
        check(&[b"12345678\n"], &["12345678"]);
        check(&[b"123456789\n"], &["12345678+", "9"]);
        check(&[b"1234", b"5678", b"12345678", b"x\r\n"], &["12345678+", "12345678+", "x"]);
        let mut f = Framer::new(8);
        f.push(b"12345678123", |_| {});
        assert_eq!(f.pending(), b"123");
        assert_eq!(f.take_pending(), Some(b"123".to_vec()));
        assert_eq!(f.take_pending(), None);
    }

    proptest! {
        #[test]
        fn splitting_never_changes_frames(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), Just(0u8), any::<u8>()], 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            limit in 1usize..20,
        ) {
            let whole = frames(&[&data], limit);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts { chunks.push(&data[last..c]); last = c; }
            chunks.push(&data[last..]);
            prop_assert_eq!(&frames(&chunks, limit), &whole);
            // No empty readings, and joining the frames gives back every non-terminator byte.
            let mut joined: Vec<u8> = Vec::new();
            for f in &whole {
                match f { F::L(b) => { prop_assert!(!b.is_empty()); joined.extend(b) } F::O(b) => { prop_assert_eq!(b.len(), limit); joined.extend(b) } }
            }
            let mut framer = Framer::new(limit);
            framer.push(&data, |_| {});
            joined.extend(framer.pending());
            let expected: Vec<u8> = data.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
            prop_assert_eq!(joined, expected);
        }
    }
}
