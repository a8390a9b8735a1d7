//! `blackbox serve`, end to end: the real binary serving the real day to a
//! real headless Chromium, a line captured from a pseudo-terminal appearing
//! live, the please-wait page turning into the overview by itself, a hostile
//! device name rendered as text; and the HTTP side's security checked with
//! raw requests.

use crate::harness::{real_site, stdout, Dir, Proc, Pty, StderrLines, HOUSEMON};
use crate::status::CHECKS;
use devtools::Browser;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Starts `serve` on a free loopback port; returns it and its address.
pub fn serve(dir: &Dir, extra: &[&str]) -> (Proc, StderrLines, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut p = dir.spawn(&args);
    let mut err = p.stderr_lines();
    let line = err.wait_for("serving the dashboard on ");
    let url = line.split("serving the dashboard on ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    (p, err, format!("{url}/"))
}

/// One HTTP/1.1 request, raw; the status code and the body.
fn http(addr: &str, request: &str) -> (u16, String) {
    let host = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(host).expect("connect");
    s.write_all(request.replace("HOST", host).as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// A GET with extra header lines; the head as text and the body as bytes
/// (the server closes the connection: no chunked encoding to undo).
fn get_bytes(addr: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
    let host = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(host).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n").expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    (String::from_utf8_lossy(&out[..end]).into_owned(), out[end + 4..].to_vec())
}

fn get(addr: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: HOST\r\n{auth}Connection: close\r\n\r\n"))
}

#[test]
fn the_overview_shows_the_real_day_with_its_colours_and_a_device_its_lines() {
    let Some(mut browser) = Browser::start() else { return };
    let dir = real_site();
    std::fs::write(dir.path().join("blackbox.toml"), format!("{HOUSEMON}{CHECKS}")).unwrap();
    dir.set_clock("2012-11-30T23:59:00Z");
    assert!(dir.run(&["index"]).status.success());
    let status: Value = serde_json::from_str(&stdout(&dir.run(&["status", "--all", "--format", "json"]))).unwrap();
    let expected: Vec<(String, String)> = status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["device"].as_str().unwrap().into(), d["level"].as_str().unwrap().into()))
        .collect();
    assert!(expected.iter().any(|(_, l)| l != "ok") && expected.iter().any(|(_, l)| l == "ok"), "{expected:?}");
    // The drill-down of a warm room, as `status` shows it.
    let (warm, _) = expected.iter().find(|(_, l)| l == "warning").expect("a warm room");
    let drill = stdout(&dir.run(&["status", warm]));
    let logged = drill
        .lines()
        .find(|l| l.trim_start().starts_with("20121130.txt"))
        .unwrap_or_else(|| panic!("no line behind the result:\n{drill}"))
        .trim()
        .to_string();
    // Both name the gzipped day's own file.
    assert!(logged.starts_with("20121130.txt.gz:"), "{logged}");
    // Acknowledged from the command line: its page says so, as its tile does.
    assert!(dir.run(&["ack", warm, "--note", "Jan is on it"]).status.success());
    let (_serve, _err, url) = serve(&dir, &[]);
    let page = browser.open(&url);
    browser.wait_for(&page, &format!("document.querySelectorAll('.tile').length === {}", expected.len()));
    let tiles = browser.eval(
        &page,
        "[...document.querySelectorAll('.tile')].map(t => [t.dataset.device, t.className, t.querySelector('.badge').textContent])",
    );
    for (device, level) in &expected {
        let tile = tiles.as_array().unwrap().iter().find(|t| t[0] == device.as_str()).unwrap_or_else(|| panic!("no tile for {device}"));
        assert!(tile[1].as_str().unwrap().contains(&format!("level-{level}")), "{device}: {tile}");
        // The word is there too, not only the colour.
        assert!(tile[2].as_str().unwrap().contains(level.as_str()), "{device}: {tile}");
    }
    // Drill down into a warm room: the line behind its result, as in the log.
    browser.eval(&page, &format!("document.querySelector('.tile[data-device=\"{warm}\"]').click()"));
    let cause = browser
        .wait_for(&page, "document.querySelector('table.results .where') && document.querySelector('table.results td code').textContent");
    let place = browser.eval(&page, "document.querySelector('table.results .where').textContent");
    assert_eq!(format!("{}{}", place.as_str().unwrap(), cause.as_str().unwrap()), logged);
    let lines = browser.wait_for(&page, "document.querySelectorAll('#lines li').length");
    assert!(lines.as_u64().unwrap() >= 5, "{lines}");
    // Every check of it, passing or not: the two roomNode checks of the
    // configuration (status::CHECKS) on its temp, the warm one failing.
    let checks =
        browser.eval(&page, "[...document.querySelectorAll('table.checks tr')].slice(1).map(r => [...r.cells].map(c => c.textContent))");
    let checks = checks.as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(names, ["room too warm", "roomNode silent"], "{checks:?}");
    assert!(checks.iter().all(|r| r[2] == format!("{warm}/temp").as_str()), "{checks:?}");
    assert!(checks[0][4].as_str().unwrap().contains("warning fails since 2012-11-30 "), "{checks:?}");
    assert_eq!(checks[1][4], "passes");
    let quiet = browser.eval(&page, "document.getElementById('quiet') && document.getElementById('quiet').textContent");
    assert!(quiet.as_str().is_some_and(|q| q.contains("acknowledged (warning)") && q.contains("Jan is on it")), "{quiet}");
    // Its sensors, with a plot each.
    browser.wait_for(&page, "document.querySelectorAll('.sensor canvas').length >= 4");
    shot(&mut browser, &page, "device");
    // A sensor: its plot, the check's limit drawn, its values below.
    browser.eval(&page, "[...document.querySelectorAll('.sensor a')].find(a => a.textContent === 'temp').click()");
    let rows = browser.wait_for(&page, "document.querySelector('table.values') && document.querySelectorAll('table.values tr').length - 1");
    assert!(rows.as_u64().unwrap() > 10, "{rows}");
    // Its times as the rest of the pages show them, said to be UTC.
    let head = browser
        .eval(&page, "[document.querySelector('table.values th').textContent, document.querySelector('table.values td').textContent]");
    assert_eq!(head[0], "time (UTC)");
    assert!(head[1].as_str().is_some_and(|t| t.starts_with("2012-11-30 ") && t.len() == 19), "{head}");
    let limit = browser.eval(&page, "fetch(location.pathname.replace('/sensor/', '/api/sensor/') + '?from=2012-11-30&to=2012-12-01').then(r => r.json()).then(j => j.thresholds[0].max)");
    assert_eq!(limit, 17.2);
    // The same rows with their times as milliseconds (`epoch=ms`, what the
    // plot asks for), readings and hours alike; another epoch is refused.
    let api = "location.pathname.replace('/sensor/', '/api/sensor/') + '?from=2012-11-30&to=2012-12-01&every='";
    for every in ["raw", "1h"] {
        let same = browser.eval(
            &page,
            &format!(
                "Promise.all(['', '&epoch=ms'].map(e => fetch({api} + '{every}' + e).then(r => r.json()))).then(([a, b]) =>
                    a.rows.length > 10 && a.rows.length === b.rows.length && a.rows.every((r, i) => typeof r[0] === 'string'
                    && b.rows[i][0] === Date.parse(r[0]) && JSON.stringify(b.rows[i].slice(1)) === JSON.stringify(r.slice(1))))"
            ),
        );
        assert_eq!(same, true, "every={every}");
    }
    assert_eq!(browser.eval(&page, &format!("fetch({api} + '1h&epoch=s').then(r => r.status)")), 400);
    // A large answer comes gzipped to a client that takes it, and is the same.
    let schema: Value = serde_json::from_str(&get(&url, "/api/schema", None).1).unwrap();
    let busiest = schema.as_array().unwrap().iter().max_by_key(|r| r["count"].as_u64()).unwrap()["sensor"].as_str().unwrap().to_string();
    let path = format!("/api/sensor/{busiest}?from=2012-11-30&to=2012-12-01&every=raw");
    let plain = get(&url, &path, None).1;
    assert!(plain.len() > 16 * 1024, "{} bytes", plain.len());
    let (head, packed) = get_bytes(&url, &path, "Accept-Encoding: br, gzip;q=0.8\r\n");
    assert!(head.to_ascii_lowercase().contains("content-encoding: gzip"), "{head}");
    assert!(packed.len() * 4 < plain.len(), "{} bytes gzipped of {}", packed.len(), plain.len());
    let mut unpacked = String::new();
    flate2::read::GzDecoder::new(&packed[..]).read_to_string(&mut unpacked).unwrap();
    assert_eq!(unpacked, plain);
    let (head, _) = get_bytes(&url, &path, "Accept-Encoding: gzip;q=0\r\n");
    assert!(!head.to_ascii_lowercase().contains("content-encoding"), "{head}");
    // The plot's points: a missing value left out, times as numbers or
    // text, and with more points than columns, each column's lowest low,
    // mean middle and highest high.
    let mut points = |rows: &str, width: u32| {
        let expr = format!(
            "(p => JSON.stringify([p.reduced, [...p.t.slice(0, p.length)], [...p.lo.slice(0, p.length)], [...p.mid.slice(0, p.length)], [...p.hi.slice(0, p.length)]]))(plotPoints({rows}, [2, 3, 4], 0, 4000, {width}))"
        );
        browser.eval(&page, &expr).as_str().unwrap_or_default().to_string()
    };
    let rows =
        "[[0, 1, 1, 2, 3], [1000, 1, 0, 5, 4], ['1970-01-01T00:00:02.000Z', 1, null, 1, 1], ['1970-01-01T00:00:03.000Z', 1, 2, 2, 9]]";
    assert_eq!(points(rows, 1), "[true,[0],[0],[3],[9]]");
    assert_eq!(points(rows, 2), "[false,[0,1000,3000],[1,0,2],[2,5,2],[3,4,9]]");
    // Its axes are labelled with round values and round times, and the
    // drawing's time is kept for `bench web`.
    let mut ticks = |expr: &str| browser_ticks(&mut browser, &page, expr);
    assert_eq!(ticks("niceTicks(12.37, 18.91, 5)"), "13 14 15 16 17 18");
    assert_eq!(ticks("niceTicks(-0.3, 0.72, 5)"), "-0.2 0.0 0.2 0.4 0.6");
    assert_eq!(
        ticks("timeTicks(Date.parse('2012-11-30T00:00Z'), Date.parse('2012-12-01T00:00Z'), 6)"),
        "11-30 03:00 06:00 09:00 12:00 15:00 18:00 21:00 12-01"
    );
    assert_eq!(
        ticks("timeTicks(Date.parse('2011-11-30T10:17Z'), Date.parse('2012-11-30T10:17Z'), 6)"),
        "2012-01 2012-03 2012-05 2012-07 2012-09 2012-11"
    );
    assert!(browser.eval(&page, "window.blackboxPlotMs").as_f64().is_some_and(|ms| ms >= 0.0), "the plot's drawing time is kept");
    shot(&mut browser, &page, "sensor");
    browser.navigate(&page, &format!("{url}history"));
    browser.wait_for(&page, "document.querySelectorAll('#history tr').length > 1");
    // The nav leads to the overview (not to the page itself), Live and History.
    let nav = browser.eval(&page, "[...document.querySelectorAll('nav a')].map(a => a.href)");
    assert_eq!(nav, serde_json::json!([url, format!("{url}live"), format!("{url}history")]));
    shot(&mut browser, &page, "history");
    // A row's line leads to that line in its log (the gzipped day), with the lines around it.
    let place = browser.eval(&page, "document.querySelector('#history td .where a').textContent");
    let (file, number) = place.as_str().and_then(|p| p.split_once(':')).unwrap_or_else(|| panic!("no line linked: {place}"));
    let number: usize = number.parse().unwrap();
    assert!(file.starts_with("20121130.txt"), "{place}");
    browser.eval(&page, "document.querySelector('#history td .where a').click()");
    let target = browser.wait_for(&page, "document.getElementById('target') && document.querySelector('#target code').textContent");
    let mut day = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(crate::harness::real_day()).unwrap()).read_to_string(&mut day).unwrap();
    assert_eq!(target.as_str().unwrap(), day.lines().nth(number - 1).unwrap());
    let shown = browser.eval(&page, "[document.querySelector('h1').textContent, document.querySelectorAll('#log li').length]");
    let around = (number + 10).min(day.lines().count()) - number.saturating_sub(10).max(1) + 1;
    assert_eq!(shown, serde_json::json!([format!("20121130.txt.gz:{number}"), around]), "the line and 10 either side");
    let nav = browser.eval(&page, "document.querySelector('nav a').href");
    assert_eq!(nav, url.as_str());
    browser.navigate(&page, &url);
    browser.wait_for(&page, "document.querySelectorAll('.tile').length > 0");
    shot(&mut browser, &page, "overview");
}

/// The labels of a tick function's answer, evaluated in the page.
fn browser_ticks(browser: &mut Browser, page: &devtools::Page, expr: &str) -> String {
    browser.eval(page, &format!("{expr}.map(t => t.label).join(' ')")).as_str().unwrap_or_default().to_string()
}

/// With BLACKBOX_SCREENSHOTS=DIR, saves the page as DIR/NAME.png (docs/img in the repository).
pub(crate) fn shot(browser: &mut Browser, page: &devtools::Page, name: &str) {
    if let Ok(dir) = std::env::var("BLACKBOX_SCREENSHOTS") {
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.png")),
            web::auth::base64(&browser.screenshot_base64(page)).expect("base64"),
        )
        .unwrap();
    }
}

#[test]
fn a_line_captured_on_a_pty_appears_live_and_on_its_tile_without_a_reload() {
    let Some(mut browser) = Browser::start() else { return };
    let dir = Dir::new();
    let mut pty = Pty::new();
    let config = format!("[[source]]\nname = \"lab\"\nport = \"{}\"\ndecoder = \"json\"\ndevice = [\"id\"]\n", pty.path);
    std::fs::write(dir.path().join("blackbox.toml"), config).unwrap();
    std::fs::create_dir_all(dir.logs()).unwrap();
    let _capture = dir.spawn(&["capture"]);
    pty.send(b"{\"id\":\"first\",\"temp\":20.5}\n");
    dir.wait_for("the first line", |lines| lines.iter().any(|l| l.contains("first")));
    let (_serve, _err, url) = serve(&dir, &[]);
    let live = browser.open(&format!("{url}live"));
    browser.wait_for(&live, "document.querySelectorAll('#live li').length > 0");
    let overview = browser.open(&url);
    browser.wait_for(&overview, "document.querySelector('.tile[data-device=\"lab/first\"]')");
    pty.send(b"{\"id\":\"second\",\"temp\":21.75}\n");
    let text = browser.wait_for(&live, "[...document.querySelectorAll('#live li')].map(l => l.textContent).find(t => t.includes('21.75'))");
    assert!(text.as_str().unwrap().contains("second"), "{text}");
    browser.wait_for(&overview, "document.querySelector('.tile[data-device=\"lab/second\"]')");
    shot(&mut browser, &live, "live");
}

#[test]
fn the_please_wait_page_turns_into_the_overview_by_itself() {
    let Some(mut browser) = Browser::start() else { return };
    let dir = real_site();
    // Twenty days of the real day: a catch-up that takes a while.
    let day = std::fs::read(crate::harness::real_day()).unwrap();
    for d in 1..=20 {
        std::fs::write(dir.logs().join(format!("201211{d:02}.txt.gz")), &day).unwrap();
    }
    let (_serve, _err, url) = serve(&dir, &[]);
    let page = browser.open(&url);
    let first = browser.wait_for(&page, "(document.getElementById('wait') && 'wait') || (document.querySelector('.tile') && 'tiles')");
    assert_eq!(first, "wait", "the catch-up ended before the page loaded");
    let figures = browser.wait_for(&page, "document.getElementById('wait-figures') && document.getElementById('wait-figures').textContent");
    assert!(figures.as_str().unwrap().contains("lines"), "{figures}");
    shot(&mut browser, &page, "please-wait");
    browser.wait_for(&page, "document.querySelectorAll('.tile').length > 5");
    assert!(browser.eval(&page, "document.getElementById('wait') === null").as_bool().unwrap());
}

#[test]
fn a_device_named_like_markup_is_shown_as_text_and_runs_nothing() {
    let Some(mut browser) = Browser::start() else { return };
    let dir = Dir::new();
    std::fs::write(dir.path().join("blackbox.toml"), "[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n")
        .unwrap();
    let hostile = r#"<img src=x onerror="window.__xss=1">"#;
    let line = format!("{{\"id\":{},\"temp\":20,\"note\":\"<script>window.__xss=2</script>\"}}\n", serde_json::to_string(hostile).unwrap());
    let o = dir.run_with_stdin(&["capture", "--stdin", "--source", "lab"], line.as_bytes());
    assert!(o.status.success());
    // The device's name as the decoder made it (spaces become underscores), shown as it is.
    assert!(dir.run(&["index"]).status.success());
    let status: Value = serde_json::from_str(&stdout(&dir.run(&["status", "--all", "--format", "json"]))).unwrap();
    let device = status["devices"][0]["device"].as_str().unwrap().to_string();
    assert_eq!(device, format!("lab/{}", hostile.replace(' ', "_")));
    let (_serve, _err, url) = serve(&dir, &[]);
    let page = browser.open(&url);
    let name = browser.wait_for(&page, "document.querySelector('.tile .name') && document.querySelector('.tile .name').textContent");
    assert_eq!(name, device.trim_start_matches("lab/"));
    let hostile = device.trim_start_matches("lab/").to_string();
    let hostile = hostile.as_str();
    browser.eval(&page, "document.querySelector('.tile').click()");
    let title = browser.wait_for(&page, "document.querySelector('#lines li') && document.querySelector('h1').textContent");
    assert!(title.as_str().unwrap().contains(hostile), "{title}");
    let last = browser.eval(&page, "document.querySelector('#lines li code').textContent");
    assert!(last.as_str().unwrap().contains("<script>window.__xss=2</script>"), "{last}");
    // Its one reading shows on its sensor's small plot (a lone reading makes no line).
    browser.wait_for(
        &page,
        "(() => { const card = [...document.querySelectorAll('.sensor')].find(s => s.querySelector('a').textContent === 'temp');
            const c = card && card.querySelector('canvas'); if (!c) return false;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i + 2] > 120 && d[i] < 120) return true;
            return false; })()",
    );
    browser.navigate(&page, &format!("{url}live"));
    browser.wait_for(&page, "document.querySelectorAll('#live li').length > 0");
    assert_eq!(browser.eval(&page, "document.querySelectorAll('main img, main script').length"), 0);
    assert!(browser.eval(&page, "window.__xss === undefined").as_bool().unwrap(), "markup from a device ran");
}

/// A password hash for `[web] users`, made by `blackbox passwd`.
fn user(dir: &Dir, name: &str, password: &str) -> String {
    let o = dir.run_with_stdin(&["passwd", name], format!("{password}\n").as_bytes());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(&o)
}

fn basic(user: &str, password: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    format!("Basic {out}")
}

fn vm_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap()
}

#[test]
fn serve_refuses_what_it_must() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.logs()).unwrap();
    std::fs::write(dir.path().join("blackbox.toml"), "[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n[[check]]\nname = \"hot\"\nsensors = [\"lab/*/temp\"]\nkind = \"range\"\nmax = 25\n").unwrap();
    // Another address than loopback, without authentication: refused, and why.
    let o = dir.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to listen on 0.0.0.0:0"), "{}", String::from_utf8_lossy(&o.stderr));
    // A name this machine resolves is its address; what is no address is said so.
    let o = dir.run(&["serve", "--listen", "no port here"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--listen \"no port here\""), "{}", String::from_utf8_lossy(&o.stderr));
    {
        let mut named = dir.spawn(&["serve", "--listen", "localhost:0"]);
        let line = named.stderr_lines().wait_for("serving the dashboard on ");
        assert!(line.contains("http://127.0.0.1:") || line.contains("http://[::1]:"), "{line}");
    }

    let users = user(&dir, "ann", "correct horse");
    std::fs::write(
        dir.path().join("blackbox.toml"),
        format!("[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n[[check]]\nname = \"hot\"\nsensors = [\"lab/*/temp\"]\nkind = \"range\"\nmax = 25\n\n{users}"),
    )
    .unwrap();
    let o = dir.run_with_stdin(&["capture", "--stdin", "--source", "lab"], b"{\"id\":\"a\",\"temp\":30}\n");
    assert!(o.status.success());
    let (serve, _err, url) = serve(&dir, &[]);
    let ann = basic("ann", "correct horse");
    assert_eq!(get(&url, "/", None).0, 401);
    assert_eq!(get(&url, "/api/status", Some(&basic("ann", "wrong"))).0, 401);
    assert_eq!(get(&url, "/api/status", Some(&basic("bob", "correct horse"))).0, 401);
    let (code, body) = get(&url, "/api/status", Some(&ann));
    assert_eq!(code, 200, "{body}");
    // A second serve of the same cache says why it cannot, before it listens.
    let o = dir.run(&["serve", "--listen", "127.0.0.1:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot serve cache: a running `blackbox serve`") && !err.contains("serving the dashboard"), "{err}");
    assert_eq!(get(&url, "/healthz", None).0, 200);
    // Actions need the CSRF token of the signed-in user.
    let ack = |csrf: &str| {
        let body = r#"{"device":"lab/a","note":"on it"}"#;
        http(&url, &format!("POST /api/ack HTTP/1.1\r\nHost: HOST\r\nAuthorization: {ann}\r\nContent-Type: application/json\r\nX-CSRF-Token: {csrf}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
    };
    assert_eq!(ack("").0, 403);
    assert_eq!(ack("0123456789abcdef").0, 403);
    let session: Value = serde_json::from_str(&get(&url, "/api/session", Some(&ann)).1).unwrap();
    let csrf = session["csrf"].as_str().unwrap();
    let (code, body) = ack(csrf);
    assert_eq!(code, 200, "{body}");
    // Bad parameters and bodies, and an unknown device: errors in JSON, as api.md says.
    let post = |body: &str| {
        http(&url, &format!("POST /api/ack HTTP/1.1\r\nHost: HOST\r\nAuthorization: {ann}\r\nContent-Type: application/json\r\nX-CSRF-Token: {csrf}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()))
    };
    for (expected, (code, body)) in [
        (400, get(&url, "/api/events?limit=abc", Some(&ann))),
        (400, get(&url, "/api/transitions?limit=-1", Some(&ann))),
        (400, get(&url, "/api/transitions?from=2012-12-01&to=2012-11-30", Some(&ann))),
        (400, get(&url, "/api/events?from=-1h&to=-2h", Some(&ann))),
        (400, post("not json")),
        (404, post(r#"{"device":"lab/nobody"}"#)),
    ] {
        assert_eq!(code, expected, "{body}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    assert!(stdout(&dir.run(&["status"])).contains("acknowledged lab/a (warning)"));
    // The device's page says so after the action.
    let device: Value = serde_json::from_str(&get(&url, "/api/device/lab/a", Some(&ann)).1).unwrap();
    assert_eq!(device["acknowledged"]["level"], "warning", "{device}");
    assert_eq!(device["acknowledged"]["note"], "on it (by ann)", "{device}");
    // Signing in and unknown routes of the API are refused in JSON too; pages in text.
    for (path, auth, expected, json) in [
        ("/api/status", None, 401, true),
        ("/api/nothing", Some(ann.as_str()), 404, true),
        ("/", None, 401, false),
        ("/nothing", Some(ann.as_str()), 404, false),
    ] {
        let (code, body) = get(&url, path, auth);
        assert_eq!(code, expected, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).is_ok_and(|v| v["error"].is_string()), json, "{path}: {body}");
    }
    // Traversal, encoded or not, and overlong requests.
    for path in [
        "/../../etc/passwd",
        "/assets/../../Cargo.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2fCargo.toml",
        "/device/%2e%2e%5c%2e%2e",
    ] {
        let (code, body) = get(&url, path, Some(&ann));
        assert_eq!(code, 400, "{path}: {body}");
    }
    assert_eq!(get(&url, &format!("/api/device/{}", "x".repeat(10_000)), Some(&ann)).0, 414);
    let big = "x".repeat(100_000);
    let (code, _) = http(&url, &format!("POST /api/silence HTTP/1.1\r\nHost: HOST\r\nAuthorization: {ann}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}", big.len()));
    assert_eq!(code, 413);
    // A request head over 16 KiB: 431, whatever the path.
    let filler = "x".repeat(70_000);
    let (code, _) = http(&url, &format!("GET /healthz HTTP/1.1\r\nHost: HOST\r\nX-Filler: {filler}\r\nConnection: close\r\n\r\n"));
    assert_eq!(code, 431);

    // 200 live pages open and close, twice: no descriptor or memory left behind.
    let pid = serve.child.id();
    let open_live = || -> Vec<TcpStream> {
        (0..200)
            .map(|_| {
                let host = url.trim_start_matches("http://").trim_end_matches('/');
                let mut s = TcpStream::connect(host).unwrap();
                write!(s, "GET /events HTTP/1.1\r\nHost: {host}\r\nAuthorization: {ann}\r\n\r\n").unwrap();
                // Read up to the first event: the stream is open on the server.
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while !line.starts_with("data:") {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                }
                s
            })
            .collect()
    };
    let fds_before = serve.open_fds();
    let streams = open_live();
    assert!(serve.open_fds() >= 200, "{} descriptors with 200 live pages open", serve.open_fds());
    drop(streams);
    // A new line makes the server write to every stream, and find them closed.
    let wait_fds = |limit: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut n = 0;
        while serve.open_fds() > limit {
            let _ = dir.run_with_stdin(&["capture", "--stdin", "--source", "lab"], format!("{{\"id\":\"b{n}\",\"temp\":20}}\n").as_bytes());
            n += 1;
            assert!(Instant::now() < deadline, "{} descriptors open, {limit} before", serve.open_fds());
        }
    };
    wait_fds(fds_before + 4);
    let rss_first = vm_kb(pid, "VmRSS:");
    drop(open_live());
    wait_fds(fds_before + 4);
    let rss_second = vm_kb(pid, "VmRSS:");
    assert!(rss_second < rss_first + 4 * 1024, "RSS grew from {rss_first} kB to {rss_second} kB over 200 more live pages");
    // A live page open does not keep serve from stopping.
    let _page = open_live().pop();
    let out = serve.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
