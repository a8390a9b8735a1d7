//! The indexer benchmark's data sets: simulated logs written as capture
//! writes them (`L HH:MM:SS.mmm SOURCE TEXT` in daily files), with the node
//! map beside them. Every workload is deterministic, so two runs (or a run
//! and a profile of `bench index-data`) index exactly the same bytes.
//!
//! - `mixed`: `sim::Rf12Demo` as the demo prints it: roomNode, radioBlip and
//!   homePower packets, the odd bad packet and dataflash line, values that
//!   drift slowly.
//! - `homepower`: a house with a power meter: half the lines homePower
//!   packets of six values, 40 % roomNodes, 10 % radioBlip, values as noisy
//!   as real sensors (values that barely change compress too well to tell
//!   how the cache does on real data).
//! - `sensors`: ten roomNodes heard by two receivers, so that each packet is
//!   logged twice (a few ms apart, each with its own RSSI) under two sources.

use sim::Rng;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first day of every data set, in days since 1970: 2011-01-26.
pub const FIRST_DAY: i64 = 15_000;
const DAY_MS: u32 = 86_400_000;

/// The node map of the simulated receiver (sim::Rf12Demo) and of the homepower site.
const SIM_NODES: &str = "[rf12.nodes]\n2 = \"roomNode\"\n3 = \"radioBlip\"\n4 = \"roomNode\"\n5 = \"roomNode\"\n9 = \"homePower\"\n";

/// The source of the single-receiver workloads and of the year of data.
pub const SIM_SOURCE: &str = "usb-SIM";
/// The two receivers of the many-sensors site.
const RECEIVERS: [&str; 2] = ["usb-RECV1", "usb-RECV2"];
/// The many-sensors site's roomNodes: node ids 2 to 11.
const SITE_NODES: std::ops::RangeInclusive<u8> = 2..=11;

/// One of the indexer benchmark's data sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Mixed,
    HomePower,
    Sensors,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Mixed, Workload::HomePower, Workload::Sensors];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Mixed => "mixed",
            Workload::HomePower => "homepower",
            Workload::Sensors => "sensors",
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// What it simulates, for the benchmark's headings.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::Mixed => "sim::Rf12Demo: roomNode, radioBlip and homePower packets, bad packets, dataflash lines",
            Workload::HomePower => "50 % homePower (6 values), 40 % roomNode, 10 % radioBlip, noisy values",
            Workload::Sensors => "10 roomNodes heard by 2 receivers (usb-RECV1, usb-RECV2), each packet twice with its RSSI",
        }
    }

    /// The days `lines` lines are spread over: the mixed set always over 10
    /// (as the benchmark always has); the others at their daily rate, so
    /// that a day file is as big as on the site they simulate.
    pub fn days(self, lines: usize) -> usize {
        match self {
            Workload::Mixed => 10,
            Workload::HomePower => lines.div_ceil(1_000_000).max(1),
            Workload::Sensors => lines.div_ceil(500_000).max(1),
        }
    }

    fn config(self) -> String {
        match self {
            Workload::Mixed | Workload::HomePower => SIM_NODES.to_string(),
            Workload::Sensors => {
                let mut config = "[rf12.nodes]\n".to_string();
                for id in SITE_NODES {
                    config.push_str(&format!("{id} = \"roomNode\"\n"));
                }
                config
            }
        }
    }

    /// Sensors that `blackbox schema` must list once the data set is
    /// indexed: proof that the decoders read it as meant.
    pub fn expected_sensors(self) -> &'static [&'static str] {
        match self {
            Workload::Mixed => &["usb-SIM/roomNode-2/temp", "usb-SIM/radioBlip-3/ping", "usb-SIM/homePower-9/p1"],
            Workload::HomePower => {
                &["usb-SIM/homePower-9/c1", "usb-SIM/homePower-9/p3", "usb-SIM/roomNode-5/temp", "usb-SIM/radioBlip-3/ping"]
            }
            Workload::Sensors => {
                &["usb-RECV1/roomNode-2/temp", "usb-RECV2/roomNode-11/humi", "usb-RECV1/roomNode-7/rssi", "usb-RECV2/roomNode-2/rssi"]
            }
        }
    }

    fn generator(self) -> Generator {
        match self {
            Workload::Mixed => Generator::Mixed(sim::Rf12Demo::new(5)),
            Workload::HomePower => Generator::HomePower(HomePower::new(11)),
            Workload::Sensors => Generator::Sensors(Site::new(17)),
        }
    }
}

/// Fields that every decoded packet has exactly one of (roomNode, homePower,
/// radioBlip): their counts in `blackbox schema` add up to the packets indexed.
pub const PACKET_FIELDS: [&str; 3] = ["light", "c1", "ping"];

/// One line of a day file: when in the day, which source, what it said.
#[derive(Debug)]
pub struct Line {
    pub ms: u32,
    pub source: &'static str,
    pub text: String,
}

/// A data set written to disk, with its generator kept to append more lines of the same kind.
#[derive(Debug)]
pub struct DataSet {
    pub workload: Workload,
    pub lines: usize,
    pub days: usize,
    /// The day files, oldest first.
    pub files: Vec<PathBuf>,
    pub log_bytes: u64,
    generator: Generator,
    appended: u32,
}

impl DataSet {
    /// Appends the workload's next packet (an `OK` line) to the last day,
    /// stamped in the day's last 10 ms: after every line written so far.
    pub fn append_packet(&mut self) -> String {
        assert!(self.appended < 10, "at most 10 lines fit in the last 10 ms of the day in order");
        let text = loop {
            let line = self.generator.line(DAY_MS - 1);
            // The mixed set has bad packets and dataflash lines; a catch-up of those indexes no reading.
            if line.text.starts_with("OK ") {
                break format!("{} {}", line.source, line.text);
            }
        };
        let tod = logfile::TimeOfDay::from_millis(DAY_MS - 10 + self.appended).expect("a time of day");
        self.appended += 1;
        let last = self.files.last().expect("a data set has a day");
        let mut file = std::fs::OpenOptions::new().append(true).open(last).expect("open the last day to append");
        file.write_all(format!("L {tod} {text}\n").as_bytes()).expect("append a line");
        text
    }
}

/// Writes `lines` lines of `workload` over `days` days into `dir/logs`, and
/// its node map into `dir/blackbox.toml`.
pub fn write(dir: &Path, workload: Workload, lines: usize, days: usize) -> DataSet {
    std::fs::create_dir_all(dir).expect("data directory");
    std::fs::write(dir.join("blackbox.toml"), workload.config()).expect("write blackbox.toml");
    let mut generator = workload.generator();
    let logs = dir.join("logs");
    let files = write_logs(&logs, lines, days, |slot| generator.line(slot));
    let log_bytes = files.iter().map(|f| std::fs::metadata(f).expect("a day file").len()).sum();
    DataSet { workload, lines, days, files, log_bytes, generator, appended: 0 }
}

/// The query benchmark's data: a year at one line a minute of 20 key=value
/// sensors in `dir/logs`, and an empty `dir/blackbox.toml`. Their values
/// count up and wrap (the query benchmark's figures since it began).
pub fn year_data(dir: &Path) {
    let mut n = 0;
    year_of(dir, |_, _| {
        n += 1;
        (0..20).map(|f| format!("s{f}={}", ((n - 1) * 7 + f) % 1000)).collect::<Vec<_>>().join(" ")
    });
}

/// The dashboard benchmark's data: the same year and sensors, with values
/// as a room's or a greenhouse's temperatures have them: a season, a day's
/// swing, weather that wanders for days and a sensor's own noise, in
/// tenths. Their hourly rollups are as ragged as real ones; a series that
/// barely changes draws several times faster than real data.
pub fn year_temperatures(dir: &Path) {
    let mut rng = Rng::new(365);
    let mut weather = [0.0f64; 20];
    year_of(dir, |day, ms| {
        let season = -(f64::from(day) / 365.0 * std::f64::consts::TAU).cos();
        let swing = (f64::from(ms) / f64::from(DAY_MS) - 0.6) * std::f64::consts::TAU;
        (0..20)
            .map(|f| {
                let w = &mut weather[f];
                *w = (*w * 0.999 + (rng.below(201) as f64 - 100.0) / 1000.0).clamp(-8.0, 8.0);
                let noise = (rng.below(7) as f64 - 3.0) / 10.0;
                let value = 12.0 + f as f64 * 0.5 + 8.0 * season + 4.0 * swing.cos() + *w + noise;
                format!("s{f}={value:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
}

/// A year of one line a minute in `dir/logs` from `text(day, ms)` (the day
/// from 0, the time of day), and an empty `dir/blackbox.toml`.
fn year_of(dir: &Path, mut text: impl FnMut(u32, u32) -> String) {
    std::fs::create_dir_all(dir).expect("year dir");
    std::fs::write(dir.join("blackbox.toml"), "").expect("config");
    let (mut day, mut previous) = (0u32, 0u32);
    write_logs(&dir.join("logs"), 365 * 1440, 365, |ms| {
        // Time of day going back: the next day's file.
        if ms < previous {
            day += 1;
        }
        previous = ms;
        Line { ms, source: SIM_SOURCE, text: text(day, ms) }
    });
}

/// The status benchmark's site: devices that name themselves in their lines
/// (rtl_433 JSON, `device = ["model", "id"]`), so that a site can have as
/// many as it likes, which RF12demo's 31 nodes a group cannot.
pub const STATUS_DEVICES: usize = 1_000;
const STATUS_SOURCE: &str = "rtl433";
/// A status site device's id, without its number: the source, the model and `-`.
pub const STATUS_DEVICE_PREFIX: &str = "rtl433/Acurite-Tower-";
const STATUS_DAYS: usize = 2;
/// Each device reports every 10 minutes, the devices 600 ms apart.
const STATUS_EVERY_MS: u32 = 600_000;

/// The status site's configuration: its receiver and six checks of the
/// kinds a site uses most (ranges at two levels, jumps, silence, batteries).
const STATUS_CONFIG: &str = r#"[[source]]
name = "rtl433"
stdin = true
decoder = "json"
device = ["model", "id"]

[[check]]
name = "too warm"
sensors = ["rtl433/*/temperature_C"]
kind = "range"
max = 30

[[check]]
name = "too cold"
sensors = ["rtl433/*/temperature_C"]
kind = "range"
min = 5
level = "error"

[[check]]
name = "too humid"
sensors = ["rtl433/*/humidity"]
kind = "range"
max = 85
level = "error"

[[check]]
name = "temperature jumps"
sensors = ["rtl433/*/temperature_C"]
kind = "rate"
max_change = 5
per = "1h"

[[check]]
name = "silent"
sensors = ["rtl433/*/temperature_C"]
kind = "stale"
after = "1h"
level = "critical"

[[check]]
name = "battery low"
sensors = ["rtl433/*/battery_ok"]
kind = "range"
min = 1
"#;

// What is wrong with a device of the status site, by its id. No id is in
// two of these (1 mod 25, 2 mod 40, 3 and 5 mod 100 differ mod 5), so each
// device's level is the one of its trouble.
fn too_warm(id: usize) -> bool {
    id % 25 == 1
}
fn too_humid(id: usize) -> bool {
    id % 40 == 2
}
fn falls_silent(id: usize) -> bool {
    id % 100 == 3
}
fn battery_low(id: usize) -> bool {
    id % 200 == 5
}

/// The level `blackbox status` must give a device of the status site at the
/// end of its last day.
pub fn status_level(id: usize) -> &'static str {
    if too_warm(id) || battery_low(id) {
        "warning"
    } else if too_humid(id) {
        "error"
    } else if falls_silent(id) {
        // Its stale check is critical, but 36 h without a reading is grey, which is worse.
        "grey"
    } else {
        "ok"
    }
}

/// The status site's data set.
#[derive(Debug)]
pub struct StatusSite {
    pub lines: usize,
    pub log_bytes: u64,
    /// The end of the last day: `status --at` it judges silence as if read then.
    pub end_ms: i64,
}

/// Writes the status site into `dir`: `blackbox.toml` (receiver and
/// checks) and two days of `logs/` in which each of 1,000 devices reports
/// temperature, humidity and battery every 10 minutes; a few are too warm,
/// too humid, short of battery, or fall silent at noon of the first day.
pub fn status_data(dir: &Path) -> StatusSite {
    std::fs::create_dir_all(dir).expect("site dir");
    std::fs::write(dir.join("blackbox.toml"), STATUS_CONFIG).expect("write blackbox.toml");
    let mut rng = Rng::new(29);
    // Each device's usual temperature (tenths of °C) and humidity (%).
    let usual: Vec<(i32, i32)> = (0..STATUS_DEVICES)
        .map(|id| {
            let temp = if too_warm(id) { 310 } else { 180 } + rng.below(60) as i32;
            let humi = if too_humid(id) { 88 } else { 35 } + rng.below(25) as i32;
            (temp, humi)
        })
        .collect();
    let logs = dir.join("logs");
    let (mut lines, mut log_bytes) = (0, 0);
    for d in 0..STATUS_DAYS {
        let path = day_path(&logs, d);
        std::fs::create_dir_all(path.parent().expect("year")).expect("mkdir");
        let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(&path).expect("day file"));
        for round in 0..DAY_MS / STATUS_EVERY_MS {
            for (id, &(temp, humi)) in usual.iter().enumerate() {
                let ms = round * STATUS_EVERY_MS + id as u32 * (STATUS_EVERY_MS / STATUS_DEVICES as u32);
                if falls_silent(id) && (d > 0 || ms >= DAY_MS / 2) {
                    continue;
                }
                // Noise within what the rate check allows between readings 10 minutes apart (0.8 °C).
                let temp = temp + signed(&mut rng, 3);
                let humi = humi + signed(&mut rng, 2);
                let battery = u8::from(!battery_low(id));
                let tod = logfile::TimeOfDay::from_millis(ms).expect("time of day");
                let json = format!(
                    r#"{{"model":"Acurite-Tower","id":{id},"battery_ok":{battery},"temperature_C":{}.{},"humidity":{humi}}}"#,
                    temp / 10,
                    temp % 10
                );
                writeln!(out, "L {tod} {STATUS_SOURCE} {json}").expect("write");
                lines += 1;
            }
        }
        out.flush().expect("write a day file");
        log_bytes += std::fs::metadata(&path).expect("a day file").len();
    }
    StatusSite { lines, log_bytes, end_ms: (FIRST_DAY + STATUS_DAYS as i64) * i64::from(DAY_MS) }
}

/// The path of day `d` (0 for the first) of a data set.
pub fn day_path(logs: &Path, d: usize) -> PathBuf {
    logfile::layout::day_path(logs, logfile::time::split_millis((FIRST_DAY + d as i64) * i64::from(DAY_MS)).0)
}

/// Writes `lines` lines spread evenly over `days` daily files and returns
/// the files. `line(slot)` makes each line, `slot` being its time of day on
/// the even spread; it may stamp the line earlier (a second receiver hears
/// a packet a few ms after the first), but never before the previous line
/// of the day, because time in a log never goes back.
fn write_logs(logs: &Path, lines: usize, days: usize, mut line: impl FnMut(u32) -> Line) -> Vec<PathBuf> {
    let per_day = lines.div_ceil(days.max(1));
    let mut n = 0;
    let mut files = Vec::with_capacity(days);
    for d in 0..days {
        let path = day_path(logs, d);
        std::fs::create_dir_all(path.parent().expect("year")).expect("mkdir");
        let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(&path).expect("day file"));
        let count = per_day.min(lines - n);
        let mut previous = 0;
        for i in 0..count {
            let slot = (i as u64 * u64::from(DAY_MS) / count.max(1) as u64) as u32;
            let l = line(slot);
            assert!(previous <= l.ms && l.ms <= slot, "a generator stamped a line out of order ({} after {previous})", l.ms);
            previous = l.ms;
            let tod = logfile::TimeOfDay::from_millis(l.ms).expect("time of day");
            writeln!(out, "L {tod} {} {}", l.source, l.text).expect("write");
            n += 1;
        }
        out.flush().expect("write a day file");
        files.push(path);
    }
    files
}

/// The generators of the three workloads.
#[derive(Debug)]
enum Generator {
    Mixed(sim::Rf12Demo),
    HomePower(HomePower),
    Sensors(Site),
}

impl Generator {
    fn line(&mut self, slot: u32) -> Line {
        match self {
            Generator::Mixed(sim) => Line { ms: slot, source: SIM_SOURCE, text: sim.next_line() },
            Generator::HomePower(home) => Line { ms: slot, source: SIM_SOURCE, text: home.next_text() },
            Generator::Sensors(site) => site.line(slot),
        }
    }
}

/// A number in `-max..=max`.
fn signed(rng: &mut Rng, max: i32) -> i32 {
    rng.below(2 * max as u64 + 1) as i32 - max
}

/// True with probability `percent` / 100.
fn chance(rng: &mut Rng, percent: u64) -> bool {
    rng.below(100) < percent
}

/// A roomNode as real ones behave: temperature moves by a few tenths, now
/// and then by up to two degrees (a door, the heating), and drifts back to
/// its room's level; humidity by one or two; light jumps around; motion is
/// seen one packet in five.
#[derive(Debug, Clone)]
struct Room {
    id: u8,
    light: u8,
    humi: i32,
    temp: i32,
    home_temp: i32,
    home_humi: i32,
}

impl Room {
    fn new(id: u8, rng: &mut Rng) -> Self {
        let home_temp = 150 + rng.below(100) as i32; // 15.0 to 24.9 °C
        let home_humi = 40 + rng.below(30) as i32;
        Room { id, light: rng.below(256) as u8, humi: home_humi, temp: home_temp, home_temp, home_humi }
    }

    /// The next packet: header byte (the node id, 0x20 on motion) and payload.
    fn packet(&mut self, rng: &mut Rng) -> (u8, [u8; 4]) {
        let step = if chance(rng, 2) { signed(rng, 20) } else { signed(rng, 3) };
        // Drift back towards the room's level, one step in two packets, so
        // that a day stays within a few degrees as a room does.
        let back = if rng.below(2) == 0 { (self.home_temp - self.temp).signum() } else { 0 };
        self.temp = (self.temp + step + back).clamp(-300, 400);
        let back = if rng.below(2) == 0 { (self.home_humi - self.humi).signum() } else { 0 };
        self.humi = (self.humi + signed(rng, 2) + back).clamp(5, 99);
        self.light = if chance(rng, 20) { rng.below(256) as u8 } else { (i32::from(self.light) + signed(rng, 12)).clamp(0, 255) as u8 };
        let moved = rng.below(5) == 0;
        let lobat = rng.below(1000) == 0;
        let header = if moved { self.id | 0x20 } else { self.id };
        (header, sim::room_node_bytes(self.light, moved, self.humi as u8, self.temp as i16, lobat))
    }
}

/// RF12demo's line for a packet: `OK HDR B1 B2 ...`, bytes in decimal.
fn ok_line(header: u8, payload: &[u8]) -> String {
    let mut line = format!("OK {header}");
    for b in payload {
        line.push(' ');
        line.push_str(&b.to_string());
    }
    line
}

/// The homepower site: a power meter of three channels (node 9), three
/// roomNodes (2, 4, 5) and a radioBlip (3).
#[derive(Debug)]
struct HomePower {
    rng: Rng,
    rooms: [Room; 3],
    /// Pulse counters (Wh/2): they grow by small amounts and wrap at 16 bits.
    c: [u16; 3],
    /// Time between pulses: noisy by tens to hundreds, with large jumps when a load switches.
    t: [u16; 3],
    blip: u32,
}

impl HomePower {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let rooms = [Room::new(2, &mut rng), Room::new(4, &mut rng), Room::new(5, &mut rng)];
        HomePower { rng, rooms, c: [100, 2000, 65_000], t: [2500, 800, 12_000], blip: 1000 }
    }

    fn next_text(&mut self) -> String {
        let rng = &mut self.rng;
        let roll = rng.below(100);
        if roll < 50 {
            for k in 0..3 {
                self.c[k] = self.c[k].wrapping_add(rng.below(4) as u16);
                let t = if chance(rng, 2) { 300 + rng.below(65_236) as i32 } else { i32::from(self.t[k]) + signed(rng, 300) };
                // 300 and up: at most 60 kW.
                self.t[k] = t.clamp(300, 65_535) as u16;
            }
            let payload: Vec<u8> = (0..3).flat_map(|k| [self.c[k].to_le_bytes(), self.t[k].to_le_bytes()]).flatten().collect();
            ok_line(9, &payload)
        } else if roll < 90 {
            let i = rng.below(3) as usize;
            let (header, payload) = self.rooms[i].packet(rng);
            ok_line(header, &payload)
        } else {
            // One ping every 64 s; now and then one is not heard.
            self.blip = self.blip.wrapping_add(if chance(rng, 1) { 2 } else { 1 });
            ok_line(3, &self.blip.to_le_bytes())
        }
    }
}

/// The many-sensors site: ten roomNodes, each heard by two receivers at its
/// own distance (signal strength), usually both, sometimes only one.
#[derive(Debug)]
struct Site {
    rng: Rng,
    rooms: Vec<Room>,
    /// Each node's usual RSSI at each receiver, in dB.
    rssi: Vec<[i32; 2]>,
    /// The second receiver's copy of the last packet, with its delay in ms.
    pending: Option<(Line, u32)>,
    last_ms: u32,
}

impl Site {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let rooms: Vec<Room> = SITE_NODES.map(|id| Room::new(id, &mut rng)).collect();
        let rssi = rooms.iter().map(|_| [-45 - rng.below(45) as i32, -45 - rng.below(45) as i32]).collect();
        Site { rng, rooms, rssi, pending: None, last_ms: 0 }
    }

    fn line(&mut self, slot: u32) -> Line {
        if let Some((mut copy, delay)) = self.pending.take() {
            // A few ms after the first receiver; at midnight, the start of the next day.
            copy.ms = (self.last_ms + delay).min(slot);
            self.last_ms = copy.ms;
            return copy;
        }
        let rng = &mut self.rng;
        let i = rng.below(self.rooms.len() as u64) as usize;
        let (header, payload) = self.rooms[i].packet(rng);
        let packet = ok_line(header, &payload);
        let first = rng.below(2) as usize;
        let heard = |rx: usize, rng: &mut Rng| {
            let noise = if chance(rng, 5) { signed(rng, 10) } else { signed(rng, 3) };
            let rssi = (self.rssi[i][rx] + noise).clamp(-120, -30);
            format!("{packet} ({rssi})")
        };
        let text = heard(first, rng);
        // One packet in twenty reaches only one receiver.
        if !chance(rng, 5) {
            let other = 1 - first;
            let copy = Line { ms: 0, source: RECEIVERS[other], text: heard(other, rng) };
            self.pending = Some((copy, 1 + rng.below(8) as u32));
        }
        self.last_ms = slot;
        Line { ms: slot, source: RECEIVERS[first], text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(workload: Workload, n: usize) -> Vec<Line> {
        let mut g = workload.generator();
        (0..n).map(|i| g.line(i as u32 * 100)).collect()
    }

    #[test]
    fn every_workload_is_deterministic_and_prints_rf12demo_packets() {
        for w in Workload::ALL {
            let a = lines(w, 2000);
            let b = lines(w, 2000);
            assert!(a.iter().zip(&b).all(|(x, y)| x.text == y.text && x.source == y.source && x.ms == y.ms), "{w:?}");
            if w != Workload::Mixed {
                assert!(a.iter().all(|l| l.text.starts_with("OK ")), "{w:?}");
            }
        }
    }

    #[test]
    fn homepower_mixes_power_room_and_blip_packets_in_proportion() {
        let ls = lines(Workload::HomePower, 10_000);
        let node = |l: &Line| l.text.split(' ').nth(1).and_then(|h| h.parse::<u8>().ok()).expect("a header") & 0x1f;
        let count = |id: u8| ls.iter().filter(|l| node(l) == id).count();
        assert!((4500..5500).contains(&count(9)), "homePower {}", count(9));
        assert!((3500..4500).contains(&(count(2) + count(4) + count(5))), "roomNode");
        assert!((700..1300).contains(&count(3)), "radioBlip {}", count(3));
        assert!(ls.iter().filter(|l| node(l) == 9).all(|l| l.text.split(' ').count() == 14), "12 payload bytes");
    }

    #[test]
    fn a_status_site_device_has_at_most_one_trouble() {
        let troubles = |id: usize| [too_warm(id), too_humid(id), falls_silent(id), battery_low(id)].iter().filter(|&&t| t).count();
        assert!((0..STATUS_DEVICES).all(|id| troubles(id) <= 1));
        let count = |level: &str| (0..STATUS_DEVICES).filter(|&id| status_level(id) == level).count();
        assert_eq!((count("warning"), count("error"), count("grey"), count("ok")), (45, 25, 10, 920));
    }

    #[test]
    fn sensors_are_heard_twice_a_few_ms_apart_by_both_receivers() {
        let ls = lines(Workload::Sensors, 10_000);
        let packet = |l: &Line| l.text.rsplit_once(" (").expect("an RSSI suffix").0.to_string();
        let mut pairs = 0;
        for w in ls.windows(2) {
            if packet(&w[0]) == packet(&w[1]) && w[0].source != w[1].source {
                assert!((1..=8).contains(&(w[1].ms - w[0].ms)), "{} ms apart", w[1].ms - w[0].ms);
                pairs += 1;
            }
        }
        // 95 % of packets twice: about 4,870 pairs in 10,000 lines.
        assert!((4600..5000).contains(&pairs), "{pairs} pairs");
        assert!(RECEIVERS.iter().all(|r| ls.iter().any(|l| l.source == *r)));
    }
}
