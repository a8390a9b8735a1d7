//! The fleet (`status --sites`, `serve --sites`) over a directory of sites
//! as `blackbox mirror` keeps them: the real JeeLabs day as one site with
//! its own configuration, a small site with the central one, an empty one;
//! in a real headless Chromium, the fleet page's tiles, a click into a
//! site's own dashboard and back, and a site that appears while it runs.

use crate::harness::{real_day, stderr, stdout, Dir, HOUSEMON};
use crate::status::CHECKS;
use devtools::Browser;
use serde_json::Value;

/// `sites/jeelabs` (the real day, its own blackbox.toml with checks),
/// `sites/lab` (a line, the central configuration), `sites/empty` (no lines
/// yet), and things that are not sites; the clock at the real day's end.
fn fleet() -> Dir {
    let dir = Dir::new();
    let sites = dir.path().join("sites");
    std::fs::create_dir_all(sites.join("jeelabs/logs")).unwrap();
    std::fs::copy(real_day(), sites.join("jeelabs/logs/20121130.txt.gz")).unwrap();
    std::fs::write(sites.join("jeelabs/blackbox.toml"), format!("{HOUSEMON}{CHECKS}")).unwrap();
    std::fs::create_dir_all(sites.join("lab/logs/2012")).unwrap();
    std::fs::write(sites.join("lab/logs/2012/20121130.txt"), "L 23:58:00.000 lab {\"id\":\"n1\",\"temp\":21.5}\n").unwrap();
    std::fs::create_dir_all(sites.join("empty/logs")).unwrap();
    // Not sites: no logs directory, a name that is not a site's.
    std::fs::create_dir_all(sites.join("notes")).unwrap();
    std::fs::create_dir_all(sites.join(".hidden/logs")).unwrap();
    std::fs::write(dir.path().join("blackbox.toml"), "[[source]]\nname = \"lab\"\nstdin = true\ndecoder = \"json\"\ndevice = [\"id\"]\n")
        .unwrap();
    dir.set_clock("2012-11-30T23:59:00Z");
    dir
}

/// What `status` says of the real day on its own (indexed into a cache of its own).
fn jeelabs_alone(dir: &Dir) -> Value {
    let flags = ["--config", "sites/jeelabs/blackbox.toml", "--logs", "sites/jeelabs/logs", "--cache", "alone-cache"];
    let out = dir.run(&[&flags[..], &["index"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = dir.run(&[&flags[..], &["status", "--all", "--format", "json"]].concat());
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn status_sites_gives_every_site_its_worst_level_and_counts() {
    let dir = fleet();
    let alone = jeelabs_alone(&dir);
    let out = dir.run(&["status", "--sites", "sites", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = f["sites"].as_array().unwrap().iter().map(|s| s["site"].as_str().unwrap()).collect();
    assert_eq!(names, ["empty", "jeelabs", "lab"]);
    let site = |n: &str| f["sites"].as_array().unwrap().iter().find(|s| s["site"] == n).unwrap().clone();
    assert_eq!(site("jeelabs")["level"], alone["level"]);
    assert_eq!(site("jeelabs")["counts"], alone["counts"]);
    assert_eq!(site("lab")["level"], "ok");
    assert_eq!(site("empty")["level"], "grey", "no devices yet tells nothing");
    // The fleet is its worst site.
    let worst = ["ok", "warning", "error", "critical", "grey", "black"]
        .iter()
        .rposition(|l| ["empty", "jeelabs", "lab"].iter().any(|n| site(n)["level"] == *l))
        .unwrap();
    assert_eq!(f["level"], ["ok", "warning", "error", "critical", "grey", "black"][worst]);
    // Each site got its own cache beside its logs.
    assert!(dir.path().join("sites/jeelabs/cache").is_dir() && dir.path().join("sites/lab/cache").is_dir());
    let table = stdout(&dir.run(&["status", "--sites", "sites", "--color", "never"]));
    assert!(table.contains("fleet: 3 sites"), "{table}");
    assert!(table.lines().any(|l| l.contains(" lab ") && l.contains("1 ok")), "{table}");
    assert!(table.lines().any(|l| l.contains(" empty ") && l.contains("no devices yet")), "{table}");
}

#[test]
fn the_fleet_page_shows_every_site_and_leads_into_its_dashboard() {
    let Some(mut browser) = Browser::start() else { return };
    let dir = fleet();
    let alone = jeelabs_alone(&dir);
    let devices = alone["devices"].as_array().unwrap().len();
    let mut p = dir.spawn(&["serve", "--sites", "sites", "--listen", "127.0.0.1:0"]);
    let mut err = p.stderr_lines();
    let line = err.wait_for("serving the fleet of ");
    let url = format!("{}/", line.split(" on ").nth(1).unwrap().split(' ').next().unwrap());
    let page = browser.open(&url);
    browser.wait_for(&page, "document.querySelectorAll('#sites .tile').length === 3");
    // Each tile in its site's colour, with the word too.
    let level = browser.wait_for(
        &page,
        "(t => t && !t.querySelector('.why').textContent.startsWith('catching') && t.className)(document.querySelector('.tile[data-site=\"jeelabs\"]'))",
    );
    assert!(level.as_str().unwrap().contains(&format!("level-{}", alone["level"].as_str().unwrap())), "{level}");
    let word = browser.eval(&page, "document.querySelector('.tile[data-site=\"jeelabs\"] .badge').textContent");
    assert!(word.as_str().unwrap().contains(alone["level"].as_str().unwrap()), "{word}");
    // Into the site: its own overview, every device of the real day.
    browser.eval(&page, "document.querySelector('.tile[data-site=\"jeelabs\"]').click()");
    browser.wait_for(&page, &format!("document.querySelectorAll('.tile[data-device]').length === {devices}"));
    let here = browser.eval(&page, "location.pathname");
    assert_eq!(here, "/sites/jeelabs/");
    // A device page inside the site, and back to the fleet by its link.
    browser.eval(&page, "document.querySelector('.tile[data-device]').click()");
    browser.wait_for(&page, "location.pathname.startsWith('/sites/jeelabs/device/') && document.querySelectorAll('.sensor').length > 0");
    browser.eval(&page, "[...document.querySelectorAll('nav a')].find(a => a.textContent === 'Fleet').click()");
    browser.wait_for(&page, "location.pathname === '/' && document.querySelectorAll('#sites .tile').length === 3");
    // A site the mirror adds while the fleet runs appears by itself.
    let new = dir.path().join("sites/north/logs/2012");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(new.join("20121130.txt"), "L 23:58:30.000 lab {\"id\":\"n7\",\"temp\":20}\n").unwrap();
    browser.wait_for(&page, "!!document.querySelector('.tile[data-site=\"north\"].level-ok')");
    // A site whose configuration does not load is black, with the reason, not left out.
    let broken = dir.path().join("sites/broken");
    std::fs::create_dir_all(broken.join("logs/2012")).unwrap();
    std::fs::write(broken.join("logs/2012/20121130.txt"), "L 23:58:40.000 lab {\"id\":\"n8\",\"temp\":20}\n").unwrap();
    std::fs::write(broken.join("blackbox.toml"), "nonsense_key = 1\n").unwrap();
    let why = browser.wait_for(
        &page,
        "(t => t && t.querySelector('.why').textContent)(document.querySelector('.tile[data-site=\"broken\"].level-black'))",
    );
    assert!(why.as_str().unwrap().contains("cannot read") && why.as_str().unwrap().contains("blackbox.toml"), "{why}");
    let code = browser.eval(&page, "fetch('/sites/broken/api/status').then(r => r.status)");
    assert_eq!(code, 503);
    err.wait_for("site broken: ");
    crate::dashboard::shot(&mut browser, &page, "fleet");
    // A site's name is looked up, never followed as a path.
    for bad in ["/sites/..%2F..%2Fetc/api/status", "/sites/nope/api/status", "/sites/.hidden/api/status"] {
        let code = browser.eval(&page, &format!("fetch('{bad}').then(r => r.status)"));
        assert!(code == 404 || code == 400, "{bad}: {code}");
    }
    // SIGTERM stops every site's follower and the server, cleanly.
    drop(err);
    let out = p.terminate();
    assert!(out.status.success(), "{}", stderr(&out));
}
