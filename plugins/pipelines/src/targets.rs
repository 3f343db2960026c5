//! Targets: a goal per user or department and period (deals won, amount won,
//! meetings held, calls made), and the progress toward it, counted from the
//! records the caller may read: "5 of 10 deals won in 2026-11".

use crm_plugin_sdk::{HttpRequest, HttpResponse, Record, Value, http, json, kv, records};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// `deals_won`, `amount_won`, `meetings_held` or `calls_made`.
    pub metric: String,
    pub target: f64,
    /// `2026-11` (a month), `2026-Q4` or `2026`.
    pub period: String,
    /// Whose goal: a user (deals they own, activities assigned to them) or a
    /// department; neither counts everything the caller may read.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub title: String,
}

const METRICS: &[(&str, &str)] = &[
    ("deals_won", "deals won"),
    ("amount_won", "won"),
    ("meetings_held", "meetings held"),
    ("calls_made", "calls made"),
];

/// The first and last day of a period (`YYYY-MM-DD`).
pub fn period_days(period: &str) -> Option<(String, String)> {
    let (year, rest) = match period.split_once('-') {
        Some((y, rest)) => (y.parse::<i32>().ok()?, Some(rest)),
        None => (period.parse::<i32>().ok()?, None),
    };
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let (first, last) = match rest {
        None => (1, 12),
        Some(q) if q.starts_with('Q') => {
            let n: u32 = q[1..].parse().ok().filter(|n| (1..=4).contains(n))?;
            (n * 3 - 2, n * 3)
        }
        Some(m) if m.len() == 2 => {
            let m: u32 = m.parse().ok().filter(|m| (1..=12).contains(m))?;
            (m, m)
        }
        Some(_) => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match last {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    Some((
        format!("{year:04}-{first:02}-01"),
        format!("{year:04}-{last:02}-{days:02}"),
    ))
}

impl Goal {
    fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !METRICS.iter().any(|(m, _)| *m == self.metric) {
            let names: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
            problems.push((
                "metric".into(),
                format!("must be one of {}", names.join(", ")),
            ));
        }
        if !(self.target.is_finite() && self.target > 0.0) {
            problems.push(("target".into(), "must be a number above 0".into()));
        }
        if period_days(&self.period).is_none() {
            problems.push((
                "period".into(),
                "must be a month (2026-11), a quarter (2026-Q4) or a year (2026)".into(),
            ));
        }
        if self.user.is_some() && self.department.is_some() {
            problems.push((
                "user".into(),
                "a goal is a user's or a department's, not both".into(),
            ));
        }
        problems
    }

    /// Counted from the records the caller may read.
    fn achieved(&self) -> Result<f64, String> {
        let (first, last) = period_days(&self.period).ok_or("the period is not valid")?;
        let (object, mut query, sum_amount) = match self.metric.as_str() {
            "deals_won" | "amount_won" => (
                "deals",
                format!(
                    "filter[status]=won&filter[close_date][gte]={first}&filter[close_date][lte]={last}"
                ),
                self.metric == "amount_won",
            ),
            kind => (
                "activities",
                format!(
                    "filter[kind]={}&filter[status]=completed&filter[starts_at][gte]={first}T00:00:00Z&filter[starts_at][lte]={last}T23:59:59Z",
                    if kind == "meetings_held" {
                        "meeting"
                    } else {
                        "call"
                    }
                ),
                false,
            ),
        };
        if let Some(user) = &self.user {
            let field = if object == "deals" {
                "owner"
            } else {
                "assigned_to"
            };
            query.push_str(&format!("&filter[{field}]={user}"));
        }
        if let Some(department) = &self.department {
            query.push_str(&format!("&filter[department]={department}"));
        }
        let mut total = 0.0;
        let mut cursor: Option<String> = None;
        loop {
            let mut page_query = format!("{query}&limit=200");
            if let Some(c) = &cursor {
                page_query.push_str(&format!("&cursor={c}"));
            }
            let (items, next): (Vec<Record>, _) = records::list(object, &page_query)?;
            total += if sum_amount {
                items
                    .iter()
                    .filter_map(|d| d.get("amount").and_then(Value::as_f64))
                    .sum()
            } else {
                items.len() as f64
            };
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(total),
            }
        }
    }

    fn progress(&self, id: &str) -> Value {
        let label = METRICS
            .iter()
            .find(|(m, _)| *m == self.metric)
            .map_or("", |(_, l)| *l);
        match self.achieved() {
            Ok(achieved) => json!({
                "id": id,
                "title": self.title,
                "metric": self.metric,
                "period": self.period,
                "user": self.user,
                "department": self.department,
                "target": self.target,
                "achieved": achieved,
                "percent": (achieved * 1000.0 / self.target).round() / 10.0,
                "summary": format!("{} of {} {label} in {}", number(achieved), number(self.target), self.period),
            }),
            Err(e) => json!({"id": id, "metric": self.metric, "error": e}),
        }
    }
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn key(id: &str) -> String {
    format!("goal/{id}")
}

/// `GET /targets[?period=&user=&department=]`: every goal (or those of that period,
/// user or department) with its progress.
pub fn progress(query: &str) -> HttpResponse {
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
        if !["period", "user", "department"].contains(&k) {
            return http::problem(
                400,
                &format!("'{k}' is not a filter here; use period, user or department"),
            );
        }
        wanted.push((k, v));
    }
    let keys = match kv::keys("goal/") {
        Ok(keys) => keys,
        Err(e) => return http::problem(500, &e),
    };
    let mut goals = Vec::new();
    for k in keys {
        let Ok(Some(goal)) = kv::get_json::<Goal>(&k) else {
            continue;
        };
        let matches = wanted.iter().all(|(field, value)| match *field {
            "period" => goal.period == *value,
            "user" => goal.user.as_deref() == Some(*value),
            _ => goal.department.as_deref() == Some(*value),
        });
        if matches {
            goals.push(goal.progress(&k["goal/".len()..]));
        }
    }
    http::json(200, &json!(goals))
}

/// `PUT /targets/{id}` (admins), `GET`, `DELETE` (admins).
pub fn route(request: &HttpRequest, id: &str) -> HttpResponse {
    let valid_id = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_id {
        return http::problem(404, "a target's id is 1 to 64 letters, digits, - and _");
    }
    let admin = http::header(request, "x-crm-admin") == Some("true");
    match request.method.as_str() {
        "GET" => match kv::get_json::<Goal>(&key(id)) {
            Ok(Some(goal)) => http::json(200, &goal.progress(id)),
            Ok(None) => http::problem(404, "there is no such target"),
            Err(e) => http::problem(500, &e),
        },
        "PUT" if admin => {
            let goal: Goal = match http::body_json(request) {
                Ok(goal) => goal,
                Err(answer) => return answer,
            };
            let problems = goal.check();
            if !problems.is_empty() {
                return http::invalid("the target is not valid", &problems);
            }
            match kv::set_json(&key(id), &goal) {
                Ok(()) => http::json(200, &goal.progress(id)),
                Err(e) => http::problem(422, &e),
            }
        }
        "DELETE" if admin => match kv::delete(&key(id)) {
            Ok(()) => http::no_content(),
            Err(e) => http::problem(500, &e),
        },
        "PUT" | "DELETE" => http::problem(403, "only admins of the department set targets"),
        _ => http::problem(405, "targets are read, set with PUT and deleted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_become_days() {
        assert_eq!(
            period_days("2026-11"),
            Some(("2026-11-01".into(), "2026-11-30".into()))
        );
        assert_eq!(
            period_days("2024-02"),
            Some(("2024-02-01".into(), "2024-02-29".into()))
        );
        assert_eq!(
            period_days("2026-Q4"),
            Some(("2026-10-01".into(), "2026-12-31".into()))
        );
        assert_eq!(
            period_days("2026"),
            Some(("2026-01-01".into(), "2026-12-31".into()))
        );
        assert_eq!(period_days("2026-13"), None);
        assert_eq!(period_days("soon"), None);
    }
}
