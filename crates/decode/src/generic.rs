//! Generic line formats: `key=value` pairs, JSON objects (rtl_433 style),
//! CSV with a header, and regular expressions with named captures.

use crate::value::{Field, Outcome, Value};
use std::borrow::Cow;

/// Units recognised after a number (`21.5C`, `40%`, `3.3V`) and at the end
/// of JSON keys (`temperature_C`).
const UNITS: &[(&str, &str)] = &[
    ("°C", "°C"),
    ("C", "°C"),
    ("°F", "°F"),
    ("F", "°F"),
    ("%", "%"),
    ("mV", "mV"),
    ("V", "V"),
    ("mA", "mA"),
    ("A", "A"),
    ("kW", "kW"),
    ("W", "W"),
    ("kWh", "kWh"),
    ("Wh", "Wh"),
    ("hPa", "hPa"),
    ("Pa", "Pa"),
    ("ppm", "ppm"),
    ("dBm", "dBm"),
    ("dB", "dB"),
    ("lux", "lux"),
    ("ms", "ms"),
    ("s", "s"),
    ("mm", "mm"),
    ("Hz", "Hz"),
];

/// A value with an optional unit suffix: `21.5C` is 21.5 °C.
fn value_with_unit(s: &str) -> (Value, Option<Cow<'static, str>>) {
    let v = Value::infer(s);
    if !matches!(v, Value::Text(_)) {
        return (v, None);
    }
    let t = s.trim();
    for (suffix, unit) in UNITS {
        if let Some(num) = t.strip_suffix(suffix) {
            let num = num.trim_end();
            if let n @ (Value::Int(_) | Value::Float(_)) = Value::infer(num) {
                return (n, Some(Cow::Borrowed(*unit)));
            }
        }
    }
    (v, None)
}

/// `key=value` pairs separated by spaces, commas or semicolons. At least one
/// pair with a non-empty key is needed.
pub fn key_values(text: &str, device: &str) -> Outcome<'static> {
    let mut fields = Vec::new();
    for token in text.split(|c: char| c.is_whitespace() || c == ',' || c == ';') {
        if let Some((k, v)) = token.split_once('=') {
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c)) {
                continue;
            }
            let (value, unit) = value_with_unit(v.trim_matches('"'));
            fields.push(Field { name: Cow::Owned(k.into()), value, unit });
        }
    }
    if fields.is_empty() {
        return Outcome::Undecoded;
    }
    Outcome::Decoded { device: Cow::Owned(device.into()), fields }
}

/// A JSON object. Nested objects are flattened with `.`; `id_fields` name
/// the device (joined with `-`) and are not reported as values; a `time`
/// field is skipped (the log's time is the reading's time).
pub fn json(text: &str, id_fields: &[String], default_device: &str) -> Outcome<'static> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        return Outcome::Undecoded;
    };
    let mut parts = Vec::new();
    for id in id_fields {
        match map.get(id) {
            Some(serde_json::Value::String(s)) => parts.push(s.clone()),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => parts.push(v.to_string()),
            _ => {}
        }
    }
    let device = Cow::Owned(if parts.is_empty() { default_device.into() } else { sanitize_device(&parts.join("-")) });
    let mut fields = Vec::new();
    flatten("", &serde_json::Value::Object(map), id_fields, &mut fields);
    if fields.is_empty() {
        return Outcome::Recognised { kind: "empty json" };
    }
    Outcome::Decoded { device, fields }
}

fn flatten(prefix: &str, v: &serde_json::Value, skip: &[String], out: &mut Vec<Field<'static>>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && (k == "time" || skip.contains(k)) {
                    continue;
                }
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, v, skip, out);
            }
        }
        serde_json::Value::Number(n) => {
            let value = n.as_i64().map(Value::Int).or_else(|| n.as_f64().map(Value::Float)).unwrap_or(Value::Text(n.to_string()));
            let unit = UNITS
                .iter()
                .find(|(s, _)| prefix.len() > s.len() + 1 && prefix.ends_with(&format!("_{s}")))
                .map(|(_, u)| Cow::Borrowed(*u));
            out.push(Field { name: field_name(prefix), value, unit });
        }
        serde_json::Value::Bool(b) => out.push(Field { name: field_name(prefix), value: Value::Bool(*b), unit: None }),
        serde_json::Value::String(s) => out.push(Field { name: field_name(prefix), value: Value::Text(s.clone()), unit: None }),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), item, skip, out);
            }
        }
        serde_json::Value::Null => {}
    }
}

/// Field names are the last segment of sensor ids: never empty, no `/` or
/// spaces (a JSON key `""` or `"a b"` from a device must not break ids).
fn field_name(s: &str) -> Cow<'static, str> {
    if s.is_empty() {
        return Cow::Borrowed("_");
    }
    if s.contains(|c: char| c == '/' || c.is_whitespace()) {
        return Cow::Owned(sanitize_device(s));
    }
    Cow::Owned(s.into())
}

/// Device names are path segments of sensor ids: no `/` or spaces.
pub fn sanitize_device(s: &str) -> String {
    s.chars().map(|c| if c == '/' || c.is_whitespace() { '_' } else { c }).collect()
}

/// A CSV line. `header` holds the column names, learned from the first line
/// that is not numeric when not configured.
pub fn csv(text: &str, separator: char, header: &mut Option<Vec<String>>, device: &str) -> Outcome<'static> {
    let cells: Vec<&str> = text.split(separator).map(str::trim).collect();
    let Some(names) = header.as_ref() else {
        if cells.iter().all(|c| matches!(Value::infer(c), Value::Text(_))) {
            // An empty heading names its column by position (`col2`).
            *header = Some(
                cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c.trim_matches('"') {
                        "" => format!("col{}", i + 1),
                        name => field_name(name).to_string(),
                    })
                    .collect(),
            );
            return Outcome::Recognised { kind: "csv header" };
        }
        return Outcome::Undecoded;
    };
    if cells.len() != names.len() {
        return Outcome::Undecoded;
    }
    if cells.iter().zip(names).all(|(c, n)| c.trim_matches('"') == n) {
        return Outcome::Recognised { kind: "csv header" };
    }
    let fields = names
        .iter()
        .zip(cells)
        .filter(|(_, c)| !c.is_empty())
        .map(|(n, c)| {
            let (value, unit) = value_with_unit(c.trim_matches('"'));
            Field { name: Cow::Owned(n.clone()), value, unit }
        })
        .collect();
    Outcome::Decoded { device: Cow::Owned(device.into()), fields }
}

/// Named captures of `re` become fields; a capture named `device` names the device.
pub fn regex(text: &str, re: &regex::Regex, device: &str) -> Outcome<'static> {
    let Some(caps) = re.captures(text) else { return Outcome::Undecoded };
    let mut dev = device.to_string();
    let mut fields = Vec::new();
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            if name == "device" {
                dev = sanitize_device(m.as_str());
            } else {
                let (value, unit) = value_with_unit(m.as_str());
                fields.push(Field { name: Cow::Owned(name.into()), value, unit });
            }
        }
    }
    if fields.is_empty() {
        return Outcome::Recognised { kind: "regex match" };
    }
    Outcome::Decoded { device: Cow::Owned(dev), fields }
}
