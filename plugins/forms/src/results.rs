//! `GET /api/v1/x/forms/forms/{form}/results?period=month&from=&to=`: a form's
//! submissions per day, month or year, and for surveys their scores: the average,
//! CSAT (the share answering 4 or 5) and NPS (promoters minus detractors). One
//! aggregate over the submissions the caller may read.

use std::collections::BTreeMap;

use crm_plugin_sdk::{HttpResponse, Value, http, json, records};

use crate::form::Form;
use crate::submissions::SUBMISSIONS;

/// The tally of one period.
#[derive(Default)]
struct Tally {
    responses: i64,
    scored: i64,
    total: i64,
    /// Scores by value (0 to 10).
    scores: BTreeMap<i64, i64>,
}

pub fn report(slug: &str, form: &Form, query: &str) -> HttpResponse {
    let mut period = "month";
    let mut filters = format!("filter[form]={slug}");
    for (key, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        match key {
            "period" if ["day", "month", "year"].contains(&value) => {
                period = match value {
                    "day" => "day",
                    "year" => "year",
                    _ => "month",
                };
            }
            "period" => return http::problem(400, "period is day, month or year"),
            "from" | "to" if is_date(value) => {
                let op = if key == "from" { "gte" } else { "lt" };
                filters.push_str(&format!("&filter[created_at][{op}]={value}"));
            }
            "from" | "to" => return http::problem(400, &format!("{key} is a date, YYYY-MM-DD")),
            _ => {
                return http::problem(
                    400,
                    &format!("'{key}' is not a parameter here; use period, from or to"),
                );
            }
        }
    }
    let group = format!("created_at:{period}");
    let query = format!("group_by={group},score&{filters}");
    let (groups, truncated) = match records::aggregate(SUBMISSIONS, &query) {
        Ok(answer) => answer,
        Err(e) => return http::problem(400, &e),
    };
    let mut periods: BTreeMap<String, Tally> = BTreeMap::new();
    for g in &groups {
        let Some(at) = g.key.get(&group).and_then(Value::as_str) else {
            continue;
        };
        let tally = periods.entry(at.to_string()).or_default();
        tally.responses += g.count;
        if let Some(score) = g.key.get("score").and_then(Value::as_i64) {
            tally.scored += g.count;
            tally.total += score * g.count;
            *tally.scores.entry(score).or_default() += g.count;
        }
    }
    let periods: Vec<Value> = periods
        .into_iter()
        .map(|(at, t)| summary(&form.kind, &at, &t))
        .collect();
    http::json(
        200,
        &json!({"form": slug, "kind": form.kind, "period": period, "periods": periods, "truncated": truncated}),
    )
}

fn summary(kind: &str, at: &str, t: &Tally) -> Value {
    let mut out = json!({"period": at, "responses": t.responses});
    if t.scored == 0 || kind == "form" {
        return out;
    }
    let share = |n: i64| round1(100.0 * n as f64 / t.scored as f64);
    let count = |range: std::ops::RangeInclusive<i64>| -> i64 {
        t.scores.range(range).map(|(_, n)| n).sum()
    };
    let fields = out.as_object_mut().expect("an object");
    fields.insert(
        "average".into(),
        json!(round1(t.total as f64 / t.scored as f64)),
    );
    fields.insert(
        "scores".into(),
        json!(
            t.scores
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    if kind == "csat" {
        // Customer satisfaction: the share of answers that are 4 or 5 out of 5.
        fields.insert("csat".into(), json!(share(count(4..=5))));
    } else {
        // Net Promoter Score: promoters (9, 10) minus detractors (0 to 6), in points.
        let (promoters, passives, detractors) = (count(9..=10), count(7..=8), count(0..=6));
        fields.insert("promoters".into(), json!(promoters));
        fields.insert("passives".into(), json!(passives));
        fields.insert("detractors".into(), json!(detractors));
        fields.insert(
            "nps".into(),
            json!(round1(share(promoters) - share(detractors))),
        );
    }
    out
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn is_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(scores: &[(i64, i64)]) -> Tally {
        let mut t = Tally::default();
        for &(score, n) in scores {
            t.responses += n;
            t.scored += n;
            t.total += score * n;
            t.scores.insert(score, n);
        }
        t
    }

    #[test]
    fn nps_is_promoters_minus_detractors_and_csat_the_share_of_fours_and_fives() {
        // 5 promoters, 3 passives, 2 detractors of 10: NPS 50 - 20 = 30.
        let nps = summary("nps", "2026-11", &tally(&[(10, 3), (9, 2), (8, 3), (3, 2)]));
        assert_eq!(nps["nps"], 30.0);
        assert_eq!(nps["promoters"], 5);
        assert_eq!(nps["detractors"], 2);
        assert_eq!(nps["average"], 7.8);
        let csat = summary("csat", "2026-11", &tally(&[(5, 1), (4, 2), (2, 1)]));
        assert_eq!(csat["csat"], 75.0);
        assert_eq!(csat["scores"]["4"], 2);
        let form = summary("form", "2026", &tally(&[]));
        assert_eq!(form, json!({"period": "2026", "responses": 0}));
        assert!(is_date("2026-11-01") && !is_date("2026-1-01") && !is_date("2026-11-0x"));
    }
}
