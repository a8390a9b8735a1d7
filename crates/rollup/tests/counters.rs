//! Counters: the special cases in the comments of the MyEMS meter worker
//! (myems-normalization/meter.py), with the readings given there, and the
//! cases MyEMS does not handle (a wrap, a replaced meter, a restart at 0).

use chrono::{NaiveDateTime, Timelike};
use decode::Value;
use proptest::prelude::*;
use rollup::{combine, CounterParams, CounterState, Flags, Roller, Summary, DAY_MS, HOUR_MS};

fn params(toml_text: &str) -> CounterParams {
    let c: config::Config = toml::from_str(&format!("[[counter]]\nsensors = [\"*\"]\n{toml_text}")).expect("a counter table");
    CounterParams::new(&c.counters[0]).expect("valid parameters")
}

fn ms(text: &str) -> i64 {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("a time").and_utc().timestamp_millis()
}

/// Hourly increments, as (hour of day, increment, flags), of readings given in any order (sorted by time, as logged).
fn hourly(p: &CounterParams, readings: &[(&str, f64)]) -> Vec<(u32, f64, Vec<&'static str>)> {
    let mut sorted: Vec<(i64, f64)> = readings.iter().map(|&(t, v)| (ms(t), v)).collect();
    sorted.sort_by_key(|&(t, _)| t);
    let mut r = Roller::counter(p.clone(), CounterState::default());
    for (t, v) in sorted {
        r.add(t, &Value::Float(v));
    }
    combine(r.finish().0, HOUR_MS, Some(p), i64::MAX)
        .into_iter()
        .map(|period| {
            let Summary::Counter(inc) = period.summary else { panic!("a counter") };
            let hour = chrono::DateTime::from_timestamp_millis(period.start).expect("a time").hour();
            (hour, inc.total.value(), inc.flags.names())
        })
        .collect()
}

#[test]
fn myems_case_1_a_disconnected_meter_counts_the_gap_in_the_hour_it_returns() {
    let readings = [
        ("2016-12-05 23:58:46", 38312088.0),
        ("2016-12-05 23:59:48", 38312088.0),
        ("2016-12-06 06:14:49", 38315900.0),
        ("2016-12-06 06:15:50", 38315928.0),
        ("2016-12-06 06:16:52", 38315928.0),
    ];
    assert_eq!(hourly(&params(""), &readings), [(23, 0.0, vec!["first"]), (6, 3840.0, vec![])]);
}

#[test]
fn myems_case_2_a_newly_added_meter_does_not_count_its_huge_first_value() {
    let readings = [
        ("2017-03-27 02:36:07", 56842220.77297248),
        ("2017-03-27 02:35:04", 56842208.420127675),
        ("2017-03-27 02:34:01", 56842195.95270827),
        ("2017-03-27 02:32:58", 56842183.48610827),
        ("2017-03-27 02:31:53", 56842170.812365524),
        ("2017-03-27 02:30:48", 56842157.90797222),
    ];
    let h = hourly(&params(""), &readings);
    assert_eq!(h.len(), 1);
    // Only the first value is left out (MyEMS drops the whole hour); the
    // readings have more digits than a double holds exactly, so the sum is
    // a double's.
    assert!((h[0].1 - (56842220.77297248 - 56842157.90797222)).abs() < 1e-6, "{h:?}");
    assert_eq!(h[0].2, ["first"]);
}

/// MyEMS's "special test case 3 (hi_limit exceeded)": its readings are a
/// huge value (999984, above any sensible hourly limit) that falls to 20;
/// neither the huge value nor the fall adds anything, with a high limit or
/// without (the limit itself: the next test).
#[test]
fn myems_case_3_hi_limit_exceeded_a_drop_from_a_huge_value_adds_nothing() {
    let readings = [
        ("2016-12-24 08:26:14", 999984.0625),
        ("2016-12-24 08:27:15", 999984.0625),
        ("2016-12-24 08:28:17", 999984.0625),
        ("2016-12-24 08:29:18", 20.0),
        ("2016-12-24 08:30:20", 20.0),
        ("2016-12-24 08:31:21", 20.0),
    ];
    assert_eq!(hourly(&params(""), &readings), [(8, 0.0, vec!["first", "reset"])]);
    assert_eq!(hourly(&params("reset = \"max\""), &readings), [(8, 0.0, vec!["first", "reset"])]);
    assert_eq!(hourly(&params("high = 1000"), &readings), [(8, 0.0, vec!["first", "reset"])]);
}

#[test]
fn an_hour_above_the_high_limit_counts_as_zero_and_is_flagged() {
    // MyEMS case 3's values the other way round: a meter that jumps to a
    // huge value (a misread register) within an hour.
    let readings = [
        ("2016-12-24 07:59:00", 20.0),
        ("2016-12-24 08:26:14", 20.0),
        ("2016-12-24 08:29:18", 999984.0625),
        ("2016-12-24 09:10:00", 999990.0625),
    ];
    assert_eq!(hourly(&params("high = 1000"), &readings), [(7, 0.0, vec!["first"]), (8, 0.0, vec!["high"]), (9, 6.0, vec![])]);
    assert_eq!(hourly(&params("low = 10"), &readings)[2], (9, 0.0, vec!["low"]));
}

#[test]
fn myems_case_4_a_meter_recovering_from_bad_zeros_goes_on_from_its_last_good_value() {
    let mut readings = vec![
        // The last good value before the zeros (not in MyEMS's comment, which
        // filters zeros out as bad: here they are in the log).
        ("2019-03-14 01:20:00", 1103300.5),
    ];
    let zeros = [
        "01:25:00", "01:26:00", "01:27:01", "01:28:01", "01:29:02", "01:30:02", "01:31:03", "01:32:04", "01:33:04", "01:34:05", "01:35:05",
        "01:36:06",
    ];
    let times: Vec<String> = zeros.iter().map(|t| format!("2019-03-14 {t}")).collect();
    readings.extend(times.iter().map(|t| (t.as_str(), 0.0)));
    let good = [
        ("2019-03-14 01:37:06", 1103325.75),
        ("2019-03-14 01:38:07", 1103349.0),
        ("2019-03-14 01:39:07", 1103373.0),
        ("2019-03-14 01:40:08", 1103391.875),
        ("2019-03-14 01:41:08", 1103414.625),
        ("2019-03-14 01:42:09", 1103435.5),
        ("2019-03-14 01:43:09", 1103456.25),
        ("2019-03-14 01:44:10", 1103478.25),
        ("2019-03-14 01:45:10", 1103499.375),
        ("2019-03-14 01:46:11", 1103520.625),
        ("2019-03-14 01:47:11", 1103542.0),
        ("2019-03-14 01:48:12", 1103564.0),
        ("2019-03-14 01:49:12", 1103586.75),
        ("2019-03-14 01:50:13", 1103608.625),
        ("2019-03-14 01:51:13", 1103628.25),
        ("2019-03-14 01:52:14", 1103649.0),
        ("2019-03-14 01:53:14", 1103674.75),
        ("2019-03-14 01:54:15", 1103698.125),
        ("2019-03-14 01:55:15", 1103720.625),
        ("2019-03-14 01:56:16", 1103739.375),
        ("2019-03-14 01:57:16", 1103755.125),
        ("2019-03-14 01:58:17", 1103770.875),
        ("2019-03-14 01:59:17", 1103785.625),
        ("2019-03-14 02:00:18", 1103804.25),
        ("2019-03-14 02:01:19", 1103825.5),
        ("2019-03-14 02:02:19", 1103845.0),
        ("2019-03-14 02:03:20", 1103860.625),
    ];
    readings.extend(good);
    assert_eq!(
        hourly(&params(""), &readings),
        [(1, 1103785.625 - 1103300.5, vec!["first", "zero"]), (2, 1103860.625 - 1103785.625, vec![])]
    );
}

#[test]
fn a_16_bit_counter_wraps() {
    let readings =
        [("2012-11-30 10:00:00", 65500.0), ("2012-11-30 10:10:00", 65530.0), ("2012-11-30 10:20:00", 14.0), ("2012-11-30 10:30:00", 40.0)];
    assert_eq!(hourly(&params("wrap = 65536"), &readings), [(10, 30.0 + 20.0 + 26.0, vec!["first", "wrap"])]);
    // Without `wrap` the drop is a reset: only what follows it counts.
    assert_eq!(hourly(&params(""), &readings), [(10, 30.0 + 26.0, vec!["first", "reset"])]);
}

#[test]
fn a_replaced_meter_counts_from_its_own_first_value() {
    let readings =
        [("2012-11-30 10:00:00", 5000.0), ("2012-11-30 10:10:00", 5100.0), ("2012-11-30 10:20:00", 300.0), ("2012-11-30 11:30:00", 350.0)];
    assert_eq!(hourly(&params("wrap = 65536"), &readings), [(10, 100.0, vec!["first", "reset"]), (11, 50.0, vec![])]);
    // The MyEMS rule counts nothing until the new meter passes the old maximum.
    let max = params("reset = \"max\"");
    assert_eq!(hourly(&max, &readings), [(10, 100.0, vec!["first", "reset"]), (11, 0.0, vec![])]);
    assert_eq!(hourly(&max, &[readings[0], readings[1], readings[2], ("2012-11-30 11:30:00", 5150.0)])[1], (11, 50.0, vec![]));
}

#[test]
fn a_meter_that_restarts_at_zero_counts_what_it_counts_after_the_restart() {
    let readings = [
        ("2012-11-30 10:00:00", 30000.0),
        ("2012-11-30 10:10:00", 30010.0),
        ("2012-11-30 10:20:00", 0.0),
        ("2012-11-30 10:30:00", 3.0),
        ("2012-11-30 10:40:00", 8.0),
        ("2012-11-30 11:00:00", 12.0),
    ];
    // The zero cannot be told from a fault, so counting restarts at the
    // first value after it (3): 10 before, 5 and 4 after.
    assert_eq!(hourly(&params("wrap = 65536"), &readings), [(10, 15.0, vec!["first", "zero", "reset"]), (11, 4.0, vec![])]);
}

#[test]
fn scale_multiplies_increments_exactly() {
    let readings = [("2012-11-30 10:00:00", 10.0), ("2012-11-30 10:10:00", 13.0), ("2012-11-30 10:20:00", 20.0)];
    assert_eq!(hourly(&params("scale = 0.1"), &readings), [(10, 1.0, vec!["first"])]);
}

#[test]
fn days_sum_their_hours() {
    let p = params("");
    let mut r = Roller::counter(p.clone(), CounterState::default());
    for i in 0..48 {
        r.add(i * HOUR_MS, &Value::Int(i * i + 5));
    }
    let days = combine(r.finish().0, DAY_MS, Some(&p), i64::MAX);
    let totals: Vec<f64> = days.iter().map(|d| if let Summary::Counter(c) = &d.summary { c.total.value() } else { f64::NAN }).collect();
    assert_eq!(totals, [(23 * 23) as f64, (47 * 47 - 23 * 23) as f64]);
}

proptest! {
    /// Any increasing readings without faults: the hourly increments add up
    /// to the last reading minus the first, exactly, however the readings
    /// fall into hours, and resuming from a saved state changes nothing.
    #[test]
    fn hourly_increments_add_up_to_last_minus_first(
        steps in prop::collection::vec((0i64..7_200_000, 0u32..5_000), 1..300),
        start in 1u32..1_000_000,
        cut in 0usize..300,
        decimals in 0u32..3,
    ) {
        let p = params("");
        let scale = 10f64.powi(decimals as i32);
        let (mut t, mut v) = (1_354_233_600_000i64, u64::from(start));
        let mut readings = vec![(t, v)];
        for (dt, dv) in steps {
            t += dt;
            v += u64::from(dv);
            readings.push((t, v));
        }
        let value = |v: u64| if decimals == 0 { Value::Int(v as i64) } else { Value::Float(v as f64 / scale) };
        // Fed in two parts, the second from the state the first left.
        let cut = cut.min(readings.len());
        let mut first = Roller::counter(p.clone(), CounterState::default());
        for &(t, v) in &readings[..cut] {
            first.add(t, &value(v));
        }
        let (mut hours, state) = first.finish();
        let mut second = Roller::counter(p.clone(), state.unwrap_or_default());
        for &(t, v) in &readings[cut..] {
            second.add(t, &value(v));
        }
        hours.extend(second.finish().0);
        let mut total = rollup::Sum::default();
        for period in combine(hours, HOUR_MS, Some(&p), i64::MAX) {
            let Summary::Counter(inc) = period.summary else { panic!("a counter") };
            prop_assert!(!inc.flags.has(Flags::ZERO | Flags::RESET | Flags::WRAP));
            total.add(inc.total);
        }
        let expected = value(readings.last().unwrap().1);
        let first_value = value(readings[0].1);
        let (a, b) = (rollup::number(&expected).unwrap(), rollup::number(&first_value).unwrap());
        prop_assert_eq!(total.value(), rollup::Sum::number(a).minus(rollup::Sum::number(b)).value());
    }
}

/// The unit of the increments: the counter's own, else the readings' when
/// no scale changed them; a scale without a unit says so when loaded.
#[test]
fn a_scale_without_a_unit_shows_none_and_warns() {
    let readings = Some("Wh/2".to_string());
    assert_eq!(params("").increments_unit(readings.clone()).as_deref(), Some("Wh/2"));
    assert_eq!(params("scale = 0.5\nunit = \"Wh\"").increments_unit(readings.clone()).as_deref(), Some("Wh"));
    assert_eq!(params("scale = 0.5").increments_unit(readings), None);
    let config =
        config::Config::parse("[[counter]]\nsensors = [\"*/homePower-*/c?\"]\nscale = 0.5\n", std::path::Path::new("site.toml")).unwrap();
    let warnings = rollup::Rollups::new(&config).unwrap().unmatched(&config, &["usb-A/homePower-9/c1"]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("site.toml:1: counter: scale = 0.5 without a unit"), "{warnings:?}");
}
