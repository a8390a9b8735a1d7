//! Keys of the one sled tree. The first byte says what a key holds.

use self::chrono_free::ordered_i64;

pub const META: u8 = b'M';
pub const CURSOR: u8 = b'C';
pub const SENSOR_ID: u8 = b'I';
pub const DEVICE_ID: u8 = b'V';
pub const CHUNK: u8 = b'R';
pub const EVENT: u8 = b'E';
pub const DAY: u8 = b'D';
/// Health transitions, a commit's in one record, by the day and line that
/// decided the first of them.
pub const TRANSITION: u8 = b'T';
/// The health evaluator's state after a day's last committed line, beside its cursor.
pub const HEALTH: u8 = b'H';
/// A sensor's rollups of a day: its hours, and a counter's state after them.
pub const ROLLUP: u8 = b'U';

pub const DAY_SOURCE: u8 = b's';
pub const DAY_FIELD: u8 = b'f';
pub const DAY_EVENT: u8 = b'e';
pub const DAY_META: u8 = b'm';
/// A file day's replayed readings stored under another day (device id, then that day).
pub const DAY_LATE: u8 = b'l';

/// After a device's day prefix, this byte begins the keys of replayed
/// readings (see [`late_chunk`]); a segment number never begins with it.
pub const LATE: u8 = 0xFF;

mod chrono_free {
    /// Signed numbers ordered as unsigned big-endian bytes.
    pub fn ordered_i64(v: i64) -> [u8; 8] {
        ((v as u64) ^ (1 << 63)).to_be_bytes()
    }
}

pub fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}

/// `YYYYMMDD`, the cursor's name for a day.
pub fn day_name(date: chrono::NaiveDate) -> String {
    logfile::layout::file_name(date).trim_end_matches(".txt").to_string()
}

/// Days since 1970 of a `YYYYMMDD` name (0 if malformed, which cannot come from `day_name`).
pub fn parse_day_name(name: &str) -> i64 {
    logfile::layout::parse_file_name(&format!("{name}.txt")).map(|(d, _)| logfile::time::day_number(d)).unwrap_or(0)
}

pub fn cursor(day: &str) -> Vec<u8> {
    let mut k = vec![CURSOR];
    k.extend_from_slice(day.as_bytes());
    k
}

/// The health evaluator's state of a day (`YYYYMMDD`), written with each of its cursors.
pub fn health(day: &str) -> Vec<u8> {
    let mut k = vec![HEALTH];
    k.extend_from_slice(day.as_bytes());
    k
}

pub fn sensor_id(id: u32) -> Vec<u8> {
    let mut k = vec![SENSOR_ID];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub fn parse_sensor_id(k: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(k.get(1..5)?.try_into().ok()?))
}

/// A sensor's record: its device's id, then its name.
pub fn sensor_record(device: u32, name: &str) -> Vec<u8> {
    let mut v = device.to_be_bytes().to_vec();
    v.extend_from_slice(name.as_bytes());
    v
}

pub fn parse_sensor_record(v: &[u8]) -> Option<(u32, String)> {
    let device = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    Some((device, String::from_utf8(v[4..].to_vec()).ok()?))
}

/// A device's record (the value is its name, `SOURCE/DEVICE`).
pub fn device_id(id: u32) -> Vec<u8> {
    let mut k = vec![DEVICE_ID];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Where a device's readings of a day begin: every segment key of the day
/// starts with this.
pub fn chunk_prefix(id: u32, day: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(CHUNK);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(&ordered_i64(day));
    k
}

/// Segment `seq` of a device's readings of a day.
pub fn chunk(id: u32, day: i64, seq: u32) -> Vec<u8> {
    let mut k = chunk_prefix(id, day);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The end of a device's day's own segments (before its replayed ones).
pub fn chunk_end(id: u32, day: i64) -> Vec<u8> {
    let mut k = chunk_prefix(id, day);
    k.push(LATE);
    k
}

/// Where the segments of readings a device's dataflash replayed begin, for
/// readings of `day` logged in the file of `file_day`.
pub fn late_prefix(id: u32, day: i64, file_day: i64) -> Vec<u8> {
    let mut k = chunk_end(id, day);
    k.extend_from_slice(&ordered_i64(file_day));
    k
}

/// Segment `seq` of those readings.
pub fn late_chunk(id: u32, day: i64, file_day: i64, seq: u32) -> Vec<u8> {
    let mut k = late_prefix(id, day, file_day);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Whether a segment key is one of replayed readings.
pub fn is_late(k: &[u8]) -> bool {
    k.get(13) == Some(&LATE)
}

/// The `DAY_LATE` record's key part: device id and day of the readings.
pub fn late_record(id: u32, day: i64) -> Vec<u8> {
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(&ordered_i64(day));
    k
}

pub fn parse_late_record(rest: &[u8]) -> Option<(u32, i64)> {
    let id = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let day = (u64::from_be_bytes(rest.get(4..12)?.try_into().ok()?) ^ (1 << 63)) as i64;
    Some((id, day))
}

pub fn parse_late_seq(k: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(k.get(22..26)?.try_into().ok()?))
}

/// The day of a [`chunk`] (or late chunk) key.
pub fn parse_chunk_day(k: &[u8]) -> Option<i64> {
    let b: [u8; 8] = k.get(5..13)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

pub fn parse_chunk_seq(k: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(k.get(13..17)?.try_into().ok()?))
}

pub fn event_prefix(day: i64) -> Vec<u8> {
    let mut k = vec![EVENT];
    k.extend_from_slice(&ordered_i64(day));
    k
}

pub fn event(day: i64, line: u64, n: u8) -> Vec<u8> {
    let mut k = event_prefix(day);
    k.extend_from_slice(&line.to_be_bytes());
    k.push(n);
    k
}

pub fn transition_prefix(day: i64) -> Vec<u8> {
    let mut k = vec![TRANSITION];
    k.extend_from_slice(&ordered_i64(day));
    k
}

/// The `n`th transition decided at a line of a day.
pub fn transition(day: i64, line: u64, n: u16) -> Vec<u8> {
    let mut k = transition_prefix(day);
    k.extend_from_slice(&line.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

pub fn day_prefix(day: i64) -> Vec<u8> {
    let mut k = vec![DAY];
    k.extend_from_slice(&ordered_i64(day));
    k
}

pub fn day_key(day: i64, kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = day_prefix(day);
    k.push(kind);
    k.extend_from_slice(rest);
    k
}

/// `U`, the sensor, then the day: a sensor's days are together and in order.
pub fn rollup(sensor: u32, day: i64) -> Vec<u8> {
    let mut k = rollup_prefix(sensor);
    k.extend_from_slice(&ordered_i64(day));
    k
}

pub fn rollup_prefix(sensor: u32) -> Vec<u8> {
    let mut k = vec![ROLLUP];
    k.extend_from_slice(&sensor.to_be_bytes());
    k
}
