//! `/metrics`: the Prometheus text format (version 0.0.4).

use crate::{now_ms, Shared};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub(crate) async fn metrics(State(app): State<Shared>) -> Response {
    let now = now_ms();
    let mut out = String::new();
    let (sources, newest) = {
        let r = app.site.hub.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (r.last_by_source.clone(), r.newest_ms)
    };
    family(&mut out, "blackbox_up", "gauge", "1 when the cache is current (0 while catching up or rebuilding).");
    let _ = writeln!(out, "blackbox_up {}", u8::from(app.site.phase.is_ready()));
    family(&mut out, "blackbox_last_line_age_seconds", "gauge", "Seconds since the newest line of each source.");
    for (s, t) in &sources {
        let _ = writeln!(out, "blackbox_last_line_age_seconds{{source=\"{}\"}} {}", label(s), (now - t) as f64 / 1e3);
    }
    let idx = app.index();
    let state = app.site.state.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        let Some(idx) = idx else { return out };
        let Ok(idx) = idx.lock() else { return out };
        if let Ok(stats) = idx.stats() {
            family(&mut out, "blackbox_lines_total", "counter", "Lines indexed per source.");
            for s in &stats.sources {
                let _ = writeln!(out, "blackbox_lines_total{{source=\"{}\"}} {}", label(&s.source), s.counts.lines);
            }
            family(&mut out, "blackbox_values_total", "counter", "Values decoded per source.");
            for s in &stats.sources {
                let _ = writeln!(out, "blackbox_values_total{{source=\"{}\"}} {}", label(&s.source), s.counts.values);
            }
        }
        if let Ok(schema) = idx.schema() {
            // A family is a device's kind: its name without the node number (roomNode-4: roomNode).
            let mut families: BTreeMap<String, u64> = BTreeMap::new();
            for r in &schema {
                let device = r.sensor.split('/').nth(1).unwrap_or("");
                let kind = device.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('-');
                *families.entry(kind.to_string()).or_default() += r.count;
            }
            family(&mut out, "blackbox_sensor_readings_total", "counter", "Readings per sensor family (device kind).");
            for (f, n) in families {
                let _ = writeln!(out, "blackbox_sensor_readings_total{{family=\"{}\"}} {n}", label(&f));
            }
        }
        if let Ok(health) = idx.health() {
            family(&mut out, "blackbox_follower_lag_seconds", "gauge", "How far the cache is behind the newest line seen in the logs.");
            let _ = writeln!(out, "blackbox_follower_lag_seconds {}", ((newest - health.clock_ms()).max(0)) as f64 / 1e3);
            let status = health.status_at(now);
            family(
                &mut out,
                "blackbox_device_level",
                "gauge",
                "Each device's level: 0 ok, 1 warning, 2 error, 3 critical, 4 grey, 5 black.",
            );
            for d in &status.devices {
                let _ = writeln!(
                    out,
                    "blackbox_device_level{{source=\"{}\",device=\"{}\"}} {}",
                    label(&d.source),
                    label(&d.device),
                    d.level as u8
                );
            }
            family(&mut out, "blackbox_site_level", "gauge", "The site's level (as blackbox_device_level).");
            let _ = writeln!(out, "blackbox_site_level {}", status.level as u8);
        }
        family(&mut out, "blackbox_cache_bytes", "gauge", "Size of the cache directory.");
        let _ = writeln!(out, "blackbox_cache_bytes {}", dir_size(idx.path()));
        drop(idx);
        if let Ok((entries, _)) = alert::Records::new(&state, alert::LEDGER).read::<alert::Entry>() {
            let mut n: BTreeMap<(String, &str), u64> = BTreeMap::new();
            for e in &entries {
                match e.outcome {
                    alert::Outcome::Sent => *n.entry((e.channel.clone().unwrap_or_default(), "sent")).or_default() += 1,
                    alert::Outcome::Failed => *n.entry((String::new(), "failed")).or_default() += 1,
                }
                for f in &e.failures {
                    *n.entry((f.channel.clone(), "failed_try")).or_default() += 1;
                }
            }
            family(
                &mut out,
                "blackbox_notifications_total",
                "counter",
                "Notifications per channel and outcome (failed: every channel failed; failed_try: one try).",
            );
            for ((channel, outcome), count) in n {
                let _ = writeln!(out, "blackbox_notifications_total{{channel=\"{}\",outcome=\"{outcome}\"}} {count}", label(&channel));
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    out.push_str(&body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
