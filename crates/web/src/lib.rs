//! `blackbox serve`: the dashboard. Pages (overview, device, sensor, live,
//! history), the JSON API they are built from (`/api/`), Server-Sent Events
//! for live updates (`/events`), `/metrics` in the Prometheus text format and
//! `/healthz`, served from the follower's process, which holds the cache.
//!
//! The pages are shells: their script fetches the API and builds the page
//! with `textContent`, so nothing a device sent is ever parsed as HTML.
//! Everything is embedded in the binary; no request chooses a path: a log
//! line (`/api/log`) is looked up by its day among the files a scan of the
//! log directory found. tokio runs here only, on threads of its own: the follower stays
//! threads and `poll()`.

mod api;
pub mod auth;
pub mod fleet;
mod limit;
mod metrics;
mod pages;

pub use api::device_json;
pub use auth::{hash_password, Auth};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use index::Index;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::broadcast;

/// Where the follower is: catching up (or rebuilding), or following.
#[derive(Debug, Default)]
pub struct Phase {
    state: Mutex<PhaseState>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
struct PhaseState {
    ready: bool,
    what: String,
    day: String,
    days_done: usize,
    days_total: usize,
    bytes_done: u64,
    bytes_total: u64,
    lines: u64,
    #[serde(skip)]
    started: Option<Instant>,
}

impl Phase {
    fn lock(&self) -> std::sync::MutexGuard<'_, PhaseState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A catch-up (or a rebuild, `what`) has made this much progress.
    pub fn progress(&self, what: &str, p: &index::Progress) {
        let mut s = self.lock();
        if s.what != what || s.started.is_none() {
            s.started = Some(Instant::now());
            s.what = what.to_string();
            s.bytes_done = 0;
        }
        s.ready = false;
        s.day = p.day.clone();
        s.days_done = p.days_done;
        s.days_total = p.days_total;
        // Never backwards within one catch-up (a day's bytes so far are an estimate).
        s.bytes_done = (p.bytes_done + p.bytes_in_day).max(s.bytes_done).min(p.bytes_total.max(1));
        s.bytes_total = p.bytes_total;
        s.lines = p.lines;
    }

    /// The cache is current: the pages show it.
    pub fn ready(&self) {
        let mut s = self.lock();
        s.ready = true;
        s.what = "following".into();
    }

    pub fn is_ready(&self) -> bool {
        self.lock().ready
    }

    fn json(&self) -> serde_json::Value {
        let s = self.lock().clone();
        let secs = s.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let rate = if secs > 0.0 { s.lines as f64 / secs } else { 0.0 };
        let byte_rate = if secs > 0.0 { s.bytes_done as f64 / secs } else { 0.0 };
        let left = if byte_rate > 0.0 { Some((s.bytes_total.saturating_sub(s.bytes_done)) as f64 / byte_rate) } else { None };
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["lines_per_s"] = serde_json::json!(rate.round());
        v["seconds_left"] = serde_json::json!(left.map(f64::ceil));
        v
    }
}

/// Live events for the open pages: new lines, status changes, progress.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<(String, String)>>,
    recent: Arc<Mutex<Recent>>,
}

/// The last lines (for a live page that opens) and each source's last line time.
#[derive(Debug, Default)]
struct Recent {
    lines: VecDeque<Arc<serde_json::Value>>,
    last_by_source: BTreeMap<String, i64>,
    newest_ms: i64,
}

/// Lines a live page gets when it opens.
const RECENT_LINES: usize = 500;

impl Default for Hub {
    fn default() -> Self {
        Hub { tx: broadcast::channel(1024).0, recent: Arc::default() }
    }
}

/// One log line for the live view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveLine {
    pub time_ms: i64,
    pub source: String,
    /// The line's text as logged (escaped as in the log).
    pub text: String,
    /// The decoded view's line (`tail --decoded`), when it decodes.
    pub decoded: Option<String>,
    /// The devices it is about (`SOURCE/DEVICE`).
    pub devices: Vec<String>,
}

impl Hub {
    fn send(&self, event: &str, data: String) {
        // No page open: nobody to tell.
        let _ = self.tx.send(Arc::new((event.to_string(), data)));
    }

    /// A new line in the logs.
    pub fn line(&self, line: LiveLine) {
        let v = Arc::new(serde_json::to_value(&line).unwrap_or_default());
        {
            let mut r = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if r.lines.len() == RECENT_LINES {
                r.lines.pop_front();
            }
            r.lines.push_back(v.clone());
            // Metadata lines (`#`) are capture's, not a source's.
            if line.source != "#" {
                r.last_by_source.insert(line.source.clone(), line.time_ms);
            }
            r.newest_ms = r.newest_ms.max(line.time_ms);
        }
        self.send("line", v.to_string());
    }

    /// A source's last line time known from the cache (at start).
    pub fn seen(&self, source: &str, time_ms: i64) {
        let mut r = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let t = r.last_by_source.entry(source.to_string()).or_insert(time_ms);
        *t = (*t).max(time_ms);
        r.newest_ms = r.newest_ms.max(time_ms);
    }

    /// The cache changed (new lines indexed): pages fetch what they show again.
    pub fn indexed(&self) {
        self.send("indexed", "{}".into());
    }

    /// The catch-up moved on, or ended.
    pub fn progress(&self, phase: &Phase) {
        self.send(if phase.is_ready() { "ready" } else { "progress" }, phase.json().to_string());
    }
}

/// Everything the server reads.
pub struct Site {
    /// The cache, once it is open (a rebuild may come first).
    pub idx: Arc<std::sync::OnceLock<Arc<Mutex<Index>>>>,
    pub name: String,
    pub logs: PathBuf,
    pub state: PathBuf,
    pub phase: Arc<Phase>,
    pub hub: Hub,
    pub auth: Auth,
    /// Live pages open at once, at most.
    pub max_live: usize,
    /// Connections open at once, at most (live pages included).
    pub max_connections: usize,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site").field("name", &self.name).field("logs", &self.logs).finish_non_exhaustive()
    }
}

pub(crate) struct App {
    site: Site,
    live: AtomicUsize,
    started: Instant,
}

type Shared = Arc<App>;

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Request bodies larger than this are refused (the only bodies are ack and silence forms).
pub(crate) const BODY_LIMIT: usize = 16 * 1024;
/// A request head (request line and headers) larger than this is refused
/// with `431`, before it is read whole.
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;
/// A longer request target is refused.
const URI_LIMIT: usize = 4096;

/// Binds `addr` and serves `site` on threads of its own.
pub fn start(addr: SocketAddr, site: Site) -> std::io::Result<Server> {
    let max_connections = site.max_connections;
    serve(addr, router(App::new(site)), max_connections)
}

impl App {
    fn new(site: Site) -> Shared {
        Arc::new(App { site, live: AtomicUsize::new(0), started: Instant::now() })
    }
}

/// Binds `addr` and serves `router` on threads of its own.
fn serve(addr: SocketAddr, router: Router, max_connections: usize) -> std::io::Result<Server> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("web").enable_all().build()?;
    let thread = std::thread::Builder::new().name("web server".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "the web server cannot listen");
                    return;
                }
            };
            let listener = limit::Limited::new(listener, max_connections);
            // Live pages never end their streams: on stop, do not wait for them.
            tokio::select! {
                () = accept(listener, router) => {}
                _ = stopped => {}
            }
        });
        // Live pages hold their streams open: do not wait for them.
        runtime.shutdown_background();
    })?;
    Ok(Server { addr, stop: Some(stop), thread: Some(thread) })
}

/// Serves every connection `listener` accepts with `router`, as
/// `axum::serve` does, but with hyper's limit on a request's head (axum's
/// own sets none: hyper would read up to 400 KB of headers).
async fn accept(mut listener: limit::Limited, router: Router) {
    use axum::serve::Listener;
    loop {
        let (conn, _) = listener.accept().await;
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.max_header_size(HEAD_LIMIT);
            if let Err(e) = http.serve_connection(hyper_util::rt::TokioIo::new(conn), service).await {
                tracing::debug!(error = %e, "a connection ended");
            }
        });
    }
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/device/{*id}", get(pages::device))
        .route("/sensor/{*id}", get(pages::sensor))
        .route("/live", get(pages::live))
        .route("/history", get(pages::history))
        .route("/log", get(pages::log))
        .route("/assets/{name}", get(pages::asset))
        .route("/events", get(api::events))
        .route("/api/progress", get(api::progress))
        .route("/api/session", get(api::session))
        .route("/api/status", get(api::status))
        .route("/api/bar", get(api::bar))
        .route("/api/device/{*id}", get(api::device))
        .route("/api/sensor/{*id}", get(api::sensor))
        .route("/api/schema", get(api::schema))
        .route("/api/events", get(api::events_list))
        .route("/api/transitions", get(api::transitions))
        .route("/api/notifications", get(api::notifications))
        .route("/api/lines", get(api::lines))
        .route("/api/log", get(api::log))
        .route("/api/ack", post(api::ack))
        .route("/api/silence", post(api::silence))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(api::healthz))
        .fallback(not_found)
        .layer(middleware::from_fn(compress))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

/// Answers of 16 KiB or more, gzipped for a client that takes it (a year
/// of hours is about half a megabyte of JSON, a tenth of that gzipped: it
/// matters through an SSH tunnel or a mobile link). Only answers whose
/// whole size is known: the live stream is never held back.
async fn compress(req: Request, next: Next) -> Response {
    const FROM: u64 = 16 * 1024;
    /// The largest answer read whole to be packed (a page of raw readings is under 1 MB).
    const UP_TO: u64 = 64 * 1024 * 1024;
    let gzip = accepts_gzip(req.headers());
    let resp = next.run(req).await;
    let size = axum::body::HttpBody::size_hint(resp.body()).exact();
    if !gzip || resp.headers().contains_key(header::CONTENT_ENCODING) || !size.is_some_and(|n| (FROM..=UP_TO).contains(&n)) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, UP_TO as usize).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the answer could not be read\n").into_response();
    };
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&bytes);
    let Ok(small) = z.finish() else { return Response::from_parts(parts, axum::body::Body::from(bytes)) };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, axum::body::Body::from(small))
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not `gzip;q=0`).
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    let codings = headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    codings.into_iter().any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let named = parts.next().is_some_and(|name| name.eq_ignore_ascii_case("gzip"));
        let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.trim().parse::<f64>().ok()) == Some(0.0));
        named && !refused
    })
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Every request: its size, its authentication, and the security headers of every answer.
async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    protect(&app.site.auth, req, next).await
}

/// [`guard`] with `auth`.
async fn protect(auth: &Auth, req: Request, next: Next) -> Response {
    let too_long = req.uri().to_string().len() > URI_LIMIT;
    let path = req.uri().path();
    let api = is_api(path);
    // No request path reaches the file system; traversal is refused outright all the same.
    let decoded = api::percent_decode(path);
    let traversal = decoded.contains('\\') || decoded.contains('\0') || decoded.split('/').any(|p| p == ".." || p == ".");
    let mut resp = if too_long {
        (StatusCode::URI_TOO_LONG, "request target too long\n").into_response()
    } else if traversal {
        (StatusCode::BAD_REQUEST, "bad path\n").into_response()
    } else if path == "/healthz" {
        next.run(req).await
    } else {
        match auth.check(req.headers()) {
            Some(user) => {
                let mut req = req;
                req.extensions_mut().insert(user);
                next.run(req).await
            }
            None => auth::refuse(),
        }
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if api {
        json_error(resp).await
    } else {
        resp
    }
}

/// Whether `path` is the API's (a site's of a fleet too: `/sites/SITE/api/...`).
fn is_api(path: &str) -> bool {
    let site = path.strip_prefix("/sites/").and_then(|p| p.split_once('/')).map(|(_, rest)| rest);
    path.starts_with("/api/") || site.is_some_and(|rest| rest.starts_with("api/"))
}

/// An error of the API as `{"error": ...}`, whoever made it (a refused
/// sign-in, an unknown route, a method the route does not take, hyper or
/// axum): programs read one kind of error. Its status and headers stay.
async fn json_error(resp: Response) -> Response {
    let status = resp.status();
    let json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let error = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_ascii_lowercase() } else { text };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(serde_json::json!({ "error": error }).to_string()))
}

impl App {
    /// The cache, when it is current (not while catching up or rebuilding).
    fn index(&self) -> Option<Arc<Mutex<Index>>> {
        self.site.phase.is_ready().then(|| self.site.idx.get().cloned()).flatten()
    }

    /// Runs `f` with the index on a blocking thread (never on the async workers).
    async fn with_index<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&App, &Index) -> Result<T, String> + Send + 'static,
    ) -> Result<T, Response> {
        let Some(idx) = self.index() else {
            return Err((StatusCode::SERVICE_UNAVAILABLE, axum::Json(self.site.phase.json())).into_response());
        };
        let app = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let idx = idx.lock().unwrap_or_else(PoisonError::into_inner);
            f(&app, &idx)
        })
        .await;
        match done {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let code = if e.starts_with("not found: ") { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
                Err((code, axum::Json(serde_json::json!({ "error": e.trim_start_matches("not found: ") }))).into_response())
            }
            Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, axum::Json(serde_json::json!({ "error": e.to_string() }))).into_response()),
        }
    }
}

/// Milliseconds since the epoch, by the wall clock (shifted for tests by `BLACKBOX_CLOCK_FILE`).
pub(crate) fn now_ms() -> i64 {
    logfile::OffsetClock::from_env().now().wall_ms
}

pub(crate) fn live_count(app: &App) -> usize {
    app.live.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde_json::Value;
    use std::io::{Read, Write};
    use tower::ServiceExt;

    const TOKEN: &str = "0123456789abcdef0123";

    fn site(logs: &std::path::Path, auth: Auth) -> Site {
        Site {
            idx: Arc::default(),
            name: "test".into(),
            logs: logs.to_path_buf(),
            state: logs.join("state"),
            phase: Arc::default(),
            hub: Hub::default(),
            auth,
            max_live: 4,
            max_connections: 8,
        }
    }

    /// A request through the whole router; the status, the content type and the body.
    async fn call(router: &Router, method: &str, uri: &str, auth: Option<&str>) -> (StatusCode, String, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let kind = resp.headers().get(header::CONTENT_TYPE).map(|t| t.to_str().unwrap().to_string()).unwrap_or_default();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    /// An answer that must be `{"error": ...}`.
    fn error(answer: &(StatusCode, String, String)) -> String {
        assert_eq!(answer.1, "application/json", "{answer:?}");
        let v: Value = serde_json::from_str(&answer.2).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
        v["error"].as_str().filter(|e| !e.is_empty()).unwrap_or_else(|| panic!("no error in {answer:?}")).to_string()
    }

    /// Ten lines of a day, `L 00:00:0N.000 s line N`.
    fn day_text() -> String {
        (1..=10).map(|i| format!("L 00:00:{:02}.000 s line {i}\n", i % 60)).collect()
    }

    #[tokio::test]
    async fn a_log_line_with_its_context_from_a_plain_or_gzipped_day() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("2026")).unwrap();
        std::fs::write(dir.path().join("2026/20261201.txt"), day_text()).unwrap();
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(day_text().as_bytes()).unwrap();
        std::fs::write(dir.path().join("20121130.txt.gz"), z.finish().unwrap()).unwrap();
        let router = router(App::new(site(dir.path(), Auth::none())));
        for (day, file) in [("20261201", "20261201.txt"), ("20121130", "20121130.txt.gz")] {
            let (status, _, body) = call(&router, "GET", &format!("/api/log?day={day}&line=5&context=2"), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!((v["file"].as_str(), v["line"].as_u64()), (Some(file), Some(5)), "{v}");
            let lines: Vec<(u64, &str)> =
                v["lines"].as_array().unwrap().iter().map(|l| (l["line"].as_u64().unwrap(), l["text"].as_str().unwrap())).collect();
            assert_eq!(
                lines,
                [
                    (3, "L 00:00:03.000 s line 3"),
                    (4, "L 00:00:04.000 s line 4"),
                    (5, "L 00:00:05.000 s line 5"),
                    (6, "L 00:00:06.000 s line 6"),
                    (7, "L 00:00:07.000 s line 7")
                ]
            );
            // At the start and the end of the day: what there is.
            let v: Value = serde_json::from_str(&call(&router, "GET", &format!("/api/log?day={day}&line=1"), None).await.2).unwrap();
            assert_eq!(v["lines"].as_array().unwrap().len(), 6, "{v}");
            let v: Value =
                serde_json::from_str(&call(&router, "GET", &format!("/api/log?day={day}&line=10&context=100"), None).await.2).unwrap();
            assert_eq!(v["lines"].as_array().unwrap().len(), 10, "{v}");
        }
        // The day is eight digits of a day the logs have; nothing else chooses a file.
        for (query, status) in [
            ("day=2026120&line=1", StatusCode::BAD_REQUEST),
            ("day=202612011&line=1", StatusCode::BAD_REQUEST),
            ("day=..%2F..%2Fetc%2Fpasswd&line=1", StatusCode::BAD_REQUEST),
            ("day=20261201.txt&line=1", StatusCode::BAD_REQUEST),
            ("day=2026-12-1&line=1", StatusCode::BAD_REQUEST),
            ("day=20261201&line=0", StatusCode::BAD_REQUEST),
            ("day=20261201&line=x", StatusCode::BAD_REQUEST),
            ("day=20261201", StatusCode::BAD_REQUEST),
            ("day=20261201&line=1&context=101", StatusCode::BAD_REQUEST),
            ("day=20261202&line=1", StatusCode::NOT_FOUND),
            ("day=20261399&line=1", StatusCode::NOT_FOUND),
            ("day=20261201&line=11", StatusCode::NOT_FOUND),
        ] {
            let answer = call(&router, "GET", &format!("/api/log?{query}"), None).await;
            assert_eq!(answer.0, status, "{query}: {answer:?}");
            error(&answer);
        }
    }

    #[tokio::test]
    async fn every_error_of_the_api_is_json_and_the_pages_stay_text() {
        let dir = tempfile::tempdir().unwrap();
        let open = router(App::new(site(dir.path(), Auth::none())));
        assert_eq!(error(&call(&open, "GET", "/api/nothing", None).await), "not found");
        let answer = call(&open, "POST", "/api/status", None).await;
        assert_eq!(answer.0, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(error(&answer), "method not allowed");
        let answer = call(&open, "GET", "/api/device/%2e%2e/x", None).await;
        assert_eq!((answer.0, error(&answer).as_str()), (StatusCode::BAD_REQUEST, "bad path"));
        // Catching up: the progress, as ever.
        let answer = call(&open, "GET", "/api/status", None).await;
        assert_eq!((answer.0, answer.1.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "application/json"));
        assert!(answer.2.contains("\"ready\":false"), "{answer:?}");
        let answer = call(&open, "GET", "/nothing", None).await;
        assert_eq!((answer.0, answer.2.as_str()), (StatusCode::NOT_FOUND, "not found\n"));

        let signed = router(App::new(site(dir.path(), Auth::new(Vec::new(), Some(TOKEN.into())).unwrap())));
        let refused = call(&signed, "GET", "/api/status", None).await;
        assert_eq!(refused.0, StatusCode::UNAUTHORIZED);
        assert_eq!(error(&refused), "sign in to see this site");
        let req = Request::builder().uri("/api/bar").body(Body::empty()).unwrap();
        assert!(signed.clone().oneshot(req).await.unwrap().headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(error(&call(&signed, "GET", "/api/nothing", Some(&format!("Bearer {TOKEN}"))).await), "not found");
        let page = call(&signed, "GET", "/", None).await;
        assert_eq!((page.0, page.2.as_str()), (StatusCode::UNAUTHORIZED, "sign in to see this site\n"));
        assert!(is_api("/sites/cellar/api/status") && !is_api("/sites/cellar/live") && !is_api("/apinot") && !is_api("/sites/api/"));
    }

    /// One raw request to a running server; its status line.
    fn status_line(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).lines().next().unwrap_or_default().to_string()
    }

    #[test]
    fn a_request_head_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let server = start("127.0.0.1:0".parse().unwrap(), site(dir.path(), Auth::none())).unwrap();
        let with_header = |bytes: usize| {
            let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Filler: {}\r\n\r\n", "a".repeat(bytes));
            (head.len(), status_line(server.addr, head.as_bytes()))
        };
        let (size, line) = with_header(HEAD_LIMIT - 200);
        assert!(size <= HEAD_LIMIT && line.starts_with("HTTP/1.1 200"), "{size} bytes: {line}");
        let (size, line) = with_header(HEAD_LIMIT);
        assert!(size > HEAD_LIMIT && line.starts_with("HTTP/1.1 431"), "{size} bytes: {line}");
        let (_, line) = with_header(70_000);
        assert!(line.starts_with("HTTP/1.1 431"), "{line}");
    }
}
