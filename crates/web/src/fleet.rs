//! `blackbox serve --sites DIR`: the fleet. The front page is every site as
//! a tile in its worst colour with its counts; `/sites/<site>/` is that
//! site's own dashboard (the same pages and API as `blackbox serve`, over
//! the site's own cache, indexed from its mirrored logs), served by a
//! router per site that the fleet hands the request to with the prefix
//! taken off. A site's name in a path is only ever looked up among the
//! sites the fleet holds; it never reaches the file system.

use crate::{now_ms, protect, App, Auth, Server, Shared, Site};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use health::Level;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use tower::ServiceExt;

/// The header a site's pages learn they are part of a fleet by (for a link back).
pub(crate) const FLEET_HEADER: &str = "x-blackbox-fleet";

/// The sites a fleet server shows.
pub struct Fleet {
    sites: RwLock<BTreeMap<String, (Shared, Router)>>,
    /// Sites that cannot be shown, and why (a configuration that does not
    /// load, a cache that cannot be built): black in the fleet, with the reason.
    broken: RwLock<BTreeMap<String, String>>,
    auth: Auth,
    max_connections: usize,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("sites", &self.names()).finish_non_exhaustive()
    }
}

impl Fleet {
    pub fn new(auth: Auth, max_connections: usize) -> Arc<Fleet> {
        Arc::new(Fleet { sites: RwLock::default(), broken: RwLock::default(), auth, max_connections })
    }

    /// Adds a site (its name is `site.name`); a site of that name is replaced.
    pub fn add(&self, site: Site) {
        let name = site.name.clone();
        let app = App::new(site);
        let router = crate::router(app.clone());
        self.broken.write().unwrap_or_else(PoisonError::into_inner).remove(&name);
        self.sites.write().unwrap_or_else(PoisonError::into_inner).insert(name, (app, router));
    }

    /// Marks a site as one that cannot be shown, and why: it is black in
    /// the fleet (with the reason) until [`Fleet::add`] adds it again.
    pub fn fail(&self, name: &str, why: String) {
        self.sites.write().unwrap_or_else(PoisonError::into_inner).remove(name);
        self.broken.write().unwrap_or_else(PoisonError::into_inner).insert(name.to_string(), why);
    }

    /// Every site's name, the broken ones too.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sites.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        names.extend(self.broken.read().unwrap_or_else(PoisonError::into_inner).keys().cloned());
        names.sort();
        names
    }

    fn site(&self, name: &str) -> Option<(Shared, Router)> {
        self.sites.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }
}

/// Binds `addr` and serves the fleet on threads of its own.
pub fn start(addr: SocketAddr, fleet: Arc<Fleet>) -> std::io::Result<Server> {
    let max = fleet.max_connections;
    let router = Router::new()
        .route("/", get(crate::pages::fleet))
        .route("/api/fleet", get(fleet_json))
        .route("/assets/{name}", get(crate::pages::asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/sites/{site}", get(|Path(site): Path<String>| async move { Redirect::permanent(&format!("{}/", enc(&site))) }))
        .route("/sites/{site}/", axum::routing::any(to_site_root))
        .route("/sites/{site}/{*rest}", axum::routing::any(to_site))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn_with_state(fleet.clone(), fleet_guard))
        .layer(DefaultBodyLimit::max(crate::BODY_LIMIT))
        .with_state(fleet);
    crate::serve(addr, router, max)
}

/// A path segment, percent-encoded where it must be.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~:@+".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn fleet_guard(State(fleet): State<Arc<Fleet>>, req: Request, next: Next) -> Response {
    protect(&fleet.auth, req, next).await
}

async fn to_site_root(State(fleet): State<Arc<Fleet>>, Path(site): Path<String>, req: Request) -> Response {
    dispatch(&fleet, &site, req).await
}

async fn to_site(State(fleet): State<Arc<Fleet>>, Path((site, _)): Path<(String, String)>, req: Request) -> Response {
    dispatch(&fleet, &site, req).await
}

/// Hands the request to the site's router, with `/sites/<site>` taken off its path.
async fn dispatch(fleet: &Fleet, site: &str, req: Request) -> Response {
    let Some((_, router)) = fleet.site(site) else {
        if let Some(why) = fleet.broken.read().unwrap_or_else(PoisonError::into_inner).get(site) {
            let body = json!({"error": format!("site {site:?} cannot be shown: {why}")});
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
        return (StatusCode::NOT_FOUND, Json(json!({"error": format!("no site {site:?} in this fleet")}))).into_response();
    };
    let (mut parts, body) = req.into_parts();
    // `/sites/<site>/...`: what follows the site's segment, as it came (still percent-encoded).
    let tail = format!("/{}", parts.uri.path().splitn(4, '/').nth(3).unwrap_or_default());
    let target = match parts.uri.query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let Ok(uri) = target.parse::<Uri>() else { return (StatusCode::BAD_REQUEST, "bad path\n").into_response() };
    parts.uri = uri;
    // The fleet's own path parameters (and the rest it learned) are not the
    // site's: its router starts from a clean request, and checks it again.
    parts.extensions = Default::default();
    // Only the fleet says so: a client's own header of that name is dropped.
    parts.headers.insert(FLEET_HEADER, HeaderValue::from_static("1"));
    match router.oneshot(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}

/// `/api/fleet`: every site's level, counts and last reading, worst first in
/// the site's own order (by name), and the fleet's worst level.
async fn fleet_json(State(fleet): State<Arc<Fleet>>) -> Response {
    let now = now_ms();
    let sites: Vec<(String, Shared)> =
        fleet.sites.read().unwrap_or_else(PoisonError::into_inner).iter().map(|(n, (a, _))| (n.clone(), a.clone())).collect();
    let broken: Vec<(String, String)> =
        fleet.broken.read().unwrap_or_else(PoisonError::into_inner).iter().map(|(n, e)| (n.clone(), e.clone())).collect();
    let mut out = Vec::new();
    let mut worst = Level::Ok;
    let mut counts = [0usize; 6];
    let mut shown: Vec<(String, Value)> = broken
        .into_iter()
        .map(|(name, why)| {
            let v = json!({"site": name, "ready": true, "level": "black", "colour": Level::Black.colour(), "error": why});
            (name, v)
        })
        .collect();
    for (name, app) in sites {
        let v = match app.index() {
            None => {
                json!({"site": name, "ready": false, "level": "grey", "colour": Level::Grey.colour(), "progress": app.site.phase.json()})
            }
            Some(idx) => {
                let summary = tokio::task::spawn_blocking(move || {
                    let idx = idx.lock().unwrap_or_else(PoisonError::into_inner);
                    idx.health().map(|h| h.status_at(now)).map_err(|e| e.to_string())
                })
                .await;
                match summary {
                    Ok(Ok(status)) => {
                        let c = status.counts();
                        let last = status.devices.iter().map(|d| d.last_seen_ms).max();
                        // A site with no device yet tells nothing: grey, like a silent one.
                        let level = if status.devices.is_empty() { Level::Grey } else { status.level };
                        json!({
                            "site": name,
                            "ready": true,
                            "level": level,
                            "colour": level.colour(),
                            "devices": status.devices.len(),
                            "counts": Level::ALL.iter().zip(c).map(|(l, n)| (l.word().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                            "last_seen": last.map(logfile::time::rfc3339_millis),
                        })
                    }
                    Ok(Err(e)) => json!({"site": name, "ready": true, "level": "black", "colour": Level::Black.colour(), "error": e}),
                    Err(e) => {
                        json!({"site": name, "ready": true, "level": "black", "colour": Level::Black.colour(), "error": e.to_string()})
                    }
                }
            }
        };
        shown.push((name, v));
    }
    shown.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, v) in shown {
        let level: Level = serde_json::from_value(v["level"].clone()).unwrap_or(Level::Black);
        worst = worst.max(level);
        counts[Level::ALL.iter().position(|l| *l == level).unwrap_or(5)] += 1;
        out.push(v);
    }
    let body: Value = json!({
        "at": logfile::time::rfc3339_millis(now),
        "level": worst,
        "colour": worst.colour(),
        "counts": Level::ALL.iter().zip(counts).map(|(l, n)| (l.word().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "sites": out,
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
