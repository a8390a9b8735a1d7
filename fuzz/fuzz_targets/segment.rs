//! Reading segments of the cache: any bytes (a damaged cache) give `None`
//! or rows, never a panic or a runaway allocation; rows that decode encode
//! back to bytes that decode to the same rows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sensor = data.first().copied().map(u32::from).unwrap_or(0);
    let _ = index::segment::sensor(data, sensor);
    let _ = index::segment::row_count(data);
    if let Some(rows) = index::segment::decode(data) {
        let again = index::segment::encode(&rows);
        let back = index::segment::decode(&again).expect("an encoded segment decodes");
        assert_eq!(format!("{back:?}"), format!("{rows:?}"));
    }
});
