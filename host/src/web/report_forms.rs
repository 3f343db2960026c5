//! Making and removing saved reports and dashboards from the reports pages: a
//! report's form offers what the visitor may see of the chosen object (fields they
//! cannot read are not offered, and the server checks again); every refused part is
//! shown beside its input. The same functions as `/api/v1/reports` and
//! `/api/v1/dashboards`.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

use super::i18n::Tr;
use super::{Choice, FormData, Visitor, WebResult, beside, render};
use crate::api::AppState;
use crate::api::error::{ApiError, FieldError};
use crate::records::metadata::{FieldType, ObjectType};
use crate::reports::chart::ChartKind;
use crate::reports::routes::{self as api, DashboardInput, ReportInput};

/// What the report form holds: as typed, or the defaults.
struct Draft {
    name: String,
    object: String,
    group_by: Vec<String>,
    measures: Vec<String>,
    filter: String,
    chart: String,
    shared: bool,
}

#[derive(Template)]
#[template(path = "web/report_form.html")]
struct ReportForm<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    objects: Vec<Choice>,
    object: String,
    name: String,
    first_group: Vec<Choice>,
    second_group: Vec<Choice>,
    measures: Vec<Choice>,
    filter: String,
    charts: Vec<Choice>,
    shared: bool,
    has_errors: bool,
    name_error: Option<String>,
    group_error: Option<String>,
    measures_error: Option<String>,
    filter_error: Option<String>,
    chart_error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/dashboard_form.html")]
struct DashboardForm<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    name: String,
    reports: Vec<Choice>,
    shared: bool,
    has_errors: bool,
    name_error: Option<String>,
    reports_error: Option<String>,
}

/// `GET /reports/new[?object=]`.
pub async fn new_report(
    State(app): State<AppState>,
    v: Visitor,
    RawQuery(query): RawQuery,
) -> WebResult {
    let object = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "object")
        .map(|(_, o)| o.into_owned())
        .unwrap_or_else(|| "deals".into());
    let draft = Draft {
        name: String::new(),
        object,
        group_by: Vec::new(),
        measures: vec!["count".into()],
        filter: String::new(),
        chart: "bar".into(),
        shared: false,
    };
    report_form(&app, &v, &draft, &[], StatusCode::OK)
}

fn report_form(
    app: &AppState,
    v: &Visitor,
    draft: &Draft,
    errors: &[FieldError],
    status: StatusCode,
) -> WebResult {
    let tr = &v.tr;
    let schema = app.records.schema();
    let mut objects: Vec<Choice> = schema
        .objects
        .values()
        .filter(|o| app.records.view_of(&v.actor, &o.name).is_ok())
        .map(|o| Choice {
            value: o.name.clone(),
            label: tr.object(&o.name, &o.label_plural),
            selected: o.name == draft.object,
        })
        .collect();
    objects.sort_by(|a, b| a.label.cmp(&b.label));
    // What the visitor sees of the object: hidden fields are not in `visible`.
    let visible = app
        .records
        .view_of(&v.actor, &draft.object)
        .map(|(visible, _)| visible)
        .map_err(|e| v.fail(e))?;
    let keys = group_keys(tr, &visible);
    let groups = |chosen: Option<&String>| {
        let mut choices = vec![Choice {
            value: String::new(),
            label: tr.t("report-form-no-group"),
            selected: chosen.is_none(),
        }];
        choices.extend(keys.iter().map(|(value, label)| Choice {
            value: value.clone(),
            label: label.clone(),
            selected: chosen == Some(value),
        }));
        choices
    };
    let measures = measure_choices(tr, &visible)
        .into_iter()
        .map(|(value, label)| Choice {
            selected: draft.measures.contains(&value),
            value,
            label,
        })
        .collect();
    let charts = ["table", "bar", "line", "pie"]
        .into_iter()
        .map(|c| Choice {
            value: c.into(),
            label: tr.t(&format!("report-chart-{c}")),
            selected: draft.chart == c,
        })
        .collect();
    let error = |field: &str| beside(errors, field);
    let page = ReportForm {
        v,
        tr,
        objects,
        object: draft.object.clone(),
        name: draft.name.clone(),
        first_group: groups(draft.group_by.first()),
        second_group: groups(draft.group_by.get(1)),
        measures,
        filter: draft.filter.clone(),
        charts,
        shared: draft.shared,
        has_errors: !errors.is_empty(),
        name_error: error("name").or_else(|| error("object")),
        group_error: error("group_by"),
        measures_error: error("measures"),
        filter_error: error("filter"),
        chart_error: error("chart"),
    };
    Ok((status, render(&page)).into_response())
}

/// The keys a report of `object` can be grouped by: owner, department, fields with
/// few distinct values, and dates by day, month or year.
fn group_keys(tr: &Tr, object: &ObjectType) -> Vec<(String, String)> {
    let mut keys = vec![
        ("owner".to_string(), tr.t("record-owner")),
        ("department".to_string(), tr.t("admin-department")),
    ];
    let periods = |name: &str, label: &str| {
        ["month", "year", "day"].map(|p| {
            (
                format!("{name}:{p}"),
                format!("{label} ({})", tr.t(&format!("report-period-{p}"))),
            )
        })
    };
    for f in &object.fields {
        let label = tr.field(&object.name, &f.name, &f.label);
        match f.kind {
            FieldType::Date | FieldType::Datetime => keys.extend(periods(&f.name, &label)),
            kind if kind.indexable() && kind != FieldType::Email && kind != FieldType::Phone => {
                keys.push((f.name.clone(), label))
            }
            _ => {}
        }
    }
    keys.extend(periods("created_at", &tr.t("record-created")));
    keys
}

/// `count`, then the sum, average, lowest and highest of each number field.
fn measure_choices(tr: &Tr, object: &ObjectType) -> Vec<(String, String)> {
    let mut measures = vec![("count".to_string(), tr.t("report-measure-count"))];
    for f in object.fields.iter().filter(|f| {
        matches!(
            f.kind,
            FieldType::Integer | FieldType::Decimal | FieldType::Currency
        )
    }) {
        let label = tr.field(&object.name, &f.name, &f.label);
        for m in ["sum", "avg", "min", "max"] {
            measures.push((
                format!("{m}:{}", f.name),
                tr.t1(&format!("report-measure-{m}"), "field", &label),
            ));
        }
    }
    measures
}

/// `POST /reports`: a new report, then its page; refused parts beside their inputs.
pub async fn create_report(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let draft = Draft {
        name: form.get("name").unwrap_or_default().trim().to_string(),
        object: form.get("object").unwrap_or_default().to_string(),
        group_by: ["group_1", "group_2"]
            .iter()
            .filter_map(|k| form.get(k).filter(|g| !g.is_empty()))
            .map(str::to_string)
            .collect(),
        measures: form.all("measures").map(str::to_string).collect(),
        filter: form.get("filter").unwrap_or_default().trim().to_string(),
        chart: form.get("chart").unwrap_or("table").to_string(),
        shared: form.get("shared") == Some("1"),
    };
    let chart = match draft.chart.as_str() {
        "bar" => ChartKind::Bar,
        "line" => ChartKind::Line,
        "pie" => ChartKind::Pie,
        _ => ChartKind::Table,
    };
    let input = ReportInput {
        name: draft.name.clone(),
        object: draft.object.clone(),
        filter: draft.filter.clone(),
        group_by: draft.group_by.clone(),
        measures: Some(draft.measures.clone()),
        chart,
        shared: draft.shared,
    };
    match api::new_report(&app, &v.actor, input).await {
        Ok(report) => Ok(Redirect::to(&format!("/reports/{}", report.id)).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            report_form(&app, &v, &draft, &e.errors, e.status)
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `GET /dashboards/new`.
pub async fn new_dashboard(State(app): State<AppState>, v: Visitor) -> WebResult {
    dashboard_form(&app, &v, "", &[], false, &[], StatusCode::OK).await
}

async fn dashboard_form(
    app: &AppState,
    v: &Visitor,
    name: &str,
    chosen: &[String],
    shared: bool,
    errors: &[FieldError],
    status: StatusCode,
) -> WebResult {
    let reports = crate::reports::list(&app.db, &v.actor.user_id, None, 200)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .into_iter()
        .map(|r| Choice {
            selected: chosen.contains(&r.id),
            value: r.id,
            label: r.name,
        })
        .collect();
    let error = |field: &str| beside(errors, field);
    let page = DashboardForm {
        v,
        tr: &v.tr,
        name: name.to_string(),
        reports,
        shared,
        has_errors: !errors.is_empty(),
        name_error: error("name"),
        reports_error: error("reports"),
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /dashboards`: a new dashboard of the chosen reports, then its page.
pub async fn create_dashboard(
    State(app): State<AppState>,
    v: Visitor,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let input = DashboardInput {
        name: form.get("name").unwrap_or_default().trim().to_string(),
        reports: form.all("reports").map(str::to_string).collect(),
        shared: form.get("shared") == Some("1"),
    };
    let (name, chosen, shared) = (input.name.clone(), input.reports.clone(), input.shared);
    match api::new_dashboard(&app, &v.actor, input).await {
        Ok(d) => Ok(Redirect::to(&format!("/dashboards/{}", d.id)).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            dashboard_form(&app, &v, &name, &chosen, shared, &e.errors, e.status).await
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `POST /reports/{id}/delete` and `POST /dashboards/{id}/delete` (owner or admin).
pub async fn delete_report(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    api::remove_report(&app, &v.actor, &id)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to("/reports").into_response())
}

pub async fn delete_dashboard(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    api::remove_dashboard(&app, &v.actor, &id)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to("/reports").into_response())
}
