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
pub fn encode_packed<T: Serialize>(value: &T) -> Vec<u8> {
    use std::io::Write;
    let mut out = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = out.write_all(&encode(value));
    out.finish().unwrap_or_default()
}

/// Decodes a record made by [`encode_packed`]; `None` when damaged.
pub fn decode_packed<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(bytes).read_to_end(&mut raw).ok()?;
    decode(&raw)
}
