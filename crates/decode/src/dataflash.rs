//! Packets replayed from a receiver's dataflash, placed at the time the
//! receiver got them. The protocol and which pages are logged are
//! `capture::dataflash`; this adds the receiver's clock and what was logged
//! live, to place each replayed packet and recognise the ones logged already.
//! docs/dataflash.md explains the mapping and its precision.

use capture::dataflash::follows;
pub use capture::dataflash::{parse, FlashLine, Page, Progress};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many live packets are remembered to recognise them in a replay: a
/// page holds at most 82 packets, and a replay overlaps what was logged live
/// by at most two pages (the one being filled when capture lost the receiver,
/// and the one filled after it came back until the replay began).
const RECENT: usize = 256;

/// How far apart (ms) a replayed packet and the same packet logged live may
/// be placed and still be taken for one: the mapping's precision, with room.
pub const SAME_PACKET_MS: i64 = 3_000;

/// How well an anchor ties the receiver clock to UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quality {
    /// To the second: a start (`DF I`), the end of a replay (`DF E`), or
    /// two consecutive `DF S` lines (the second page began when the first
    /// line was printed).
    Exact,
    /// One `DF S` line alone: the clock had reached at least the page's
    /// time, at most 255 s more (a page spans at most 255 s).
    Bound,
    /// A run of the receiver never seen live (it restarted while nobody
    /// listened): assumed to have started right after the page before it.
    Guess,
}

/// A receiver clock: receiver seconds to UTC, from a moment when both were known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// UTC (ms) at which the receiver clock read `secs` and no milliseconds.
    pub utc_ms: i64,
    pub secs: u32,
    pub quality: Quality,
}

impl Anchor {
    /// UTC of receiver second `secs` (which spans [secs, secs+1): its middle).
    fn utc(&self, secs: u32) -> i64 {
        // Saturating: times come from the log, but a decoder never panics on input.
        self.utc_ms.saturating_add((i64::from(secs) - i64::from(self.secs)) * 1000 + 500)
    }
}

/// The clock of one run of the receiver (from one start to the next), which
/// covers the pages from `first_seq` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    first_seq: u16,
    anchor: Option<Anchor>,
}

/// What a replayed packet is, once placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placed {
    /// New: the receiver got it at `utc_ms`, to the second.
    New { utc_ms: i64 },
    /// New, placed less precisely (see [`Quality`]).
    Approximate { utc_ms: i64 },
    /// Logged already: live, or by an earlier replay.
    Known,
    /// No time can be given: nothing is known about the receiver's clock.
    Unplaced,
}

/// The dataflash state of one source, carried from line to line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// Which pages are in the log (what capture follows too).
    progress: Progress,
    /// The last page saved live, and when its `DF S` line was logged.
    last_saved: Option<(Page, i64)>,
    /// Receiver runs, oldest first (a few: older ones are dropped).
    runs: Vec<Run>,
    /// The replay in progress.
    replaying: Option<Replaying>,
    /// Packets logged live most recently: (hash of header and payload, UTC ms).
    recent: VecDeque<(u64, i64)>,
    /// Replayed packets most recently seen (hash, seq, receiver time, and
    /// the replay that last saw it): a replay cut before a page's end (`DF R`)
    /// is resumed from that page's start, and a replay starts with the newest
    /// page in the log (see `Progress::replay_command`), so a packet can be
    /// replayed again; each counts once per replay.
    replayed: VecDeque<(u64, u16, u32, u32)>,
    /// Replays begun, numbered.
    replays: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Replaying {
    /// The page being replayed, known from its first packet (offset 0), and
    /// whether it is in the log already.
    page: Option<(u16, u32)>,
    known: bool,
    /// The previous page seen in this replay, to see a restart between two.
    previous: Option<(u16, u32)>,
}

/// A hash of a packet, to recognise it when replayed.
pub fn packet_hash(header: u8, payload: &[u8]) -> u64 {
    // FNV-1a: small, stable across versions and platforms (it is stored in the cursor).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&header).chain(payload) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Flash {
    /// Which pages are in the log, and where the next replay starts.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    fn through(&self) -> Option<Page> {
        self.progress.through
    }

    /// Capture (re)connected to the receiver (a `connect` line).
    pub fn connected(&mut self) {
        self.progress.connected();
    }

    /// Follows a packet logged live.
    pub fn live(&mut self, time_ms: i64, header: u8, payload: &[u8]) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((packet_hash(header, payload), time_ms));
    }

    /// Follows a dataflash line logged at `time_ms`. For a replayed packet,
    /// says what it is; `None` for every other line.
    pub fn line(&mut self, line: &FlashLine, time_ms: i64) -> Option<Placed> {
        self.progress.observe(line);
        match line {
            FlashLine::Saved(p) => self.saved(*p, time_ms),
            FlashLine::Started { seq, .. } => {
                // The receiver clock reads 0 now: an exact anchor for its new run.
                self.new_run(*seq, Some(Anchor { utc_ms: time_ms, secs: 0, quality: Quality::Exact }));
                self.last_saved = None;
            }
            FlashLine::ReplayStart { .. } => {
                self.replays = self.replays.wrapping_add(1);
                let previous = self.through().map(|t| t.order());
                self.replaying = Some(Replaying { previous, ..Replaying::default() });
            }
            FlashLine::Replayed { seq, time, header, payload } => return Some(self.replayed(*seq, *time, *header, payload)),
            FlashLine::ReplayedPage(p) => {
                let r = self.replaying.get_or_insert_with(Replaying::default);
                r.previous = Some(p.order());
                r.page = None;
                r.known = false;
            }
            FlashLine::Damaged { .. } => {
                if let Some(r) = &mut self.replaying {
                    r.page = None;
                    r.known = false;
                }
            }
            FlashLine::ReplayEnd { seq, millis, .. } => {
                // The replay bumped the sequence number; the receiver did not restart.
                let anchor = Anchor {
                    utc_ms: time_ms.saturating_sub((millis % 1000) as i64),
                    secs: (millis / 1000) as u32,
                    quality: Quality::Exact,
                };
                match self.runs.last_mut() {
                    Some(run) if run.first_seq <= *seq => run.anchor = Some(anchor),
                    _ => self.new_run(*seq, Some(anchor)),
                }
                self.replaying = None;
                self.last_saved = None;
            }
            FlashLine::Erased => {}
        }
        None
    }

    /// A page saved live: which run of the receiver it belongs to, and what
    /// it says of that run's clock.
    fn saved(&mut self, p: Page, time_ms: i64) {
        // A page with a higher seq but an earlier time than the previous one:
        // the receiver restarted between the two.
        let restarted = self.last_saved.is_some_and(|(prev, _)| p.seq > prev.seq && p.time < prev.time);
        if restarted || self.run_of(p.seq).is_none() {
            self.new_run(p.seq, None);
        }
        // The previous `DF S` line was printed right after the packet that
        // began this page, at this page's time: an exact anchor.
        let consecutive = self.last_saved.is_some_and(|(prev, _)| follows(p.page, prev.page) && p.order() > prev.order());
        let anchor = match self.last_saved {
            // The clock read `time` and some unknown part of a second at `at`:
            // take half a second, so the anchor is where the clock read `time.000`.
            Some((_, at)) if consecutive && !restarted => Anchor { utc_ms: at.saturating_sub(500), secs: p.time, quality: Quality::Exact },
            _ => Anchor { utc_ms: time_ms, secs: p.time, quality: Quality::Bound },
        };
        if let Some(run) = self.run_of_mut(p.seq) {
            if anchor.quality == Quality::Exact || run.anchor.is_none_or(|a| a.quality != Quality::Exact) {
                run.anchor = Some(anchor);
            }
        }
        self.last_saved = Some((p, time_ms));
    }

    fn new_run(&mut self, first_seq: u16, anchor: Option<Anchor>) {
        self.runs.retain(|r| r.first_seq < first_seq);
        self.runs.push(Run { first_seq, anchor });
        if self.runs.len() > 8 {
            self.runs.remove(0);
        }
    }

    fn run_of(&self, seq: u16) -> Option<&Run> {
        self.runs.iter().rev().find(|r| r.first_seq <= seq)
    }

    fn run_of_mut(&mut self, seq: u16) -> Option<&mut Run> {
        self.runs.iter_mut().rev().find(|r| r.first_seq <= seq)
    }

    /// Where a packet of page `seq` at receiver second `time` goes.
    fn place(&self, seq: u16, time: u32) -> Option<(i64, Quality)> {
        let a = self.run_of(seq)?.anchor?;
        Some((a.utc(time), a.quality))
    }

    fn replayed(&mut self, seq: u16, time: u32, header: u8, payload: &[u8]) -> Placed {
        let through = self.through();
        let r = self.replaying.get_or_insert_with(Replaying::default);
        if r.page.is_none() {
            // The first packet of a page has offset 0: its time is the page's.
            r.page = Some((seq, time));
            // Pages can share a start second with the newest page in the log:
            // only older ones are skipped whole; the others go packet by packet.
            r.known = through.is_some_and(|t| (seq, time) < t.order());
            let previous = r.previous;
            let known = r.known;
            // A later seq with an earlier time than the page before: the
            // receiver restarted between the two while nobody listened.
            if let Some((pseq, ptime)) = previous {
                if !known && seq > pseq && time < ptime && self.runs.iter().all(|run| run.first_seq != seq) {
                    let guess = self.place(pseq, ptime).map(|(utc_ms, _)| Anchor { utc_ms, secs: 0, quality: Quality::Guess });
                    self.new_run(seq, guess);
                }
            }
        }
        if self.replaying.as_ref().is_some_and(|r| r.known) {
            return Placed::Known;
        }
        let Some((utc_ms, quality)) = self.place(seq, time) else { return Placed::Unplaced };
        let hash = packet_hash(header, payload);
        let pass = self.replays;
        if let Some(seen) = self.replayed.iter_mut().find(|e| e.0 == hash && e.1 == seq && e.2 == time && e.3 != pass) {
            // Seen by an earlier replay: taken then (new or logged live).
            seen.3 = pass;
            return Placed::Known;
        }
        if self.replayed.len() == RECENT {
            self.replayed.pop_front();
        }
        self.replayed.push_back((hash, seq, time, pass));
        if let Some(i) = self.recent.iter().position(|&(h, t)| h == hash && t.abs_diff(utc_ms) <= SAME_PACKET_MS as u64) {
            // Logged live: each live packet stands for one replayed packet at most.
            self.recent.remove(i);
            return Placed::Known;
        }
        match quality {
            Quality::Exact => Placed::New { utc_ms },
            Quality::Bound | Quality::Guess => Placed::Approximate { utc_ms },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> FlashLine {
        parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    /// Feeds `(ms, line)` pairs; returns what each replayed packet became.
    fn feed(flash: &mut Flash, lines: &[(i64, &str)]) -> Vec<Placed> {
        lines.iter().filter_map(|&(t, l)| flash.line(&line(l), t)).collect()
    }

    #[test]
    fn a_start_anchors_the_clock_at_zero_and_a_packet_lands_mid_second() {
        let mut f = Flash::default();
        let placed = feed(
            &mut f,
            &[(1_000_000, "DF I 40 3"), (1_030_000, "DF S 41 3 12"), (1_100_000, "r: page 41 45"), (1_100_001, "R 3 20 2 1 2 3")],
        );
        // 20 s after the start, in the middle of that second.
        assert_eq!(placed, [Placed::New { utc_ms: 1_020_500 }]);
    }

    #[test]
    fn two_consecutive_saves_anchor_the_clock_to_the_second() {
        let mut f = Flash::default();
        // The second page began (receiver second 500) when the first line was printed.
        let placed = feed(
            &mut f,
            &[(5_000_000, "DF S 41 3 400"), (5_090_000, "DF S 42 3 500"), (5_200_000, "r: page 42 44"), (5_200_001, "R 3 600 2 9 9")],
        );
        // 100 s after 5_000_000 (second 500 began about half a second before it), mid-second.
        assert_eq!(placed, [Placed::New { utc_ms: 5_100_000 }]);
    }

    #[test]
    fn one_save_alone_is_an_upper_bound_and_placed_approximately() {
        let mut f = Flash::default();
        let placed = feed(&mut f, &[(7_000_000, "DF S 41 3 400"), (7_200_000, "r: page 41 44"), (7_200_001, "R 3 450 2 9 9")]);
        assert_eq!(placed, [Placed::Approximate { utc_ms: 7_050_500 }]);
    }

    #[test]
    fn a_run_never_seen_live_is_found_in_the_replay_and_placed_after_the_page_before_it() {
        let mut f = Flash::default();
        let placed = feed(
            &mut f,
            &[
                (1_000_000, "DF I 40 3"),
                // Each printed when the next page began: pages 42 and 43 at seconds 200 and 300.
                (1_200_000, "DF S 41 3 100"),
                (1_300_000, "DF S 42 3 200"),
                (9_000_000, "r: page 42 45"),
                // Page 43 of the same run, then page 44 after a restart (seq 4, time back near 0).
                (9_000_001, "R 3 300 2 1"),
                (9_000_002, "DF R 43 3 300"),
                (9_000_003, "R 4 5 2 2"),
                (9_000_004, "DF R 44 4 5"),
                (9_000_005, "DF E 44 5 120000"),
            ],
        );
        // From the newest anchor (two saves: second 200 began half a second before 1_200_000).
        assert_eq!(placed[0], Placed::New { utc_ms: 1_300_000 });
        // Guessed: the restart right after page 43 began, 5 s on, mid-second.
        assert_eq!(placed[1], Placed::Approximate { utc_ms: 1_300_000 + 5_500 });
    }

    #[test]
    fn packets_logged_live_or_replayed_before_are_known() {
        let mut f = Flash::default();
        feed(&mut f, &[(1_000_000, "DF I 40 3"), (1_050_000, "DF S 41 3 50")]);
        // Logged live at receiver second 60 (UTC 1_060_000 and a bit).
        f.live(1_060_200, 2, &[7, 7]);
        let placed = feed(
            &mut f,
            &[
                (2_000_000, "r: page 41 42"),
                (2_000_001, "R 3 60 2 7 7"),
                (2_000_002, "R 3 61 2 8 8"),
                // Cut here; the next replay brings the same page again.
                (3_000_000, "r: page 41 42"),
                (3_000_001, "R 3 60 2 7 7"),
                (3_000_002, "R 3 61 2 8 8"),
                (3_000_003, "R 3 62 2 8 8"),
            ],
        );
        assert_eq!(
            placed,
            [Placed::Known, Placed::New { utc_ms: 1_061_500 }, Placed::Known, Placed::Known, Placed::New { utc_ms: 1_062_500 }]
        );
    }

    #[test]
    fn pages_older_than_the_newest_logged_are_skipped_whole() {
        let mut f = Flash::default();
        feed(&mut f, &[(1_000_000, "DF I 40 3"), (1_050_000, "DF S 41 3 50"), (1_090_000, "DF S 42 3 90")]);
        // A firmware with the `||` quirk replays from the oldest page.
        let placed = feed(
            &mut f,
            &[(2_000_000, "r: page 0 43"), (2_000_001, "R 2 900 2 1"), (2_000_002, "DF R 33 2 900"), (2_000_003, "R 3 10 2 1")],
        );
        assert_eq!(placed, [Placed::Known, Placed::Known]);
    }
}
