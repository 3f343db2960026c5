//! Importing iCalendar files (RFC 5545) as activities: the events a calendar app
//! exports (Google Calendar, Outlook, Apple Calendar) become meetings of the
//! importing user, through the records service with their rights. An event is known
//! again by its `UID` (kept in the activity's `ical_uid`), so importing a file twice,
//! or a newer copy of it, updates instead of duplicating.
//!
//! Times: UTC (`...Z`), all-day dates, and local times with a `TZID` resolved through
//! the file's own `VTIMEZONE` (its standard and daylight rules), as RFC 5545 asks
//! every file to carry; a local time without one is taken as UTC and said so.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, FieldError, Problem};
use crate::auth::Actor;
use crate::records::Record;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_ics))
}

/// Most events one file brings.
const MAX_EVENTS: usize = 5_000;

/// One content line: name, parameters, value (unescaped later, by kind).
#[derive(Debug)]
struct Line {
    name: String,
    params: HashMap<String, String>,
    value: String,
}

/// A component: its kind, lines and nested components.
#[derive(Debug, Default)]
struct Component {
    kind: String,
    lines: Vec<Line>,
    children: Vec<Component>,
}

impl Component {
    fn get(&self, name: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.name == name)
    }
    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|l| unescape(&l.value))
    }
}

/// The document's lines unfolded: a line break followed by a space or tab continues
/// the line.
fn unfold(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let fold = match &bytes[i..] {
            [b'\r', b'\n', b' ' | b'\t', ..] => 3,
            [b'\n', b' ' | b'\t', ..] => 2,
            _ => 0,
        };
        if fold > 0 {
            i += fold;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Parses the lines of an iCalendar document, unfolded ([`unfold`]), into its
/// components.
fn parse(text: &str) -> Result<Component, String> {
    let mut stack = vec![Component::default()];
    for (n, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        if raw.is_empty() {
            continue;
        }
        let line = parse_line(raw).ok_or_else(|| format!("line {} is not NAME:value", n + 1))?;
        match line.name.as_str() {
            "BEGIN" => stack.push(Component {
                kind: line.value.to_ascii_uppercase(),
                ..Default::default()
            }),
            "END" => {
                let done = stack
                    .pop()
                    .filter(|c| c.kind == line.value.to_ascii_uppercase());
                let (Some(done), Some(parent)) = (done, stack.last_mut()) else {
                    return Err(format!(
                        "line {}: END:{} does not close what began",
                        n + 1,
                        line.value
                    ));
                };
                parent.children.push(done);
            }
            _ => match stack.last_mut() {
                Some(c) => c.lines.push(line),
                None => return Err(format!("line {} is outside any component", n + 1)),
            },
        }
        if stack.len() > 8 {
            return Err("components nest too deep".into());
        }
    }
    let root = stack
        .pop()
        .filter(|_| stack.is_empty())
        .ok_or("a component is not closed (END missing)")?;
    root.children
        .into_iter()
        .find(|c| c.kind == "VCALENDAR")
        .ok_or_else(|| "the file is not iCalendar: no BEGIN:VCALENDAR".to_string())
}

/// `NAME;PARAM=v;PARAM="a:b":value`, the colon inside quotes not ending the name.
fn parse_line(raw: &str) -> Option<Line> {
    let mut quoted = false;
    let split = raw.char_indices().find(|&(_, c)| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ':' && !quoted
    })?;
    let (head, value) = (&raw[..split.0], &raw[split.0 + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_uppercase(),
                v.trim_matches('"').to_string(),
            )
        })
        .collect();
    Some(Line {
        name,
        params,
        value: value.to_string(),
    })
}

/// A TEXT value unescaped: `\n`, `\,`, `\;`, `\\`.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A UTC offset such as `+0330` or `-0500`, in seconds.
fn offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.trim().split_at_checked(1)? {
        ("+", d) => (1, d),
        ("-", d) => (-1, d),
        _ => return None,
    };
    let h: i64 = digits.get(0..2)?.parse().ok()?;
    let m: i64 = digits.get(2..4)?.parse().ok()?;
    let s: i64 = digits.get(4..6).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(sign * (h * 3600 + m * 60 + s))
}

fn local_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()
}

/// A time zone as a file defines it: when each of its rules starts, and the offset
/// from then on.
struct Zone {
    rules: Vec<Rule>,
}

struct Rule {
    /// When the rule first applied (local time).
    start: NaiveDateTime,
    /// When it last applied (`RRULE` `UNTIL`), if it ended.
    until: Option<NaiveDateTime>,
    to: i64,
    /// `FREQ=YEARLY` with a month and a weekday (`-1SU`, `2SU`) or a day of the month.
    yearly: Option<(u32, Yearly)>,
}

enum Yearly {
    /// The n-th (from the end when negative) such weekday of the month.
    Weekday(i32, Weekday),
    Day(u32),
}

impl Zone {
    fn of(component: &Component) -> Zone {
        let rules = component
            .children
            .iter()
            .filter(|c| c.kind == "STANDARD" || c.kind == "DAYLIGHT")
            .filter_map(|c| {
                let until = c.get("RRULE").and_then(|r| {
                    let until = r.value.split(';').find_map(|p| p.strip_prefix("UNTIL="))?;
                    local_time(until).or_else(|| {
                        NaiveDate::parse_from_str(until, "%Y%m%d")
                            .ok()?
                            .and_hms_opt(23, 59, 59)
                    })
                });
                Some(Rule {
                    start: local_time(&c.get("DTSTART")?.value)?,
                    until,
                    to: offset(&c.get("TZOFFSETTO")?.value)?,
                    yearly: c.get("RRULE").and_then(|r| yearly(&r.value)),
                })
            })
            .collect();
        Zone { rules }
    }

    /// The offset in force at local time `at`: the rule whose latest start (a
    /// yearly rule's start this year or last) is the latest before `at`.
    fn offset_at(&self, at: NaiveDateTime) -> Option<i64> {
        self.rules
            .iter()
            .filter_map(|r| {
                let starts: Vec<NaiveDateTime> = match &r.yearly {
                    None => vec![r.start],
                    Some((month, rule)) => [at.year() - 1, at.year()]
                        .into_iter()
                        .filter_map(|y| transition(y, *month, rule))
                        .map(|d| d.and_time(r.start.time()))
                        .filter(|t| *t >= r.start && r.until.is_none_or(|u| *t <= u))
                        .collect(),
                };
                starts
                    .into_iter()
                    .filter(|s| *s <= at)
                    .max()
                    .map(|s| (s, r.to))
            })
            .max_by_key(|(s, _)| *s)
            .map(|(_, to)| to)
            // Before every rule: the earliest rule's offset.
            .or_else(|| self.rules.iter().min_by_key(|r| r.start).map(|r| r.to))
    }
}

fn yearly(rrule: &str) -> Option<(u32, Yearly)> {
    let parts: HashMap<&str, &str> = rrule.split(';').filter_map(|p| p.split_once('=')).collect();
    if parts.get("FREQ") != Some(&"YEARLY") {
        return None;
    }
    let month = parts.get("BYMONTH")?.parse().ok()?;
    if let Some(day) = parts.get("BYMONTHDAY") {
        return Some((month, Yearly::Day(day.parse().ok()?)));
    }
    let by_day = parts.get("BYDAY")?;
    let (n, day) = by_day.split_at_checked(by_day.len().checked_sub(2)?)?;
    let weekday = match day {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    };
    let n = if n.is_empty() {
        1
    } else {
        n.trim_start_matches('+').parse().ok()?
    };
    Some((month, Yearly::Weekday(n, weekday)))
}

/// The day a yearly rule falls on in `year`.
fn transition(year: i32, month: u32, rule: &Yearly) -> Option<NaiveDate> {
    match rule {
        Yearly::Day(d) => NaiveDate::from_ymd_opt(year, month, *d),
        Yearly::Weekday(n, w) if *n > 0 => {
            NaiveDate::from_weekday_of_month_opt(year, month, *w, *n as u8)
        }
        Yearly::Weekday(n, w) => {
            // From the end: the last such weekday, then weeks back.
            let next_month = if month == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            let mut day = next_month.pred_opt()?;
            while day.weekday() != *w {
                day = day.pred_opt()?;
            }
            day.checked_sub_signed(Duration::weeks((-n - 1) as i64))
        }
    }
}

/// A DATE-TIME or DATE property as an instant, and whether it was a date alone.
fn instant(
    line: &Line,
    zones: &HashMap<String, Zone>,
    notes: &mut Vec<String>,
) -> Result<(DateTime<Utc>, bool), String> {
    let value = line.value.trim();
    if line.params.get("VALUE").map(String::as_str) == Some("DATE") || value.len() == 8 {
        let day = NaiveDate::parse_from_str(value, "%Y%m%d")
            .map_err(|_| format!("{} '{value}' is not a date", line.name))?;
        return Ok((day.and_hms_opt(0, 0, 0).expect("midnight").and_utc(), true));
    }
    let local = local_time(value)
        .ok_or_else(|| format!("{} '{value}' is not a date and time", line.name))?;
    if value.ends_with('Z') {
        return Ok((local.and_utc(), false));
    }
    let offset = match line.params.get("TZID") {
        Some(tz) if matches!(tz.as_str(), "UTC" | "Etc/UTC" | "GMT" | "Z") => 0,
        Some(tz) => match zones.get(tz).and_then(|z| z.offset_at(local)) {
            Some(seconds) => seconds,
            None => {
                notes.push(format!(
                    "the time zone '{tz}' is not defined in the file: taken as UTC"
                ));
                0
            }
        },
        None => {
            notes.push("a time without a time zone: taken as UTC".into());
            0
        }
    };
    let utc = Duration::try_seconds(offset)
        .and_then(|o| local.checked_sub_signed(o))
        .ok_or_else(|| format!("{} '{value}' is out of range", line.name))?;
    Ok((utc.and_utc(), false))
}

/// `PT1H30M`, `P1D`, `-PT15M` as a duration.
fn duration(text: &str) -> Option<Duration> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, text.trim_start_matches('+')),
    };
    let rest = rest.strip_prefix('P')?;
    let (mut total, mut number, mut in_time) = (0i64, String::new(), false);
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = std::mem::take(&mut number).parse().ok()?;
                let seconds = match (unit, in_time) {
                    ('W', _) => 604_800,
                    ('D', _) => 86_400,
                    ('H', true) => 3_600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
                total = total.checked_add(n.checked_mul(seconds)?)?;
            }
        }
    }
    Duration::try_seconds(sign * total)
}

/// An event as an activity's values, or why it is skipped.
fn activity_of(
    event: &Component,
    zones: &HashMap<String, Zone>,
    user: &str,
    notes: &mut Vec<String>,
) -> Result<(String, Map<String, Value>), String> {
    let uid = event
        .text("UID")
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or("the event has no UID")?;
    if uid.chars().count() > 500 {
        return Err("the event's UID is over 500 characters".into());
    }
    if event.get("RECURRENCE-ID").is_some() {
        return Err(
            "a changed occurrence of a recurring event (only the series is imported)".into(),
        );
    }
    let start_line = event.get("DTSTART").ok_or("the event has no DTSTART")?;
    let (starts, all_day) = instant(start_line, zones, notes)?;
    let ends = match (event.get("DTEND"), event.get("DURATION")) {
        (Some(end), _) => instant(end, zones, notes)?.0,
        (None, Some(d)) => duration(d.value.trim())
            .and_then(|d| starts.checked_add_signed(d))
            .ok_or_else(|| format!("DURATION '{}' is not a duration", d.value))?,
        (None, None) if all_day => starts + Duration::days(1),
        (None, None) => starts,
    };
    if ends < starts {
        return Err("the event ends before it starts".into());
    }
    if event.get("RRULE").is_some() {
        notes.push(format!("'{uid}' repeats: its first occurrence is imported"));
    }
    let topic = event
        .text("SUMMARY")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no title)".into());
    let mut result = event.text("DESCRIPTION").unwrap_or_default();
    if let Some(place) = event.text("LOCATION").filter(|l| !l.trim().is_empty()) {
        if !result.is_empty() {
            result.push_str("\n\n");
        }
        result.push_str(&format!("Where: {}", place.trim()));
    }
    let categories = event.text("CATEGORIES").unwrap_or_default().to_lowercase();
    let kind = ["call", "task", "email"]
        .into_iter()
        .find(|k| categories.split(',').any(|c| c.trim() == *k))
        .unwrap_or("meeting");
    let cancelled = event
        .text("STATUS")
        .is_some_and(|s| s.trim() == "CANCELLED");
    let status = if cancelled { "cancelled" } else { "new" };
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut values = json!({
        "kind": kind,
        "topic": topic.chars().take(500).collect::<String>(),
        "starts_at": at(starts),
        "ends_at": at(ends),
        "status": status,
        "assigned_to": user,
        "ical_uid": uid,
    });
    if !result.is_empty() {
        values["result"] = Value::String(result);
    }
    let Value::Object(values) = values else {
        unreachable!("built as an object")
    };
    Ok((uid, values))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarImport {
    /// Events in the file.
    pub events: usize,
    pub created: usize,
    /// Events imported before whose details changed.
    pub updated: usize,
    /// Events imported before, unchanged.
    pub unchanged: usize,
    /// Events not imported, each with the reason.
    pub skipped: Vec<Skipped>,
    /// What was assumed on the way (a time zone the file does not define, a
    /// repeating event imported once).
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Skipped {
    pub uid: Option<String>,
    pub summary: Option<String>,
    pub reason: String,
}

/// Imports the events of an iCalendar file (`.ics`) as the caller's activities:
/// meetings (or calls, tasks, emails by `CATEGORIES`) assigned to the caller. An event
/// imported before (same `UID`, among the activities the caller may read) is updated
/// instead; an event of the caller's own calendar feed (`<id>@crm`) updates that
/// activity. At most 5,000 events.
#[utoipa::path(post, path = "/api/v1/calendar/import", tag = "calendar", security(("bearer" = [])),
    request_body(content = String, content_type = "text/calendar"),
    responses(
        (status = 200, body = CalendarImport),
        (status = 403, description = "No right to create activities", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not iCalendar, not UTF-8, or too many events", body = Problem, content_type = "application/problem+json"),
    ))]
async fn import_ics(
    State(app): State<AppState>,
    actor: Actor,
    body: Bytes,
) -> ApiResult<Json<CalendarImport>> {
    let invalid = |m: String| ApiError::invalid(m.clone(), vec![FieldError::new("file", m)]);
    app.records.creatable(&actor, "activities").await?;
    // Unfolded before decoding: a fold may split a character's bytes (RFC 5545 3.1).
    let unfolded = unfold(&body);
    let text = std::str::from_utf8(&unfolded).map_err(|e| {
        invalid(format!(
            "the file is not UTF-8 text (byte {})",
            e.valid_up_to()
        ))
    })?;
    let calendar = parse(text).map_err(invalid)?;
    let zones: HashMap<String, Zone> = calendar
        .children
        .iter()
        .filter(|c| c.kind == "VTIMEZONE")
        .filter_map(|c| Some((c.text("TZID")?, Zone::of(c))))
        .collect();
    let events: Vec<&Component> = calendar
        .children
        .iter()
        .filter(|c| c.kind == "VEVENT")
        .collect();
    if events.len() > MAX_EVENTS {
        return Err(invalid(format!(
            "the file has {} events; at most {MAX_EVENTS} are imported at once",
            events.len()
        )));
    }
    let mut report = CalendarImport {
        events: events.len(),
        created: 0,
        updated: 0,
        unchanged: 0,
        skipped: Vec::new(),
        notes: Vec::new(),
    };
    let mut wanted = Vec::new();
    for event in &events {
        match activity_of(event, &zones, &actor.user_id, &mut report.notes) {
            Ok(found) => wanted.push(found),
            Err(reason) => report.skipped.push(Skipped {
                uid: event.text("UID"),
                summary: event.text("SUMMARY"),
                reason,
            }),
        }
    }
    report.notes.sort();
    report.notes.dedup();
    let known = imported_before(&app, &actor, &wanted).await?;
    for (uid, values) in wanted {
        let outcome = match known.get(&uid) {
            None => app
                .records
                .create(&actor, "activities", &values)
                .await
                .map(|_| &mut report.created),
            Some(existing) => {
                let mut patch: Map<String, Value> = values
                    .into_iter()
                    .filter(|(k, v)| existing.fields.get(k) != Some(v))
                    .collect();
                // An activity of the caller's own feed keeps its assignee and gains the UID.
                patch.remove("assigned_to");
                if patch.is_empty() {
                    report.unchanged += 1;
                    continue;
                }
                app.records
                    .update(
                        &actor,
                        "activities",
                        &existing.id,
                        &patch,
                        Some(existing.version),
                    )
                    .await
                    .map(|_| &mut report.updated)
            }
        };
        match outcome {
            Ok(count) => *count += 1,
            Err(e) => report.skipped.push(Skipped {
                uid: Some(uid),
                summary: None,
                reason: e.to_string(),
            }),
        }
    }
    Ok(Json(report))
}

/// The activities the caller may read that events of the file were imported as
/// before (by `ical_uid`), or that the caller's calendar feed served (`<id>@crm`).
async fn imported_before(
    app: &AppState,
    actor: &Actor,
    wanted: &[(String, Map<String, Value>)],
) -> Result<HashMap<String, Record>, ApiError> {
    let mut known = HashMap::new();
    // Only the caller's own activities: colleagues invited to the same meeting share
    // its UID, and each gets an activity of their own.
    let mine = ("filter[assigned_to]".to_string(), actor.user_id.clone());
    // A UID holding a comma cannot be one of an `in` list's values: asked alone.
    let (plain, odd): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .map(|(u, _)| u.as_str())
        .partition(|u| !u.contains(','));
    let mut lookups: Vec<(String, String)> = plain
        .chunks(100)
        .map(|c| ("filter[ical_uid][in]".to_string(), c.join(",")))
        .collect();
    lookups.extend(
        odd.iter()
            .map(|u| ("filter[ical_uid]".to_string(), u.to_string())),
    );
    for by_uid in lookups {
        let pairs = [by_uid, mine.clone()];
        for r in app
            .records
            .list_up_to(actor, "activities", &pairs, 1_000)
            .await?
        {
            if let Some(uid) = r.fields.get("ical_uid").and_then(Value::as_str) {
                known.insert(uid.to_string(), r.clone());
            }
        }
    }
    // The caller's own feed imported back: `<id>@crm` is that activity.
    let ours: Vec<&str> = plain
        .iter()
        .filter_map(|u| u.strip_suffix("@crm"))
        .collect();
    for chunk in ours.chunks(100) {
        let pairs = [
            ("filter[id][in]".to_string(), chunk.join(",")),
            mine.clone(),
        ];
        for r in app
            .records
            .list_up_to(actor, "activities", &pairs, 1_000)
            .await?
        {
            known.entry(format!("{}@crm", r.id)).or_insert(r);
        }
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEHRAN_AND_BERLIN: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n\
BEGIN:STANDARD\r\nDTSTART:16011028T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:16010325T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\n\
END:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:Asia/Tehran\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0330\r\nTZOFFSETTO:+0330\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn local_times_follow_the_files_own_time_zones() {
        let calendar = parse(TEHRAN_AND_BERLIN).unwrap();
        let zones: HashMap<String, Zone> = calendar
            .children
            .iter()
            .filter_map(|c| Some((c.text("TZID")?, Zone::of(c))))
            .collect();
        let at = |tz: &str, local: &str| {
            let line = parse_line(&format!("DTSTART;TZID=\"{tz}\":{local}")).unwrap();
            instant(&line, &zones, &mut Vec::new())
                .unwrap()
                .0
                .to_rfc3339()
        };
        // Summer and winter in Berlin (Outlook's Windows name), the change days.
        assert_eq!(
            at("W. Europe Standard Time", "20260715T100000"),
            "2026-07-15T08:00:00+00:00"
        );
        assert_eq!(
            at("W. Europe Standard Time", "20261124T100000"),
            "2026-11-24T09:00:00+00:00"
        );
        assert_eq!(
            at("W. Europe Standard Time", "20260329T010000"),
            "2026-03-29T00:00:00+00:00"
        );
        assert_eq!(
            at("W. Europe Standard Time", "20260329T030000"),
            "2026-03-29T01:00:00+00:00"
        );
        assert_eq!(
            at("W. Europe Standard Time", "20261025T040000"),
            "2026-10-25T03:00:00+00:00"
        );
        assert_eq!(
            at("Asia/Tehran", "20261124T093000"),
            "2026-11-24T06:00:00+00:00"
        );
        let mut notes = Vec::new();
        let line = parse_line("DTSTART;TZID=Mars/Olympus:20261124T093000").unwrap();
        assert_eq!(
            instant(&line, &zones, &mut notes).unwrap().0.to_rfc3339(),
            "2026-11-24T09:30:00+00:00"
        );
        assert!(
            notes[0].contains("'Mars/Olympus' is not defined"),
            "{notes:?}"
        );
    }

    #[test]
    fn ended_rules_stop_applying() {
        // New York as Apple Calendar writes it: the rules before 2007 and after.
        let calendar = parse(
            "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:19870405T020000\r\nRRULE:FREQ=YEARLY;UNTIL=20060402T070000Z;BYMONTH=4;BYDAY=1SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nDTSTART:19671029T020000\r\nRRULE:FREQ=YEARLY;UNTIL=20061029T060000Z;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nDTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n\
END:VTIMEZONE\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        let zone = Zone::of(&calendar.children[0]);
        let at = |t: &str| zone.offset_at(local_time(t).unwrap());
        assert_eq!(
            at("20261030T100000"),
            Some(-4 * 3600),
            "after the old October change"
        );
        assert_eq!(at("20261110T100000"), Some(-5 * 3600));
        assert_eq!(at("20260320T100000"), Some(-4 * 3600));
        assert_eq!(
            at("20050410T100000"),
            Some(-4 * 3600),
            "the old rules, before they ended"
        );
    }

    #[test]
    fn lines_unfold_and_text_unescapes() {
        let folded = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Acme\\, renewal\\; terms\r\nDESCRIPTION:first line\\nsec\r\n ond line\r\nDTSTART;VALUE=DATE:20261124\r\nDURATION:PT1H30M\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let unfolded = String::from_utf8(unfold(folded.as_bytes())).unwrap();
        let calendar = parse(&unfolded).unwrap();
        let event = &calendar.children[0];
        assert_eq!(event.text("SUMMARY").unwrap(), "Acme, renewal; terms");
        assert_eq!(
            event.text("DESCRIPTION").unwrap(),
            "first line\nsecond line"
        );
        assert_eq!(duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(duration("P1W2D"), Some(Duration::days(9)));
        assert_eq!(duration("-PT15M"), Some(Duration::minutes(-15)));
        assert_eq!(duration("1H"), None);
        assert_eq!(duration("PT9999999999999999S"), None);
        assert_eq!(duration("P99999999999W"), None);
        assert!(yearly("FREQ=YEARLY;BYMONTH=3;BYDAY=\u{e9}a").is_none());
        let folded_inside_a_letter = unfold(b"SUMMARY:\xd9\r\n \x85");
        assert_eq!(
            String::from_utf8(folded_inside_a_letter).unwrap(),
            "SUMMARY:\u{645}"
        );
        assert!(parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n").is_err());
        assert!(parse("hello").is_err());
        assert!(
            parse("BEGIN:VEVENT\r\nEND:VEVENT\r\n")
                .unwrap_err()
                .contains("no BEGIN:VCALENDAR")
        );
    }
}
