//! Reports as pages: the KPI dashboard of a period (figures, the managers' table and
//! a chart of won amounts against quota), the saved reports list, and one report
//! drawn with its rows. The same services as `/api/v1/kpis` and `/api/v1/reports`,
//! with the visitor's rights; charts are the server's SVG, inline.

use askama::Template;
use axum::extract::{Path, RawQuery, State};

use super::i18n::Tr;
use super::{Visitor, WebResult, render};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::reports::chart::{self, ChartData, ChartKind};
use crate::reports::kpis::{self, Kpis};

pub struct Tile {
    pub label: String,
    pub value: String,
}

pub struct ManagerRow {
    pub name: String,
    pub cells: Vec<String>,
}

pub struct ReportLink {
    pub href: String,
    pub name: String,
    pub object: String,
}

#[derive(Template)]
#[template(path = "web/reports.html")]
struct DashboardPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    from: String,
    to: String,
    tiles: Vec<Tile>,
    headers: Vec<String>,
    managers: Vec<ManagerRow>,
    chart: String,
    reports: Vec<ReportLink>,
    dashboards: Vec<ReportLink>,
}

pub struct TileView {
    pub name: String,
    pub href: String,
    /// The chart, or why there is none.
    pub chart: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct SavedDashboardPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    id: String,
    /// The visitor owns it or is an admin: it may be removed.
    can_change: bool,
    name: String,
    tiles: Vec<TileView>,
}

#[derive(Template)]
#[template(path = "web/report.html")]
struct ReportPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    id: String,
    /// The visitor owns it or is an admin: it may be removed.
    can_change: bool,
    name: String,
    chart: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    truncated: bool,
}

/// A figure as the visitor reads it: whole, or to one place, in their digits.
fn number(tr: &Tr, value: f64) -> String {
    let text = if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    tr.digits(&text)
}

fn percent(tr: &Tr, value: Option<f64>) -> String {
    value
        .map(|p| format!("{}%", number(tr, p)))
        .unwrap_or_else(|| "–".into())
}

/// `GET /reports?from=&to=&department=`.
pub async fn dashboard(
    State(app): State<AppState>,
    v: Visitor,
    RawQuery(query): RawQuery,
) -> WebResult {
    let tr = &v.tr;
    let period = kpis::Period::parse(&app, query.as_deref()).map_err(|e| v.fail(e))?;
    let k: Kpis = kpis::compute(&app, &v.actor, &period)
        .await
        .map_err(|e| v.fail(e))?;
    let t = &k.totals;
    let mut tiles = vec![
        Tile {
            label: tr.t("kpi-calls"),
            value: number(tr, t.calls as f64),
        },
        Tile {
            label: tr.t("kpi-meetings"),
            value: number(tr, t.meetings as f64),
        },
        Tile {
            label: tr.t("kpi-won"),
            value: number(tr, t.won_amount),
        },
        Tile {
            label: tr.t("kpi-attainment"),
            value: percent(tr, t.attainment),
        },
        Tile {
            label: tr.t("kpi-leads"),
            value: number(tr, t.leads as f64),
        },
        Tile {
            label: tr.t("kpi-prospect-rate"),
            value: percent(tr, t.prospect_rate),
        },
    ];
    if let Some(s) = &k.satisfaction {
        if let Some(csat) = &s.csat {
            tiles.push(Tile {
                label: tr.t("kpi-csat"),
                value: percent(tr, Some(csat.score)),
            });
        }
        if let Some(nps) = &s.nps {
            tiles.push(Tile {
                label: tr.t("kpi-nps"),
                value: number(tr, nps.score),
            });
        }
    }
    if let Some(c) = &k.customers {
        tiles.push(Tile {
            label: tr.t("kpi-new-customers"),
            value: number(tr, c.new_customers as f64),
        });
        tiles.push(Tile {
            label: tr.t("kpi-retention"),
            value: percent(tr, c.retention_share),
        });
    }
    let headers = [
        "kpi-manager",
        "kpi-calls",
        "kpi-meetings",
        "kpi-seconds-per-call",
        "kpi-deals-won",
        "kpi-won",
        "kpi-quota",
        "kpi-attainment",
        "kpi-leads",
        "kpi-prospects",
    ]
    .map(|key| tr.t(key))
    .to_vec();
    let managers = k
        .managers
        .iter()
        .map(|m| ManagerRow {
            name: m.name.clone(),
            cells: vec![
                number(tr, m.calls as f64),
                number(tr, m.meetings as f64),
                m.seconds_per_call
                    .map(|s| number(tr, s))
                    .unwrap_or_else(|| "–".into()),
                number(tr, m.deals_won as f64),
                number(tr, m.won_amount),
                m.quota.map(|q| number(tr, q)).unwrap_or_else(|| "–".into()),
                percent(tr, m.attainment),
                number(tr, m.leads as f64),
                number(tr, m.prospects as f64),
            ],
        })
        .collect();
    let chart = chart::svg(
        ChartKind::Bar,
        &ChartData {
            title: tr.t("kpi-won-against-quota"),
            categories: k.managers.iter().map(|m| m.name.clone()).collect(),
            series: vec![
                (
                    tr.t("kpi-won"),
                    k.managers.iter().map(|m| Some(m.won_amount)).collect(),
                ),
                (
                    tr.t("kpi-quota"),
                    k.managers.iter().map(|m| m.quota).collect(),
                ),
            ],
        },
    );
    let reports = crate::reports::list(&app.db, &v.actor.user_id, None, 100)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .into_iter()
        .map(|r| ReportLink {
            href: format!("/reports/{}", r.id),
            name: r.name,
            object: r.object,
        })
        .collect();
    let dashboards = crate::reports::dashboards::list(&app.db, &v.actor.user_id)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .into_iter()
        .map(|d| ReportLink {
            href: format!("/dashboards/{}", d.id),
            object: tr.t1("dashboard-tiles", "count", &d.reports.len().to_string()),
            name: d.name,
        })
        .collect();
    Ok(render(&DashboardPage {
        v: &v,
        tr,
        from: k.from.clone(),
        to: k.to.clone(),
        tiles,
        headers,
        managers,
        chart,
        reports,
        dashboards,
    }))
}

/// `GET /dashboards/{id}`: each tile's chart, run with the visitor's rights.
pub async fn saved_dashboard(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
) -> WebResult {
    use crate::reports::dashboards;
    let saved = dashboards::visible(&app.db, &v.actor.user_id, &id)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .ok_or_else(|| v.fail(ApiError::not_found("there is no such dashboard")))?;
    let name = saved.name.clone();
    let can_change = crate::reports::routes::may_change(&app, &v.actor, &saved.owner);
    let result = dashboards::run(&app, &v.actor, saved)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?;
    let tiles = result
        .tiles
        .into_iter()
        .map(|t| match t.result {
            Some(r) => {
                let kind = match r.report.chart {
                    ChartKind::Table => ChartKind::Bar,
                    other => other,
                };
                let measure = dashboards::first_measure(&r.report).to_string();
                TileView {
                    name: r.report.name.clone(),
                    href: format!("/reports/{}", t.report),
                    chart: chart::svg(kind, &crate::reports::chart_data(&r, &measure)),
                    error: String::new(),
                }
            }
            None => TileView {
                name: String::new(),
                href: String::new(),
                chart: String::new(),
                error: t.error.unwrap_or_default(),
            },
        })
        .collect();
    Ok(render(&SavedDashboardPage {
        v: &v,
        tr: &v.tr,
        id,
        can_change,
        name,
        tiles,
    }))
}

/// `GET /reports/{id}`: the report's chart and rows.
pub async fn report(State(app): State<AppState>, v: Visitor, Path(id): Path<String>) -> WebResult {
    let tr = &v.tr;
    let saved = crate::reports::visible(&app.db, &v.actor.user_id, &id)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .ok_or_else(|| v.fail(ApiError::not_found("there is no such report")))?;
    let kind = match saved.chart {
        ChartKind::Table => ChartKind::Bar,
        other => other,
    };
    let can_change = crate::reports::routes::may_change(&app, &v.actor, &saved.owner);
    let first = saved.measures[0].clone();
    let keys = saved.group_by.clone();
    let result = crate::reports::run(&app, &v.actor, saved)
        .await
        .map_err(|e| v.fail(e))?;
    let chart = chart::svg(kind, &crate::reports::chart_data(&result, &first));
    let mut headers = keys.clone();
    headers.extend(result.columns.iter().map(|c| c.label.clone()));
    let rows = result
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| r.labels.get(k).cloned().unwrap_or_default())
                .collect();
            cells.extend(result.columns.iter().map(|c| {
                r.values
                    .get(&c.measure)
                    .and_then(serde_json::Value::as_f64)
                    .map(|n| number(tr, n))
                    .unwrap_or_else(|| "–".into())
            }));
            cells
        })
        .collect();
    Ok(render(&ReportPage {
        v: &v,
        tr,
        id,
        can_change,
        name: result.report.name.clone(),
        chart,
        headers,
        rows,
        truncated: result.truncated,
    }))
}
