//! HTTP API of saved reports and the KPI dashboard.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chart::{self, ChartKind};
use super::dashboards::{self, Dashboard, DashboardResult};
use super::kpi_settings::KpiSettings;
use super::kpis::{self, Kpis};
use super::{Definition, Report, ReportResult};
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::api::{AppState, cut_page, paging, take_param};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reports, create_report))
        .routes(routes!(get_report, update_report, delete_report))
        .routes(routes!(report_result))
        .routes(routes!(report_chart))
        .routes(routes!(kpi_dashboard))
        .routes(routes!(get_kpi_settings, set_kpi_settings))
        .routes(routes!(list_dashboards, create_dashboard))
        .routes(routes!(get_dashboard, update_dashboard, delete_dashboard))
        .routes(routes!(dashboard_result))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardInput {
    pub name: String,
    /// Saved reports' ids, in order (1 to 12).
    pub reports: Vec<String>,
    #[serde(default)]
    pub shared: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardPatch {
    pub name: Option<String>,
    pub reports: Option<Vec<String>>,
    pub shared: Option<bool>,
}

async fn store_dashboard(app: &AppState, actor: &Actor, d: Dashboard) -> ApiResult<Dashboard> {
    let errors = dashboards::check(app, actor, &d).await?;
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            format!("{} field(s) invalid", errors.len()),
            errors,
        ));
    }
    dashboards::save(&app.db, &d).await?;
    Ok(d)
}

async fn openable_dashboard(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Dashboard> {
    dashboards::visible(&app.db, &actor.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such dashboard"))
}

async fn changeable_dashboard(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Dashboard> {
    let d = openable_dashboard(app, actor, id).await?;
    owner_or_admin(app, actor, &d.owner, "dashboard")?;
    Ok(d)
}

/// The caller's dashboards and the shared ones, by name (at most 200).
#[utoipa::path(get, path = "/api/v1/dashboards", tag = "reports", security(("bearer" = [])),
    responses((status = 200, body = Vec<Dashboard>)))]
async fn list_dashboards(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<Dashboard>>> {
    Ok(Json(dashboards::list(&app.db, &actor.user_id).await?))
}

/// Saves a dashboard of saved reports the caller may open.
#[utoipa::path(post, path = "/api/v1/dashboards", tag = "reports", security(("bearer" = [])),
    request_body = DashboardInput,
    responses((status = 201, body = Dashboard), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_dashboard(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<DashboardInput>,
) -> ApiResult<(StatusCode, Json<Dashboard>)> {
    Ok((
        StatusCode::CREATED,
        Json(new_dashboard(&app, &actor, input).await?),
    ))
}

/// Saves a new dashboard of the caller's, its tiles checked (the API's and the
/// web page's).
pub async fn new_dashboard(
    app: &AppState,
    actor: &Actor,
    input: DashboardInput,
) -> ApiResult<Dashboard> {
    let mut d = dashboards::new_dashboard(&actor.user_id);
    d.name = input.name;
    d.reports = input.reports;
    d.shared = input.shared;
    store_dashboard(app, actor, d).await
}

#[utoipa::path(get, path = "/api/v1/dashboards/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Dashboard), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_dashboard(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Dashboard>> {
    Ok(Json(openable_dashboard(&app, &actor, &id).await?))
}

/// Changes a dashboard (its owner or an admin).
#[utoipa::path(patch, path = "/api/v1/dashboards/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DashboardPatch,
    responses(
        (status = 200, body = Dashboard),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_dashboard(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<DashboardPatch>,
) -> ApiResult<Json<Dashboard>> {
    let mut d = changeable_dashboard(&app, &actor, &id).await?;
    if let Some(v) = patch.name {
        d.name = v;
    }
    if let Some(v) = patch.reports {
        d.reports = v;
    }
    if let Some(v) = patch.shared {
        d.shared = v;
    }
    d.updated_at = crate::db::now();
    Ok(Json(store_dashboard(&app, &actor, d).await?))
}

/// Removes a dashboard (its owner or an admin); its reports stay.
#[utoipa::path(delete, path = "/api/v1/dashboards/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_dashboard(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    remove_dashboard(&app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a dashboard if the caller owns it or is an admin.
pub async fn remove_dashboard(app: &AppState, actor: &Actor, id: &str) -> ApiResult<()> {
    changeable_dashboard(app, actor, id).await?;
    dashboards::delete(&app.db, id).await?;
    Ok(())
}

/// Every tile of a dashboard run with the caller's rights; a tile whose report the
/// caller may not open (or that no longer fits what the caller sees) says why.
#[utoipa::path(get, path = "/api/v1/dashboards/{id}/result", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DashboardResult), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn dashboard_result(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<DashboardResult>> {
    let d = openable_dashboard(&app, &actor, &id).await?;
    Ok(Json(dashboards::run(&app, &actor, d).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    pub name: String,
    /// The object reported on, e.g. `deals`.
    pub object: String,
    /// A list's filters and quick search as a query string (default: every record).
    #[serde(default)]
    pub filter: String,
    /// Up to two keys (default: one group of everything).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Default `["count"]`.
    pub measures: Option<Vec<String>>,
    /// `table` (default), `bar`, `line` or `pie`.
    #[serde(default)]
    pub chart: ChartKind,
    #[serde(default)]
    pub shared: bool,
}

/// The parts to change; the rest stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportPatch {
    pub name: Option<String>,
    pub object: Option<String>,
    pub filter: Option<String>,
    pub group_by: Option<Vec<String>>,
    pub measures: Option<Vec<String>>,
    pub chart: Option<ChartKind>,
    pub shared: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    pub items: Vec<Report>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Checks a report as the caller sees its object and stores it.
async fn store(app: &AppState, actor: &Actor, report: Report) -> ApiResult<Report> {
    let errors = super::check(
        app,
        actor,
        &Definition {
            name: &report.name,
            object: &report.object,
            filter: &report.filter,
            group_by: &report.group_by,
            measures: &report.measures,
            chart: report.chart,
        },
    );
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            format!("{} field(s) invalid", errors.len()),
            errors,
        ));
    }
    super::save(&app.db, &report).await?;
    Ok(report)
}

/// The report if the caller may open it (404 otherwise: another user's private report
/// is not even confirmed to exist).
async fn openable(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Report> {
    super::visible(&app.db, &actor.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such report"))
}

/// The report if the caller may change it: its owner, or an organisation admin.
async fn changeable(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Report> {
    let report = openable(app, actor, id).await?;
    owner_or_admin(app, actor, &report.owner, "report")?;
    Ok(report)
}

/// Only the owner of a saved report or dashboard, or an organisation admin, may
/// change or remove it.
/// Whether `actor` may change or remove a report or dashboard of `owner`: its owner,
/// or an organisation admin (the web pages ask it to show their remove buttons).
pub fn may_change(app: &AppState, actor: &Actor, owner: &str) -> bool {
    owner == actor.user_id || app.access.user(actor).is_admin_of(None)
}

fn owner_or_admin(app: &AppState, actor: &Actor, owner: &str, what: &str) -> ApiResult<()> {
    if !may_change(app, actor, owner) {
        return Err(ApiError::forbidden(format!(
            "only the {what}'s owner or an admin may change it"
        )));
    }
    Ok(())
}

/// The caller's reports and those shared with everyone, by name.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ReportPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_reports(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ReportPage>> {
    let (cursor, limit) = paging(query.as_deref(), "cursor", 200, 50)?;
    let after = match cursor {
        None => None,
        Some(c) => Some(
            decode_cursor(&c)
                .ok_or_else(|| ApiError::bad_request("cursor must come from next_cursor"))?,
        ),
    };
    let items = super::list(&app.db, &actor.user_id, after, limit).await?;
    let (items, next_cursor) = cut_page(items, limit, |r| {
        let json = serde_json::json!([r.name, r.id]).to_string();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    });
    Ok(Json(ReportPage { items, next_cursor }))
}

fn decode_cursor(cursor: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Saves a report. It is checked as the caller sees the object (a field hidden from
/// the caller cannot be grouped or measured), and always runs with the viewer's rights.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", security(("bearer" = [])),
    request_body = ReportInput,
    responses((status = 201, body = Report), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_report(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<ReportInput>,
) -> ApiResult<(StatusCode, Json<Report>)> {
    Ok((
        StatusCode::CREATED,
        Json(new_report(&app, &actor, input).await?),
    ))
}

/// Saves a new report of the caller's, its definition checked against what the
/// caller sees (the API's and the web page's).
pub async fn new_report(app: &AppState, actor: &Actor, input: ReportInput) -> ApiResult<Report> {
    let mut report = super::new_report(&actor.user_id);
    report.name = input.name;
    report.object = input.object;
    report.filter = input.filter;
    report.group_by = input.group_by;
    if let Some(measures) = input.measures {
        report.measures = measures;
    }
    report.chart = input.chart;
    report.shared = input.shared;
    store(app, actor, report).await
}

#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Report), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_report(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Report>> {
    Ok(Json(openable(&app, &actor, &id).await?))
}

/// Changes a report (its owner or an admin).
#[utoipa::path(patch, path = "/api/v1/reports/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ReportPatch,
    responses(
        (status = 200, body = Report),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_report(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ReportPatch>,
) -> ApiResult<Json<Report>> {
    let mut report = changeable(&app, &actor, &id).await?;
    if let Some(v) = patch.name {
        report.name = v;
    }
    if let Some(v) = patch.object {
        report.object = v;
    }
    if let Some(v) = patch.filter {
        report.filter = v;
    }
    if let Some(v) = patch.group_by {
        report.group_by = v;
    }
    if let Some(v) = patch.measures {
        report.measures = v;
    }
    if let Some(v) = patch.chart {
        report.chart = v;
    }
    if let Some(v) = patch.shared {
        report.shared = v;
    }
    report.updated_at = crate::db::now();
    Ok(Json(store(&app, &actor, report).await?))
}

/// Removes a report (its owner or an admin).
#[utoipa::path(delete, path = "/api/v1/reports/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_report(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    remove_report(&app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a report if the caller owns it or is an admin.
pub async fn remove_report(app: &AppState, actor: &Actor, id: &str) -> ApiResult<()> {
    changeable(app, actor, id).await?;
    super::delete(&app.db, id).await?;
    Ok(())
}

/// Runs a report with the caller's rights: its rows, each group's key, labels and
/// measures.
#[utoipa::path(get, path = "/api/v1/reports/{id}/result", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ReportResult),
        (status = 400, description = "The report no longer fits the object as the caller sees it (a field removed or hidden)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn report_result(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<ReportResult>> {
    let report = openable(&app, &actor, &id).await?;
    Ok(Json(super::run(&app, &actor, report).await?))
}

/// The report drawn as an SVG chart (as its `chart` says; a table report is drawn
/// as bars), of one measure: `measure` (default the first).
#[utoipa::path(get, path = "/api/v1/reports/{id}/chart.svg", tag = "reports", security(("bearer" = [])),
    params(("id" = String, Path), ("measure" = Option<String>, Query, description = "e.g. `sum:amount`; default the report's first")),
    responses(
        (status = 200, description = "SVG", content_type = "image/svg+xml"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn report_chart(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (measure, rest) = take_param(query.as_deref(), "measure");
    if let Some((key, _)) = form_urlencoded::parse(rest.as_bytes()).next() {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter '{key}'; a chart takes measure"
        )));
    }
    let report = openable(&app, &actor, &id).await?;
    let measure = measure.unwrap_or_else(|| report.measures[0].clone());
    if !report.measures.contains(&measure) {
        return Err(ApiError::bad_request(format!(
            "the report has no measure '{measure}'; it has {}",
            report.measures.join(", ")
        )));
    }
    let kind = report.chart;
    let result = super::run(&app, &actor, report).await?;
    Ok(svg_response(chart::svg(
        kind,
        &super::chart_data(&result, &measure),
    )))
}

pub fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            // A chart is data: never run as a page of this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        svg,
    )
        .into_response()
}

/// The KPI dashboard over a period, with the caller's rights: per manager calls,
/// meetings and time per call, deals won against quota, leads against prospects;
/// customer satisfaction from surveys; new against returning customers.
#[utoipa::path(get, path = "/api/v1/kpis", tag = "reports", security(("bearer" = [])),
    params(
        ("from" = Option<String>, Query, description = "First day, YYYY-MM-DD (default the first of this month)"),
        ("to" = Option<String>, Query, description = "Day after the last, YYYY-MM-DD (default the first of next month)"),
        ("department" = Option<String>, Query, description = "Only records of this department"),
    ),
    responses((status = 200, body = Kpis), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn kpi_dashboard(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Kpis>> {
    let period = kpis::Period::parse(&app, query.as_deref())?;
    Ok(Json(kpis::compute(&app, &actor, &period).await?))
}

/// What the KPI figures count: the activity kinds that are calls and meetings, the
/// deal statuses that are won, the lead statuses that are prospects.
#[utoipa::path(get, path = "/api/v1/kpis/settings", tag = "reports", security(("bearer" = [])),
    responses((status = 200, body = KpiSettings)))]
async fn get_kpi_settings(
    State(app): State<AppState>,
    _actor: Actor,
) -> ApiResult<Json<KpiSettings>> {
    Ok(Json(KpiSettings::load(&app.db).await?))
}

/// Sets what the KPI figures count (org admins); each list names values of its
/// field's picklist.
#[utoipa::path(put, path = "/api/v1/kpis/settings", tag = "reports", security(("bearer" = [])),
    request_body = KpiSettings,
    responses(
        (status = 200, body = KpiSettings),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every refused value, by list", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_kpi_settings(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(settings): ApiJson<KpiSettings>,
) -> ApiResult<Json<KpiSettings>> {
    app.access
        .require_admin(&actor, None, "set what the KPI figures count")
        .await?;
    let errors = settings.check(&app);
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            format!("{} value(s) refused", errors.len()),
            errors,
        ));
    }
    settings.save(&app.db, &actor.user_id).await?;
    Ok(Json(settings))
}
