//! Integer packing for reading segments: varints, zigzag, and sequences of
//! integers stored as deltas in frame-of-reference blocks.
//!
//! A time-series column changes by small steps (a timestamp by about the
//! same interval, a temperature by a few tenths, a counter by a few counts),
//! so the differences between neighbours need few bits. Each block of
//! [`BLOCK`] differences stores its smallest one and the bit width of the
//! largest distance from it, then every distance in exactly that many bits.
//! A steady clock or a constant value costs no bits at all, a one-bit flag
//! one or two, and noise only what its spread needs. This is the idea behind
//! the chunk encodings of Prometheus, InfluxDB's TSM and the "frame of
//! reference" codecs of column stores, at a small fraction of the cost of a
//! general-purpose compressor.

/// Differences per block: small enough that one outlier widens only its own
/// block, large enough that the block header (two to ten bytes) is amortised.
pub const BLOCK: usize = 128;

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `values` as deltas in frame-of-reference blocks. The first value
/// is stored whole (zigzag varint); arithmetic wraps, so every `i64` sequence
/// round-trips.
pub fn put_deltas(out: &mut Vec<u8>, values: impl Iterator<Item = i64>) {
    let mut prev = 0i64;
    let mut block = [0i64; BLOCK];
    let mut n = 0;
    let mut first = true;
    for v in values {
        if first {
            put_varint(out, zigzag(v));
            first = false;
        } else {
            block[n] = v.wrapping_sub(prev);
            n += 1;
            if n == BLOCK {
                put_block(out, &block);
                n = 0;
            }
        }
        prev = v;
    }
    if n > 0 {
        put_block(out, &block[..n]);
    }
}

/// One block: the smallest value (zigzag varint), the bit width, then each
/// value's distance from the smallest in that many bits, least significant
/// bit first.
fn put_block(out: &mut Vec<u8>, block: &[i64]) {
    let min = block.iter().copied().min().unwrap_or(0);
    let spread = block.iter().map(|&d| d.wrapping_sub(min) as u64).fold(0, |a, b| a | b);
    let width = 64 - spread.leading_zeros();
    put_varint(out, zigzag(min));
    out.push(width as u8);
    if width == 0 {
        return;
    }
    out.reserve((block.len() * width as usize).div_ceil(8) + 8);
    let mut bits = 0u32;
    if width <= 32 {
        // The usual case: whole 32-bit words of the bit stream at a time
        // (the same bytes, little-endian, as one byte at a time).
        let mut acc: u64 = 0;
        for &d in block {
            acc |= (d.wrapping_sub(min) as u64) << bits;
            bits += width;
            if bits >= 32 {
                out.extend_from_slice(&(acc as u32).to_le_bytes());
                acc >>= 32;
                bits -= 32;
            }
        }
        out.extend_from_slice(&acc.to_le_bytes()[..bits.div_ceil(8) as usize]);
        return;
    }
    let mut acc: u128 = 0;
    for &d in block {
        acc |= u128::from(d.wrapping_sub(min) as u64) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Reads what the `put_*` functions wrote. Every read checks its bounds:
/// damaged bytes give `None`, never a panic or a runaway allocation.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A varint that counts something of which there can be at most `max`.
    pub fn count(&mut self, max: usize) -> Option<usize> {
        let n = self.varint()?;
        (n <= max as u64).then_some(n as usize)
    }

    /// `n` values written by [`put_deltas`], appended to `out`.
    pub fn deltas(&mut self, n: usize, out: &mut Vec<i64>) -> Option<()> {
        if n == 0 {
            return Some(());
        }
        // A block header takes at least two bytes for 128 values: a count
        // beyond that comes from damaged bytes, and must not allocate.
        if n > 1 + 64 * self.0.len() {
            return None;
        }
        out.reserve(n);
        let mut v = unzigzag(self.varint()?);
        out.push(v);
        let mut left = n - 1;
        while left > 0 {
            let len = left.min(BLOCK);
            let min = unzigzag(self.varint()?);
            let width = u32::from(self.byte()?);
            if width > 64 {
                return None;
            }
            if width == 0 {
                for _ in 0..len {
                    v = v.wrapping_add(min);
                    out.push(v);
                }
            } else {
                let bytes = self.take((len * width as usize).div_ceil(8))?;
                let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
                let mut acc: u128 = 0;
                let mut bits = 0u32;
                let mut next = bytes.iter();
                for _ in 0..len {
                    while bits < width {
                        // The length was checked above: a byte is there for every bit.
                        acc |= u128::from(*next.next()?) << bits;
                        bits += 8;
                    }
                    let d = (acc as u64) & mask;
                    acc >>= width;
                    bits -= width;
                    v = v.wrapping_add(min.wrapping_add(d as i64));
                    out.push(v);
                }
            }
            left -= len;
        }
        Some(())
    }

    /// Skips `n` values written by [`put_deltas`] without decoding them.
    pub fn skip_deltas(&mut self, n: usize) -> Option<()> {
        if n == 0 {
            return Some(());
        }
        self.varint()?;
        let mut left = n - 1;
        while left > 0 {
            let len = left.min(BLOCK);
            self.varint()?;
            let width = usize::from(self.byte()?);
            if width > 64 {
                return None;
            }
            self.take((len * width).div_ceil(8))?;
            left -= len;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        put_deltas(&mut out, values.iter().copied());
        let mut r = Reader(&out);
        let mut back = Vec::new();
        r.deltas(values.len(), &mut back).unwrap();
        assert_eq!(back, values);
        assert!(r.0.is_empty(), "every byte is read");
        let mut r = Reader(&out);
        r.skip_deltas(values.len()).unwrap();
        assert!(r.0.is_empty(), "skipping reads as many bytes as decoding");
        out
    }

    proptest! {
        #[test]
        fn any_sequence_round_trips(values in proptest::collection::vec(any::<i64>(), 0..400)) {
            round_trip(&values);
        }

        /// A block's bits are the bytes of writing one bit at a time (the
        /// cache format), at every width, whatever word the writer uses.
        #[test]
        fn blocks_are_the_bit_stream(block in proptest::collection::vec(any::<i64>(), 1..130), width in 0u32..64) {
            let block: Vec<i64> = block.iter().map(|v| if width == 0 { 7 } else { v & ((1u64 << width) - 1) as i64 }).collect();
            let mut out = Vec::new();
            put_block(&mut out, &block);
            let min = *block.iter().min().unwrap();
            let w = 64 - block.iter().map(|&d| (d - min) as u64).fold(0, |a, b| a | b).leading_zeros();
            let mut expected = Vec::new();
            put_varint(&mut expected, zigzag(min));
            expected.push(w as u8);
            let mut byte = 0u8;
            let mut n = 0;
            for &d in &block {
                for i in 0..w {
                    byte |= ((((d - min) as u64) >> i) as u8 & 1) << n;
                    n += 1;
                    if n == 8 {
                        expected.push(byte);
                        (byte, n) = (0, 0);
                    }
                }
            }
            if n > 0 {
                expected.push(byte);
            }
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn small_steps_round_trip(start in any::<i64>(), steps in proptest::collection::vec(-300i64..300, 0..700)) {
            let values: Vec<i64> = steps.iter().scan(start, |v, s| { *v = v.wrapping_add(*s); Some(*v) }).collect();
            round_trip(&values);
        }
    }

    #[test]
    fn steady_and_flag_like_sequences_are_tiny() {
        // A clock ticking every minute: no bits per value, only block headers.
        let clock: Vec<i64> = (0..1024).map(|i| 1_354_233_600_000 + i * 60_000).collect();
        assert!(round_trip(&clock).len() < 40, "{} bytes", round_trip(&clock).len());
        // A flag that flips now and then: two bits per value.
        let flag: Vec<i64> = (0..1024).map(|i| i64::from(i % 7 == 0)).collect();
        assert!(round_trip(&flag).len() < 1024 * 2 / 8 + 40);
        assert_eq!(round_trip(&[]).len(), 0);
        // Extremes: the first value and the block minimum take ten-byte varints, the widths 63 bits each.
        assert_eq!(round_trip(&[i64::MIN, i64::MAX, 0, -1]).len(), 10 + 10 + 1 + (3 * 63usize).div_ceil(8));
    }

    #[test]
    fn damaged_input_is_none() {
        let mut out = Vec::new();
        put_deltas(&mut out, (0..300).map(|i| i * 37 % 101));
        for cut in 0..out.len() {
            let mut back = Vec::new();
            assert_eq!(Reader(&out[..cut]).deltas(300, &mut back), None, "cut at {cut}");
            assert_eq!(Reader(&out[..cut]).skip_deltas(300), None, "cut at {cut}");
        }
        assert_eq!(Reader(&[0, 0, 65]).deltas(3, &mut Vec::new()), None, "width over 64");
    }
}
