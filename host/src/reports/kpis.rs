//! The KPI dashboard: what sales managers ask of a period, each figure one aggregate
//! over the records the caller may read (so a manager sees their department's
//! figures, an admin everyone's):
//! - per manager (a record's owner): calls, meetings, time on the phone and per call;
//!   deals won and their amount against the manager's quota (`quotas` records);
//!   leads taken in and how many became prospects (`qualified` or `completed`);
//!   which kinds and statuses count is an admin's setting (`kpi_settings`);
//! - customer satisfaction from CSAT and NPS surveys (the forms plugin's
//!   `form_submissions`, when it is installed);
//! - acquisition against retention: won deals of new customers (no won deal before
//!   the period) against returning ones.
//!
//! A part whose object or fields are missing, or hidden from the caller, is `null`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::auth::Actor;
use crate::records::RecordError;
use crate::records::service::Group;

use super::kpi_settings::KpiSettings;

/// The days a dashboard covers: `from` inclusive, `to` exclusive, and optionally one
/// department.
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub department: Option<String>,
}

impl Period {
    /// `from`, `to` (YYYY-MM-DD; default this month) and `department`.
    pub fn parse(app: &AppState, query: Option<&str>) -> Result<Period, ApiError> {
        let today = Utc::now().date_naive();
        let month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("a first day");
        let mut period = Period {
            from: month,
            to: month
                .checked_add_months(chrono::Months::new(1))
                .expect("next month exists"),
            department: None,
        };
        let day = |key: &str, v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ApiError::bad_request(format!("{key} must be a date as YYYY-MM-DD, not '{v}'"))
            })
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "from" => period.from = day("from", &v)?,
                "to" => period.to = day("to", &v)?,
                "department" => {
                    if !app.access.department_tree().departments.exists(&v) {
                        return Err(ApiError::bad_request(format!(
                            "there is no department '{v}'"
                        )));
                    }
                    period.department = Some(v.into_owned());
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter '{other}'; the dashboard takes from, to and department"
                    )));
                }
            }
        }
        if period.to <= period.from {
            return Err(ApiError::bad_request("to must come after from"));
        }
        if (period.to - period.from).num_days() > 731 {
            return Err(ApiError::bad_request(
                "a dashboard covers at most two years",
            ));
        }
        Ok(period)
    }

    fn instant(day: NaiveDate) -> String {
        format!("{}T00:00:00Z", day.format("%Y-%m-%d"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Kpis {
    pub from: String,
    pub to: String,
    pub department: Option<String>,
    /// One row per manager with any figure in the period, the largest won amount first.
    pub managers: Vec<ManagerKpis>,
    /// The managers' figures added up.
    pub totals: Totals,
    pub satisfaction: Option<Satisfaction>,
    /// `null` when deals cannot be read or have no `company`.
    pub customers: Option<Customers>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ManagerKpis {
    pub user: String,
    pub name: String,
    pub calls: i64,
    pub meetings: i64,
    /// Time on calls, in seconds.
    pub call_seconds: f64,
    /// Average length of a call with a duration, in seconds.
    pub seconds_per_call: Option<f64>,
    pub deals_won: i64,
    pub won_amount: f64,
    /// The quotas of the period summed; `null` when none is set.
    pub quota: Option<f64>,
    /// Won amount as a percentage of the quota.
    pub attainment: Option<f64>,
    /// Leads created in the period.
    pub leads: i64,
    /// Of those, the qualified or completed ones.
    pub prospects: i64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Totals {
    pub calls: i64,
    pub meetings: i64,
    pub call_seconds: f64,
    pub deals_won: i64,
    pub won_amount: f64,
    pub quota: Option<f64>,
    pub attainment: Option<f64>,
    pub leads: i64,
    pub prospects: i64,
    /// Prospects as a percentage of leads.
    pub prospect_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Satisfaction {
    pub csat: Option<Survey>,
    pub nps: Option<Survey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Survey {
    pub responses: i64,
    pub average: Option<f64>,
    /// CSAT: the share of 4 and 5 in percent; NPS: promoters minus detractors in points.
    pub score: f64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Customers {
    /// Companies whose first won deal is in the period.
    pub new_customers: i64,
    pub new_deals: i64,
    pub new_amount: f64,
    /// Companies with a won deal before the period too.
    pub returning_customers: i64,
    pub returning_deals: i64,
    pub returning_amount: f64,
    /// Won deals without a company (neither new nor returning).
    pub deals_without_company: i64,
    /// The returning customers' share of the won amount, in percent.
    pub retention_share: Option<f64>,
    /// More than 1,000 companies bought in the period; the smallest were not counted.
    pub truncated: bool,
}

/// Groups of one aggregate, or `None` when the object or a field it names is
/// missing or hidden from the caller.
async fn groups(
    app: &AppState,
    actor: &Actor,
    object: &str,
    period: Option<&Period>,
    pairs: &[(&str, String)],
) -> Result<Option<(Vec<Group>, bool)>, ApiError> {
    // Built before the await: a Serializer held across it would make the future !Send.
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(d) = period.and_then(|p| p.department.as_deref()) {
            query.append_pair("filter[department]", d);
        }
        query.finish()
    };
    match app.records.aggregate(actor, object, &query).await {
        Ok(found) => Ok(Some((found.groups, found.truncated))),
        Err(
            RecordError::UnknownObject(_)
            | RecordError::UnknownField(..)
            | RecordError::BadQuery(_),
        ) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn text<'a>(g: &'a Group, key: &str) -> Option<&'a str> {
    g.key.get(key).and_then(Value::as_str)
}

fn number(map: &serde_json::Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(Value::as_f64)
}

/// The figures of `user` (a group's owner), made on first use.
fn row<'a>(
    managers: &'a mut BTreeMap<String, ManagerKpis>,
    user: Option<&str>,
) -> Option<&'a mut ManagerKpis> {
    let user = user?;
    Some(
        managers
            .entry(user.to_string())
            .or_insert_with(|| ManagerKpis {
                user: user.to_string(),
                ..Default::default()
            }),
    )
}

/// `part` of `whole` in percent, to one place; `None` of nothing.
fn percent(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| round1(part / whole * 100.0))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub async fn compute(app: &AppState, actor: &Actor, p: &Period) -> Result<Kpis, ApiError> {
    let (from_day, to_day) = (
        p.from.format("%Y-%m-%d").to_string(),
        p.to.format("%Y-%m-%d").to_string(),
    );
    let (from, to) = (Period::instant(p.from), Period::instant(p.to));
    let mut managers: BTreeMap<String, ManagerKpis> = BTreeMap::new();
    let counted = KpiSettings::load(&app.db).await?;
    let won_statuses = counted.won_statuses.join(",");
    let mut per_call: BTreeMap<String, (f64, i64)> = BTreeMap::new();

    let activities = groups(
        app,
        actor,
        "activities",
        Some(p),
        &[
            ("filter[starts_at][gte]", from.clone()),
            ("filter[starts_at][lt]", to.clone()),
            (
                "filter[kind][in]",
                [counted.call_kinds.as_slice(), &counted.meeting_kinds]
                    .concat()
                    .join(","),
            ),
            ("filter[status][ne]", "cancelled".into()),
            ("group_by", "owner,kind".into()),
            ("sum", "duration_seconds".into()),
            ("avg", "duration_seconds".into()),
        ],
    )
    .await?;
    for g in activities.iter().flat_map(|(gs, _)| gs) {
        let kind = text(g, "kind").unwrap_or_default();
        let Some(m) = row(&mut managers, text(g, "owner")) else {
            continue;
        };
        if counted.call_kinds.iter().any(|k| k == kind) {
            m.calls += g.count;
            m.call_seconds += number(&g.sums, "duration_seconds").unwrap_or(0.0);
            if let Some(avg) = number(&g.avg, "duration_seconds") {
                let (sum, n) = per_call.entry(m.user.clone()).or_default();
                *sum += avg * g.count as f64;
                *n += g.count;
            }
        } else if counted.meeting_kinds.iter().any(|k| k == kind) {
            m.meetings += g.count;
        }
    }
    // Time per call: each call kind's average, weighted by its calls.
    for (user, (sum, n)) in per_call {
        if let Some(m) = managers.get_mut(&user).filter(|_| n > 0) {
            m.seconds_per_call = Some((sum / n as f64).round());
        }
    }

    let won = groups(
        app,
        actor,
        "deals",
        Some(p),
        &[
            ("filter[status][in]", won_statuses.clone()),
            ("filter[close_date][gte]", from_day.clone()),
            ("filter[close_date][lt]", to_day.clone()),
            ("group_by", "owner".into()),
            ("sum", "amount".into()),
        ],
    )
    .await?;
    for g in won.iter().flat_map(|(gs, _)| gs) {
        if let Some(m) = row(&mut managers, text(g, "owner")) {
            m.deals_won += g.count;
            m.won_amount += number(&g.sums, "amount").unwrap_or(0.0);
        }
    }

    let quotas = groups(
        app,
        actor,
        "quotas",
        Some(p),
        &[
            ("filter[starts_on][gte]", from_day.clone()),
            ("filter[starts_on][lt]", to_day.clone()),
            ("group_by", "user".into()),
            ("sum", "amount".into()),
        ],
    )
    .await?;
    for g in quotas.iter().flat_map(|(gs, _)| gs) {
        if let Some(m) = row(&mut managers, text(g, "user")) {
            *m.quota.get_or_insert(0.0) += number(&g.sums, "amount").unwrap_or(0.0);
        }
    }

    let leads = groups(
        app,
        actor,
        "leads",
        Some(p),
        &[
            ("filter[created_at][gte]", from.clone()),
            ("filter[created_at][lt]", to.clone()),
            ("group_by", "owner,status".into()),
        ],
    )
    .await?;
    for g in leads.iter().flat_map(|(gs, _)| gs) {
        let status = text(g, "status").unwrap_or_default();
        let prospect = counted.prospect_statuses.iter().any(|s| s == status);
        if let Some(m) = row(&mut managers, text(g, "owner")) {
            m.leads += g.count;
            if prospect {
                m.prospects += g.count;
            }
        }
    }

    let names = crate::web::view::user_names(app).await;
    let mut managers: Vec<ManagerKpis> = managers
        .into_values()
        .map(|mut m| {
            m.name = names
                .get(&m.user)
                .cloned()
                .unwrap_or_else(|| m.user.clone());
            m.attainment = m.quota.and_then(|q| percent(m.won_amount, q));
            m
        })
        .collect();
    managers.sort_by(|a, b| {
        b.won_amount
            .total_cmp(&a.won_amount)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut totals = Totals::default();
    for m in &managers {
        totals.calls += m.calls;
        totals.meetings += m.meetings;
        totals.call_seconds += m.call_seconds;
        totals.deals_won += m.deals_won;
        totals.won_amount += m.won_amount;
        if let Some(q) = m.quota {
            *totals.quota.get_or_insert(0.0) += q;
        }
        totals.leads += m.leads;
        totals.prospects += m.prospects;
    }
    totals.attainment = totals.quota.and_then(|q| percent(totals.won_amount, q));
    totals.prospect_rate = percent(totals.prospects as f64, totals.leads as f64);

    Ok(Kpis {
        from: from_day,
        to: to_day,
        department: p.department.clone(),
        managers,
        totals,
        satisfaction: satisfaction(app, actor, p, &from, &to).await?,
        customers: customers(app, actor, p, &won_statuses).await?,
    })
}

async fn satisfaction(
    app: &AppState,
    actor: &Actor,
    p: &Period,
    from: &str,
    to: &str,
) -> Result<Option<Satisfaction>, ApiError> {
    let mut surveys = Vec::new();
    for kind in ["csat", "nps"] {
        let found = groups(
            app,
            actor,
            "form_submissions",
            Some(p),
            &[
                ("filter[kind]", kind.into()),
                ("filter[created_at][gte]", from.into()),
                ("filter[created_at][lt]", to.into()),
                ("group_by", "score".into()),
            ],
        )
        .await?;
        let Some((gs, _)) = found else {
            return Ok(None);
        };
        let scored: Vec<(i64, i64)> = gs
            .iter()
            .filter_map(|g| {
                g.key
                    .get("score")
                    .and_then(Value::as_i64)
                    .map(|s| (s, g.count))
            })
            .collect();
        let responses: i64 = scored.iter().map(|(_, n)| n).sum();
        let share = |keep: &dyn Fn(i64) -> bool| {
            scored
                .iter()
                .filter(|(s, _)| keep(*s))
                .map(|(_, n)| *n)
                .sum::<i64>() as f64
        };
        let score = match kind {
            "csat" => percent(share(&|s| s >= 4), responses as f64),
            _ => percent(share(&|s| s >= 9) - share(&|s| s <= 6), responses as f64),
        };
        surveys.push((responses > 0).then(|| {
            Survey {
                responses,
                average: Some(round1(
                    scored
                        .iter()
                        .map(|(s, n)| *s as f64 * *n as f64)
                        .sum::<f64>()
                        / responses as f64,
                )),
                score: score.unwrap_or(0.0),
            }
        }));
    }
    let nps = surveys.pop().flatten();
    let csat = surveys.pop().flatten();
    Ok(Some(Satisfaction { csat, nps }))
}

async fn customers(
    app: &AppState,
    actor: &Actor,
    p: &Period,
    won: &str,
) -> Result<Option<Customers>, ApiError> {
    let from_day = p.from.format("%Y-%m-%d").to_string();
    let Some((bought, truncated)) = groups(
        app,
        actor,
        "deals",
        Some(p),
        &[
            ("filter[status][in]", won.to_string()),
            ("filter[close_date][gte]", from_day.clone()),
            (
                "filter[close_date][lt]",
                p.to.format("%Y-%m-%d").to_string(),
            ),
            ("group_by", "company".into()),
            ("sum", "amount".into()),
        ],
    )
    .await?
    else {
        return Ok(None);
    };
    let companies: Vec<&str> = bought.iter().filter_map(|g| text(g, "company")).collect();
    // Returning: a won deal before the period, in any department the caller may read.
    let mut returning = BTreeSet::new();
    for chunk in companies.chunks(100) {
        let found = groups(
            app,
            actor,
            "deals",
            None,
            &[
                ("filter[status][in]", won.to_string()),
                ("filter[close_date][lt]", from_day.clone()),
                ("filter[company][in]", chunk.join(",")),
                ("group_by", "company".into()),
            ],
        )
        .await?;
        for g in found.iter().flat_map(|(gs, _)| gs) {
            if let Some(c) = text(g, "company") {
                returning.insert(c.to_string());
            }
        }
    }
    let mut c = Customers {
        truncated,
        ..Default::default()
    };
    for g in &bought {
        let amount = number(&g.sums, "amount").unwrap_or(0.0);
        match text(g, "company") {
            None => c.deals_without_company += g.count,
            Some(company) if returning.contains(company) => {
                c.returning_customers += 1;
                c.returning_deals += g.count;
                c.returning_amount += amount;
            }
            Some(_) => {
                c.new_customers += 1;
                c.new_deals += g.count;
                c.new_amount += amount;
            }
        }
    }
    c.retention_share = percent(c.returning_amount, c.returning_amount + c.new_amount);
    Ok(Some(c))
}
