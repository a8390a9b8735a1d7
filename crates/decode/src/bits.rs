//! Bit-layout drivers for RF12 packets and the built-in JeeLabs drivers.

use crate::value::{Field, Value};
use config::DriverConfig;
use std::borrow::Cow;

/// One field of a layout.
#[derive(Clone, Debug, PartialEq)]
pub struct BitField {
    pub name: String,
    pub bits: u8,
    pub signed: bool,
    pub scale: Option<f64>,
    pub unit: Option<String>,
    pub skip: bool,
    /// `scale` resolved once (see [`Scaling`]).
    scaling: Scaling,
}

/// How a field's raw integer becomes its value: divided when `scale` is the
/// reciprocal of an integer, so that 179 tenths give exactly the double
/// nearest 17.9, else multiplied.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scaling {
    None,
    Divide(f64),
    Multiply(f64),
}

impl Scaling {
    fn of(scale: Option<f64>) -> Scaling {
        let Some(scale) = scale else { return Scaling::None };
        let inv = 1.0 / scale;
        if (inv - inv.round()).abs() < 1e-9 && inv.round() != 0.0 {
            Scaling::Divide(inv.round())
        } else {
            Scaling::Multiply(scale)
        }
    }
}

impl BitField {
    fn new(name: &str, bits: u8, signed: bool, scale: Option<f64>, unit: Option<&str>, skip: bool) -> BitField {
        BitField { name: name.into(), bits, signed, scale, unit: unit.map(String::from), skip, scaling: Scaling::of(scale) }
    }
}

/// A driver: how to turn a packet's payload (the bytes after the header) into fields.
#[derive(Clone, Debug, PartialEq)]
pub enum Driver {
    /// A little-endian bit stream read field by field.
    Layout(Vec<BitField>),
    RadioBlip,
    HomePower,
    SlowLogger,
}

impl Driver {
    /// Builds a driver from configuration, checking widths.
    pub fn from_config(c: &DriverConfig) -> Result<Driver, String> {
        if c.fields.is_empty() {
            return Err(format!("driver {:?} has no fields", c.name));
        }
        let mut fields = Vec::new();
        for f in &c.fields {
            if f.bits == 0 || f.bits > 64 {
                return Err(format!("driver {:?}, field {:?}: bits must be 1 to 64", c.name, f.name));
            }
            fields.push(BitField::new(&f.name, f.bits, f.signed, f.scale, f.unit.as_deref(), f.skip));
        }
        Ok(Driver::Layout(fields))
    }

    /// The built-in driver of this name, if any.
    pub fn builtin(name: &str) -> Option<Driver> {
        let f = |name: &str, bits, signed, scale, unit: Option<&str>| BitField::new(name, bits, signed, scale, unit, false);
        Some(match name {
            // The roomNode sketch: light 8, moved 1, humi 7, temp 10 (signed tenths of °C), lobat 1.
            "roomNode" => Driver::Layout(vec![
                f("light", 8, false, None, None),
                f("moved", 1, false, None, None),
                f("humi", 7, false, None, Some("%")),
                f("temp", 10, true, Some(0.1), Some("°C")),
                f("lobat", 1, false, None, None),
            ]),
            // One byte of light level.
            "lightNode" => Driver::Layout(vec![f("light", 8, false, None, None)]),
            "slowLogger" => Driver::SlowLogger,
            "radioBlip" => Driver::RadioBlip,
            "homePower" => Driver::HomePower,
            _ => return None,
        })
    }

    /// Decodes the payload; `None` when it is too short for the driver.
    pub fn decode(&self, payload: &[u8]) -> Option<Vec<Field<'_>>> {
        let mut out = Vec::new();
        self.decode_into(payload, &mut out).then_some(out)
    }

    /// Decodes the payload, appending its fields to `out` (the indexer
    /// reuses one vector for every packet); false, and nothing appended,
    /// when it is too short for the driver.
    pub fn decode_into<'a>(&'a self, payload: &[u8], out: &mut Vec<Field<'a>>) -> bool {
        let word = |i: usize| payload.get(2 * i..2 * i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        match self {
            Driver::Layout(fields) => decode_layout(fields, payload, out),
            Driver::RadioBlip => {
                let Some(count) = payload.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) else { return false };
                out.push(Field::new("ping", Value::Int(i64::from(count)), None));
                // One ping every 64 s: the node's age in days.
                out.push(Field::new("age", Value::Int(i64::from(count / (86_400 / 64))), Some("days")));
                if payload.len() >= 7 {
                    out.push(Field::new("tag", Value::Int(i64::from(payload[4])), None));
                    out.push(Field::new("vpre", Value::Float(f64::from(50 + u32::from(payload[5])) / 50.0), Some("V")));
                    if payload[6] != 0 {
                        out.push(Field::new("vpost", Value::Float(f64::from(50 + u32::from(payload[6])) / 50.0), Some("V")));
                    }
                }
                true
            }
            Driver::SlowLogger => {
                if payload.len() < 8 {
                    return false;
                }
                // Four 16-bit sums of 32 ten-bit ADC readings at 3.3 V: value * 3300 / 1023 / 32 mV,
                // rounded to 0.1 mV, finer than the converter resolves.
                for (i, name) in SLOW_NAMES.iter().enumerate() {
                    let v = f64::from(word(i).unwrap_or(0));
                    out.push(Field::new(*name, Value::Float((v * 33_000.0 / 1023.0 / 32.0).round() / 10_000.0), Some("V")));
                }
                true
            }
            Driver::HomePower => {
                if payload.len() < 12 {
                    return false;
                }
                for m in 0..3 {
                    out.push(Field::new(POWER_NAMES[2 * m], Value::Int(i64::from(word(2 * m).unwrap_or(0))), Some("Wh/2")));
                    if let Some(w) = time_to_watts(word(2 * m + 1).unwrap_or(0)) {
                        out.push(Field::new(POWER_NAMES[2 * m + 1], Value::Int(w), Some("W")));
                    }
                }
                true
            }
        }
    }
}

// Field names of the built-in code drivers.
const SLOW_NAMES: [&str; 4] = ["v1", "v2", "v3", "v4"];
const POWER_NAMES: [&str; 6] = ["c1", "p1", "c2", "p2", "c3", "p3"];

/// homePower pulse time to watts: times above 60000 count in milliseconds
/// beyond 60000; power is 18000000 / t (integer division); no pulse, no power.
fn time_to_watts(t: u16) -> Option<i64> {
    let mut t = i64::from(t);
    if t > 60_000 {
        t = 1000 * (t - 60_000);
    }
    (t > 0).then(|| 18_000_000 / t)
}

fn decode_layout<'a>(fields: &'a [BitField], payload: &[u8], out: &mut Vec<Field<'a>>) -> bool {
    let total: usize = fields.iter().map(|f| usize::from(f.bits)).sum();
    if payload.len() * 8 < total {
        return false;
    }
    // A payload of up to 16 bytes (every JeeLabs node's) is read as one
    // little-endian number: each field is then a shift and a mask.
    let word = (payload.len() <= 16).then(|| {
        let mut le = [0u8; 16];
        le[..payload.len()].copy_from_slice(payload);
        u128::from_le_bytes(le)
    });
    let mut pos = 0usize;
    for f in fields {
        let raw = match word {
            // `pos` < `total` <= 128 here (every field has at least one bit).
            Some(w) => (w >> pos) as u64 & mask(f.bits),
            None => bits_at(payload, pos, f.bits),
        };
        pos += usize::from(f.bits);
        if f.skip {
            continue;
        }
        let int = if f.signed && f.bits < 64 && raw >> (f.bits - 1) & 1 == 1 { raw as i64 - (1i64 << f.bits) } else { raw as i64 };
        let value = match f.scaling {
            Scaling::None => Value::Int(int),
            Scaling::Divide(d) => Value::Float(int as f64 / d),
            Scaling::Multiply(m) => Value::Float(int as f64 * m),
        };
        out.push(Field { name: Cow::Borrowed(&f.name), value, unit: f.unit.as_deref().map(Cow::Borrowed) });
    }
    true
}

/// The lowest `bits` (1 to 64) bits.
fn mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The `bits` (1 to 64) bits from bit `pos` of a little-endian bit stream,
/// which must hold them: read as one little-endian word of up to 16 bytes
/// instead of bit by bit.
fn bits_at(payload: &[u8], pos: usize, bits: u8) -> u64 {
    let first = pos / 8;
    let last = (pos + usize::from(bits) - 1) / 8;
    let mut v: u128 = 0;
    for (k, &b) in payload[first..=last].iter().enumerate() {
        v |= u128::from(b) << (8 * k);
    }
    let v = v >> (pos % 8);
    (v as u64) & mask(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(driver: &str, payload: &[u8], expected: &str) {
        let driver = Driver::builtin(driver).unwrap();
        let fields = driver.decode(payload).unwrap();
        let got: Vec<String> = fields.iter().map(|f| format!("{}={}{}", f.name, f.value, f.unit.as_deref().unwrap_or(""))).collect();
        assert_eq!(got.join(" "), expected);
    }

    /// The word-at-a-time read gives what reading bit by bit gives, at every position and width.
    #[test]
    fn bits_at_reads_like_bit_by_bit() {
        let payload: Vec<u8> = (0..20u32).map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8).collect();
        for pos in 0..64 {
            for bits in 1..=64u8 {
                if pos + usize::from(bits) > payload.len() * 8 {
                    continue;
                }
                let mut slow = 0u64;
                for i in 0..usize::from(bits) {
                    slow |= u64::from((payload[(pos + i) / 8] >> ((pos + i) % 8)) & 1) << i;
                }
                assert_eq!(bits_at(&payload, pos, bits), slow, "pos {pos} bits {bits}");
            }
        }
    }

    /// A payload longer than 16 bytes is read field by field: the same values.
    #[test]
    fn long_payloads_read_like_short_ones() {
        let d = Driver::builtin("roomNode").unwrap();
        let short = [1, 115, 179, 0];
        let mut long = short.to_vec();
        long.resize(20, 0xAA);
        assert_eq!(d.decode(&short), d.decode(&long));
        assert_eq!(Scaling::of(Some(0.1)), Scaling::Divide(10.0));
        assert_eq!(Scaling::of(Some(0.25)), Scaling::Divide(4.0));
        assert_eq!(Scaling::of(Some(0.3)), Scaling::Multiply(0.3));
        assert_eq!(Scaling::of(None), Scaling::None);
    }

    #[test]
    fn room_node_matches_the_jeelabs_example() {
        // `OK 2 1 115 179 0`: light 1, moved 1, humi 57, temp 17.9 °C, lobat 0.
        check("roomNode", &[1, 115, 179, 0], "light=1 moved=1 humi=57% temp=17.9°C lobat=0");
    }

    /// HouseMon decoded negative temperatures wrongly for a year: the 10-bit
    /// field must be sign-extended.
    #[test]
    fn room_node_negative_temperature_regression() {
        // -3.5 °C: 10-bit two's complement of -35 is 989 = 0b11_1101_1101.
        let v: u32 = 40 | (55 << 9) | (989 << 16);
        check("roomNode", &v.to_le_bytes(), "light=40 moved=0 humi=55% temp=-3.5°C lobat=0");
        let v: u32 = 1 << 25; // temp raw 512: the most negative, -51.2 °C
        check("roomNode", &v.to_le_bytes(), "light=0 moved=0 humi=0% temp=-51.2°C lobat=0");
    }

    #[test]
    fn radio_blip_and_home_power() {
        check("radioBlip", &[176, 209, 16, 0], "ping=1102256 age=816days");
        check("radioBlip", &[1, 0, 0, 0, 3, 100, 0], "ping=1 age=0days tag=3 vpre=3V");
        // Pulse times 2500 ms, 61000 (1 s beyond 60000) and 0 (no pulse yet).
        check("homePower", &[100, 0, 196, 9, 208, 7, 72, 238, 30, 0, 0, 0], "c1=100Wh/2 p1=7200W c2=2000Wh/2 p2=18W c3=30Wh/2");
        assert_eq!(Driver::builtin("homePower").unwrap().decode(&[1, 2, 3]), None);
    }

    #[test]
    fn slow_logger_and_light_node() {
        // 32 readings of 1023 (3.3 V) sum to 32736.
        check("slowLogger", &[0xe0, 0x7f, 0, 0, 0xe0, 0x7f, 0, 0], "v1=3.3V v2=0V v3=3.3V v4=0V");
        check("lightNode", &[200], "light=200");
    }

    #[test]
    fn configured_layouts() {
        let cfg: config::Config = config::Config::parse(
            "[[driver]]\nname = \"t\"\nfields = [ { name = \"a\", bits = 4 }, { name = \"pad\", bits = 4, skip = true }, { name = \"b\", bits = 12, signed = true, scale = 0.01, unit = \"V\" } ]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let d = Driver::from_config(&cfg.drivers[0]).unwrap();
        // a = 0x5, pad = 0xF, b = 0xFFE = -2 → -0.02
        let fields = d.decode(&[0xF5, 0xFE, 0x0F]).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].value, Value::Int(5));
        assert_eq!(fields[1].value, Value::Float(-0.02));
        assert_eq!(d.decode(&[0xF5]), None);
    }
}
