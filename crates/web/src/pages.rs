//! The pages: HTML shells that load the script and the style sheet, which
//! build the page from the API. Links are relative, so the dashboard works
//! behind a reverse proxy on a sub-path.

use axum::extract::{Path, Request};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON: &str = include_str!("assets/icon.svg");

/// The dashboard's root relative to the request's path: `../` once per
/// directory level, `./` at the top (an empty link would be the page itself).
fn base(path: &str) -> String {
    match path.matches('/').count().saturating_sub(1) {
        0 => "./".into(),
        levels => "../".repeat(levels),
    }
}

fn shell(req: &Request, page: &str, title: &str) -> Response {
    let base = base(req.uri().path());
    // A site of a fleet (`serve --sites`) links back to it: two levels above the site's root.
    let fleet =
        if req.headers().contains_key(crate::fleet::FLEET_HEADER) { format!("<a href=\"{base}../../\">Fleet</a>") } else { String::new() };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} - blackbox</title><link rel=\"icon\" href=\"{base}assets/icon.svg\"><link rel=\"stylesheet\" href=\"{base}assets/app.css\"></head>\
<body data-page=\"{page}\" data-base=\"{base}\"><header id=\"bar\"><nav>{fleet}<a href=\"{base}\">Overview</a><a href=\"{base}live\">Live</a>\
<a href=\"{base}history\">History</a></nav><span id=\"status-bar\"></span></header><main id=\"main\"><p class=\"wait\">Loading...</p></main>\
<noscript>The dashboard needs JavaScript; the same data is at <a href=\"{base}api/status\">api/status</a>.</noscript>\
<script src=\"{base}assets/app.js\"></script></body></html>\n"
    );
    Html(html).into_response()
}

/// The fleet's front page (`serve --sites`).
pub(crate) async fn fleet(_req: Request) -> Response {
    let html = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Fleet - blackbox</title><link rel=\"icon\" href=\"assets/icon.svg\"><link rel=\"stylesheet\" href=\"assets/app.css\"></head>\
<body data-page=\"fleet\" data-base=\"\"><header id=\"bar\"><nav><a href=\"./\">Fleet</a></nav><span id=\"status-bar\"></span></header>\
<main id=\"main\"><p class=\"wait\">Loading...</p></main>\
<noscript>The dashboard needs JavaScript; the same data is at <a href=\"api/fleet\">api/fleet</a>.</noscript>\
<script src=\"assets/app.js\"></script></body></html>\n";
    Html(html).into_response()
}

pub(crate) async fn overview(req: Request) -> Response {
    shell(&req, "overview", "Overview")
}

pub(crate) async fn device(req: Request) -> Response {
    shell(&req, "device", "Device")
}

pub(crate) async fn sensor(req: Request) -> Response {
    shell(&req, "sensor", "Sensor")
}

pub(crate) async fn live(req: Request) -> Response {
    shell(&req, "live", "Live")
}

pub(crate) async fn history(req: Request) -> Response {
    shell(&req, "history", "History")
}

/// A log line with the lines around it (`log?day=YYYYMMDD&line=N`).
pub(crate) async fn log(req: Request) -> Response {
    shell(&req, "log", "Log")
}

/// The embedded files, by exact name only.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with its script, style sheet and icon stays far under 300 KB.
    #[test]
    fn a_page_weighs_little() {
        let shell = 1024;
        let total = shell + APP_JS.len() + APP_CSS.len() + ICON.len();
        assert!(total < 100_000, "{total} bytes");
        assert_eq!(base("/"), "./");
        assert_eq!(base("/device/usb/roomNode-4"), "../../");
        assert_eq!(base("/live"), "./");
    }

    /// `href` followed from the page at `page`, as a browser does (enough of RFC 3986 for relative paths).
    fn follow(page: &str, href: &str) -> String {
        let mut dir: Vec<&str> = page.split('/').collect();
        dir.pop();
        for part in href.split('/') {
            match part {
                "." => {}
                ".." => {
                    if dir.len() > 1 {
                        dir.pop();
                    }
                }
                p => dir.push(p),
            }
        }
        let joined = dir.join("/");
        if joined.is_empty() {
            "/".into()
        } else {
            joined
        }
    }

    /// Every page's nav links lead to the overview, Live and History, at
    /// the root and behind a reverse proxy on a sub-path alike.
    #[tokio::test]
    async fn every_nav_link_leads_where_it_says() {
        for page in ["/", "/live", "/history", "/log", "/device/usb-A40117UK/roomNode-4", "/sensor/usb-A40117UK/roomNode-4/temp"] {
            let req = Request::builder().uri(page).body(axum::body::Body::empty()).unwrap();
            let body = axum::body::to_bytes(shell(&req, "x", "X").into_body(), 100_000).await.unwrap();
            let html = String::from_utf8(body.to_vec()).unwrap();
            let nav = html.split("<nav>").nth(1).and_then(|n| n.split("</nav>").next()).unwrap();
            let links: Vec<(&str, &str)> = nav
                .split("<a href=\"")
                .skip(1)
                .map(|a| {
                    let (href, rest) = a.split_once('"').unwrap();
                    (href, rest.trim_start_matches('>').split('<').next().unwrap())
                })
                .collect();
            assert_eq!(links.iter().map(|l| l.1).collect::<Vec<_>>(), ["Overview", "Live", "History"], "{page}");
            for prefix in ["", "/blackbox"] {
                let shown: Vec<String> = links.iter().map(|(href, _)| follow(&format!("{prefix}{page}"), href)).collect();
                assert_eq!(shown, [format!("{prefix}/"), format!("{prefix}/live"), format!("{prefix}/history")], "{prefix}{page}");
            }
            assert!(html.contains(&format!("src=\"{}assets/app.js\"", base(page))), "{page}");
        }
        assert_eq!(follow("/live", "./"), "/");
        assert_eq!(follow("/blackbox/device/a/b", "../../"), "/blackbox/");
    }
}
