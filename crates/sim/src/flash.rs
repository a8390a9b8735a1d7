//! A simulated RF12demo receiver with the dataflash log of a JeeLink.
//!
//! [`Receiver`] hears packets from an [`Rf12Demo`] and keeps them the way
//! RF12demo does in DATAFLASH builds (jeelabs `RF12demo.ino` and its
//! `dataflash.h`): good packets are appended to a page buffer in RAM, full
//! pages are saved to a ring of flash pages (`DF S`), the block after a fresh
//! block is erased ahead of time (`DF E`), a boot scans for the last saved
//! page (`DF I`), and the `r` command replays the saved pages after a marker
//! (`R` lines, `DF R`, `DF C?` for a page whose CRC fails, and a closing
//! `DF E`). The firmware's quirks are kept: the RAM buffer's packets are lost
//! by a replay, and (with [`Receiver::logical_or_quirk`]) the replay marker
//! is decoded with `||` where `|` was meant.

use crate::{Rf12Demo, BANNER};

/// The first page of the log area (the pages before it are reserved).
pub const DF_LOG_BEGIN: u16 = 32;
/// Pages erased at a time; the log erases the block after the one it enters.
pub const DF_BLOCK_SIZE: u16 = 16;
/// Bytes of packet entries a page holds.
pub const PAGE_DATA: usize = 248;
/// Bytes of a page: data, seqnum (2), timestamp (4), crc (2), little-endian.
const PAGE_SIZE: usize = 256;
const SEQNUM_AT: usize = PAGE_DATA;
const TIMESTAMP_AT: usize = PAGE_DATA + 2;
const CRC_AT: usize = PAGE_DATA + 6;
/// The seqnum of a page that was never written (erased flash reads 0xFF).
const ERASED: u16 = 0xFFFF;

type Page = [u8; PAGE_SIZE];

const ERASED_PAGE: Page = [0xFF; PAGE_SIZE];

fn seqnum_of(page: &Page) -> u16 {
    u16::from_le_bytes([page[SEQNUM_AT], page[SEQNUM_AT + 1]])
}

fn set_seqnum(page: &mut Page, seqnum: u16) {
    page[SEQNUM_AT..SEQNUM_AT + 2].copy_from_slice(&seqnum.to_le_bytes());
}

/// The page's timestamp: receiver seconds, a signed `long` in the firmware.
fn timestamp_of(page: &Page) -> i32 {
    i32::from_le_bytes([page[TIMESTAMP_AT], page[TIMESTAMP_AT + 1], page[TIMESTAMP_AT + 2], page[TIMESTAMP_AT + 3]])
}

fn set_timestamp(page: &mut Page, timestamp: i32) {
    page[TIMESTAMP_AT..TIMESTAMP_AT + 4].copy_from_slice(&timestamp.to_le_bytes());
}

/// avr-libc's `_crc16_update` (CRC-16 with the reflected polynomial 0xA001).
fn crc16_update(crc: u16, byte: u8) -> u16 {
    let mut crc = crc ^ u16::from(byte);
    for _ in 0..8 {
        crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
    }
    crc
}

/// The CRC RF12demo computes from `~0` over `bytes`. Over a whole saved page
/// (its little-endian crc included) it is 0 when the page is intact.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0xFFFF, |crc, &b| crc16_update(crc, b))
}

/// A simulated RF12demo receiver on a JeeLink with dataflash: packets from an
/// [`Rf12Demo`], logged to flash pages exactly as the firmware does.
///
/// Times are the caller's clock in milliseconds (`now_ms`, any epoch); the
/// receiver's own clock counts seconds since its last [`boot`](Self::boot).
/// Calling [`receive`](Self::receive) or [`command`](Self::command) before
/// the first boot powers it on first (the boot lines come first).
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Decode the replay marker as the real firmware does, with logical `||`
    /// instead of `|`: the seqnum becomes 0 or 1 and the time
    /// `((t3<<8)||t2) << 16 | ((t1<<8)||t0)`. Off by default.
    pub logical_or_quirk: bool,
    radio: Rf12Demo,
    /// `DF_LOG_LIMIT`: one past the last page of the log area.
    limit: u16,
    /// The log area, pages `DF_LOG_BEGIN..limit`.
    flash: Vec<Page>,
    /// `dfBuf`: the page being filled in RAM.
    buf: Page,
    /// `dfFill`: bytes of `buf` in use.
    fill: usize,
    /// `dfLastPage`: the page saved last.
    last_page: u16,
    boot_ms: i64,
    booted: bool,
    heard: Vec<(i64, String)>,
}

impl Receiver {
    /// Fresh receiver with erased flash; not yet booted.
    ///
    /// The log area is `pages` pages from [`DF_LOG_BEGIN`] (at least one;
    /// the real 0.5 Mbyte JeeLink has 1760).
    pub fn new(seed: u64, pages: u16) -> Self {
        let pages = pages.clamp(1, u16::MAX - DF_LOG_BEGIN);
        Self {
            logical_or_quirk: false,
            radio: Rf12Demo::new(seed),
            limit: DF_LOG_BEGIN + pages,
            flash: vec![ERASED_PAGE; usize::from(pages)],
            buf: [0; PAGE_SIZE],
            fill: 0,
            last_page: 0,
            boot_ms: 0,
            booted: false,
            heard: Vec::new(),
        }
    }

    /// Power-on or reset at `now_ms` (caller's clock, ms): returns the lines printed (banner, `DF I ..`).
    ///
    /// The receiver's clock restarts at 0 and the unsaved packets in RAM are
    /// lost; the flash keeps its pages.
    pub fn boot(&mut self, now_ms: i64) -> Vec<String> {
        self.boot_ms = now_ms;
        self.booted = true;
        self.buf = [0; PAGE_SIZE];
        self.fill = 0;
        self.scan_for_last_save();
        let mut lines = vec![BANNER.to_string(), format!("DF I {} {}", self.last_page, seqnum_of(&self.buf))];
        lines.extend(self.save_buf()); // as df_initialize does; nothing to save after a boot
        lines
    }

    /// The receiver hears the next packet at `now_ms`: the lines it prints
    /// (the `OK`/`?` line, then `DF S`/`DF E <block>` if a page was saved).
    ///
    /// Good packets (`OK`) are appended to the log; `?` packets with a bad
    /// CRC are printed only.
    pub fn receive(&mut self, now_ms: i64) -> Vec<String> {
        let mut lines = self.power_on(now_ms);
        let line = self.radio.next_packet();
        let entry = log_entry(&line);
        lines.push(line.clone());
        if let Some(entry) = entry {
            self.heard.push((now_ms, line));
            lines.extend(self.append(&entry, now_ms));
        }
        lines
    }

    /// Every good packet heard so far: (now_ms when heard, the `OK ...` line).
    pub fn heard(&self) -> &[(i64, String)] {
        &self.heard
    }

    /// A command from the host (without line terminator); the lines printed in answer.
    ///
    /// `<sh>,<sl>,<t3>,<t2>,<t1>,<t0>r` replays the log after the marker
    /// (seqnum `sh<<8|sl`, time `t3<<24|t2<<16|t1<<8|t0`, see
    /// [`logical_or_quirk`](Self::logical_or_quirk)); other commands are
    /// answered as [`Rf12Demo::answer`] does.
    pub fn command(&mut self, cmd: &str, now_ms: i64) -> Vec<String> {
        let mut lines = self.power_on(now_ms);
        let Some((stack, value)) = parse_replay(cmd) else {
            lines.extend(Rf12Demo::answer(cmd));
            return lines;
        };
        lines.push(format!("> {value}r"));
        let s = |k: usize| stack.get(k).copied().unwrap_or(0);
        let (seqnum, asof) = if self.logical_or_quirk {
            let seqnum = u16::from(s(0) != 0 || s(1) != 0);
            let asof = i32::from(s(2) != 0 || s(3) != 0) << 16 | i32::from(s(4) != 0 || value != 0);
            (seqnum, asof)
        } else {
            (u16::from_be_bytes([s(0), s(1)]), i32::from_be_bytes([s(2), s(3), s(4), value as u8]))
        };
        lines.extend(self.replay(seqnum, asof, now_ms));
        lines
    }

    /// Corrupts a saved page's data so its CRC fails (for tests); false if the page is erased or outside the log.
    pub fn damage_page(&mut self, page: u16) -> bool {
        match self.index(page) {
            Some(i) if seqnum_of(&self.flash[i]) != ERASED => {
                // A CRC-16 detects every error within one byte.
                self.flash[i][0] ^= 0x5A;
                true
            }
            _ => false,
        }
    }

    /// Pages currently saved (not erased), for tests.
    pub fn saved_pages(&self) -> Vec<u16> {
        (DF_LOG_BEGIN..self.limit).filter(|&p| seqnum_of(&self.read(p)) != ERASED).collect()
    }

    /// Incidents for the demo's health checks ([`Rf12Demo::incidents`]).
    pub fn incidents(&mut self, on: bool) {
        self.radio.incidents(on);
    }

    /// Lets callers continue counters from earlier logs (delegates to Rf12Demo::resume).
    pub fn resume(&mut self, line: &str) {
        self.radio.resume(line);
    }

    /// Boots first if this receiver was never booted.
    fn power_on(&mut self, now_ms: i64) -> Vec<String> {
        if self.booted {
            Vec::new()
        } else {
            self.boot(now_ms)
        }
    }

    /// `now()`: whole seconds since boot.
    fn now(&self, now_ms: i64) -> i32 {
        ((now_ms - self.boot_ms).max(0) / 1000).min(i64::from(i32::MAX)) as i32
    }

    /// `millis()`: milliseconds since boot, wrapping at 32 bits like the AVR's.
    fn millis(&self, now_ms: i64) -> u32 {
        (now_ms - self.boot_ms).max(0) as u32
    }

    /// `df_wrap`: pages past the log area wrap to its beginning.
    fn wrap(&self, page: u32) -> u16 {
        if page < u32::from(self.limit) {
            page as u16
        } else {
            DF_LOG_BEGIN
        }
    }

    fn index(&self, page: u16) -> Option<usize> {
        if (DF_LOG_BEGIN..self.limit).contains(&page) {
            Some(usize::from(page - DF_LOG_BEGIN))
        } else {
            None
        }
    }

    /// A page as the flash returns it; pages outside the log area read as erased.
    fn read(&self, page: u16) -> Page {
        self.index(page).map_or(ERASED_PAGE, |i| self.flash[i])
    }

    /// `df_append`: adds an entry (`[hdr, len, payload...]`) to the RAM page,
    /// saving the page first when the entry's offset or size does not fit.
    fn append(&mut self, entry: &[u8], now_ms: i64) -> Vec<String> {
        let now = self.now(now_ms);
        if self.fill == 0 {
            set_timestamp(&mut self.buf, now);
        }
        let mut offset = i64::from(now) - i64::from(timestamp_of(&self.buf));
        let mut lines = Vec::new();
        if offset >= 255 || self.fill + 1 + entry.len() > PAGE_DATA {
            lines = self.save_buf();
            set_timestamp(&mut self.buf, now);
            offset = 0;
        }
        self.buf[self.fill] = offset as u8;
        self.fill += 1;
        self.buf[self.fill..self.fill + entry.len()].copy_from_slice(entry);
        self.fill += entry.len();
        lines
    }

    /// `df_saveBuf`: writes the RAM page to the next log page.
    fn save_buf(&mut self) -> Vec<String> {
        if self.fill == 0 {
            return Vec::new();
        }
        self.last_page = self.wrap(u32::from(self.last_page) + 1);
        if self.last_page == DF_LOG_BEGIN {
            let bumped = seqnum_of(&self.buf).wrapping_add(1); // bump to next seqnum when wrapping
            set_seqnum(&mut self.buf, bumped);
        }
        self.buf[self.fill..PAGE_DATA].fill(0xFF);
        let crc = crc16(&self.buf[..CRC_AT]);
        self.buf[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        if let Some(i) = self.index(self.last_page) {
            self.flash[i] = self.buf;
        }
        self.fill = 0;
        let mut lines = vec![format!("DF S {} {} {}", self.last_page, seqnum_of(&self.buf), timestamp_of(&self.buf))];
        // Erase the next block when this page began a fresh one.
        if self.last_page.is_multiple_of(DF_BLOCK_SIZE) {
            let block = self.wrap(u32::from(self.last_page) + u32::from(DF_BLOCK_SIZE));
            lines.push(format!("DF E {block}"));
            self.erase(block);
        }
        lines
    }

    /// `df_erase`: erases the block holding `page`.
    fn erase(&mut self, page: u16) {
        let start = page - page % DF_BLOCK_SIZE;
        for p in start..start.saturating_add(DF_BLOCK_SIZE) {
            if let Some(i) = self.index(p) {
                self.flash[i] = ERASED_PAGE;
            }
        }
    }

    /// `scanForLastSave`: the last page saved before an erased one, and the seqnum after it.
    fn scan_for_last_save(&mut self) {
        let mut seqnum = 0;
        self.last_page = self.limit - 1;
        for page in DF_LOG_BEGIN..self.limit {
            let curr = seqnum_of(&self.read(page));
            if curr != ERASED {
                self.last_page = page;
                seqnum = curr.wrapping_add(1);
            } else if self.last_page == page - 1 {
                break; // careful with the empty-filled-empty case, i.e. after a wrap
            }
        }
        set_seqnum(&mut self.buf, seqnum);
    }

    /// `scanForMarker`: the page a replay from (`seqnum`, `asof`) starts after; 0 if none.
    fn scan_for_marker(&self, seqnum: u16, asof: i32) -> u16 {
        let mut last_page = 0;
        let mut last_seqnum = ERASED;
        for page in DF_LOG_BEGIN..self.limit {
            let curr = self.read(page);
            let curr_seqnum = seqnum_of(&curr);
            if curr_seqnum == ERASED {
                continue;
            }
            if curr_seqnum >= seqnum && curr_seqnum < last_seqnum {
                last_seqnum = curr_seqnum;
                last_page = page;
            }
            if curr_seqnum == last_seqnum && timestamp_of(&curr) <= asof {
                last_page = page;
            }
        }
        last_page
    }

    /// `df_replay`: prints the saved pages after the marker up to the last saved page.
    fn replay(&mut self, seqnum: u16, asof: i32, now_ms: i64) -> Vec<String> {
        let mut page = self.scan_for_marker(seqnum, asof);
        let mut lines = vec![format!("r: page {page} {}", self.last_page)];
        let saved_seqnum = seqnum_of(&self.buf);
        // Starting from page 0 (no marker found) the walk passes the reserved
        // pages; every page below the limit is reached once per round, so one
        // round ends it even if the last page were outside the log.
        for _ in 0..=self.limit {
            if page == self.last_page {
                break;
            }
            page = self.wrap(u32::from(page) + 1);
            self.buf = self.read(page); // overwrites the RAM buffer!
            if seqnum_of(&self.buf) == ERASED {
                continue; // page never written to
            }
            let crc = crc16(&self.buf);
            if crc != 0 {
                lines.push(format!("DF C? {page} {crc}"));
                continue;
            }
            let (seq, timestamp) = (seqnum_of(&self.buf), timestamp_of(&self.buf));
            let mut i = 0;
            while i < PAGE_DATA && self.buf[i] < 255 {
                let time = timestamp.wrapping_add(i32::from(self.buf[i]));
                let Some(&[header, len]) = self.buf.get(i + 1..i + 3) else { break };
                let Some(payload) = self.buf.get(i + 3..i + 3 + usize::from(len)) else { break };
                let mut line = format!("R {seq} {time} {header}");
                for b in payload {
                    line.push(' ');
                    line.push_str(&b.to_string());
                }
                lines.push(line);
                i += 3 + usize::from(len);
            }
            lines.push(format!("DF R {page} {seq} {timestamp}"));
        }
        self.fill = 0; // the RAM buffer is no longer valid: its packets are lost
        set_seqnum(&mut self.buf, saved_seqnum.wrapping_add(1)); // so the next replay starts at a new value
        lines.push(format!("DF E {} {} {}", self.last_page, seqnum_of(&self.buf), self.millis(now_ms)));
        lines
    }
}

/// The log entry of a good packet line, as RF12demo stores it: header,
/// length, payload. None for other lines.
fn log_entry(line: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = line.strip_prefix("OK ")?.split_ascii_whitespace().map(|b| b.parse().ok()).collect::<Option<_>>()?;
    let (&header, payload) = bytes.split_first()?;
    let len = u8::try_from(payload.len()).ok().filter(|&n| usize::from(n) + 3 <= PAGE_DATA)?;
    Some([header, len].into_iter().chain(payload.iter().copied()).collect())
}

/// Parses `<v>,<v>,...,<v>r` the way RF12demo's input handler does: each
/// value before a comma is pushed as a byte, the last one stays a 16-bit
/// int. Spaces are ignored. None for anything but a replay command.
fn parse_replay(cmd: &str) -> Option<(Vec<u8>, u16)> {
    let body = cmd.trim().strip_suffix('r')?;
    let mut stack = Vec::new();
    let mut value: u16 = 0;
    for c in body.chars() {
        match c {
            '0'..='9' => value = value.wrapping_mul(10).wrapping_add(c as u16 - u16::from(b'0')),
            ',' => {
                stack.push(value as u8);
                value = 0;
            }
            ' ' => {}
            _ => return None,
        }
    }
    Some((stack, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller's clock at the first boot (ms since the Unix epoch).
    const T0: i64 = 1_700_000_000_000;

    /// A page saved in a test run, from the `DF S` line and the packets heard.
    #[derive(Debug, Clone)]
    struct Saved {
        page: u16,
        seq: u16,
        ts: i64,
        /// (receiver seconds when heard, the `OK` line)
        packets: Vec<(i64, String)>,
    }

    impl Saved {
        /// The lines a replay prints for this page.
        fn replayed(&self) -> Vec<String> {
            let mut lines: Vec<String> =
                self.packets.iter().map(|(secs, ok)| format!("R {} {secs} {}", self.seq, ok.strip_prefix("OK ").unwrap())).collect();
            lines.push(format!("DF R {} {} {}", self.page, self.seq, self.ts));
            lines
        }
    }

    /// What the test expects of the receiver, built from what it printed.
    #[derive(Debug)]
    struct Run {
        rx: Receiver,
        boot_ms: i64,
        /// Good packets in the RAM buffer: (receiver seconds, `OK` line).
        open: Vec<(i64, String)>,
        saved: Vec<Saved>,
        /// `DF E <block>` lines printed after a save, with the saved page.
        erased: Vec<(u16, u16)>,
    }

    impl Run {
        fn new(seed: u64, pages: u16) -> Self {
            let mut rx = Receiver::new(seed, pages);
            let lines = rx.boot(T0);
            assert_eq!(lines, [BANNER.to_string(), format!("DF I {} 0", DF_LOG_BEGIN + pages - 1)]);
            Self { rx, boot_ms: T0, open: Vec::new(), saved: Vec::new(), erased: Vec::new() }
        }

        fn boot(&mut self, now_ms: i64) -> Vec<String> {
            self.boot_ms = now_ms;
            self.open.clear();
            self.rx.boot(now_ms)
        }

        fn hear(&mut self, now_ms: i64) -> Vec<String> {
            let out = self.rx.receive(now_ms);
            let secs = (now_ms - self.boot_ms) / 1000;
            if out[0].starts_with("? ") {
                assert_eq!(out.len(), 1, "a bad packet is not stored: {out:?}");
                return out;
            }
            assert!(out[0].starts_with("OK "), "{out:?}");
            assert_eq!(self.rx.heard().last(), Some(&(now_ms, out[0].clone())));
            if out.len() > 1 {
                let f: Vec<i64> =
                    out[1].strip_prefix("DF S ").expect("DF S after the OK line").split(' ').map(|v| v.parse().unwrap()).collect();
                let (page, seq, ts) = (f[0] as u16, f[1] as u16, f[2]);
                assert_eq!(ts, self.open[0].0, "a page's timestamp is when its first packet was heard");
                self.saved.push(Saved { page, seq, ts, packets: std::mem::take(&mut self.open) });
                if out.len() > 2 {
                    let block: u16 = out[2].strip_prefix("DF E ").expect("DF E after DF S").parse().unwrap();
                    self.erased.push((page, block));
                }
                assert!(out.len() <= 3, "{out:?}");
            }
            self.open.push((secs, out[0].clone()));
            out
        }

        /// Hears a packet every `step_ms` from `from_ms` while `until` is false.
        fn hear_until(&mut self, from_ms: i64, step_ms: i64, mut until: impl FnMut(&Self) -> bool) -> i64 {
            let mut t = from_ms;
            while !until(self) {
                self.hear(t);
                t += step_ms;
            }
            t
        }

        fn saved_page(&self, page: u16) -> &Saved {
            self.saved.iter().rev().find(|s| s.page == page).expect("a saved page")
        }
    }

    /// The replay command for a marker: `sh,sl,t3,t2,t1,t0r`.
    fn marker(seq: u16, ts: i64) -> String {
        let [sh, sl] = seq.to_be_bytes();
        let [t3, t2, t1, t0] = (ts as u32).to_be_bytes();
        format!("{sh},{sl},{t3},{t2},{t1},{t0}r")
    }

    fn r_lines(lines: &[String]) -> Vec<&String> {
        lines.iter().filter(|l| l.starts_with("R ")).collect()
    }

    /// How often a packet (`OK` line) is among the replayed `R` lines.
    fn replayed_times(lines: &[String], ok: &str) -> usize {
        let bytes = ok.strip_prefix("OK ").unwrap();
        r_lines(lines).iter().filter(|l| l.splitn(4, ' ').nth(3) == Some(bytes)).count()
    }

    /// How often a packet is among the given saved pages.
    fn saved_times(pages: &[Saved], ok: &str) -> usize {
        pages.iter().flat_map(|s| &s.packets).filter(|(_, l)| l == ok).count()
    }

    #[test]
    fn packets_fill_pages_saved_in_order_with_their_start_time() {
        let mut run = Run::new(1, 64);
        // A packet every 2.5 s, for some 20 minutes.
        run.hear_until(T0, 2500, |r| r.saved.len() >= 18);
        // Bytes of an entry: offset, header, length, payload.
        let size = |ok: &str| 1 + ok.split(' ').count();
        for (k, s) in run.saved.iter().enumerate() {
            assert_eq!(s.page, DF_LOG_BEGIN + k as u16, "pages are saved in order");
            assert_eq!(s.seq, 1, "the first save wraps from the last page, bumping seq 0 to 1");
            // Pages fill up by size here: the next packet did not fit.
            let used: usize = s.packets.iter().map(|(_, ok)| size(ok)).sum();
            let next = run.saved.get(k + 1).map_or(&run.open[0], |n| &n.packets[0]);
            assert!(used <= PAGE_DATA && used + size(&next.1) > PAGE_DATA, "page {} uses {used}", s.page);
        }
        assert!(run.saved.windows(2).all(|w| w[0].ts < w[1].ts));
        assert_eq!(run.erased, [(32, 48), (48, 64)], "a save into a fresh block erases the block after it");
        let saved: Vec<u16> = run.saved.iter().map(|s| s.page).collect();
        assert_eq!(run.rx.saved_pages(), saved);
        // The packet that did not fit is the first of the next page, with offset 0.
        let first = &run.saved[1].packets[0];
        assert_eq!(first.0, run.saved[1].ts);
    }

    #[test]
    fn a_page_is_saved_when_an_offset_would_not_fit_in_a_byte() {
        let mut run = Run::new(2, 64);
        run.hear_until(T0, 100_000, |r| r.saved.len() >= 4); // every 100 s
        for (k, s) in run.saved.iter().enumerate() {
            assert_eq!(s.page, DF_LOG_BEGIN + k as u16);
            assert!(s.packets.iter().all(|p| p.0 - s.ts < 255), "offsets fit in a byte");
            let next = run.saved.get(k + 1).map_or(&run.open[0], |n| &n.packets[0]);
            assert!(next.0 - s.ts >= 255, "the next packet starts a new page");
            assert!(s.packets.len() <= 3);
        }
    }

    #[test]
    fn a_replay_prints_the_pages_after_the_marker_and_loses_the_ram_buffer() {
        let mut run = Run::new(3, 64);
        let t = run.hear_until(T0, 3000, |r| r.saved.len() >= 8 && r.open.len() >= 5);
        let last = run.saved.last().unwrap().page;
        let mark = run.saved[3].clone();
        let lost: Vec<String> = run.open.iter().map(|p| p.1.clone()).collect();

        let now = t + 1234;
        let out = run.rx.command(&format!("  {}  ", marker(mark.seq, mark.ts)), now);
        let mut expected = vec![format!("> {}r", mark.ts as u8), format!("r: page {} {last}", mark.page)];
        for s in &run.saved[4..] {
            expected.extend(s.replayed());
        }
        expected.push(format!("DF E {last} 2 {}", now - T0));
        assert_eq!(out, expected);
        // R times are the receiver seconds each packet was heard, bytes those of its OK line.
        assert_eq!(r_lines(&out).len(), run.saved[4..].iter().map(|s| s.packets.len()).sum::<usize>());

        // The RAM buffer is gone: the next page starts with the packets heard after the replay, seq bumped.
        run.open.clear();
        let before = run.saved.len();
        run.hear_until(now + 500, 3000, |r| r.saved.len() > before);
        let next = run.saved.last().unwrap().clone();
        assert_eq!((next.page, next.seq), (last + 1, 2));
        assert!(next.packets[0].0 >= (now - T0) / 1000);

        // Replaying the same marker again: the same pages, then the new one; the lost packets never.
        let again = run.rx.command(&marker(mark.seq, mark.ts), now + 600_000);
        let mut expected = vec![format!("> {}r", mark.ts as u8), format!("r: page {} {}", mark.page, next.page)];
        for s in &run.saved[4..] {
            expected.extend(s.replayed());
        }
        expected.push(format!("DF E {} 3 {}", next.page, now + 600_000 - T0));
        assert_eq!(again, expected);
        assert!(!lost.is_empty());
        for ok in &lost {
            let heard_at = run.rx.heard().iter().filter(|(_, l)| l == ok).count();
            assert_eq!(replayed_times(&again, ok), saved_times(&run.saved[4..], ok), "{ok}");
            assert!(saved_times(&run.saved, ok) < heard_at, "{ok} was lost");
        }
    }

    #[test]
    fn a_replay_from_the_last_saved_page_prints_nothing_but_bumps_seq() {
        let mut run = Run::new(4, 64);
        run.hear_until(T0, 3000, |r| r.saved.len() >= 2);
        let last = run.saved.last().unwrap().clone();
        let out = run.rx.command(&marker(last.seq, last.ts), T0 + 999_999);
        assert_eq!(
            out,
            [format!("> {}r", last.ts as u8), format!("r: page {} {}", last.page, last.page), format!("DF E {} 2 999999", last.page)]
        );
        let out = run.rx.command(&marker(last.seq, last.ts), T0 + 1_000_000);
        assert_eq!(out.last().unwrap(), &format!("DF E {} 3 1000000", last.page));
    }

    #[test]
    fn no_matching_marker_replays_from_the_start_of_the_log_area() {
        let mut rx = Receiver::new(5, 64);
        rx.boot(T0);
        // Fresh flash: nothing saved, the walk goes from page 1 to the last page 95.
        assert_eq!(rx.command("0,0,0,0,0,0r", T0 + 42), ["> 0r", "r: page 0 95", "DF E 95 1 42"]);

        let mut run = Run::new(5, 64);
        run.hear_until(T0, 3000, |r| r.saved.len() >= 3);
        let last = run.saved.last().unwrap().page;
        let out = run.rx.command(&marker(500, 0), T0 + 5_000_000);
        let mut expected = vec!["> 0r".to_string(), format!("r: page 0 {last}")];
        for s in &run.saved {
            expected.extend(s.replayed());
        }
        expected.push(format!("DF E {last} 2 5000000"));
        assert_eq!(out, expected);
    }

    #[test]
    fn seq_bumps_at_wrap_and_the_block_ahead_is_erased() {
        let mut run = Run::new(6, 32); // pages 32..64
        run.hear_until(T0, 3000, |r| r.saved.len() >= 40);
        let pages: Vec<(u16, u16)> = run.saved.iter().map(|s| (s.page, s.seq)).collect();
        let expected: Vec<(u16, u16)> = (0..40).map(|k| (32 + k % 32, 1 + k / 32)).collect();
        assert_eq!(pages, expected);
        assert_eq!(run.erased, [(32, 48), (48, 32), (32, 48)]);
        // Page 32 (seq 2) erased 48..64; 33..39 are seq 2, the rest was erased by the save into 48.
        assert_eq!(run.rx.saved_pages(), (32..40).collect::<Vec<_>>());
        for s in &run.saved[32..] {
            let page = run.rx.read(s.page);
            assert_eq!((seqnum_of(&page), i64::from(timestamp_of(&page))), (2, s.ts));
        }
    }

    #[test]
    fn a_damaged_page_is_reported_and_its_entries_skipped() {
        let mut run = Run::new(7, 64);
        run.hear_until(T0, 3000, |r| r.saved.len() >= 8);
        let bad = run.saved[5].page;
        assert!(run.rx.damage_page(bad));
        assert!(!run.rx.damage_page(90), "an erased page");
        assert!(!run.rx.damage_page(10), "outside the log");
        assert!(!run.rx.damage_page(96), "past the log");

        let mark = run.saved[2].clone();
        let out = run.rx.command(&marker(mark.seq, mark.ts), T0 + 3_600_000);
        let last = run.saved.last().unwrap().page;
        let mut expected = vec![format!("> {}r", mark.ts as u8), format!("r: page {} {last}", mark.page)];
        for s in &run.saved[3..] {
            if s.page == bad {
                let crc = crc16(&run.rx.read(bad));
                assert_ne!(crc, 0);
                expected.push(format!("DF C? {bad} {crc}"));
            } else {
                expected.extend(s.replayed());
            }
        }
        expected.push(format!("DF E {last} 2 3600000"));
        assert_eq!(out, expected);
    }

    #[test]
    fn intact_pages_pass_the_firmware_crc_check() {
        let mut run = Run::new(8, 64);
        run.hear_until(T0, 3000, |r| r.saved.len() >= 4);
        for p in run.rx.saved_pages() {
            let page = run.rx.read(p);
            assert_eq!(crc16(&page), 0, "page {p}");
            assert_ne!(u16::from_le_bytes([page[CRC_AT], page[CRC_AT + 1]]), 0xFFFF);
        }
    }

    #[test]
    fn boot_finds_the_last_page_and_restarts_the_clock() {
        let mut run = Run::new(9, 64);
        let t = run.hear_until(T0, 3000, |r| r.saved.len() >= 5 && r.open.len() >= 3);
        let last = run.saved.last().unwrap().page;
        let lost: Vec<String> = run.open.iter().map(|p| p.1.clone()).collect();

        let t1 = t + 3_600_000;
        assert_eq!(run.boot(t1), [BANNER.to_string(), format!("DF I {last} 2")]);
        // The clock restarts: seconds since this boot.
        let before = run.saved.len();
        run.hear_until(t1 + 7_400, 3000, |r| r.saved.len() > before);
        let next = run.saved.last().unwrap().clone();
        assert_eq!((next.page, next.seq, next.ts), (last + 1, 2, 7));
        // Seq 0 matches the seq 1 pages; the first one, page 32, is the marker.
        let out = run.rx.command(&marker(0, 0), t1 + 123_456);
        let mut expected = vec!["> 0r".to_string(), format!("r: page 32 {}", next.page)];
        for s in &run.saved[1..] {
            expected.extend(s.replayed());
        }
        expected.push(format!("DF E {} 3 123456", next.page));
        assert_eq!(out, expected);
        for ok in &lost {
            assert_eq!(replayed_times(&out, ok), saved_times(&run.saved[1..], ok), "{ok} was lost");
        }
    }

    #[test]
    fn boot_after_a_wrap_finds_the_page_before_the_gap() {
        let mut run = Run::new(10, 64); // pages 32..96
        run.hear_until(T0, 3000, |r| r.saved.len() >= 64 + 3);
        // Pages 32..=34 hold seq 2; 35..48 and 48..64 are erased; 64..96 hold seq 1.
        let mut expected: Vec<u16> = (32..35).collect();
        expected.extend(64..96);
        assert_eq!(run.rx.saved_pages(), expected);
        assert_eq!(run.boot(T0 + 86_400_000), [BANNER.to_string(), "DF I 34 3".to_string()]);
        // The oldest page surviving is 64 (seq 1): a marker before it replays the
        // log after it, wrapping to 32.
        let out = run.rx.command(&marker(1, 0), T0 + 86_401_000);
        assert_eq!(out[1], "r: page 64 34");
        let pages: Vec<&str> = out.iter().filter_map(|l| l.strip_prefix("DF R ")).map(|l| l.split(' ').next().unwrap()).collect();
        let expected: Vec<String> = (65..96).chain(32..35).map(|p| p.to_string()).collect();
        assert_eq!(pages, expected);
        assert_eq!(out[2], run.saved_page(65).replayed()[0]);
    }

    #[test]
    fn the_logical_or_quirk_replays_from_an_earlier_page() {
        let mut run = Run::new(11, 64);
        let t = run.hear_until(T0, 3000, |r| r.saved.len() >= 4);
        run.rx.command("1,2r", t); // a replay bumps seq to 2
        run.open.clear();
        let n = run.saved.len();
        let t = run.hear_until(t + 1000, 3000, |r| r.saved.len() >= n + 6);
        let mark = run.saved[n + 3].clone();
        assert_eq!(mark.seq, 2);
        assert!(mark.ts > 255, "t1 is nonzero");
        let last = run.saved.last().unwrap().page;

        let correct = run.rx.clone().command(&marker(mark.seq, mark.ts), t);
        assert_eq!(correct[1], format!("r: page {} {last}", mark.page));
        let mut quirky = run.rx.clone();
        quirky.logical_or_quirk = true;
        let out = quirky.command(&marker(mark.seq, mark.ts), t);
        // seqnum 2 decodes as 1 and the time as 1: the first page of seq 1 (time 0 <= 1).
        assert_eq!(out[1], format!("r: page 32 {last}"));
        let mut expected = vec![format!("> {}r", mark.ts as u8), format!("r: page 32 {last}")];
        for s in &run.saved[1..] {
            expected.extend(s.replayed());
        }
        expected.push(format!("DF E {last} 3 {}", t - T0));
        assert_eq!(out, expected);
        assert!(r_lines(&out).len() > r_lines(&correct).len());
    }

    #[test]
    fn other_commands_are_answered_like_rf12demo_and_receiving_boots_first() {
        let mut rx = Receiver::new(12, 64);
        let out = rx.command("8b", T0);
        assert_eq!(out[..2], [BANNER.to_string(), "DF I 95 0".to_string()]);
        assert_eq!(out[2..], Rf12Demo::answer("8b"));
        assert_eq!(rx.command("1,2x", T0), Rf12Demo::answer("1,2x"));
        assert_eq!(rx.command("", T0), Vec::<String>::new());
        assert_eq!(rx.command("300r", T0)[0], "> 300r");

        let mut fresh = Receiver::new(12, 64);
        let out = fresh.receive(T0);
        assert_eq!(out[..2], [BANNER.to_string(), "DF I 95 0".to_string()]);
        assert!(out[2].starts_with("OK ") || out[2].starts_with("? "));
        // Rf12Demo's fake `DF S` lines never show: only the receiver's own saves.
        for line in (1..500).flat_map(|k| fresh.receive(T0 + k * 1000)) {
            if let Some(save) = line.strip_prefix("DF S ") {
                let page: u16 = save.split(' ').next().unwrap().parse().unwrap();
                assert!((32..96).contains(&page), "{line}");
            } else {
                assert!(line.starts_with("OK ") || line.starts_with("? ") || line.starts_with("DF E "), "{line}");
            }
        }
    }

    #[test]
    fn replay_commands_parse_like_the_firmware() {
        assert_eq!(parse_replay("0,1,0,0,2,156r"), Some((vec![0, 1, 0, 0, 2], 156)));
        assert_eq!(parse_replay(" 1 , 2 r "), Some((vec![1], 2)));
        assert_eq!(parse_replay("r"), Some((vec![], 0)));
        assert_eq!(parse_replay("300,1r"), Some((vec![44], 1)), "stack values are bytes");
        assert_eq!(parse_replay("1,2b"), None);
        assert_eq!(parse_replay("r1"), None);
        assert_eq!(log_entry("OK 2 1 115 179 0"), Some(vec![2, 4, 1, 115, 179, 0]));
        assert_eq!(log_entry("? 2 1 115"), None);
    }
}
