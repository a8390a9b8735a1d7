//! The one place that serialises cache records.
//!
//! bincode's last release is a tombstone (3.0.0 is a `compile_error!`) and
//! 2.x is unmaintained (docs/decisions/0003). Using 2.x is safe here because
//! the cache is rebuildable and records its format version: if the encoding
//! ever changes, [`crate::FORMAT_VERSION`] changes and caches are rebuilt.
//! Keeping every call behind this module makes replacing it a local change.

use serde::{de::DeserializeOwned, Serialize};

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain data structures into a Vec cannot fail: there is no I/O
    // and every type stored derives Serialize without custom errors.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

/// Decodes a record; `None` when the bytes are not a valid record (a
/// damaged cache, handled by rebuilding).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).ok().map(|(v, _)| v)
}

/// Encodes a large record that is rewritten often (the health evaluator's
/// state, with every commit), deflated at the fastest level: its names and
/// results repeat, and sled keeps every version it wrote until it compacts.
/// (A record packed again and again is packed by a [`Packer`] kept for it.)
pub fn encode_packed<T: Serialize>(value: &T) -> Vec<u8> {
    Packer::default().pack(value)
}

/// Decodes a record made by [`encode_packed`]; `None` when damaged.
pub fn decode_packed<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(bytes).read_to_end(&mut raw).ok()?;
    decode(&raw)
}

/// [`encode_packed`], keeping its working space from call to call: the
/// encoded record, the compressor (reset, not made again: its tables are
/// large) and the size of the last result. The health state is packed with
/// every commit; made afresh each time, the working space was a tenth of
/// the judge's time (allocations, growing vectors, zeroed tables). The
/// same record packs to the same bytes whatever was packed before.
#[derive(Default)]
pub struct Packer {
    raw: Vec<u8>,
    deflate: Option<flate2::write::DeflateEncoder<Vec<u8>>>,
    last: usize,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer").field("last", &self.last).finish_non_exhaustive()
    }
}

impl Packer {
    pub fn pack<T: Serialize>(&mut self, value: &T) -> Vec<u8> {
        use std::io::Write;
        self.raw.clear();
        let out = Vec::with_capacity(self.last + self.last / 4 + 256);
        let z = self.deflate.get_or_insert_with(|| flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast()));
        // Writing into a Vec cannot fail (see `encode`); were it to, the
        // record would be empty, which `decode_packed` refuses (a rebuild).
        let packed = (|| -> std::io::Result<Vec<u8>> {
            bincode::serde::encode_into_std_write(value, &mut self.raw, bincode::config::standard())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            z.reset(out)?;
            z.write_all(&self.raw)?;
            z.try_finish()?;
            Ok(std::mem::take(z.get_mut()))
        })();
        match packed {
            Ok(out) => {
                self.last = out.len();
                out
            }
            Err(_) => {
                self.deflate = None;
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packer_kept_packs_as_a_new_one_does_time_after_time() {
        let mut packer = Packer::default();
        // Sizes around and far above the last result's, and nothing at all.
        for n in [0usize, 10, 5000, 3, 200_000, 0, 70_000] {
            let record: Vec<(String, u64)> = (0..n).map(|i| (format!("usb-X/roomNode-{}/temp", i % 37), i as u64 * 7919)).collect();
            let packed = packer.pack(&record);
            assert_eq!(packed, encode_packed(&record), "{n} entries");
            // And as the one-shot compressor packed before there was a
            // Packer: caches written then read the same.
            let one_shot = {
                use std::io::Write;
                let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(&encode(&record)).unwrap();
                z.finish().unwrap()
            };
            assert_eq!(packed, one_shot, "{n} entries, against a one-shot compressor");
            assert_eq!(decode_packed::<Vec<(String, u64)>>(&packed), Some(record));
        }
    }
}
