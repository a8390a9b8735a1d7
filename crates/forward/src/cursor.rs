//! The forwarder's cursor on disk.
//!
//! `<state>/mqtt-cursor.json` is overwritten in place after every batch:
//! one small write, no new file, no rename, no sync (a new file and a
//! rename per batch cost more than sending a line). A replaced file
//! survives the process whatever happens to it (a crash, a SIGKILL): a
//! restart resends at most the batch in flight.
//!
//! A power cut is another matter: the last write may not have reached the
//! disk, or reached it torn. So at most once a second (and when lines
//! stop) the cursor is also written to `mqtt-cursor.json.synced` the safe
//! way (a new file, synced, renamed over the old, the directory synced).
//! Each record carries a checksum; on start the later of the two valid
//! records is taken, so a power cut repeats at most a second's lines and
//! never skips one. A record written by hand (no checksum) is taken as it
//! is: that is how an administrator moves the cursor.

use crate::Cursor;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cursor's file in the state directory.
pub const CURSOR: &str = "mqtt-cursor.json";
/// Its copy, synced at most [`SYNC_EVERY`].
const SYNCED: &str = "mqtt-cursor.json.synced";
/// How often the synced copy is written while lines come.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Every record is padded to this length, so an overwrite in place leaves
/// nothing of a longer one behind.
const RECORD_LEN: usize = 128;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    day: String,
    offset: u64,
    /// CRC-32 of `"{day} {offset}"`; absent in a record written by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<u32>,
}

fn check(c: &Cursor) -> u32 {
    crc32fast::hash(format!("{} {}", c.day, c.offset).as_bytes())
}

/// A record's bytes: JSON, padded with spaces, ending in a newline.
fn record(c: &Cursor) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Record { day: c.day.clone(), offset: c.offset, check: Some(check(c)) })
        .unwrap_or_else(|_| unreachable!("a record of a string and two numbers always serialises"));
    let pad = RECORD_LEN.saturating_sub(out.len() + 1);
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

/// What a file holds: `None` if missing, unreadable or torn; the flag says
/// whether it was written by hand (no checksum).
fn read(path: &Path) -> Option<(Cursor, bool)> {
    let bytes = std::fs::read(path).ok()?;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    let c = Cursor { day: r.day, offset: r.offset };
    match r.check {
        Some(sum) if sum == check(&c) => Some((c, false)),
        Some(_) => {
            tracing::warn!(file = %path.display(), "MQTT: a cursor record with a wrong checksum (a write cut short?); not taken");
            None
        }
        None => Some((c, true)),
    }
}

/// The cursor saved in `state`, if any: see the module's documentation.
pub fn load(state: &Path) -> Option<Cursor> {
    let main = read(&state.join(CURSOR));
    let synced = read(&state.join(SYNCED));
    match (main, synced) {
        (Some((c, true)), _) => Some(c),
        (Some((a, false)), Some((b, _))) => Some(if (&b.day, b.offset) > (&a.day, a.offset) { b } else { a }),
        (Some((c, _)), None) | (None, Some((c, _))) => Some(c),
        (None, None) => {
            if state.join(CURSOR).exists() || state.join(SYNCED).exists() {
                tracing::error!(dir = %state.display(), "MQTT: the cursor files are unreadable; starting at the end of the logs");
            }
            None
        }
    }
}

/// Saves the cursor as the forwarder moves it.
pub struct CursorFile {
    dir: PathBuf,
    file: Option<File>,
    synced: Option<Instant>,
    unsynced: bool,
}

impl CursorFile {
    pub fn new(state: &Path) -> CursorFile {
        CursorFile { dir: state.to_path_buf(), file: None, synced: None, unsynced: false }
    }

    /// Saves `c` in place; the synced copy too when a second has passed.
    pub fn save(&mut self, c: &Cursor) -> std::io::Result<()> {
        let opened = self.file.is_none();
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                std::fs::create_dir_all(&self.dir)?;
                let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(self.dir.join(CURSOR))?;
                self.file.insert(f)
            }
        };
        file.write_all_at(&record(c), 0)?;
        // A longer file (written by hand) loses its tail, once: later
        // records are all of the same length.
        if opened && file.metadata()?.len() > RECORD_LEN as u64 {
            file.set_len(RECORD_LEN as u64)?;
        }
        self.unsynced = true;
        if self.synced.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
            self.sync(c)?;
        }
        Ok(())
    }

    /// Writes the synced copy if the last save did not and a second has
    /// passed since the last sync (called while no lines come: at 10 lines
    /// a second lines "stop" after each one).
    pub fn settle(&mut self, c: &Cursor) -> std::io::Result<()> {
        if self.unsynced && self.synced.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
            self.sync(c)?;
        }
        Ok(())
    }

    fn sync(&mut self, c: &Cursor) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{SYNCED}.new"));
        let mut f = File::create(&tmp)?;
        f.write_all(&record(c))?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(SYNCED))?;
        File::open(&self.dir)?.sync_all()?;
        self.synced = Some(Instant::now());
        self.unsynced = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str, offset: u64) -> Cursor {
        Cursor { day: day.into(), offset }
    }

    #[test]
    fn the_later_valid_record_is_taken_and_a_hand_written_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        assert_eq!(load(state), None);
        let mut f = CursorFile::new(state);
        f.save(&at("20261129", 100)).unwrap(); // the first save syncs too
        f.save(&at("20261129", 5000)).unwrap(); // within the second: in place only
        assert_eq!(load(state), Some(at("20261129", 5000)));
        assert_eq!(std::fs::metadata(state.join(CURSOR)).unwrap().len(), RECORD_LEN as u64);
        // A power cut that kept an older main record: the synced copy is later.
        std::fs::write(state.join(CURSOR), record(&at("20261129", 0))).unwrap();
        assert_eq!(load(state), Some(at("20261129", 100)));
        // A torn write: a record that parses but whose checksum is wrong.
        let torn = String::from_utf8(record(&at("20261129", 5000))).unwrap().replace("5000", "5900");
        std::fs::write(state.join(CURSOR), torn).unwrap();
        assert_eq!(load(state), Some(at("20261129", 100)));
        // Garbage in the main file: the synced copy.
        std::fs::write(state.join(CURSOR), b"{\"day\":\"2026").unwrap();
        assert_eq!(load(state), Some(at("20261129", 100)));
        // Settling writes the copy when the last save did not, a second after the last sync.
        f.save(&at("20261130", 7)).unwrap();
        f.synced = Some(Instant::now() - SYNC_EVERY);
        f.settle(&at("20261130", 7)).unwrap();
        std::fs::remove_file(state.join(CURSOR)).unwrap();
        assert_eq!(load(state), Some(at("20261130", 7)));
        // An administrator moves the cursor back by hand: that wins.
        std::fs::write(state.join(CURSOR), "{\"day\":\"20261129\",\"offset\":0}\n").unwrap();
        assert_eq!(load(state), Some(at("20261129", 0)));
        // Saving over a longer hand-written file leaves a clean record.
        std::fs::write(state.join(CURSOR), format!("{{\"day\":\"20261129\",\"offset\":0}}{}\n", " ".repeat(300))).unwrap();
        let mut g = CursorFile::new(state);
        g.save(&at("20261130", 99)).unwrap();
        assert_eq!(read(&state.join(CURSOR)), Some((at("20261130", 99), false)));
        assert_eq!(std::fs::metadata(state.join(CURSOR)).unwrap().len(), RECORD_LEN as u64);
    }
}
