//! Golden tests of each check kind, levels and status, fed as the indexer
//! feeds them: readings and events in line order, in data time.

use config::Config;
use health::{Cause, Checks, Health, Level, Reading, Subject, Transition};
use std::path::Path;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn health(toml: &str) -> Health {
    let config = Config::parse(toml, Path::new("test.toml")).unwrap();
    Health::new(Checks::new(&config, &[]).unwrap())
}

fn feed(h: &mut Health, sensor: &str, t: i64, v: f64) {
    let (device, _) = sensor.rsplit_once('/').unwrap();
    let (source, _) = sensor.split_once('/').unwrap();
    h.reading(&Reading {
        source,
        device,
        sensor,
        time_ms: t,
        value: v,
        cause: Cause { day: "20121130".into(), line: (t / 1000) as u64, time_ms: t },
    });
}

/// The result transitions: (at, check, from, to).
fn results(ts: &[Transition]) -> Vec<(i64, String, Level, Level)> {
    ts.iter()
        .filter_map(|t| match &t.subject {
            Subject::Result { check, .. } => Some((t.at_ms, check.clone(), t.from, t.to)),
            _ => None,
        })
        .collect()
}

fn devices(ts: &[Transition]) -> Vec<(i64, String, Level, Level)> {
    ts.iter()
        .filter_map(|t| match &t.subject {
            Subject::Device(d) => Some((t.at_ms, d.clone(), t.from, t.to)),
            _ => None,
        })
        .collect()
}

const WARM: &str = r#"
[[check]]
name = "warm"
sensors = ["*/roomNode-*/temp"]
kind = "range"
max = 28
hysteresis = 0.5

[[check]]
name = "hot"
sensors = ["*/roomNode-*/temp"]
kind = "range"
max = 35
level = "critical"
for = "10m"
"#;

#[test]
fn range_for_and_hysteresis() {
    let mut h = health(WARM);
    let s = "usb-A/roomNode-5/temp";
    // 20 minutes at 25, then a value wobbling at 28: one failure, not one per reading.
    for (i, v) in [25.0, 25.0, 28.1, 27.9, 28.2, 27.6, 28.3, 27.4, 25.0].into_iter().enumerate() {
        feed(&mut h, s, i as i64 * MIN, v);
    }
    // It passes from 7 minutes on (27.4 is below 28 by more than the hysteresis), and clears after 5 more (`clear_for`).
    let r = results(&h.take_transitions());
    assert_eq!(r, [(2 * MIN, "warm".into(), Level::Ok, Level::Warning)]);
    // Hot for 10 minutes: critical only once it held for 10 minutes, at that time exactly.
    let t0 = HOUR;
    for i in 0..=12 {
        feed(&mut h, s, t0 + i * 2 * MIN, 36.0);
    }
    let r = results(&h.take_transitions());
    assert_eq!(
        r,
        [
            (12 * MIN, "warm".into(), Level::Warning, Level::Ok),
            (t0, "warm".into(), Level::Ok, Level::Warning),
            (t0 + 10 * MIN, "hot".into(), Level::Ok, Level::Critical)
        ]
    );
    // A dip before `for` ends resets it.
    let t1 = 2 * HOUR;
    feed(&mut h, s, t1, 20.0);
    feed(&mut h, s, t1 + MIN, 36.0);
    feed(&mut h, s, t1 + 5 * MIN, 20.0);
    feed(&mut h, s, t1 + 20 * MIN, 20.0);
    let r = results(&h.take_transitions());
    assert!(r.iter().all(|x| x.1 != "hot" || x.3 == Level::Ok), "{r:?}");
    // A value jumping across the limit on every reading fails once, and stays failed while it does.
    let t2 = 3 * HOUR;
    for i in 0..60 {
        feed(&mut h, s, t2 + i * MIN, if i % 2 == 0 { 29.0 } else { 26.0 });
    }
    let r = results(&h.take_transitions());
    assert_eq!(r.iter().filter(|x| x.1 == "warm").count(), 1, "{r:?}");
}

#[test]
fn device_and_site_levels_are_the_worst_of_theirs() {
    let mut h = health(WARM);
    feed(&mut h, "usb-A/roomNode-5/temp", 0, 30.0);
    feed(&mut h, "usb-A/roomNode-6/temp", 0, 20.0);
    feed(&mut h, "usb-B/roomNode-7/temp", MIN, 40.0);
    feed(&mut h, "usb-B/roomNode-7/temp", 12 * MIN, 40.0);
    let ts = h.take_transitions();
    assert_eq!(
        devices(&ts),
        [
            (0, "usb-A/roomNode-5".into(), Level::Ok, Level::Warning),
            (MIN, "usb-B/roomNode-7".into(), Level::Ok, Level::Warning),
            (11 * MIN, "usb-B/roomNode-7".into(), Level::Warning, Level::Critical),
        ]
    );
    let site: Vec<_> = ts.iter().filter(|t| t.subject == Subject::Site).map(|t| (t.at_ms, t.to)).collect();
    assert_eq!(site, [(0, Level::Warning), (11 * MIN, Level::Critical)]);
    let st = h.status_at(12 * MIN);
    assert_eq!(st.level, Level::Critical);
    assert_eq!(st.counts(), [1, 1, 0, 1, 0, 0]);
    let d7 = st.devices.iter().find(|d| d.device == "usb-B/roomNode-7").unwrap();
    assert_eq!(
        d7.results.iter().map(|r| (r.check.as_str(), r.level)).collect::<Vec<_>>(),
        [("hot", Level::Critical), ("warm", Level::Warning)]
    );
    assert_eq!(d7.why, "usb-B/roomNode-7/temp reached 40, above 35");
    // Wall time: a day later, nothing heard since: grey now (the stored levels are unchanged).
    assert_eq!(h.status_at(12 * MIN + DAY).counts(), [0, 0, 0, 0, 3, 0]);
    // roomNode-7 recovers while roomNode-5 is still warm: the site goes down
    // to warning, and says why with roomNode-5's message, not "every check passes".
    feed(&mut h, "usb-A/roomNode-5/temp", 13 * MIN, 30.0);
    feed(&mut h, "usb-B/roomNode-7/temp", 14 * MIN, 20.0);
    h.advance(30 * MIN);
    let ts = h.take_transitions();
    let site = ts.iter().find(|t| t.subject == Subject::Site).expect("the site changes");
    assert_eq!(
        (site.from, site.to, site.message.as_str()),
        (Level::Critical, Level::Warning, "usb-A/roomNode-5/temp reached 30, above 28")
    );
    let source = ts.iter().find(|t| t.subject == Subject::Source("usb-B".into())).expect("usb-B changes");
    assert_eq!((source.to, source.message.as_str()), (Level::Ok, "every check passes"));
}

#[test]
fn a_silent_device_goes_grey_then_black_then_green() {
    let mut h = health("[status]\ngrey_after = \"1h\"\nblack_after = \"3h\"\n");
    feed(&mut h, "r/blip/ping", 0, 1.0);
    // Another device keeps the data clock going.
    for i in 1..=40 {
        feed(&mut h, "r/other/x", i * 6 * MIN, 1.0);
    }
    feed(&mut h, "r/blip/ping", 5 * HOUR, 2.0);
    let d: Vec<_> = devices(&h.take_transitions()).into_iter().filter(|x| x.1 == "r/blip").collect();
    assert_eq!(
        d,
        [
            (HOUR, "r/blip".into(), Level::Ok, Level::Grey),
            (3 * HOUR, "r/blip".into(), Level::Grey, Level::Black),
            (5 * HOUR, "r/blip".into(), Level::Black, Level::Ok)
        ]
    );
}

/// A device back from silence goes from black to what its line's values
/// say: not through the level of the stale results that the silence caused
/// and that those values end (a false error, notified, in the same
/// millisecond). Results its line does not end still count.
#[test]
fn a_device_back_from_silence_skips_the_stale_results_its_line_ends() {
    let mut h = health(
        r#"
[status]
grey_after = "1h"
black_after = "3h"
[[check]]
name = "quiet"
sensors = ["*/node/*"]
kind = "stale"
after = "30m"
level = "error"
[[check]]
name = "warm"
sensors = ["*/node/t"]
kind = "range"
max = 28
"#,
    );
    feed(&mut h, "r/node/t", 0, 20.0);
    feed(&mut h, "r/node/h", 0, 50.0);
    // Another device keeps the data clock going.
    for i in 1..=40 {
        feed(&mut h, "r/other/x", i * 6 * MIN, 1.0);
    }
    let before: Vec<_> = devices(&h.take_transitions()).into_iter().filter(|x| x.1 == "r/node").collect();
    assert_eq!(before.last().map(|x| x.3), Some(Level::Black));
    // Back, warm: one line with both values.
    feed(&mut h, "r/node/t", 5 * HOUR, 30.0);
    feed(&mut h, "r/node/h", 5 * HOUR, 50.0);
    let ts = h.take_transitions();
    let d: Vec<_> = devices(&ts).into_iter().filter(|x| x.1 == "r/node").collect();
    assert_eq!(d, [(5 * HOUR, "r/node".into(), Level::Black, Level::Warning)]);
    assert!(results(&ts).contains(&(5 * HOUR, "quiet".into(), Level::Error, Level::Ok)), "{ts:?}");
    // Back with one sensor only: the other's stale result stands.
    for i in 51..=90 {
        feed(&mut h, "r/other/x", i * 6 * MIN, 1.0);
    }
    h.take_transitions();
    feed(&mut h, "r/node/t", 10 * HOUR, 20.0);
    let d: Vec<_> = devices(&h.take_transitions()).into_iter().filter(|x| x.1 == "r/node").collect();
    assert_eq!(d, [(10 * HOUR, "r/node".into(), Level::Black, Level::Error)]);
    // Grey an hour later; back: the status read before the line's
    // transitions are taken is the line's.
    feed(&mut h, "r/other/x", 11 * HOUR, 1.0);
    let at = 11 * HOUR + 1000;
    feed(&mut h, "r/node/t", at, 20.0);
    feed(&mut h, "r/node/h", at, 50.0);
    let dev = |h: &Health| h.status_at(at).devices.into_iter().find(|d| d.device == "r/node").map(|d| d.level);
    assert_eq!(dev(&h), Some(Level::Ok));
    let d: Vec<_> = devices(&h.take_transitions()).into_iter().filter(|x| x.1 == "r/node").collect();
    assert_eq!(d, [(11 * HOUR, "r/node".into(), Level::Error, Level::Grey), (at, "r/node".into(), Level::Grey, Level::Ok)]);
}

/// A device's every check, passing or not, with where each stands.
#[test]
fn a_device_lists_every_check_and_where_it_stands() {
    let mut h = health(WARM);
    let s = "usb-A/roomNode-5/temp";
    feed(&mut h, s, 0, 25.0);
    let states = |h: &Health, now: i64| -> Vec<(String, &'static str, Option<i64>)> {
        h.device_checks("usb-A/roomNode-5", now).into_iter().map(|c| (c.check, c.state, c.since_ms)).collect()
    };
    assert_eq!(states(&h, 0), [("hot".into(), "passes", None), ("warm".into(), "passes", None)]);
    feed(&mut h, s, MIN, 36.0);
    assert_eq!(states(&h, MIN), [("hot".into(), "waits", Some(MIN)), ("warm".into(), "fails", Some(MIN))]);
    // At wall time, with no line since: the `for` ran out.
    assert_eq!(states(&h, 20 * MIN)[0], ("hot".into(), "fails", Some(11 * MIN)));
    feed(&mut h, s, 2 * MIN, 20.0);
    assert_eq!(states(&h, 2 * MIN), [("hot".into(), "passes", None), ("warm".into(), "clears", Some(2 * MIN))]);
    let c = &h.device_checks("usb-A/roomNode-5", 2 * MIN)[1];
    assert_eq!((c.kind, c.sensor.as_str(), c.level), ("range", s, Level::Warning));
    assert!(h.device_checks("usb-A/nobody", 0).is_empty());
}

#[test]
fn stale_rate_and_agree() {
    let mut h = health(
        r#"
        [[check]]
        name = "quiet"
        sensors = ["*/*/temp"]
        kind = "stale"
        after = "15m"
        level = "error"
        [[check]]
        name = "jump"
        sensors = ["*/*/temp"]
        kind = "rate"
        max_change = 1
        per = "15m"
        [[check]]
        name = "twins"
        sensors = ["a/x/temp", "b/x/temp"]
        kind = "agree"
        max_spread = 1
        "#,
    );
    feed(&mut h, "a/x/temp", 0, 20.0);
    feed(&mut h, "b/x/temp", 0, 20.5);
    feed(&mut h, "a/x/temp", 10 * MIN, 20.5); // 0.5 within 15 minutes: fine
    feed(&mut h, "b/x/temp", 10 * MIN, 22.0); // 1.5 within 15 minutes: a jump; spread 1.5: disagree
    feed(&mut h, "a/x/temp", 20 * MIN, 21.5);
    feed(&mut h, "b/x/temp", 20 * MIN, 22.0); // spread 0.5, no change
    feed(&mut h, "a/x/temp", 30 * MIN, 21.5);
    feed(&mut h, "a/x/temp", 40 * MIN, 21.5); // b is silent: stale at 35 min
    let r = results(&h.take_transitions());
    assert_eq!(
        r,
        [
            (10 * MIN, "jump".into(), Level::Ok, Level::Warning),
            (10 * MIN, "twins".into(), Level::Ok, Level::Warning),
            // Both pass from 20 minutes on, and clear 5 minutes later (`clear_for`).
            (25 * MIN, "twins".into(), Level::Warning, Level::Ok),
            (25 * MIN, "jump".into(), Level::Warning, Level::Ok),
            (35 * MIN, "quiet".into(), Level::Ok, Level::Error),
        ]
    );
    feed(&mut h, "b/x/temp", 50 * MIN, 22.0);
    assert_eq!(results(&h.take_transitions()), [(50 * MIN, "quiet".into(), Level::Error, Level::Ok)]);
}

#[test]
fn anomaly_waits_for_history_then_flags_outliers() {
    let mut h = health("[[check]]\nname = \"odd\"\nsensors = [\"*/*/power\"]\nkind = \"anomaly\"\nsigma = 3\ndays = 4\n");
    let s = "m/meter/power";
    // A daily pattern with a little noise, every 10 minutes; an outlier on day 1 is not judged (no history yet).
    let value = |t: i64| 100.0 + 50.0 * ((t / HOUR % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + ((t / (10 * MIN)) % 7) as f64 - 3.0;
    for t in (0..6 * DAY).step_by(10 * MIN as usize) {
        let v = if t == DAY + 3 * HOUR || t == 5 * DAY + 3 * HOUR { 500.0 } else { value(t) };
        feed(&mut h, s, t, v);
    }
    let r = results(&h.take_transitions());
    assert_eq!(
        r,
        [
            (5 * DAY + 3 * HOUR, "odd".into(), Level::Ok, Level::Warning),
            (5 * DAY + 3 * HOUR + 15 * MIN, "odd".into(), Level::Warning, Level::Ok)
        ]
    );
}

#[test]
fn ups_fault_codes_map_to_their_levels_and_hold() {
    let mut h = health(
        r#"
        [[check]]
        name = "ups critical"
        sensors = ["ups"]
        kind = "event"
        codes = ["101"]
        level = "critical"
        hold = "1h"
        clear = ["100"]
        [[check]]
        name = "ups warning"
        sensors = ["ups"]
        kind = "event"
        codes = ["201"]
        hold = "30m"
        "#,
    );
    let cause = |t: i64| Cause { day: "20121130".into(), line: t as u64, time_ms: t };
    h.event("ups", "201", "warning", 0, "battery low", cause(0));
    h.event("ups", "101", "critical", 10 * MIN, "inverter fault", cause(1));
    h.event("ups", "100", "info", 20 * MIN, "fault cleared", cause(2));
    h.advance(2 * HOUR);
    let d = devices(&h.take_transitions());
    // A source judged by its events alone is never grey: it speaks when something is wrong.
    let st = h.status_at(30 * DAY);
    assert_eq!((st.devices[0].level, st.devices[0].last_seen_ms), (Level::Ok, 20 * MIN));
    assert_eq!(
        d,
        [
            (0, "ups".into(), Level::Ok, Level::Warning),
            (10 * MIN, "ups".into(), Level::Warning, Level::Critical),
            (20 * MIN, "ups".into(), Level::Critical, Level::Warning),
            (30 * MIN, "ups".into(), Level::Warning, Level::Ok),
        ]
    );
}

/// `status_at(now)` fires the deadlines passed since the last line as if
/// the data clock were at now (no line since is silence), without
/// changing the evaluator; a later event keeps the first's message.
#[test]
fn status_now_fires_the_deadlines_passed_since_the_last_line() {
    let mut h = health(
        r#"
        [[check]]
        name = "ups fault"
        sensors = ["ups"]
        kind = "event"
        codes = ["101", "102"]
        hold = "1h"
        level = "critical"
        [[check]]
        name = "quiet"
        sensors = ["*/*/t"]
        kind = "stale"
        after = "15m"
        "#,
    );
    let cause = |t: i64| Cause { day: "20121130".into(), line: t as u64, time_ms: t };
    h.event("ups", "101", "critical", 0, "inverter fault", cause(0));
    h.event("ups", "102", "critical", MIN, "fan fault", cause(1));
    feed(&mut h, "a/x/t", 2 * MIN, 20.0);
    h.advance(2 * MIN);
    let level = |st: &health::Status, d: &str| st.devices.iter().find(|x| x.device == d).map(|x| x.level);
    let st = h.status_at(10 * MIN);
    assert_eq!((level(&st, "ups"), level(&st, "a/x")), (Some(Level::Critical), Some(Level::Ok)));
    let ups = st.devices.iter().find(|x| x.device == "ups").unwrap();
    assert_eq!((ups.why.as_str(), ups.results[0].cause.as_ref().map(|c| c.line)), ("event 101: inverter fault", Some(0)));
    // 20 minutes on: the sensor is stale; two hours on: the hold is over too.
    let st = h.status_at(20 * MIN);
    assert_eq!((level(&st, "ups"), level(&st, "a/x")), (Some(Level::Critical), Some(Level::Warning)));
    let st = h.status_at(2 * HOUR);
    assert_eq!((level(&st, "ups"), level(&st, "a/x")), (Some(Level::Ok), Some(Level::Warning)));
    // The evaluator itself is where the data left it.
    assert_eq!(h.clock_ms(), 2 * MIN);
    assert!(h.take_transitions().iter().all(|t| t.at_ms <= 2 * MIN));
}

/// A state made with other checks is not judged with these (it would index
/// cells by checks that are not theirs): the evaluator starts afresh.
#[test]
fn a_state_from_other_checks_starts_afresh() {
    let mut h = health(ALL_KINDS);
    feed(&mut h, "a/x/t", 0, 50.0);
    feed(&mut h, "c/z/t", MIN, 50.0);
    let other = Checks::new(
        &Config::parse("[[check]]\nname = \"w\"\nsensors = [\"*/*/t\"]\nkind = \"range\"\nmax = 1\n", Path::new("o.toml")).unwrap(),
        &[],
    )
    .unwrap();
    let h = Health::with_state(other, h.state().clone());
    assert_eq!(h.status_at(HOUR).devices.len(), 0);
    assert_eq!(h.clock_ms(), 0);
}

#[test]
fn overrides_and_sensors_that_appear_late() {
    let mut h = health("[[check]]\nname = \"warm\"\nsensors = [\"*/*/temp\"]\nkind = \"range\"\nmax = 28\n[[check.override]]\ndevices = [\"a/lab\"]\nmax = 40\nlevel = \"error\"\n");
    feed(&mut h, "a/lab/temp", 0, 30.0);
    feed(&mut h, "a/room/temp", HOUR, 30.0);
    feed(&mut h, "a/lab/temp", 2 * HOUR, 41.0);
    let r: Vec<_> = h
        .take_transitions()
        .into_iter()
        .filter(|t| matches!(t.subject, Subject::Result { .. }))
        .map(|t| (t.at_ms, t.to, t.message))
        .collect();
    assert_eq!(
        r,
        [
            (HOUR, Level::Warning, "a/room/temp reached 30, above 28".into()),
            (2 * HOUR, Level::Error, "a/lab/temp reached 41, above 40".into())
        ]
    );
}

const ALL_KINDS: &str = r#"
[status]
grey_after = "30m"
black_after = "1h"
[[check]]
name = "warm"
sensors = ["*/*/t"]
kind = "range"
max = 30
for = "5m"
[[check]]
name = "cold"
sensors = ["*/*/t"]
kind = "range"
min = 0
level = "error"
[[check]]
name = "quiet"
sensors = ["*/*/t"]
kind = "stale"
after = "20m"
[[check]]
name = "jump"
sensors = ["*/*/t"]
kind = "rate"
max_change = 30
per = "1h"
[[check]]
name = "twins"
sensors = ["a/*/t", "b/*/t"]
kind = "agree"
max_spread = 15
[[check]]
name = "fault"
kind = "event"
codes = ["F1"]
hold = "15m"
clear = ["F0"]
level = "critical"
"#;

fn encode(state: &health::State) -> Vec<u8> {
    bincode::serde::encode_to_vec(state, bincode::config::standard()).unwrap()
}

fn decode(bytes: &[u8]) -> health::State {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap().0
}

/// The property tests' feed over ALL_KINDS: readings of four sensors and
/// (`which == 4`) events of source `c`; `after` runs after each step with
/// its index and time. Returns the last time.
fn feed_all_kinds(h: &mut Health, feed_: &[(usize, i64, f64)], mut after: impl FnMut(&mut Health, usize, i64)) -> i64 {
    let sensors = ["a/x/t", "b/x/t", "a/y/t", "c/z/t"];
    let mut t = 0;
    for (i, &(which, dt, v)) in feed_.iter().enumerate() {
        t += dt;
        if which == 4 {
            let code = if v > 20.0 { "F1" } else { "F0" };
            h.event("c", code, "error", t, "fault", Cause { day: "d".into(), line: i as u64, time_ms: t });
        } else {
            feed(h, sensors[which], t, v);
        }
        after(h, i, t);
    }
    t
}

/// A fresh evaluator of `config`, judging every value in full if `exhaustive`.
fn evaluator(config: &Config, exhaustive: bool) -> Health {
    let mut h = Health::new(Checks::new(config, &[]).unwrap());
    if exhaustive {
        h.judge_every_value();
    }
    h
}

/// `run(false)` and `run(true)` give the same transitions and the same state.
fn same_either_way(run: impl Fn(bool) -> (Vec<Transition>, Vec<u8>)) -> Result<(), proptest::test_runner::TestCaseError> {
    let (a, sa) = run(false);
    let (b, sb) = run(true);
    proptest::prop_assert_eq!(a, b);
    proptest::prop_assert_eq!(sa, sb);
    Ok(())
}

/// The transitions after the clock passed every deadline, and the state.
fn finish(h: &mut Health, t: i64) -> (Vec<Transition>, Vec<u8>) {
    h.advance(t + 2 * HOUR);
    (h.take_transitions(), encode(h.state()))
}

proptest::proptest! {
    /// Results and transitions are a function of the feed: the same with the
    /// state saved and restored anywhere (a kill and a restart), and with
    /// the clock advanced at any extra point (where batches end).
    #[test]
    fn transitions_do_not_depend_on_restarts_or_batches(
        feed_ in proptest::collection::vec((0usize..5, 0i64..15 * MIN, -20.0f64..60.0), 1..150),
        cuts in proptest::collection::vec(proptest::bool::ANY, 150),
    ) {
        let config = Config::parse(ALL_KINDS, Path::new("t.toml")).unwrap();
        let run = |restarts: bool| {
            let mut h = evaluator(&config, false);
            let mut out = Vec::new();
            let t = feed_all_kinds(&mut h, &feed_, |h, i, t| {
                if restarts && cuts[i] {
                    h.advance(t);
                    out.extend(h.take_transitions());
                    let state = decode(&encode(h.state()));
                    *h = Health::with_state(Checks::new(&config, &[]).unwrap(), state);
                }
            });
            let (rest, state) = finish(&mut h, t);
            out.extend(rest);
            (out, state)
        };
        same_either_way(run)?;
    }

    /// The shortcut for values that change nothing but the latest value (a
    /// passing result and a value within, a failing one and a value
    /// outside) gives exactly the results of judging every value.
    #[test]
    fn the_shortcut_for_passing_values_changes_nothing(
        // Values anywhere, and near the range's limits (within the hysteresis).
        feed_ in proptest::collection::vec(
            (0usize..5, 0i64..15 * MIN, proptest::prop_oneof![-20.0f64..60.0, 29.5f64..30.5, -0.5f64..0.5]),
            1..200,
        ),
    ) {
        let config = Config::parse(ALL_KINDS, Path::new("t.toml")).unwrap();
        let run = |exhaustive: bool| {
            let mut h = evaluator(&config, exhaustive);
            let t = feed_all_kinds(&mut h, &feed_, |_, _, _| {});
            finish(&mut h, t)
        };
        same_either_way(run)?;
    }

    /// The same for a sensor whose cells all pass most of the time (wide
    /// ranges, a rate that a small step keeps, a stale check), where values
    /// skip all of their cells at once: steps small and large, readings
    /// close together and further apart than the rate's `per`.
    #[test]
    fn the_shortcut_for_calm_sensors_changes_nothing(
        feed_ in proptest::collection::vec((0i64..25 * MIN, proptest::prop_oneof![-2.0f64..2.0, -12.0f64..12.0, -0.01f64..0.01]), 1..300),
    ) {
        let config = Config::parse(CALM, Path::new("t.toml")).unwrap();
        let run = |exhaustive: bool| {
            let mut h = evaluator(&config, exhaustive);
            let (mut t, mut v) = (0, 20.0);
            for &(dt, step) in &feed_ {
                t += dt;
                v += step;
                feed(&mut h, "a/x/t", t, v);
            }
            finish(&mut h, t)
        };
        same_either_way(run)?;
    }
}

proptest::proptest! {
    /// The indexer keeps the runs of calm values from the judge
    /// (`Health::calm_run`), batch by batch, as `index::judging` does: a
    /// run per sensor from the batch's first row, then the rows in line
    /// order, each value after a run judged and a new run begun after it.
    /// The same transitions and the same state as giving the judge every
    /// value, with rows of two devices (one with two sensors), close
    /// together and far apart (stale, put off or not), sometimes back in
    /// time, values within and outside the limits, cut into batches anywhere.
    #[test]
    fn calm_runs_change_nothing(
        feed_ in proptest::collection::vec(
            (0usize..2, proptest::prop_oneof![0i64..3 * MIN, 0i64..25 * MIN, -MIN..0], proptest::prop_oneof![-2.0f64..2.0, -12.0f64..12.0], -3.0f64..3.0),
            1..300,
        ),
        cuts in proptest::collection::vec(0usize..300, 0..12),
    ) {
        let config = Config::parse(CALM, Path::new("t.toml")).unwrap();
        // Per device: its source, name and sensors.
        let devices: [(&str, &str, &[&str]); 2] = [("a", "a/x", &["a/x/t", "a/x/u"]), ("b", "b/y", &["b/y/t"])];
        // Rows: (device, time, a value per sensor of the device), in line order.
        let (mut t, mut v) = (0, [20.0; 2]);
        let rows: Vec<(usize, i64, Vec<f64>)> = feed_
            .iter()
            .map(|&(d, dt, step, other)| {
                t = (t + dt).max(0);
                v[d] += step;
                (d, t, devices[d].2.iter().enumerate().map(|(i, _)| v[d] + i as f64 * other).collect())
            })
            .collect();
        let run = |runs: bool| {
            let mut h = evaluator(&config, false);
            h.set_day("20121130");
            let refs: Vec<Vec<_>> = devices.iter().map(|&(source, device, sensors)| sensors.iter().map(|s| h.sensor_ref(source, device, s)).collect()).collect();
            let mut out = Vec::new();
            let mut cut: Vec<usize> = cuts.iter().map(|&c| c.min(rows.len())).collect();
            cut.extend([0, rows.len()]);
            cut.sort_unstable();
            cut.dedup();
            for w in cut.windows(2) {
                let batch = &rows[w[0]..w[1]];
                let mut clock = h.clock_ms();
                let clocks: Vec<i64> = batch.iter().map(|r| { clock = clock.max(r.1); clock }).collect();
                // Per device, its rows in the batch; per device and sensor, the end of its run.
                let of: Vec<Vec<usize>> = (0..2).map(|d| (0..batch.len()).filter(|&i| batch[i].0 == d).collect()).collect();
                let take = |h: &mut Health, d: usize, s: usize, from: usize| -> usize {
                    let Some(mut run) = h.calm_run(refs[d][s]) else { return from };
                    let mut k = from;
                    while k < of[d].len() && { let i = of[d][k]; run.take(clocks[i], batch[i].1, batch[i].2[s]) } {
                        k += 1;
                    }
                    h.end_calm_run(run);
                    k
                };
                let mut ends: Vec<Vec<usize>> = (0..2).map(|d| (0..devices[d].2.len()).map(|s| if runs { take(&mut h, d, s, 0) } else { 0 }).collect()).collect();
                for (i, (d, t, values)) in batch.iter().enumerate() {
                    let d = *d;
                    h.heard(refs[d][0], *t);
                    let k = of[d].iter().position(|&x| x == i).unwrap();
                    for (s, &v) in values.iter().enumerate() {
                        if k < ends[d][s] {
                            continue;
                        }
                        h.value(refs[d][s], *t, v, (w[0] + i) as u64);
                        if runs {
                            ends[d][s] = take(&mut h, d, s, k + 1);
                        }
                    }
                    out.extend(h.take_transitions());
                }
            }
            let (rest, state) = finish(&mut h, rows.last().map_or(0, |r| r.1));
            out.extend(rest);
            (out, state)
        };
        same_either_way(run)?;
    }
}

const CALM: &str = r#"
[[check]]
name = "warm"
sensors = ["*/*/t"]
kind = "range"
max = 40
[[check]]
name = "cold"
sensors = ["*/*/t"]
kind = "range"
min = 0
level = "error"
for = "5m"
[[check]]
name = "jump"
sensors = ["*/*/t"]
kind = "rate"
max_change = 5
per = "10m"
[[check]]
name = "slow jump"
sensors = ["*/*/t"]
kind = "rate"
max_change = 8
per = "20m"
[[check]]
name = "quiet"
sensors = ["*/*/t"]
kind = "stale"
after = "20m"
"#;
