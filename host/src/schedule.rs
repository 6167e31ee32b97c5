//! Schedule expressions in the cloud's syntax: `cron(min hour day-of-month month
//! day-of-week year)` (EventBridge's six fields: `?` in one of the day fields, weekdays
//! 1-7 = SUN-SAT or names, `L`, `W`, `#`) and `rate(N minutes|hours|days)`, evaluated in
//! a time zone. `rate(N seconds)` is accepted too, for tests and short intervals.
//!
//! Ticks are aligned so every host computes the same ones: a rate ticks at multiples of
//! its period since the Unix epoch; a cron at the times its fields name.
//!
//! A cron ticks only in EventBridge's years, 1970-2199 (local time): `*` in the year field
//! means those years, a year outside them is refused, and after 2199 there is no next
//! tick. That is also the search horizon: croner looks for a matching date up to its year
//! 5000, one day at a time where the day fields never match, which took seconds; with the
//! years bounded and a date checked to exist before croner is asked, every search ends
//! within the horizon (docs/DECISIONS.md).

use std::str::FromStr as _;

use chrono::{Datelike as _, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Why a schedule expression is refused; each names the expression's body (what is
/// inside `cron(...)` or `rate(...)`) as the tenant wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone `{0}`")]
    UnknownZone(String),
    #[error("`{0}` is neither cron(...) nor rate(...)")]
    Neither(String),
    #[error("cron({0}) needs six fields: minutes hours day-of-month month day-of-week year")]
    FieldCount(String),
    #[error("cron({body}): `{field}` is not a field of digits, names and , - * ? / L W #")]
    BadField { body: String, field: String },
    #[error("cron({0}): exactly one of day-of-month and day-of-week must be `?`")]
    DayFields(String),
    #[error("cron({0}): the year field is years {FIRST_YEAR}-{LAST_YEAR} with , - * /")]
    YearField(String),
    #[error(
        "cron({body}): {year} is outside the years {FIRST_YEAR}-{LAST_YEAR} a schedule can name"
    )]
    YearOutside { body: String, year: i32 },
    /// croner's message: read by people, never matched.
    #[error("cron({body}): {message}")]
    Cron { body: String, message: String },
    #[error("cron({0}) can never fire: no date matches its day, month and year fields")]
    NeverFires(String),
    #[error("rate({0}) is `rate(N unit)`")]
    RateShape(String),
    #[error("rate({0}): the value must be a positive whole number")]
    RateValue(String),
    #[error("rate({body}): unknown unit `{unit}`")]
    RateUnit { body: String, unit: String },
    /// EventBridge wants the singular exactly for 1; `unit` is the singular.
    #[error("rate({body}): write `1 {unit}` or `N {unit}s`")]
    RateNumber { body: String, unit: String },
    #[error("rate({0}) is too long")]
    RateTooLong(String),
}

#[derive(Debug, Clone)]
enum Expression {
    Cron(Box<Cron>),
    /// The period in milliseconds.
    Rate(i64),
}

#[derive(Debug, Clone)]
pub struct ScheduleExpr {
    expression: Expression,
    zone: Tz,
}

impl ScheduleExpr {
    /// Parses `cron(...)` or `rate(...)` in `timezone` (IANA name; UTC by default).
    pub fn parse(text: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let zone = match timezone {
            None => Tz::UTC,
            Some(name) => {
                Tz::from_str(name).map_err(|_| ScheduleError::UnknownZone(name.to_string()))?
            }
        };
        let text = text.trim();
        let expression = if let Some(body) = inner(text, "cron") {
            let cron = parse_cron(body)?;
            // Fields can agree on no date at all (30 February, 31 April): such a schedule
            // would load and never tick. One that fired only in the past is kept, as the
            // cloud keeps it: it stops, it is not wrong. The date scan comes first because
            // croner, asked about a date that never comes, searches until its year 5000.
            let epoch = zone.timestamp_millis_opt(0).single();
            if !has_matching_date(&cron)
                || epoch.is_none_or(|start| cron.find_next_occurrence(&start, true).is_err())
            {
                return Err(ScheduleError::NeverFires(body.to_string()));
            }
            Expression::Cron(Box::new(cron))
        } else if let Some(body) = inner(text, "rate") {
            Expression::Rate(parse_rate(body)?)
        } else {
            return Err(ScheduleError::Neither(text.to_string()));
        };
        Ok(ScheduleExpr { expression, zone })
    }

    /// The latest tick at or before `now_ms`, if any.
    pub fn latest_at_or_before(&self, now_ms: i64) -> Option<i64> {
        match &self.expression {
            Expression::Rate(period) => Some(now_ms - now_ms.rem_euclid(*period)),
            Expression::Cron(cron) => {
                let now = self
                    .zone
                    .timestamp_millis_opt(whole_second(now_ms))
                    .single()?;
                cron.find_previous_occurrence(&now, true)
                    .ok()
                    .map(|t| t.with_timezone(&Utc).timestamp_millis())
            }
        }
    }

    /// The first tick strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.expression {
            Expression::Rate(period) => Some(after_ms - after_ms.rem_euclid(*period) + period),
            Expression::Cron(cron) => {
                // Where the clocks fall back, croner answers a local time that occurs
                // twice with its first instant, which may be before `after_ms`: that
                // tick is past (a repeated time fires once), so look on from it.
                let mut from = after_ms;
                for _ in 0..MAX_REPEATED_TICKS {
                    let start = self
                        .zone
                        .timestamp_millis_opt(whole_second(from))
                        .single()?;
                    let tick = cron
                        .find_next_occurrence(&start, false)
                        .ok()?
                        .with_timezone(&Utc)
                        .timestamp_millis();
                    if tick > after_ms {
                        return Some(tick);
                    }
                    from = tick;
                }
                None
            }
        }
    }
}

/// Ticks a repeated local hour can hold before `next_after` is past it: one a minute.
const MAX_REPEATED_TICKS: usize = 61;

/// Cron ticks fall on whole seconds; croner would carry a fraction of the start time
/// into its answer, and every host must compute the same tick.
fn whole_second(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

fn inner<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::trim)
}

fn parse_cron(body: &str) -> Result<Cron, ScheduleError> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(ScheduleError::FieldCount(body.to_string()));
    }
    // EventBridge's characters only: croner takes more (`+` made a weekday set that never
    // matched, and finding its next tick took seconds; found by fuzzing).
    if let Some(bad) = fields.iter().find(|f| {
        f.split(',').any(str::is_empty)
            || !f
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ",-*?/#".contains(c))
    }) {
        return Err(ScheduleError::BadField {
            body: body.to_string(),
            field: bad.to_string(),
        });
    }
    // As in EventBridge: one of the day fields is `?`, so the two never conflict.
    if (fields[2] == "?") == (fields[4] == "?") {
        return Err(ScheduleError::DayFields(body.to_string()));
    }
    if !fields[5]
        .chars()
        .all(|c| c.is_ascii_digit() || ",-*/".contains(c))
    {
        return Err(ScheduleError::YearField(body.to_string()));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .build();
    let text = format!(
        "0 {} {} {} {} {} {}",
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        weekdays(fields[4]),
        years(fields[5])
    );
    let cron = parser.parse(&text).map_err(|e| ScheduleError::Cron {
        body: body.to_string(),
        message: e.to_string(),
    })?;
    let outside = (croner::YEAR_LOWER_LIMIT..FIRST_YEAR)
        .chain(LAST_YEAR + 1..=croner::YEAR_UPPER_LIMIT)
        .find(|y| cron.pattern.year_match(*y).unwrap_or(false));
    if let Some(year) = outside {
        return Err(ScheduleError::YearOutside {
            body: body.to_string(),
            year,
        });
    }
    Ok(cron)
}

/// EventBridge's years, and the horizon of every search (the module's comment).
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

/// The year field for croner, where `*` and `N/step` run to its year 5000: they run to
/// 2199 instead, as in EventBridge.
fn years(field: &str) -> String {
    let item = |item: &str| {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let range = match range {
            "*" => format!("{FIRST_YEAR}-{LAST_YEAR}"),
            start if step.is_some() && start.parse().is_ok_and(|y: i32| y <= LAST_YEAR) => {
                format!("{start}-{LAST_YEAR}")
            }
            other => other.to_string(),
        };
        match step {
            Some(step) => format!("{range}/{step}"),
            None => range,
        }
    };
    field.split(',').map(item).collect::<Vec<_>>().join(",")
}

/// The day-of-week field for croner: EventBridge's `L` alone is the last day of the week,
/// Saturday (7); croner reads it as "the last of no weekday", which never matches.
fn weekdays(field: &str) -> String {
    field
        .split(',')
        .map(|item| if item == "L" { "7" } else { item })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether the year, month and day fields agree on any date in 1970-2199. A month's
/// matching days depend only on whether its year is a leap year and on the weekday of
/// its 1 January, so each of those 14 kinds of year is scanned once: at most 14 x 366
/// dates, where croner would search day by day until its year 5000.
fn has_matching_date(cron: &Cron) -> bool {
    let pattern = &cron.pattern;
    let mut scanned = [false; 14];
    for year in FIRST_YEAR..=LAST_YEAR {
        let Some(new_year) = NaiveDate::from_ymd_opt(year, 1, 1) else {
            continue;
        };
        let kind = usize::from(new_year.leap_year()) * 7
            + new_year.weekday().num_days_from_monday() as usize;
        if scanned[kind] || !pattern.year_match(year).unwrap_or(false) {
            continue;
        }
        scanned[kind] = true;
        let mut date = new_year;
        while date.year() == year {
            if pattern.month_match(date.month()).unwrap_or(false)
                && pattern
                    .day_match(year, date.month(), date.day())
                    .unwrap_or(false)
            {
                return true;
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
    }
    false
}

fn parse_rate(body: &str) -> Result<i64, ScheduleError> {
    let mut parts = body.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ScheduleError::RateShape(body.to_string()));
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ScheduleError::RateValue(body.to_string()))?;
    let unit_ms = match unit {
        "second" | "seconds" => 1_000,
        "minute" | "minutes" => 60_000,
        "hour" | "hours" => 3_600_000,
        "day" | "days" => 86_400_000,
        other => {
            return Err(ScheduleError::RateUnit {
                body: body.to_string(),
                unit: other.to_string(),
            });
        }
    };
    // EventBridge wants the singular exactly for 1.
    if (n == 1) == unit.ends_with('s') {
        return Err(ScheduleError::RateNumber {
            body: body.to_string(),
            unit: unit.trim_end_matches('s').to_string(),
        });
    }
    n.checked_mul(unit_ms)
        .ok_or_else(|| ScheduleError::RateTooLong(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn iso(ms: i64) -> String {
        Utc.timestamp_millis_opt(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    #[test]
    fn cron_in_a_time_zone() {
        // The IPP daily run: 08:00 in Lima is 13:00 UTC.
        let s = ScheduleExpr::parse("cron(0 8 * * ? *)", Some("America/Lima")).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T12:00:00Z")).unwrap()),
            "2026-11-22T13:00:00Z"
        );
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T13:00:00Z")).unwrap()),
            "2026-11-23T13:00:00Z"
        );
        assert_eq!(
            iso(s.latest_at_or_before(ms("2026-11-22T13:00:00Z")).unwrap()),
            "2026-11-22T13:00:00Z"
        );
        // Ticks are whole seconds whatever the fraction of the time asked about.
        let at = ms("2026-11-22T12:00:00Z") + 350;
        assert_eq!(s.next_after(at).unwrap(), ms("2026-11-22T13:00:00Z"));
        let at = ms("2026-11-22T13:00:00Z") + 350;
        assert_eq!(
            s.latest_at_or_before(at).unwrap(),
            ms("2026-11-22T13:00:00Z")
        );
        assert_eq!(s.next_after(at).unwrap(), ms("2026-11-23T13:00:00Z"));
    }

    #[test]
    fn cron_weekdays_follow_eventbridge() {
        // Every 15 minutes on weekdays (2026-11-21 is a Saturday).
        let s = ScheduleExpr::parse("cron(0/15 * ? * MON-FRI *)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-21T10:00:00Z")).unwrap()),
            "2026-11-23T00:00:00Z"
        );
        // 2#1: the first Monday (1 = SUN, 2 = MON) of the month, at noon.
        let s = ScheduleExpr::parse("cron(0 12 ? * 2#1 *)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T00:00:00Z")).unwrap()),
            "2026-12-07T12:00:00Z"
        );
        // The last day of the month, in a given year only.
        let s = ScheduleExpr::parse("cron(30 23 L * ? 2027)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T00:00:00Z")).unwrap()),
            "2027-01-31T23:30:00Z"
        );
    }

    /// Found by the schedule fuzz target: in the hour New York repeats on 2026-11-01,
    /// the next tick of 01:30 was 01:30 EDT, half an hour in the past.
    #[test]
    fn a_local_time_the_clocks_repeat_is_not_a_next_tick_once_past() {
        let at = ms("2026-11-01T06:00:00Z"); // 01:00 EST, after 01:30 EDT fired
        let s = ScheduleExpr::parse("cron(30 1 * * ? *)", Some("America/New_York")).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-01T05:00:00Z")).unwrap()),
            "2026-11-01T05:30:00Z"
        );
        assert_eq!(iso(s.next_after(at).unwrap()), "2026-11-02T06:30:00Z");
        // Every minute of the repeated hour fired in its first pass.
        let s = ScheduleExpr::parse("cron(* 1 * * ? *)", Some("America/New_York")).unwrap();
        assert_eq!(iso(s.next_after(at).unwrap()), "2026-11-02T06:00:00Z");
    }

    #[test]
    fn rates_align_to_the_epoch() {
        let s = ScheduleExpr::parse("rate(5 minutes)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T10:02:10Z")).unwrap()),
            "2026-11-22T10:05:00Z"
        );
        assert_eq!(
            iso(s.latest_at_or_before(ms("2026-11-22T10:02:10Z")).unwrap()),
            "2026-11-22T10:00:00Z"
        );
        let s = ScheduleExpr::parse("rate(1 day)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T10:02:10Z")).unwrap()),
            "2026-11-23T00:00:00Z"
        );
        assert!(ScheduleExpr::parse("rate(2 seconds)", None).is_ok());
    }

    #[test]
    fn rare_and_past_crons_are_kept() {
        // 29 February fires in leap years; a year gone by fired once, as written.
        for text in ["cron(0 8 29 2 ? *)", "cron(0 8 1 1 ? 2020)"] {
            assert!(ScheduleExpr::parse(text, None).is_ok(), "{text}");
        }
        let leap = ScheduleExpr::parse("cron(0 8 29 2 ? *)", None).unwrap();
        assert_eq!(
            iso(leap.next_after(ms("2026-11-22T00:00:00Z")).unwrap()),
            "2028-02-29T08:00:00Z"
        );
    }

    /// Found by the schedule fuzz target (timeouts): croner takes day fields that never
    /// match a month they are used with and, asked for a first tick, searched day by day
    /// until its year 5000 (0.5-1.5 s each in a debug build; the target asks 17 times).
    #[test]
    fn a_date_that_never_comes_is_refused_without_a_long_search() {
        for (text, tz) in [
            ("cron(0 8 30 2 ? *)", None),
            ("cron(0 8 30W 2 ? *)", None),
            ("cron(0 8 31W 2 ? *)", Some("Pacific/Kiritimati")),
            ("cron(0 8 31 4,6,9,11 ? *)", Some("America/New_York")),
            ("cron(0/5 * ? 2 2#5 2027)", None), // February 2027 has four Mondays
            ("cron(0 8 ? 2 5#5 2101-2199/4)", None), // no leap years
        ] {
            let started = std::time::Instant::now();
            let e = ScheduleExpr::parse(text, tz).unwrap_err();
            let took = started.elapsed();
            assert!(matches!(e, ScheduleError::NeverFires(_)), "{text}: {e}");
            assert!(took.as_millis() < 250, "{text}: refused after {took:?}");
        }
    }

    #[test]
    fn ticks_end_with_eventbridges_last_year() {
        let s = ScheduleExpr::parse("cron(0 8 * * ? *)", None).unwrap();
        let last = ms("2199-12-31T08:00:00Z");
        assert_eq!(s.next_after(last - 1), Some(last));
        assert_eq!(s.next_after(last), None);
        assert_eq!(
            s.latest_at_or_before(ms("2300-01-01T00:00:00Z")),
            Some(last)
        );
        // A step from a year runs to 2199, not to croner's 5000.
        let s = ScheduleExpr::parse("cron(0 8 1 1 ? 2100/50)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2101-01-01T00:00:00Z")).unwrap()),
            "2150-01-01T08:00:00Z"
        );
        assert_eq!(s.next_after(ms("2151-01-01T00:00:00Z")), None);
        let s = ScheduleExpr::parse("cron(0 8 1 1 ? */100)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("1971-01-01T00:00:00Z")).unwrap()),
            "2070-01-01T08:00:00Z"
        );
        assert_eq!(s.next_after(ms("2171-01-01T00:00:00Z")), None);
        // The last 29 February before the horizon: 2200 is not a leap year.
        let s = ScheduleExpr::parse("cron(0 8 29 2 ? *)", None).unwrap();
        assert_eq!(s.next_after(ms("2196-03-01T00:00:00Z")), None);
    }

    /// EventBridge's `L` alone in the day-of-week field is Saturday; croner read it as a
    /// weekday set that never matches (found with the schedule fuzz target's timeouts).
    #[test]
    fn weekday_l_is_saturday() {
        let s = ScheduleExpr::parse("cron(0 8 ? * L *)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T00:00:00Z")).unwrap()),
            "2026-11-28T08:00:00Z"
        );
        let s = ScheduleExpr::parse("cron(0 8 ? * 2,L *)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-24T00:00:00Z")).unwrap()),
            "2026-11-28T08:00:00Z"
        );
        // `6L` stays the last Friday of the month.
        let s = ScheduleExpr::parse("cron(0 8 ? * 6L *)", None).unwrap();
        assert_eq!(
            iso(s.next_after(ms("2026-11-22T00:00:00Z")).unwrap()),
            "2026-11-27T08:00:00Z"
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        use ScheduleError::*;
        let body = |text: &str| text[5..text.len() - 1].to_string();
        // (expression, the refusal, made from the expression's body)
        type Refusal = fn(String) -> ScheduleError;
        let cases: [(&str, Refusal); 11] = [
            ("cron(0 8 * * * *)", DayFields),
            ("cron(0 8 ? * ? *)", DayFields),
            ("cron(0 8 * * ?)", FieldCount),
            ("rate(0 minutes)", RateValue),
            ("cron(0 8 30 2 ? *)", NeverFires),
            ("cron(0 8 31 4,6,9,11 ? *)", NeverFires),
            ("cron(0 8 29 2 ? 2027)", NeverFires),
            ("cron(0 8 * * ? ?)", YearField),
            ("cron(0 8 * * ? L)", YearField),
            ("rate(5 minutes 2)", RateShape),
            ("rate(9999999999999999 days)", RateTooLong),
        ];
        for (text, want) in cases {
            assert_eq!(
                ScheduleExpr::parse(text, None).unwrap_err(),
                want(body(text)),
                "{text}"
            );
        }
        let refused = |text: &str| ScheduleExpr::parse(text, None).unwrap_err();
        assert!(
            matches!(refused("cron(61 8 * * ? *)"), Cron { body, .. } if body == "61 8 * * ? *")
        );
        // Found by the schedule fuzz target: croner took `+`, and never matched.
        assert!(matches!(refused("cron(0 12 ? * + *)"), BadField { field, .. } if field == "+"));
        // Found by it too: an empty list item, which croner took and never matched.
        assert!(matches!(refused("cron(36 3 , * ? 2027)"), BadField { field, .. } if field == ","));
        assert!(
            matches!(refused("rate(5 fortnights)"), RateUnit { unit, .. } if unit == "fortnights")
        );
        for text in ["rate(1 minutes)", "rate(5 minute)"] {
            assert!(
                matches!(refused(text), RateNumber { unit, .. } if unit == "minute"),
                "{text}"
            );
        }
        assert_eq!(
            refused("every(5 minutes)"),
            Neither("every(5 minutes)".into())
        );
        // EventBridge's years only: croner's run from 1 to 5000.
        for (text, year) in [
            ("cron(0 8 * * ? 2200)", 2200),
            ("cron(0 8 * * ? 1960-1980)", 1960),
            ("cron(0 8 * * ? 2300/5)", 2300),
        ] {
            assert_eq!(
                refused(text),
                YearOutside {
                    body: body(text),
                    year
                },
                "{text}"
            );
        }
        assert_eq!(
            ScheduleExpr::parse("cron(0 8 * * ? *)", Some("Mars/Olympus")).unwrap_err(),
            UnknownZone("Mars/Olympus".into())
        );
        // What a tenant's status and `orquesta check` show: the expression and why.
        assert_eq!(
            refused("rate(1 minutes)").to_string(),
            "rate(1 minutes): write `1 minute` or `N minutes`"
        );
        assert_eq!(
            refused("cron(0 8 30 2 ? *)").to_string(),
            "cron(0 8 30 2 ? *) can never fire: no date matches its day, month and year fields"
        );
    }
}
