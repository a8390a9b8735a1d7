//! The JSON API under `/api/` (docs/api.md), the live event stream and the
//! actions. Every answer is built from the cache (or the state directory)
//! and serialised by serde: text a device sent is data, never markup.

use crate::auth::User;
use crate::{now_ms, App, Shared};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use health::{DeviceStatus, Level, Subject};
use index::Index;
use logfile::time::rfc3339_millis;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;
/// Raw readings shown at most; a longer range is shown from the rollups.
const RAW_POINTS: usize = 20_000;

/// `%XX` decoded (bytes that do not make UTF-8 are replaced).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Range {
    from: Option<String>,
    to: Option<String>,
    every: Option<String>,
    format: Option<String>,
    /// `ms`: a sensor's rows with their times as milliseconds since 1970
    /// (UTC) instead of RFC 3339 text, as InfluxDB's `epoch=ms`.
    epoch: Option<String>,
    device: Option<String>,
    limit: Option<usize>,
}

fn time(s: Option<&str>, now: i64) -> Result<Option<i64>, String> {
    match s.filter(|s| !s.is_empty()) {
        Some("now") => Ok(Some(now)),
        s => s.map(|s| logfile::time::parse_time(s, Some(now))).transpose(),
    }
}

/// `from` and `to` of a list (either may be left out), `from` before `to`.
fn range(q: &Range, now: i64) -> Result<(Option<i64>, Option<i64>), String> {
    let (from, to) = (time(q.from.as_deref(), now)?, time(q.to.as_deref(), now)?);
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err("from must be before to".into());
        }
    }
    Ok((from, to))
}

fn bad(e: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))).into_response()
}

/// A query string, refused as every other error of the API is: `400`
/// with `{"error": ...}` (axum's own `Query` answers plain text).
pub(crate) struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Response> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(q)| ApiQuery(q)).map_err(|e| bad(e.body_text()))
    }
}

/// A JSON body, refused with `{"error": ...}` and axum's status (400, 413,
/// 415 or 422) rather than axum's plain text.
pub(crate) struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(|e| (e.status(), Json(json!({ "error": e.body_text() }))).into_response())
    }
}

pub(crate) async fn progress(State(app): State<Shared>) -> Json<Value> {
    Json(app.site.phase.json())
}

pub(crate) async fn healthz(State(app): State<Shared>) -> Response {
    if app.site.phase.is_ready() {
        "ok\n".into_response()
    } else {
        (StatusCode::OK, "ok (catching up)\n").into_response()
    }
}

pub(crate) async fn session(State(app): State<Shared>, Extension(user): Extension<User>) -> Json<Value> {
    let auth = &app.site.auth;
    Json(json!({
        "site": app.site.name,
        "user": user.0,
        "actions": auth.required() && user.0.as_deref() != Some("token"),
        "csrf": if auth.required() { Some(auth.csrf(&user)) } else { None },
    }))
}

/// A device's standing as JSON, as `status --format json` and `/api/status`
/// give it; `days` (a scan of the logs) names the files of the causes.
pub fn device_json(d: &DeviceStatus, days: &[logfile::DayFile]) -> Value {
    json!({
        "device": d.device,
        "source": d.source,
        "level": d.level,
        "colour": d.level.colour(),
        "since": rfc3339_millis(d.since_ms),
        "why": d.why,
        "last_seen": rfc3339_millis(d.last_seen_ms),
        "results": d.results.iter().map(|r| json!({
            "check": r.check, "sensor": r.sensor, "level": r.level, "colour": r.level.colour(),
            "since": rfc3339_millis(r.since_ms), "value": r.value, "message": r.message,
            "cause": r.cause.as_ref().filter(|c| !c.day.is_empty()).map(|c| json!({"file": logfile::layout::shown_name(days, &c.day), "line": c.line, "time": rfc3339_millis(c.time_ms)})),
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn status(State(app): State<Shared>) -> Response {
    let r = app
        .with_index(|app, idx| {
            let now = now_ms();
            let status = idx.health().map_err(|e| e.to_string())?.status_at(now);
            let counts = status.counts();
            // The log directory is read for the causes' file names only
            // when a result has one (the overview asks every few seconds).
            let caused = status.devices.iter().any(|d| d.results.iter().any(|r| r.cause.as_ref().is_some_and(|c| !c.day.is_empty())));
            let days = if caused { logfile::scan(&app.site.logs).map(|s| s.days).unwrap_or_default() } else { Vec::new() };
            Ok(json!({
                "site": app.site.name,
                "at": rfc3339_millis(now),
                "level": status.level,
                "colour": status.level.colour(),
                "counts": Level::ALL.iter().zip(counts).map(|(l, n)| (l.word().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "devices": status.devices.iter().map(|d| device_json(d, &days)).collect::<Vec<_>>(),
                "notifications": alert::state::summary(&app.site.state, now, &status),
            }))
        })
        .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

pub(crate) async fn bar(State(app): State<Shared>) -> Response {
    let (sources, newest) = {
        let r = app.site.hub.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (r.last_by_source.clone(), r.newest_ms)
    };
    let now = now_ms();
    let indexed = match app.index() {
        Some(idx) => {
            tokio::task::spawn_blocking(move || idx.lock().ok().and_then(|i| i.health().ok()).map(|h| h.clock_ms())).await.ok().flatten()
        }
        None => None,
    };
    let free = rustix::fs::statvfs(&app.site.logs).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    Json(json!({
        "site": app.site.name,
        "now": rfc3339_millis(now),
        "ready": app.site.phase.is_ready(),
        "sources": sources.iter().map(|(s, t)| json!({"source": s, "last": rfc3339_millis(*t), "age_s": (now - t) as f64 / 1e3})).collect::<Vec<_>>(),
        // How far the cache is behind the newest line seen in the logs.
        "lag_s": indexed.map(|i| ((newest - i).max(0)) as f64 / 1e3),
        "disk_free_bytes": free,
        "live_pages": crate::live_count(&app),
        "uptime_s": app.started.elapsed().as_secs(),
    }))
    .into_response()
}

/// The device `id` (`SOURCE/DEVICE`): its standing, results with the lines
/// behind them, sensors with their latest values, and its last lines.
pub(crate) async fn device(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let r = app
        .with_index(move |app, idx| {
            let now = now_ms();
            let held = idx.health().map_err(|e| e.to_string())?;
            // As it stands now, made once for the status and the checks.
            let later = held.as_of(now);
            let health = later.as_ref().unwrap_or(&held);
            let status = health.status_at(now);
            let d = status.devices.iter().find(|d| d.device == id).ok_or_else(|| format!("not found: no device {id:?}"))?;
            let days = logfile::scan(&app.site.logs).map(|s| s.days).unwrap_or_default();
            let mut v = device_json(d, &days);
            // Every check of the device, passing or not.
            v["checks"] = health
                .device_checks(&id, now)
                .iter()
                .map(|c| {
                    json!({
                        "check": c.check, "kind": c.kind, "sensor": c.sensor, "level": c.level, "colour": c.level.colour(),
                        "state": c.state, "since": c.since_ms.map(rfc3339_millis),
                    })
                })
                .collect();
            // The original line behind each result: the Brewer detailed view.
            if let Some(results) = v["results"].as_array_mut() {
                for (r, res) in results.iter_mut().zip(&d.results) {
                    if let Some(c) = res.cause.as_ref().filter(|c| !c.day.is_empty()) {
                        r["cause"]["text"] = json!(logfile::day_lines(&days, &c.day, &[c.line]).pop().flatten());
                    }
                }
            }
            let prefix = format!("{id}/");
            let mut sensors = Vec::new();
            for row in idx.schema().map_err(|e| e.to_string())?.into_iter().filter(|r| r.sensor.starts_with(&prefix)) {
                let mut last = None;
                idx.query(&row.sensor, Some(row.last_ms), Some(row.last_ms + 1), &mut |t, val| {
                    last = Some((t, index::value_json(val)));
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
                sensors.push(json!({
                    "sensor": row.sensor, "kind": row.kind, "unit": row.unit, "count": row.count,
                    "last": rfc3339_millis(row.last_ms),
                    "value": last.and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok()),
                }));
            }
            v["sensors"] = json!(sensors);
            let last = idx.last_lines(&id, d.last_seen_ms, 20).map_err(|e| e.to_string())?;
            let lines = logfile::lines_at(&days, &last);
            v["last_lines"] = lines.into_iter().map(|(file, n, text)| json!({"file": file, "line": n, "text": text})).collect();
            // Its source's events of the last day (of the logs' time), newest first.
            let since = d.last_seen_ms.max(now.min(d.last_seen_ms + DAY_MS)) - DAY_MS;
            let mut events: Vec<Value> = idx
                .events(Some(since), None)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|e| e.source == d.source)
                .map(|e| json!({"time": rfc3339_millis(e.time_ms), "code": e.code, "level": e.level, "description": e.description, "file": e.file, "line": e.line, "text": e.text}))
                .collect();
            events.reverse();
            events.truncate(50);
            v["events"] = json!(events);
            // Whether people were told to stop hearing about it, as its tile says.
            let told = alert::state::summary(&app.site.state, now, &status).unwrap_or_default();
            let ack = told["acks"].as_array().and_then(|a| a.iter().find(|a| a["device"] == id.as_str())).cloned();
            v["acknowledged"] = ack.unwrap_or(Value::Null);
            let silenced = told["silences"].as_array().into_iter().flatten().filter(|s| {
                s["glob"].as_str().and_then(|g| health::glob::Glob::new(g).ok()).is_some_and(|g| g.matches(&id))
            });
            v["silenced"] = json!(silenced.cloned().collect::<Vec<_>>());
            Ok(v)
        })
        .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

/// A sensor's readings in a range: raw for short ranges, hourly or daily rollups for long ones.
pub(crate) async fn sensor(State(app): State<Shared>, Path(id): Path<String>, ApiQuery(q): ApiQuery<Range>) -> Response {
    let csv = q.format.as_deref() == Some("csv");
    if !matches!(q.format.as_deref(), None | Some("csv" | "json")) {
        return bad("format: csv or json");
    }
    if !matches!(q.epoch.as_deref(), None | Some("ms")) {
        return bad("epoch: ms (or leave it out for RFC 3339 times)");
    }
    let r = app.with_index(move |_, idx| sensor_data(idx, &id, &q)).await;
    match r {
        Ok(v) if csv => {
            let mut out = String::new();
            let rows = v["rows"].as_array().cloned().unwrap_or_default();
            let columns: Vec<String> = v["columns"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(String::from)).collect();
            out.push_str(&columns.join(","));
            out.push('\n');
            for row in rows {
                let cells: Vec<String> =
                    row.as_array().into_iter().flatten().map(|c| c.as_str().map_or_else(|| c.to_string(), String::from)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            let name = v["sensor"].as_str().unwrap_or("sensor").replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
                ],
                out,
            )
                .into_response()
        }
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

fn sensor_data(idx: &Index, id: &str, q: &Range) -> Result<Value, String> {
    let now = now_ms();
    // Without a range: the last day of the sensor's own readings (an
    // archive's last day, or the last 24 hours of a live site).
    let newest = || -> Result<i64, String> {
        let rows = idx.schema().map_err(|e| e.to_string())?;
        let row = rows.iter().find(|r| r.sensor == id).ok_or_else(|| format!("not found: no sensor {id:?}"))?;
        Ok(if now - row.last_ms < DAY_MS { now } else { row.last_ms + 1 })
    };
    let from = time(q.from.as_deref(), now)?;
    let to = match time(q.to.as_deref(), now)? {
        Some(t) => t,
        None if from.is_none() => newest()?,
        None => now,
    };
    let from = from.unwrap_or(to - DAY_MS);
    if from >= to {
        return Err("from must be before to".into());
    }
    let epoch_ms = q.epoch.is_some();
    let stamp = |t: i64| if epoch_ms { json!(t) } else { json!(rfc3339_millis(t)) };
    let span = to - from;
    let every = match q.every.as_deref() {
        None | Some("") | Some("auto") => {
            if span <= 2 * DAY_MS {
                None
            } else if span <= 120 * DAY_MS {
                Some(3_600_000)
            } else {
                Some(DAY_MS)
            }
        }
        Some("raw") => None,
        Some("1h") => Some(3_600_000),
        Some("1d") => Some(DAY_MS),
        Some(other) => return Err(format!("every {other:?}: raw, 1h, 1d or auto")),
    };
    let unit = idx.unit(id).map_err(|e| e.to_string())?;
    let thresholds = thresholds(idx, id)?;
    let mut base = json!({
        "sensor": id, "unit": unit, "from": rfc3339_millis(from), "to": rfc3339_millis(to), "thresholds": thresholds,
    });
    if every.is_none() {
        let mut rows: Vec<Value> = Vec::new();
        let mut more = false;
        let known = idx
            .query(id, Some(from), Some(to), &mut |t, v| {
                if rows.len() >= RAW_POINTS {
                    more = true;
                    return Ok(());
                }
                let value: Value = serde_json::from_str(&index::value_json(v)).unwrap_or(Value::Null);
                rows.push(json!([stamp(t), value]));
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        if !known {
            return Err(format!("not found: no sensor {id:?}"));
        }
        if !more || q.every.as_deref() == Some("raw") {
            base["every"] = json!("raw");
            base["columns"] = json!(["time", "value"]);
            base["rows"] = json!(rows);
            base["truncated"] = json!(more);
            return Ok(base);
        }
    }
    let every = every.unwrap_or(3_600_000);
    let hours =
        idx.rollup_hours(id, Some(from), Some(to)).map_err(|e| e.to_string())?.ok_or_else(|| format!("not found: no sensor {id:?}"))?;
    let Some(hours) = hours else {
        return Err(format!("{id} has no rollups (gauges are off in [rollup], and it is no [[counter]]): ask for every=raw"));
    };
    if let Some(c) = &hours.counter {
        // A counter's increments are in its own unit (scaled), not the raw readings'.
        base["unit"] = json!(c.increments_unit(base["unit"].as_str().map(str::to_string)));
    }
    let periods = rollup::combine(hours.hours, every, hours.counter.as_ref(), now);
    let mut rows = Vec::new();
    let counter = hours.counter.is_some();
    for p in periods.iter().filter(|p| p.end > from && p.start < to) {
        match &p.summary {
            rollup::Summary::Gauge(g) => {
                let mean = if g.count > 0 { g.sum.value() / g.count as f64 } else { f64::NAN };
                rows.push(json!([stamp(p.start), g.count, rollup::number(&g.min), finite(mean), rollup::number(&g.max), p.partial]));
            }
            rollup::Summary::Counter(c) => rows.push(json!([stamp(p.start), c.count, finite(c.total.value()), p.partial])),
        }
    }
    base["every"] = json!(if every == DAY_MS { "1d" } else { "1h" });
    base["columns"] = if counter {
        json!(["start", "count", "increment", "partial"])
    } else {
        json!(["start", "count", "min", "mean", "max", "partial"])
    };
    base["rows"] = json!(rows);
    Ok(base)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The range checks on a sensor, as lines to draw on its plot.
fn thresholds(idx: &Index, sensor: &str) -> Result<Vec<Value>, String> {
    let health = idx.health().map_err(|e| e.to_string())?;
    let device = sensor.rsplit_once('/').map_or(sensor, |(d, _)| d);
    let mut out = Vec::new();
    for c in health.checks().checks.iter().filter(|c| c.kind == health::Kind::Range && c.applies_to(sensor)) {
        if let (level, health::Params::Range { min, max, .. }) = c.for_device(device) {
            out.push(json!({"check": c.name, "level": level, "colour": level.colour(), "min": min, "max": max}));
        }
    }
    Ok(out)
}

pub(crate) async fn schema(State(app): State<Shared>) -> Response {
    let r = app
        .with_index(|_, idx| {
            let rows = idx.schema().map_err(|e| e.to_string())?;
            Ok(json!(rows
                .iter()
                .map(|r| json!({"sensor": r.sensor, "kind": r.kind, "unit": r.unit, "count": r.count, "first": rfc3339_millis(r.first_ms), "last": rfc3339_millis(r.last_ms)}))
                .collect::<Vec<_>>()))
        })
        .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

pub(crate) async fn events_list(State(app): State<Shared>, ApiQuery(q): ApiQuery<Range>) -> Response {
    let r = app
        .with_index(move |_, idx| {
            let now = now_ms();
            let (from, to) = range(&q, now)?;
            let events = idx.events(from, to).map_err(|e| e.to_string())?;
            let skip = events.len().saturating_sub(q.limit.unwrap_or(1000));
            Ok(json!(events[skip..]
                .iter()
                .map(|e| json!({"time": rfc3339_millis(e.time_ms), "source": e.source, "code": e.code, "level": e.level,
                    "description": e.description, "file": e.file, "line": e.line, "text": e.text}))
                .collect::<Vec<_>>()))
        })
        .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

pub(crate) async fn transitions(State(app): State<Shared>, ApiQuery(q): ApiQuery<Range>) -> Response {
    let r = app
        .with_index(move |app, idx| {
            let now = now_ms();
            let (from, to) = range(&q, now)?;
            let days = logfile::scan(&app.site.logs).map(|s| s.days).unwrap_or_default();
            let mut out = Vec::new();
            for t in idx.transitions(from, to).map_err(|e| e.to_string())? {
                let (kind, about) = match &t.subject {
                    Subject::Result { check, sensor } => ("result", format!("{sensor} [{check}]")),
                    Subject::Device(d) => ("device", d.clone()),
                    Subject::Source(s) => ("source", s.clone()),
                    Subject::Site => ("site", String::new()),
                };
                let device = match &t.subject {
                    Subject::Result { sensor, .. } => sensor.rsplit_once('/').map(|(d, _)| d.to_string()),
                    Subject::Device(d) => Some(d.clone()),
                    _ => None,
                };
                if q.device.as_ref().is_some_and(|want| device.as_ref() != Some(want)) {
                    continue;
                }
                out.push(json!({
                    "time": rfc3339_millis(t.at_ms), "kind": kind, "subject": about, "device": device,
                    "from": t.from, "to": t.to, "colour": t.to.colour(), "value": t.value, "message": t.message,
                    "cause": t.cause.as_ref().filter(|c| !c.day.is_empty()).map(|c| json!({"file": logfile::layout::shown_name(&days, &c.day), "line": c.line})),
                }));
            }
            let skip = out.len().saturating_sub(q.limit.unwrap_or(2000));
            Ok(json!(out.split_off(skip)))
        })
        .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

pub(crate) async fn notifications(State(app): State<Shared>) -> Response {
    let ledger = alert::Records::new(&app.site.state, alert::LEDGER);
    match ledger.read::<alert::Entry>() {
        Ok((entries, _)) => {
            let skip = entries.len().saturating_sub(200);
            Json(json!(entries[skip..]
                .iter()
                .map(|e| json!({"at": rfc3339_millis(e.at_ms), "outcome": e.outcome, "channel": e.channel, "route": e.message.route,
                    "kind": e.message.kind, "id": e.message.id, "text": e.message.headline(), "failures": e.failures}))
                .collect::<Vec<_>>()))
            .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

pub(crate) async fn lines(State(app): State<Shared>) -> Json<Value> {
    let r = app.site.hub.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    Json(json!(r.lines.iter().map(|l| (**l).clone()).collect::<Vec<_>>()))
}

/// Lines of context shown around a log line at most (either side).
const CONTEXT_LIMIT: u64 = 100;

#[derive(Debug, Deserialize)]
pub(crate) struct LogAt {
    day: String,
    line: u64,
    context: Option<u64>,
}

/// `/api/log?day=YYYYMMDD&line=N&context=K`: line N of a day's log and
/// K lines either side (5 by default), read from the day's file wherever
/// the log directory has it (flat or `YYYY/`, plain or gzipped). The day
/// is only ever compared with the files a scan found: it never makes a path.
pub(crate) async fn log(State(app): State<Shared>, ApiQuery(q): ApiQuery<LogAt>) -> Response {
    if q.day.len() != 8 || !q.day.bytes().all(|b| b.is_ascii_digit()) {
        return bad("day: YYYYMMDD, eight digits");
    }
    if q.line == 0 {
        return bad("line: from 1");
    }
    let context = q.context.unwrap_or(5);
    if context > CONTEXT_LIMIT {
        return bad(format!("context: at most {CONTEXT_LIMIT} lines"));
    }
    let logs = app.site.logs.clone();
    let (first, last) = (q.line.saturating_sub(context).max(1), q.line.saturating_add(context));
    let found =
        tokio::task::spawn_blocking(move || logfile::day_span(&logfile::scan(&logs)?.days, &q.day, first, last).map(|f| (q, f))).await;
    let not_found = |e: String| (StatusCode::NOT_FOUND, Json(json!({ "error": e }))).into_response();
    match found {
        Ok(Ok((q, None))) => not_found(format!("no log file for the day {}", q.day)),
        Ok(Ok((q, Some((file, lines))))) if !lines.iter().any(|(n, _)| *n == q.line) => not_found(format!("{file} has no line {}", q.line)),
        Ok(Ok((q, Some((file, lines))))) => Json(json!({
            "day": q.day, "file": file, "line": q.line,
            "lines": lines.into_iter().map(|(n, text)| json!({"line": n, "text": text})).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("the logs cannot be read: {e}") }))).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

/// Counts a live page while its stream is open.
struct LiveSlot(Arc<App>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `/events`: Server-Sent Events (`line`, `indexed`, `progress`, `ready`).
pub(crate) async fn events(State(app): State<Shared>) -> Response {
    if app.live.fetch_add(1, Ordering::Relaxed) >= app.site.max_live {
        app.live.fetch_sub(1, Ordering::Relaxed);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live pages open\n").into_response();
    }
    let slot = LiveSlot(app.clone());
    let rx = app.site.hub.tx.subscribe();
    let first =
        Event::default().event(if app.site.phase.is_ready() { "ready" } else { "progress" }).data(app.site.phase.json().to_string());
    let stream = futures_util::stream::unfold((rx, Some(first), slot), |(mut rx, first, slot)| async move {
        if let Some(e) = first {
            return Some((Ok::<Event, Infallible>(e), (rx, None, slot)));
        }
        match rx.recv().await {
            Ok(msg) => Some((Ok(Event::default().event(msg.0.as_str()).data(msg.1.as_str())), (rx, None, slot))),
            // A slow page missed some: tell it to fetch again.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                Some((Ok(Event::default().event("indexed").data("{}")), (rx, None, slot)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Why an action is refused, if it is: it must come from a signed-in
/// person (not a program's token), with the page's CSRF token.
fn refused(app: &App, user: &User, headers: &HeaderMap) -> Option<Response> {
    if !app.site.auth.required() || user.0.as_deref() == Some("token") {
        let why = "actions need a user of [web] users: the dashboard is read-only";
        return Some((StatusCode::FORBIDDEN, Json(json!({ "error": why }))).into_response());
    }
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if token != app.site.auth.csrf(user) {
        return Some((StatusCode::FORBIDDEN, Json(json!({"error": "missing or wrong CSRF token: reload the page"}))).into_response());
    }
    None
}

#[derive(Debug, Deserialize)]
pub(crate) struct AckForm {
    device: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    note: Option<String>,
}

pub(crate) async fn ack(
    State(app): State<Shared>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<AckForm>,
) -> Response {
    if let Some(r) = refused(&app, &user, &headers) {
        return r;
    }
    let for_ms = match form.for_.as_deref().filter(|f| !f.is_empty()).map(config::parse_duration).transpose() {
        Ok(d) => d.map(|d| d.as_millis() as i64),
        Err(e) => return bad(e),
    };
    let by = user.0.as_deref().unwrap_or("?");
    let note = Some(match form.note.filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("{n} (by {by})"),
        None => format!("by {by}"),
    });
    let r = app
        .with_index(move |app, idx| {
            let now = now_ms();
            let status = idx.health().map_err(|e| e.to_string())?.status_at(now);
            let d =
                status.devices.iter().find(|d| d.device == form.device).ok_or_else(|| format!("not found: no device {:?}", form.device))?;
            let record = alert::state::ack_of(d, for_ms, note, now)?;
            alert::Records::new(&app.site.state, alert::ACKS).append(&record).map_err(|e| e.to_string())?;
            Ok(json!({"acknowledged": record.device, "level": record.level, "until": record.until_ms.map(rfc3339_millis)}))
        })
        .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SilenceForm {
    glob: String,
    #[serde(rename = "for")]
    for_: String,
    note: Option<String>,
}

pub(crate) async fn silence(
    State(app): State<Shared>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<SilenceForm>,
) -> Response {
    if let Some(r) = refused(&app, &user, &headers) {
        return r;
    }
    if let Err(e) = health::glob::Glob::new(&form.glob) {
        return bad(e);
    }
    let d = match config::parse_duration(&form.for_) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return bad("for: a silence of 0 would end at once"),
        Err(e) => return bad(e),
    };
    let now = now_ms();
    let by = user.0.as_deref().unwrap_or("?");
    let note = Some(match form.note.filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("{n} (by {by})"),
        None => format!("by {by}"),
    });
    let record = alert::Silence { at_ms: now, glob: form.glob, until_ms: now + d.as_millis() as i64, note, cleared: false };
    match alert::Records::new(&app.site.state, alert::SILENCES).append(&record) {
        Ok(()) => Json(json!({"silenced": record.glob, "until": rfc3339_millis(record.until_ms)})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}
