//! Simulated devices for the demo, tests and benchmarks.
//!
//! [`Rf12Demo`] produces the lines a JeeLabs RF12demo receiver prints: `OK`
//! packets from roomNode, radioBlip and homePower nodes, the odd `?` packet
//! with a bad CRC, and `DF` dataflash status lines, with realistic slowly
//! drifting values. It is deterministic for a given seed, so tests can
//! predict it. [`Rf12Demo::resume`] takes up the counters and values a
//! previous run left in the logs, so a second demo continues the first.
//! [`Receiver`] wraps it with a model of the JeeLink dataflash log that
//! RF12demo keeps (saved pages, `DF` lines, the `r` replay command).
//! [`Modem`] is a GSM modem's AT command dialogue for sending an SMS.

pub mod flash;
pub mod modem;

pub use flash::Receiver;
pub use modem::{Behaviour, Modem, Sms};

/// The banner RF12demo prints on reset.
pub const BANNER: &str = "[RF12demo.12] _ i31* g5 @ 868 MHz";

/// A small deterministic generator (xorshift64*); quality is ample for
/// simulated sensor noise and it keeps the crate free of dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Room { light: u8, humi: u8, temp: i16 },
    Blip { count: u32 },
    Power { c: [u16; 3], t: [u16; 3] },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    id: u8,
    kind: Kind,
}

/// A simulated RF12demo receiver (868 MHz, group 5).
#[derive(Debug, Clone)]
pub struct Rf12Demo {
    rng: Rng,
    nodes: Vec<Node>,
    /// Incidents for the demo's health checks: now and then roomNode 4's
    /// room overheats and roomNode 2 goes silent ([`Rf12Demo::incidents`]).
    incidents: bool,
    /// Packets made so far: the incidents follow them.
    packets: u64,
}

/// Packs a roomNode reading the way the roomNode sketch does: a little-endian
/// bit stream of light 8, moved 1, humi 7, temp 10 (signed tenths of °C), lobat 1.
pub fn room_node_bytes(light: u8, moved: bool, humi: u8, temp_tenths: i16, lobat: bool) -> [u8; 4] {
    let v: u32 = u32::from(light)
        | u32::from(moved) << 8
        | u32::from(humi & 0x7f) << 9
        | ((temp_tenths as u32) & 0x3ff) << 16
        | u32::from(lobat) << 26;
    v.to_le_bytes()
}

impl Rf12Demo {
    pub fn new(seed: u64) -> Self {
        let room = |id, temp| Node { id, kind: Kind::Room { light: 40, humi: 55, temp } };
        Self {
            rng: Rng::new(seed),
            nodes: vec![
                room(2, 179),
                room(4, 212),
                room(5, -35), // an outdoor node below freezing
                Node { id: 3, kind: Kind::Blip { count: 1000 } },
                Node { id: 9, kind: Kind::Power { c: [100, 2000, 30], t: [2500, 800, 60000] } },
            ],
            incidents: false,
            packets: 0,
        }
    }

    /// Turns incidents on: in every 500 packets (two minutes at the demo's
    /// rate), roomNode 4's room heats up to about 31 °C during packets 60
    /// to 200 and then cools back to about 21 °C, and roomNode 2 sends
    /// nothing during packets 240 to 400 (40 seconds).
    pub fn incidents(&mut self, on: bool) {
        self.incidents = on;
    }

    /// The next line the receiver prints, without a terminator.
    pub fn next_line(&mut self) -> String {
        let roll = self.rng.below(100);
        if roll < 4 {
            let n = 3 + self.rng.below(18) as usize;
            let bytes: Vec<String> = (0..n).map(|_| self.rng.below(256).to_string()).collect();
            return format!("? {}", bytes.join(" "));
        }
        if roll < 6 {
            return format!("DF S {} {} {}", 3000 + self.rng.below(500), self.rng.below(100), 200_000 + self.rng.below(50_000));
        }
        let mut i = self.rng.below(self.nodes.len() as u64) as usize;
        let jitter = self.rng.next_u64();
        self.packets += 1;
        let phase = self.packets % 500;
        if self.incidents && self.nodes[i].id == 2 && (240..400).contains(&phase) {
            // roomNode 2 is silent: the radioBlip speaks instead.
            i = self.nodes.iter().position(|n| n.id == 3).unwrap_or(i);
        }
        let heating = self.incidents && (60..200).contains(&phase);
        let node = &mut self.nodes[i];
        let mut header = node.id;
        let payload: Vec<u8> = match &mut node.kind {
            Kind::Room { light, humi, temp } => {
                *light = light.wrapping_add((jitter % 7) as u8).wrapping_sub(3);
                *humi = (*humi as i16 + (jitter >> 8) as i16 % 3 - 1).clamp(20, 95) as u8;
                *temp = (*temp + ((jitter >> 16) % 5) as i16 - 2).clamp(-300, 400);
                if self.incidents && node.id == 4 {
                    // Towards 31 °C while heating, back towards 21 °C after.
                    let target = if heating { 310 } else { 212 };
                    *temp += (target - *temp).clamp(-4, 4);
                }
                let moved = (jitter >> 24).is_multiple_of(5);
                if moved {
                    header |= 0x20; // ask for an ACK, as roomNodes do on motion
                }
                room_node_bytes(*light, moved, *humi, *temp, false).to_vec()
            }
            Kind::Blip { count } => {
                *count = count.wrapping_add(1);
                count.to_le_bytes().to_vec()
            }
            Kind::Power { c, t } => {
                for k in 0..3 {
                    c[k] = c[k].wrapping_add(((jitter >> (8 * k)) % 3) as u16);
                    t[k] = t[k].wrapping_add(((jitter >> (8 * k + 4)) % 50) as u16).wrapping_sub(25);
                }
                (0..3).flat_map(|k| [c[k].to_le_bytes(), t[k].to_le_bytes()]).flatten().collect()
            }
        };
        let mut line = format!("OK {header}");
        for b in payload {
            line.push(' ');
            line.push_str(&b.to_string());
        }
        line
    }

    /// The next packet line only (`OK ...` or `?` with a bad CRC): the fake
    /// `DF S` lines [`next_line`](Self::next_line) sometimes returns are
    /// skipped, for a receiver that models its dataflash itself.
    pub fn next_packet(&mut self) -> String {
        loop {
            let line = self.next_line();
            if !line.starts_with("DF ") {
                return line;
            }
        }
    }

    /// Takes up where a node's packet `line` (`OK HDR B1 ...`, as an earlier
    /// run printed it) left off: its counters and drifting values. Other
    /// lines, and packets that do not fit the node, are ignored.
    pub fn resume(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("OK ") else { return };
        let Some(bytes) = rest.split_ascii_whitespace().map(|b| b.parse::<u8>().ok()).collect::<Option<Vec<u8>>>() else { return };
        let Some((&header, payload)) = bytes.split_first() else { return };
        let Some(node) = self.nodes.iter_mut().find(|n| n.id == header & 0x1f) else { return };
        match &mut node.kind {
            Kind::Room { light, humi, temp } if payload.len() == 4 => {
                let v = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                *light = v as u8;
                *humi = ((v >> 9) & 0x7f) as u8;
                // Ten bits, two's complement.
                *temp = ((((v >> 16) & 0x3ff) << 22) as i32 >> 22) as i16;
            }
            Kind::Blip { count } if payload.len() == 4 => *count = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]),
            Kind::Power { c, t } if payload.len() == 12 => {
                for k in 0..3 {
                    c[k] = u16::from_le_bytes([payload[4 * k], payload[4 * k + 1]]);
                    t[k] = u16::from_le_bytes([payload[4 * k + 2], payload[4 * k + 3]]);
                }
            }
            _ => {}
        }
    }

    /// RF12demo's answer to a command: it echoes it, and prints its banner
    /// after a configuration change.
    pub fn answer(command: &str) -> Vec<String> {
        let command = command.trim();
        if command.is_empty() {
            return Vec::new();
        }
        vec![format!("> {command}"), BANNER.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_node_packing_matches_the_jeelabs_example() {
        // `OK 2 1 115 179 0` is light 1, moved 1, humi 57, temp 17.9 °C, lobat 0.
        assert_eq!(room_node_bytes(1, true, 57, 179, false), [1, 115, 179, 0]);
        // Negative temperatures use the 10-bit two's complement.
        let b = room_node_bytes(0, false, 0, -35, false);
        let v = u32::from_le_bytes(b);
        let raw = (v >> 16) & 0x3ff;
        assert_eq!(((raw << 22) as i32) >> 22, -35);
    }

    #[test]
    fn a_second_run_resumed_from_the_first_ones_lines_continues_its_counters() {
        let mut first = Rf12Demo::new(1);
        let lines: Vec<String> = (0..300).map(|_| first.next_line()).collect();
        let mut second = Rf12Demo::new(2);
        for l in &lines {
            second.resume(l);
        }
        second.resume("not a packet");
        second.resume("OK 3 1 2");
        assert_eq!(second.nodes, first.nodes, "every node takes up its last values");
        let Kind::Blip { count } = first.nodes[3].kind else { panic!("node 3 is the radioBlip") };
        let next = (0..50).map(|_| second.next_line()).find(|l| l.starts_with("OK 3 ")).expect("a radioBlip packet");
        let b: Vec<u8> = next.split(' ').skip(2).map(|b| b.parse().unwrap()).collect();
        assert_eq!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]), count + 1);
    }

    #[test]
    fn next_packet_skips_the_fake_dataflash_lines_and_nothing_else() {
        let mut lines = Rf12Demo::new(7);
        let mut packets = Rf12Demo::new(7);
        let expected: Vec<String> = (0..500).map(|_| lines.next_line()).filter(|l| !l.starts_with("DF ")).collect();
        assert!(expected.len() < 500, "next_line has DF lines");
        assert_eq!((0..expected.len()).map(|_| packets.next_packet()).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn lines_look_like_rf12demo_and_are_deterministic() {
        let mut a = Rf12Demo::new(7);
        let mut b = Rf12Demo::new(7);
        let lines: Vec<String> = (0..500).map(|_| a.next_line()).collect();
        assert_eq!(lines, (0..500).map(|_| b.next_line()).collect::<Vec<_>>());
        assert!(lines.iter().all(|l| l.starts_with("OK ") || l.starts_with("? ") || l.starts_with("DF S ")));
        assert!(lines.iter().any(|l| l.starts_with("? ")));
        for id in [2, 3, 4, 5, 9] {
            assert!(
                lines.iter().any(|l| l.split(' ').nth(1).and_then(|h| h.parse::<u8>().ok()).is_some_and(|h| h & 0x1f == id)),
                "node {id}"
            );
        }
    }

    /// With incidents on, roomNode 4's room overheats and cools down again,
    /// and roomNode 2 falls silent for a stretch, in every 500 packets.
    #[test]
    fn incidents_overheat_a_room_and_silence_a_node() {
        let mut sim = Rf12Demo::new(2012);
        sim.incidents(true);
        let (mut hottest, mut last_temp, mut silent_from, mut longest_silence) = (i16::MIN, 0, 0, 0);
        for n in 0..1000u64 {
            let line = sim.next_packet();
            let f: Vec<u32> = line.split(' ').skip(1).filter_map(|b| b.parse().ok()).collect();
            if line.starts_with("OK ") && f[0] & 0x1f == 4 {
                let v = u32::from_le_bytes([f[1] as u8, f[2] as u8, f[3] as u8, f[4] as u8]);
                last_temp = ((((v >> 16) & 0x3ff) << 22) as i32 >> 22) as i16;
                hottest = hottest.max(last_temp);
            }
            if line.starts_with("OK ") && f[0] & 0x1f == 2 {
                longest_silence = longest_silence.max(n - silent_from);
                silent_from = n;
            }
        }
        assert!(hottest > 280, "the room gets above 28 °C: {hottest}");
        assert!(last_temp < 240, "and cools down again: {last_temp}");
        assert!(longest_silence >= 150, "roomNode 2 falls silent for a while: {longest_silence} packets");
    }
}
