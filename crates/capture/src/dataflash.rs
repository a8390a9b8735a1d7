//! A JeeLink's dataflash: the receiver saves every good packet in its flash
//! memory, and replays what the recorder missed when asked (RF12demo's
//! DATAFLASH builds, the JeeMon design).
//!
//! The lines involved, as the firmware prints them:
//! - `DF S <page> <seq> <time>` when it saved a page (`time`: receiver
//!   seconds when the page's first packet came); printed right after the
//!   `OK` line of the packet that starts the *next* page;
//! - `DF I <lastpage> <seq>` at start-up (the receiver clock is then 0);
//! - after the command `<sh>,<sl>,<t3>,<t2>,<t1>,<t0> r`: `r: page <from>
//!   <last>`, then per saved page one `R <seq> <time> <hdr> <bytes...>` per
//!   packet and `DF R <page> <seq> <time>`, `DF C? <page> <crc>` for a page
//!   whose CRC is wrong, and `DF E <lastpage> <seq> <millis>` at the end;
//! - `DF E <block>` when it erased a block.
//!
//! [`Progress`] follows these lines of one source, in log order, to know
//! which pages are in the log and where the next replay starts
//! ([`Progress::replay_command`]); the decoder (`decode::dataflash`) builds
//! on it to place replayed packets in time. Pages are ordered by
//! `(seq, time)`: the firmware bumps `seq` at start-up, when the log wraps
//! and after a replay, and `time` grows within one `seq`.

/// One dataflash line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlashLine {
    /// `DF S`: a page was saved.
    Saved(Page),
    /// `DF I`: the receiver started; its next pages carry `seq`.
    Started { last_page: u16, seq: u16 },
    /// `r: page`: a replay begins.
    ReplayStart { from: u16, last: u16 },
    /// `R`: one packet from the flash.
    Replayed { seq: u16, time: u32, header: u8, payload: Vec<u8> },
    /// `DF R`: every packet of a page was replayed.
    ReplayedPage(Page),
    /// `DF C?`: a page's CRC is wrong; its packets are lost.
    Damaged { page: u16 },
    /// `DF E` with three numbers: the replay is over (it went up to page
    /// `last_page`); new pages carry `seq`.
    ReplayEnd { last_page: u16, seq: u16, millis: u64 },
    /// `DF E <block>`: a block was erased.
    Erased,
}

/// A saved page: its number, sequence number and start time (receiver seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub page: u16,
    pub seq: u16,
    pub time: u32,
}

impl Page {
    /// The order pages were saved in.
    pub fn order(&self) -> (u16, u32) {
        (self.seq, self.time)
    }
}

/// Recognises a dataflash line.
pub fn parse(text: &str) -> Option<FlashLine> {
    let t = text.trim();
    let mut words = t.split_ascii_whitespace();
    let first = words.next()?;
    let mut num = || -> Option<u64> { words.next()?.parse().ok() };
    match first {
        "R" => {
            let seq = u16::try_from(num()?).ok()?;
            let time = u32::try_from(num()?).ok()?;
            let header = u8::try_from(num()?).ok()?;
            let mut payload = Vec::new();
            while let Some(b) = num() {
                payload.push(u8::try_from(b).ok()?);
            }
            // Anything that is not a number ends the parse early: check it was all numbers.
            (t.split_ascii_whitespace().count() == 4 + payload.len()).then_some(FlashLine::Replayed { seq, time, header, payload })
        }
        "r:" => {
            if words.next()? != "page" {
                return None;
            }
            let mut num = || -> Option<u16> { words.next()?.parse().ok() };
            Some(FlashLine::ReplayStart { from: num()?, last: num()? })
        }
        "DF" => {
            let what = words.next()?;
            let nums: Vec<u64> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
            let page = |n: &[u64]| -> Option<Page> {
                Some(Page { page: u16::try_from(n[0]).ok()?, seq: u16::try_from(n[1]).ok()?, time: u32::try_from(n[2]).ok()? })
            };
            match (what, nums.len()) {
                ("S", 3) => page(&nums).map(FlashLine::Saved),
                ("R", 3) => page(&nums).map(FlashLine::ReplayedPage),
                ("I", 2) => Some(FlashLine::Started { last_page: u16::try_from(nums[0]).ok()?, seq: u16::try_from(nums[1]).ok()? }),
                ("C?", 2) => Some(FlashLine::Damaged { page: u16::try_from(nums[0]).ok()? }),
                ("E", 3) => Some(FlashLine::ReplayEnd {
                    last_page: u16::try_from(nums[0]).ok()?,
                    seq: u16::try_from(nums[1]).ok()?,
                    millis: nums[2],
                }),
                ("E", 1) => Some(FlashLine::Erased),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether page number `next` is the one saved after `prev`: one higher, or
/// a wrap back to the start of the log area (whose bounds are not printed).
pub fn follows(next: u16, prev: u16) -> bool {
    next == prev.wrapping_add(1) || next < prev
}

/// Which pages of a receiver's flash are in the log, from its lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The newest page known to be in the log entirely (live or replayed).
    pub through: Option<Page>,
    /// A replay began (`r: page`) and has not ended (`DF E`).
    pub replaying: bool,
    /// The receiver was reconnected since the last replay: the page it was
    /// filling when the connection broke holds packets nobody logged.
    pub gap: bool,
    /// The `seq` a start (`DF I`) announced, while no page of that run is in
    /// the log whole: an outage within its first page is replayed from the
    /// end of the run before.
    pub started: Option<u16>,
}

impl Progress {
    /// Capture (re)connected to the receiver: until a replay ends, pages it
    /// saves may hold packets that were not logged.
    pub fn connected(&mut self) {
        self.gap = self.through.is_some() || self.started.is_some();
    }

    /// Follows a dataflash line of the source.
    pub fn observe(&mut self, line: &FlashLine) {
        match line {
            // A start whose next seq is not past the page known to be
            // logged, or a page saved with an older seq: another flash (a
            // wiped one, another receiver). Its pages are not ours to replay.
            FlashLine::Started { seq, .. } if self.through.is_some_and(|t| *seq <= t.seq) => {
                self.through = None;
                self.gap = false;
                self.started = Some(*seq);
            }
            // A restart after the first: the earlier run is the one to replay from its start.
            FlashLine::Started { seq, .. } if self.through.is_none() => self.started = Some(self.started.map_or(*seq, |s| s.min(*seq))),
            FlashLine::Saved(p) if self.through.is_some_and(|t| p.seq < t.seq) => {
                self.through = Some(*p);
                self.gap = false;
            }
            FlashLine::Saved(p) => {
                // A page saved right after the page known to be logged was
                // logged live entirely; after a gap (or while a replay is
                // unfinished) what came before it waits for the replay.
                // (Pages can share a start second: the order is `>=`.)
                let next = self.through.is_none_or(|t| follows(p.page, t.page) && p.order() >= t.order());
                if next && !self.replaying && !self.gap {
                    self.through = Some(*p);
                    self.started = None;
                }
            }
            FlashLine::ReplayStart { .. } => self.replaying = true,
            FlashLine::ReplayedPage(p) => {
                if self.through.is_none_or(|t| p.order() >= t.order()) {
                    self.through = Some(*p);
                    self.started = None;
                }
            }
            FlashLine::ReplayEnd { last_page, .. } => {
                // The replay went up to the last page saved (a damaged last
                // page printed no `DF R`): pages saved from now on follow it.
                if let Some(t) = &mut self.through {
                    t.page = *last_page;
                }
                self.replaying = false;
                self.gap = false;
            }
            FlashLine::Started { .. } | FlashLine::Replayed { .. } | FlashLine::Damaged { .. } | FlashLine::Erased => {}
        }
    }

    /// The command that replays every page after the last one known to be
    /// logged, or none before any page was seen. blackbox sends the bytes as
    /// the command documents them (`sh,sl,t3,t2,t1,t0 r`, high byte first);
    /// a firmware that combines them with a logical `||` replays from an
    /// earlier page, and the decoder drops what is logged already.
    ///
    /// The time sent is one second before the page's: the firmware starts
    /// after the *last* page of that `seq` whose time is not later than the
    /// one sent, and a busy receiver can save several pages within one
    /// second; the page itself is then replayed again and recognised.
    ///
    /// Before a page of the receiver's current run is in the log whole, but
    /// after its start (`DF I`) was logged, the marker is the end of the run
    /// before (its `seq` less one, the latest time): the firmware then replays
    /// the whole current run. An empty flash (`seq` 0) has no run before.
    pub fn replay_command(&self) -> Option<String> {
        let (seq, time) = match (self.through, self.started) {
            (Some(p), _) => (p.seq, p.time.saturating_sub(1)),
            // The firmware's time is a signed `long`: its latest is 2^31 - 1.
            (None, Some(seq)) if seq > 0 => (seq - 1, i32::MAX as u32),
            _ => return None,
        };
        let [sh, sl] = seq.to_be_bytes();
        let [t3, t2, t1, t0] = time.to_be_bytes();
        Some(format!("{sh},{sl},{t3},{t2},{t1},{t0} r"))
    }
}

/// How long capture waits, after connecting, for the receiver to save the
/// page it was filling (`DF S`) or to report a restart (`DF I`) before it
/// asks for the replay anyway. The firmware replays saved pages only and
/// then drops the page it was filling: asking once that page is saved loses
/// nothing. A page is saved at the first packet 255 s after it began.
pub const REPLAY_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// The longest a replay may take: capture sends no command meanwhile (the
/// firmware ends a replay at any input). 1,760 pages of a 512 KB JeeLink at
/// 57,600 baud take about 6 minutes.
pub const REPLAY_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Where the replay of `source` starts, from its lines in the daily files
/// under `logs`: the newest day files are read back to the last one with a
/// `DF` line (at most `MAX_DAYS` of them), then followed in order.
pub fn progress_from_logs(logs: &std::path::Path, source: &str) -> Progress {
    const MAX_DAYS: usize = 31;
    let mut progress = Progress::default();
    let Ok(scan) = logfile::scan(logs) else { return progress };
    // `None` stands for a `connect` line of the source.
    let mut days: Vec<Vec<Option<FlashLine>>> = Vec::new();
    for day in scan.days.iter().rev().take(MAX_DAYS) {
        let mut lines = Vec::new();
        let Ok(mut reader) = logfile::reader::DayReader::open(day) else { continue };
        while let Ok(Some(raw)) = reader.next_line() {
            // Most lines are none of these: skip them before parsing (`L` and
            // `#` records put the source or the event after a 12-byte time).
            let rest = raw.bytes.get(15..).unwrap_or_default();
            let of_source = rest.strip_prefix(source.as_bytes()).and_then(|r| r.strip_prefix(b" "));
            if !(of_source.is_some_and(|t| t.starts_with(b"DF ") || t.starts_with(b"r: ")) || rest.starts_with(b"connect ")) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(raw.bytes) else { continue };
            match logfile::parse_line(text) {
                Ok(logfile::Line::Reading { source: s, text, .. }) if s == source => {
                    if let Some(l) = parse(text) {
                        lines.push(Some(l));
                    }
                }
                Ok(logfile::Line::Meta { event: "connect", args, .. }) if args.get("source") == Some(source) => lines.push(None),
                _ => {}
            }
        }
        let found = lines.iter().any(|l| matches!(l, Some(FlashLine::Saved(_) | FlashLine::ReplayedPage(_))));
        days.push(lines);
        if found {
            break;
        }
    }
    for lines in days.iter().rev() {
        for l in lines {
            match l {
                Some(l) => progress.observe(l),
                None => progress.connected(),
            }
        }
    }
    progress
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(page: u16, seq: u16, time: u32) -> Page {
        Page { page, seq, time }
    }

    #[test]
    fn lines_parse_as_the_firmware_prints_them() {
        assert_eq!(parse("DF S 673 31 41500"), Some(FlashLine::Saved(page(673, 31, 41500))));
        assert_eq!(parse("DF I 673 32"), Some(FlashLine::Started { last_page: 673, seq: 32 }));
        assert_eq!(parse("r: page 40 45"), Some(FlashLine::ReplayStart { from: 40, last: 45 }));
        assert_eq!(
            parse("R 31 41512 2 1 115 179 0"),
            Some(FlashLine::Replayed { seq: 31, time: 41512, header: 2, payload: vec![1, 115, 179, 0] })
        );
        assert_eq!(parse("DF R 41 31 41500"), Some(FlashLine::ReplayedPage(page(41, 31, 41500))));
        assert_eq!(parse("DF C? 42 4660"), Some(FlashLine::Damaged { page: 42 }));
        assert_eq!(parse("DF E 45 32 123456"), Some(FlashLine::ReplayEnd { last_page: 45, seq: 32, millis: 123456 }));
        assert_eq!(parse("DF E 48"), Some(FlashLine::Erased));
        for bad in ["R 1 2", "R 1 2 3 x", "R 1 2 300", "DF S 1 2", "DF Q 1 2 3", "OK 2 1 2", "DF S 1 2 -3", "r: pages 1 2"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_replay_starts_after_the_last_page_logged_whole() {
        let mut p = Progress::default();
        assert_eq!(p.replay_command(), None, "nothing to replay from before a page was seen");
        p.observe(&FlashLine::Saved(page(40, 3, 1000)));
        p.observe(&FlashLine::Saved(page(41, 3, 1100)));
        assert_eq!(p.through, Some(page(41, 3, 1100)));
        // seq 3 = 0,3; time 1100 - 1 = 1099 = 0,0,4,75
        assert_eq!(p.replay_command().as_deref(), Some("0,3,0,0,4,75 r"));
        // Reconnected: the page being filled when the connection broke is
        // saved now, with packets nobody logged: it waits for the replay.
        p.connected();
        p.observe(&FlashLine::Saved(page(44, 3, 1400)));
        assert_eq!(p.through, Some(page(41, 3, 1100)));
        p.observe(&FlashLine::ReplayStart { from: 41, last: 44 });
        p.observe(&FlashLine::ReplayedPage(page(42, 3, 1200)));
        assert_eq!(p.through, Some(page(42, 3, 1200)), "an interrupted replay resumes after the last page replayed");
        p.observe(&FlashLine::Saved(page(45, 3, 1500)));
        assert_eq!(p.through, Some(page(42, 3, 1200)), "nothing live counts while a replay is unfinished");
        p.observe(&FlashLine::ReplayedPage(page(43, 3, 1300)));
        p.observe(&FlashLine::Damaged { page: 44 });
        p.observe(&FlashLine::ReplayEnd { last_page: 44, seq: 4, millis: 1_500_000 });
        assert!(!p.replaying && !p.gap);
        p.observe(&FlashLine::Saved(page(45, 4, 1510)));
        assert_eq!(p.through, Some(page(45, 4, 1510)), "live pages count again after the replay");
        // A gap in page numbers without a reconnect (the firmware skipped) also waits.
        p.observe(&FlashLine::Saved(page(47, 4, 1700)));
        assert_eq!(p.through, Some(page(45, 4, 1510)));
        // Another flash (wiped, or another receiver): its pages start anew.
        p.observe(&FlashLine::Saved(page(40, 1, 20)));
        assert_eq!(p.through, Some(page(40, 1, 20)), "a page with an older seq comes from another flash");
        p.observe(&FlashLine::Started { last_page: 31, seq: 0 });
        assert_eq!(p.through, None, "a start with an older seq: another flash");
        p.observe(&FlashLine::Saved(page(32, 0, 250)));
        assert_eq!(p.through, Some(page(32, 0, 250)));
    }

    #[test]
    fn before_a_first_page_is_logged_the_replay_starts_after_the_run_before() {
        let mut p = Progress::default();
        p.observe(&FlashLine::Started { last_page: 431, seq: 0 });
        assert_eq!(p.replay_command(), None, "an empty flash has no run before");
        let mut p = Progress::default();
        p.observe(&FlashLine::Started { last_page: 90, seq: 7 });
        p.connected();
        // Reconnected with a reset before a page of run 7 was logged: from the end of run 6.
        p.observe(&FlashLine::Started { last_page: 95, seq: 8 });
        assert_eq!(p.replay_command().as_deref(), Some("0,6,127,255,255,255 r"));
        p.observe(&FlashLine::Saved(page(96, 8, 3)));
        assert_eq!(p.through, None, "a page saved after the reconnect waits for the replay");
        p.observe(&FlashLine::ReplayStart { from: 90, last: 96 });
        p.observe(&FlashLine::ReplayedPage(page(91, 7, 0)));
        assert_eq!((p.through, p.started), (Some(page(91, 7, 0)), None));
    }
}
