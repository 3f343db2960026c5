//! Saved reports and the KPI dashboard.
//!
//! A report is a named aggregate over one object (filters, up to two group keys,
//! measures such as `count` or `sum:amount`) and how to draw it. It is stored once and
//! run by whoever opens it, **with the viewer's rights**: a report shared with the
//! whole organisation never shows a viewer more than their own list would. The rows
//! come from the records service's aggregate, so reports read what boards and lists
//! read, and charts are drawn as SVG on the server ([`chart`]).

pub mod chart;
pub mod dashboards;
pub mod kpi_settings;
pub mod kpis;
pub mod routes;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row as _;
use utoipa::ToSchema;

use self::chart::{ChartData, ChartKind};
use crate::api::AppState;
use crate::api::error::FieldError;
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::records::RecordError;
use crate::records::metadata::FieldType;
use crate::records::query::{MAX_MEASURES, Measure};

/// A saved report as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Report {
    pub id: String,
    pub name: String,
    pub object: String,
    /// A list's filters and quick search, as a query string: `filter[status]=won&q=acme`.
    pub filter: String,
    /// Up to two keys, as for an aggregate: `owner`, `stage`, `close_date:month`.
    pub group_by: Vec<String>,
    /// `count`, `sum:<field>`, `avg:<field>`, `min:<field>` or `max:<field>`.
    pub measures: Vec<String>,
    pub chart: ChartKind,
    /// Every signed-in user may open and run it (with their own rights).
    pub shared: bool,
    pub owner: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What a report asks, checked before it is stored.
pub struct Definition<'a> {
    pub name: &'a str,
    pub object: &'a str,
    pub filter: &'a str,
    pub group_by: &'a [String],
    pub measures: &'a [String],
    pub chart: ChartKind,
}

/// A measure named as a report names it.
enum Named<'a> {
    Count,
    Of(Measure, &'a str),
}

fn named(measure: &str) -> Option<Named<'_>> {
    if measure == "count" {
        return Some(Named::Count);
    }
    let (kind, field) = measure.split_once(':')?;
    let measure = Measure::parse(kind)?;
    // One field name: no list, no second part.
    let one_field = !field.is_empty() && !field.contains([',', ':']);
    one_field.then_some(Named::Of(measure, field))
}

/// The aggregate query of a report's parts (each may be empty).
pub fn aggregate_query(filter: &str, group_by: &[String], measures: &[String]) -> String {
    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in measures {
        if let Some(Named::Of(kind, field)) = named(m) {
            by_kind.entry(kind.key()).or_default().push(field);
        }
    }
    let mut extra = form_urlencoded::Serializer::new(String::new());
    if !group_by.is_empty() {
        extra.append_pair("group_by", &group_by.join(","));
    }
    for (kind, fields) in by_kind {
        extra.append_pair(kind, &fields.join(","));
    }
    let extra = extra.finish();
    match (filter.is_empty(), extra.is_empty()) {
        (true, _) => extra,
        (false, true) => filter.to_string(),
        (false, false) => format!("{filter}&{extra}"),
    }
}

/// Every problem with a report's definition, by field, as `actor` sees the object.
pub fn check(app: &AppState, actor: &Actor, d: &Definition<'_>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if d.name.trim().is_empty() || d.name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if app.records.schema().object(d.object).is_none() {
        errors.push(FieldError::new(
            "object",
            format!("there is no object named '{}'", d.object),
        ));
        return errors;
    }
    let part = |field: &str, query: &str| {
        app.records
            .check_aggregate(actor, d.object, query)
            .err()
            .map(|e| FieldError::new(field, e.to_string()))
    };
    if let Some(key) = form_urlencoded::parse(d.filter.as_bytes())
        .map(|(k, _)| k)
        .find(|k| k != "q" && !k.starts_with("filter["))
    {
        errors.push(FieldError::new(
            "filter",
            format!("takes filter[field] and q only, not '{key}'"),
        ));
    } else {
        errors.extend(part("filter", d.filter));
    }
    if d.group_by.len() > 2 {
        errors.push(FieldError::new("group_by", "takes at most two keys"));
    } else if let Some(bad) = d.group_by.iter().find(|k| k.contains(',')) {
        errors.push(FieldError::new(
            "group_by",
            format!("'{bad}' is not one key: list keys as separate items"),
        ));
    } else {
        errors.extend(part("group_by", &aggregate_query("", d.group_by, &[])));
    }
    let unique: BTreeSet<&String> = d.measures.iter().collect();
    if d.measures.is_empty() || d.measures.len() > MAX_MEASURES + 1 {
        errors.push(FieldError::new(
            "measures",
            format!("must name 1 to {} measures", MAX_MEASURES + 1),
        ));
    } else if unique.len() < d.measures.len() {
        errors.push(FieldError::new("measures", "names a measure twice"));
    } else if let Some(bad) = d.measures.iter().find(|m| named(m).is_none()) {
        errors.push(FieldError::new(
            "measures",
            format!("'{bad}' is not count, sum:<field>, avg:<field>, min:<field> or max:<field>"),
        ));
    } else {
        errors.extend(part("measures", &aggregate_query("", &[], d.measures)));
    }
    match d.chart {
        ChartKind::Pie if d.group_by.len() != 1 => errors.push(FieldError::new(
            "chart",
            "a pie needs exactly one group_by key",
        )),
        ChartKind::Line if d.group_by.is_empty() => errors.push(FieldError::new(
            "chart",
            "a line needs a group_by key, as created_at:month",
        )),
        _ => {}
    }
    errors
}

fn report_of(row: &sqlx::any::AnyRow) -> Result<Report, sqlx::Error> {
    let list = |name: &str| -> Result<Vec<String>, sqlx::Error> {
        let text: String = row.try_get(name)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    let chart: String = row.try_get("chart")?;
    Ok(Report {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        object: row.try_get("object")?,
        filter: row.try_get("filter")?,
        group_by: list("group_by")?,
        measures: list("measures")?,
        chart: serde_json::from_value(Value::String(chart)).unwrap_or_default(),
        shared: row.try_get::<i64, _>("shared")? != 0,
        owner: row.try_get("owner_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str =
    "id, name, object, filter, group_by, measures, chart, shared, owner_id, created_at, updated_at";

/// The report if `user` may open it (their own, or shared).
pub async fn visible(db: &Db, user: &str, id: &str) -> Result<Option<Report>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reports WHERE id = $1 AND (owner_id = $2 OR shared = 1)"
    )))
    .bind(id)
    .bind(user)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(report_of).transpose()
}

/// A page of the reports `user` may open, by name then id, after `(name, id)`.
pub async fn list(
    db: &Db,
    user: &str,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<Report>, sqlx::Error> {
    let (name, id) = after.unwrap_or_default();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reports WHERE (owner_id = $1 OR shared = 1) \
         AND (name > $2 OR (name = $2 AND id > $3)) ORDER BY name, id LIMIT {}",
        limit + 1
    )))
    .bind(user)
    .bind(&name)
    .bind(&id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(report_of).collect()
}

/// Stores a report (new, or replacing one with the same id).
pub async fn save(db: &Db, r: &Report) -> Result<(), sqlx::Error> {
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialise");
    let chart = serde_json::to_value(r.chart).expect("a chart kind serialises");
    sqlx::query(
        "INSERT INTO reports (id, name, object, filter, group_by, measures, chart, shared, owner_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, object = excluded.object, filter = excluded.filter, \
         group_by = excluded.group_by, measures = excluded.measures, chart = excluded.chart, shared = excluded.shared, \
         updated_at = excluded.updated_at",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.object)
    .bind(&r.filter)
    .bind(json(&r.group_by))
    .bind(json(&r.measures))
    .bind(chart.as_str().unwrap_or("table").to_string())
    .bind(i64::from(r.shared))
    .bind(&r.owner)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reports WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A new report's envelope.
pub fn new_report(owner: &str) -> Report {
    let now = db::now();
    Report {
        id: db::new_id(),
        name: String::new(),
        object: String::new(),
        filter: String::new(),
        group_by: Vec::new(),
        measures: vec!["count".into()],
        chart: ChartKind::Table,
        shared: false,
        owner: owner.to_string(),
        created_at: now.clone(),
        updated_at: now,
    }
}

/// A report's rows as the viewer may read them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResult {
    pub report: Report,
    /// How each measure is headed, in the report's order.
    pub columns: Vec<Column>,
    /// One row per group. Time periods (a key such as `created_at:month`) come oldest
    /// first; other groups by their first measure, largest first.
    pub rows: Vec<ResultRow>,
    /// More than 1,000 groups exist; the smallest were left out.
    pub truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Column {
    /// As the report names it: `count`, `sum:amount`.
    pub measure: String,
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResultRow {
    /// Each group key's value (`null`: records without one).
    #[schema(value_type = Object)]
    pub key: Map<String, Value>,
    /// Each group key's value as people read it: a user's or department's name, a
    /// record's title (when the viewer may read it), `(none)`.
    pub labels: BTreeMap<String, String>,
    /// Each measure's value (`null`: no record of the group has one).
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
}

/// Runs `report` with `actor`'s rights.
pub async fn run(
    app: &AppState,
    actor: &Actor,
    report: Report,
) -> Result<ReportResult, RecordError> {
    let query = aggregate_query(&report.filter, &report.group_by, &report.measures);
    let found = app.records.aggregate(actor, &report.object, &query).await?;
    let labels = Labels::lookup(app, actor, &report, &found.groups).await;
    let schema = app.records.schema();
    let object = schema.object(&report.object);
    let columns = report
        .measures
        .iter()
        .map(|m| Column {
            measure: m.clone(),
            label: match named(m) {
                Some(Named::Of(kind, field)) => {
                    let label = object
                        .as_ref()
                        .and_then(|o| o.field(field).map(|f| f.label.clone()))
                        .unwrap_or_else(|| field.to_string());
                    format!("{} of {label}", capitalised(kind.key()))
                }
                _ => "Count".into(),
            },
        })
        .collect();
    let mut rows: Vec<ResultRow> = found
        .groups
        .into_iter()
        .map(|g| {
            let values = report
                .measures
                .iter()
                .map(|m| {
                    let value = match named(m) {
                        Some(Named::Of(kind, field)) => {
                            let answers = match kind {
                                Measure::Sum => &g.sums,
                                Measure::Avg => &g.avg,
                                Measure::Min => &g.min,
                                Measure::Max => &g.max,
                            };
                            answers.get(field).cloned().unwrap_or(Value::Null)
                        }
                        _ => Value::from(g.count),
                    };
                    (m.clone(), value)
                })
                .collect();
            let labels = g
                .key
                .iter()
                .map(|(k, v)| (k.clone(), labels.name(k, v)))
                .collect();
            ResultRow {
                key: g.key,
                labels,
                values,
            }
        })
        .collect();
    if report.group_by.first().is_some_and(|k| k.contains(':')) {
        let key = |r: &ResultRow| -> Vec<String> {
            report
                .group_by
                .iter()
                .map(|k| {
                    r.key
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("\u{10FFFF}")
                        .to_string()
                })
                .collect()
        };
        rows.sort_by_key(key);
    } else {
        // The largest by the first measure (a "by owner" report of won amounts puts
        // the best seller first); the sort is stable, so ties keep the count order.
        let first = |r: &ResultRow| r.values.get(&report.measures[0]).and_then(Value::as_f64);
        rows.sort_by(|a, b| match (first(a), first(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (x, y) => y.is_some().cmp(&x.is_some()),
        });
    }
    Ok(ReportResult {
        report,
        columns,
        rows,
        truncated: found.truncated,
    })
}

fn capitalised(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The names group values stand for, looked up once per run.
struct Labels {
    /// Per group key, value -> name.
    names: HashMap<String, HashMap<String, String>>,
}

impl Labels {
    async fn lookup(
        app: &AppState,
        actor: &Actor,
        report: &Report,
        groups: &[crate::records::service::Group],
    ) -> Labels {
        let mut names = HashMap::new();
        let schema = app.records.schema();
        let Some(object) = schema.object(&report.object) else {
            return Labels { names };
        };
        for key in &report.group_by {
            let values: BTreeSet<&str> = groups
                .iter()
                .filter_map(|g| g.key.get(key).and_then(Value::as_str))
                .collect();
            let field = object.field(key);
            let kind = field.map(|f| f.kind);
            let found: HashMap<String, String> = if key == "owner" || kind == Some(FieldType::User)
            {
                let users = crate::web::view::user_names(app).await;
                values
                    .iter()
                    .filter_map(|v| users.get(*v).map(|n| (v.to_string(), n.clone())))
                    .collect()
            } else if key == "department" {
                app.access
                    .list_departments()
                    .await
                    .map(|ds| ds.into_iter().map(|d| (d.id, d.name)).collect())
                    .unwrap_or_default()
            } else if let Some(target) = field
                .filter(|f| f.kind == FieldType::Reference)
                .and_then(|f| f.target.as_deref())
            {
                let ids: Vec<&str> = values.iter().copied().collect();
                app.records.titles(actor, target, &ids).await
            } else {
                HashMap::new()
            };
            names.insert(key.clone(), found);
        }
        Labels { names }
    }

    fn name(&self, key: &str, value: &Value) -> String {
        match value {
            Value::Null => "(none)".into(),
            Value::String(s) => self
                .names
                .get(key)
                .and_then(|n| n.get(s))
                .cloned()
                .unwrap_or_else(|| s.clone()),
            Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
            other => other.to_string(),
        }
    }
}

/// What a chart of the result shows for one measure: categories from the first group
/// key, a series per value of the second (the eight largest), else one series.
pub fn chart_data(result: &ReportResult, measure: &str) -> ChartData {
    let label = result
        .columns
        .iter()
        .find(|c| c.measure == measure)
        .map(|c| c.label.clone())
        .unwrap_or_default();
    let first = result.report.group_by.first();
    let second = result.report.group_by.get(1);
    let label_of = |row: &ResultRow, key: Option<&String>| -> String {
        key.and_then(|k| row.labels.get(k).cloned())
            .unwrap_or_else(|| label.clone())
    };
    let mut categories: Vec<String> = Vec::new();
    let mut series: Vec<String> = Vec::new();
    for row in &result.rows {
        let c = label_of(row, first);
        if !categories.contains(&c) {
            categories.push(c);
        }
        let s = label_of(row, second);
        if !series.contains(&s) && series.len() < 8 {
            series.push(s);
        }
    }
    let mut values = vec![vec![None; categories.len()]; series.len()];
    for row in &result.rows {
        let (c, s) = (label_of(row, first), label_of(row, second));
        let (Some(ci), Some(si)) = (
            categories.iter().position(|x| *x == c),
            series.iter().position(|x| *x == s),
        ) else {
            continue;
        };
        if let Some(v) = row.values.get(measure).and_then(Value::as_f64) {
            let cell: &mut Option<f64> = &mut values[si][ci];
            *cell = Some(cell.unwrap_or(0.0) + v);
        }
    }
    ChartData {
        title: format!("{} · {label}", result.report.name),
        categories,
        series: series.into_iter().zip(values).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reports_parts_make_one_aggregate_query() {
        let q = aggregate_query(
            "filter[status]=won",
            &["owner".into(), "close_date:month".into()],
            &[
                "count".into(),
                "sum:amount".into(),
                "avg:amount".into(),
                "sum:probability".into(),
            ],
        );
        assert_eq!(
            q,
            "filter[status]=won&group_by=owner%2Cclose_date%3Amonth&avg=amount&sum=amount%2Cprobability"
        );
        assert_eq!(aggregate_query("", &[], &["count".into()]), "");
        assert!(named("median:amount").is_none());
        assert!(named("sum").is_none());
    }
}
