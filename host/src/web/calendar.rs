//! The calendar of activities (meetings, calls, tasks) by day, week or month, for
//! one user (the caller by default), a department, or everything the caller may
//! read; activities of one person that overlap are marked as double bookings.

use askama::Template;
use axum::extract::{Query, State};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::Choice;
use super::i18n::Tr;
use super::{Visitor, WebResult, render};
use crate::api::AppState;
use crate::records::Record;

/// Most activities one calendar page reads.
const MAX_ACTIVITIES: usize = 1_000;

#[derive(Deserialize)]
pub struct CalendarQuery {
    /// `day`, `week` (default) or `month`.
    view: Option<String>,
    /// A day of the period, `YYYY-MM-DD` (default today).
    date: Option<String>,
    /// `me` (default), `all`, `user:<id>` or `department:<id>`.
    who: Option<String>,
}

pub struct Entry {
    pub href: String,
    pub time: String,
    pub kind: String,
    pub topic: String,
    pub who: String,
    /// The topic of an activity of the same person it overlaps, if any.
    pub clash: Option<String>,
}

pub struct Day {
    pub label: String,
    pub today: bool,
    /// Outside the month shown (month view).
    pub outside: bool,
    pub entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "web/calendar.html")]
struct CalendarPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    heading: String,
    view: String,
    date: String,
    prev: String,
    next: String,
    days: Vec<Day>,
    whos: Vec<Choice>,
    /// Says how many activities are double booked (empty: none).
    clashes: String,
}

/// The first and the day after the last day of the period around `date`.
fn period(view: &str, date: NaiveDate) -> (NaiveDate, NaiveDate) {
    match view {
        "day" => (date, date + Duration::days(1)),
        "month" => {
            let first = date.with_day(1).expect("day 1");
            // Whole weeks, Monday first, around the month.
            let start = first - Duration::days(first.weekday().num_days_from_monday() as i64);
            let next_month = (first + Duration::days(32)).with_day(1).expect("day 1");
            let last = next_month - Duration::days(1);
            let end = last + Duration::days(7 - last.weekday().num_days_from_monday() as i64);
            (start, end)
        }
        _ => {
            let start = date - Duration::days(date.weekday().num_days_from_monday() as i64);
            (start, start + Duration::days(7))
        }
    }
}

fn step(view: &str, date: NaiveDate, forward: bool) -> NaiveDate {
    let sign = if forward { 1 } else { -1 };
    match view {
        "day" => date + Duration::days(sign),
        "month" => {
            let first = date.with_day(1).expect("day 1");
            if forward {
                (first + Duration::days(32)).with_day(1).expect("day 1")
            } else {
                (first - Duration::days(1)).with_day(1).expect("day 1")
            }
        }
        _ => date + Duration::days(7 * sign),
    }
}

fn text<'r>(r: &'r Record, field: &str) -> &'r str {
    r.fields
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whose calendar an activity is on: its assignee, else its owner.
fn person(r: &Record) -> String {
    r.fields
        .get("assigned_to")
        .and_then(Value::as_str)
        .or(r.owner.as_deref())
        .unwrap_or_default()
        .to_string()
}

/// For each activity, the first other activity of the same person that overlaps it
/// (cancelled ones do not count; one without an end lasts an hour).
fn clashes(activities: &[Record]) -> Vec<Option<usize>> {
    let span = |r: &Record| {
        let start = text(r, "starts_at");
        let end = match text(r, "ends_at") {
            "" => chrono::DateTime::parse_from_rfc3339(start)
                .map(|t| (t + Duration::hours(1)).to_rfc3339())
                .unwrap_or_default(),
            e => e.to_string(),
        };
        let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
        (parse(start), parse(&end))
    };
    let spans: Vec<_> = activities.iter().map(span).collect();
    let active = |r: &Record| text(r, "status") != "cancelled";
    (0..activities.len())
        .map(|i| {
            let (Some(a0), Some(a1)) = spans[i] else {
                return None;
            };
            if !active(&activities[i]) {
                return None;
            }
            (0..activities.len()).find(|&j| {
                j != i
                    && active(&activities[j])
                    && person(&activities[j]) == person(&activities[i])
                    && matches!(spans[j], (Some(b0), Some(b1)) if a0 < b1 && b0 < a1)
            })
        })
        .collect()
}

/// `GET /calendar[?view=day|week|month&date=YYYY-MM-DD&who=me|all|user:<id>|department:<id>]`.
pub async fn calendar(
    State(app): State<AppState>,
    v: Visitor,
    Query(q): Query<CalendarQuery>,
) -> WebResult {
    let tr = &v.tr;
    let view = match q.view.as_deref() {
        Some(v @ ("day" | "week" | "month")) => v.to_string(),
        _ => "week".to_string(),
    };
    let today = Utc::now().date_naive();
    let date = q
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        // Years far out would overflow the period's arithmetic.
        .filter(|d| (1..=9999).contains(&d.year()))
        .unwrap_or(today);
    let who = q.who.clone().unwrap_or_else(|| "me".into());
    let (start, end) = period(&view, date);
    let activities = crate::calendar_feeds::activities_between(
        &app,
        &v.actor,
        &format!("{start}T00:00:00Z"),
        &format!("{end}T00:00:00Z"),
        &who,
        MAX_ACTIVITIES,
    )
    .await
    .map_err(|e| v.fail(e))?;
    let users = super::view::user_names(&app).await;
    let clash = clashes(&activities);
    let mut days: Vec<Day> = Vec::new();
    let mut day = start;
    while day < end {
        days.push(Day {
            label: format!("{} {}", weekday(tr, day), tr.date(&day.to_string())),
            today: day == today,
            outside: view == "month" && day.month() != date.month(),
            entries: Vec::new(),
        });
        day += Duration::days(1);
    }
    for (i, r) in activities.iter().enumerate() {
        let starts = text(r, "starts_at");
        let Some(on) = starts
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let Some(slot) = days.get_mut((on - start).num_days() as usize) else {
            continue;
        };
        let who = person(r);
        slot.entries.push(Entry {
            href: format!("/records/activities/{}", r.id),
            time: tr.digits(starts.get(11..16).unwrap_or_default()),
            kind: tr.value(text(r, "kind")),
            topic: text(r, "topic").to_string(),
            who: users.get(&who).cloned().unwrap_or(who),
            clash: clash[i].map(|j| text(&activities[j], "topic").to_string()),
        });
    }
    let mut whos = vec![
        Choice {
            value: "me".into(),
            label: tr.t("cal-me"),
            selected: who == "me",
        },
        Choice {
            value: "all".into(),
            label: tr.t("cal-all"),
            selected: who == "all",
        },
    ];
    if let Ok(departments) = app.access.list_departments().await {
        whos.extend(departments.into_iter().map(|d| {
            let value = format!("department:{}", d.id);
            Choice {
                selected: who == value,
                value,
                label: d.name,
            }
        }));
    }
    whos.extend(users.iter().map(|(id, name)| {
        let value = format!("user:{id}");
        Choice {
            selected: who == value,
            value,
            label: name.clone(),
        }
    }));
    let link = |d: NaiveDate| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("view", &view)
            .append_pair("date", &d.to_string())
            .append_pair("who", &who);
        format!("/calendar?{}", s.finish())
    };
    let heading = match view.as_str() {
        "day" => tr.date(&date.to_string()),
        _ => format!(
            "{} – {}",
            tr.date(&start.to_string()),
            tr.date(&(end - Duration::days(1)).to_string())
        ),
    };
    Ok(render(&CalendarPage {
        v: &v,
        tr,
        heading,
        prev: link(step(&view, date, false)),
        next: link(step(&view, date, true)),
        date: date.to_string(),
        clashes: match clash.iter().filter(|c| c.is_some()).count() {
            0 => String::new(),
            n => tr.tn("cal-clashes", n),
        },
        view,
        days,
        whos,
    }))
}

fn weekday(tr: &Tr, day: NaiveDate) -> String {
    tr.t(&format!(
        "cal-day-{}",
        day.weekday().num_days_from_monday() + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(who: &str, start: &str, end: &str, status: &str) -> Record {
        let mut fields = serde_json::Map::new();
        fields.insert("assigned_to".into(), who.into());
        fields.insert("starts_at".into(), start.into());
        if !end.is_empty() {
            fields.insert("ends_at".into(), end.into());
        }
        fields.insert("status".into(), status.into());
        Record {
            id: crate::db::new_id(),
            object: "activities".into(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
            owner: None,
            department: None,
            fields,
        }
    }

    #[test]
    fn overlapping_activities_of_one_person_are_double_bookings() {
        let list = [
            activity("ana", "2026-11-24T09:00:00Z", "2026-11-24T10:00:00Z", "new"),
            activity("ana", "2026-11-24T09:30:00Z", "", "new"),
            activity("bo", "2026-11-24T09:30:00Z", "", "new"),
            activity("ana", "2026-11-24T10:45:00Z", "2026-11-24T11:00:00Z", "new"),
            activity("ana", "2026-11-24T10:50:00Z", "", "cancelled"),
            activity("ana", "2026-11-24T10:50:00Z", "2026-11-24T11:10:00Z", "new"),
        ];
        assert_eq!(
            clashes(&list),
            vec![Some(1), Some(0), None, Some(5), None, Some(3)]
        );
    }

    #[test]
    fn a_month_is_shown_as_whole_weeks() {
        let (start, end) = period("month", NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        assert_eq!(start.to_string(), "2026-10-26");
        assert_eq!(end.to_string(), "2026-12-07");
        let (start, end) = period("week", NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(
            (start.to_string(), end.to_string()),
            ("2026-11-23".into(), "2026-11-30".into())
        );
    }
}
