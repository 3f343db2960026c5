//! Dashboards: a named set of saved reports shown together (up to twelve tiles),
//! private or shared. Like a report, a dashboard is run by whoever opens it, with
//! their rights: each tile is its report run for the viewer, and a tile whose report
//! the viewer may not open (a colleague's private one) says so instead.

use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::{Report, ReportResult};
use crate::api::AppState;
use crate::api::error::FieldError;
use crate::auth::Actor;
use crate::db::{self, Db};

/// Most reports on one dashboard.
pub const MAX_TILES: usize = 12;
/// Most dashboards a list answers.
pub const MAX_LISTED: i64 = 200;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub id: String,
    pub name: String,
    /// The reports shown, in order (their ids).
    pub reports: Vec<String>,
    /// Every signed-in user may open it (each tile with their own rights).
    pub shared: bool,
    pub owner: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One tile as the viewer sees it: the report's rows, or why there are none.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tile {
    pub report: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ReportResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardResult {
    pub dashboard: Dashboard,
    pub tiles: Vec<Tile>,
}

const COLUMNS: &str = "id, name, reports, shared, owner_id, created_at, updated_at";

fn dashboard_of(row: &sqlx::any::AnyRow) -> Result<Dashboard, sqlx::Error> {
    let reports: String = row.try_get("reports")?;
    Ok(Dashboard {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        reports: serde_json::from_str(&reports).unwrap_or_default(),
        shared: row.try_get::<i64, _>("shared")? != 0,
        owner: row.try_get("owner_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The dashboard if `user` may open it (their own, or shared).
pub async fn visible(db: &Db, user: &str, id: &str) -> Result<Option<Dashboard>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dashboards WHERE id = $1 AND (owner_id = $2 OR shared = 1)"
    )))
    .bind(id)
    .bind(user)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(dashboard_of).transpose()
}

/// The dashboards `user` may open, by name (at most [`MAX_LISTED`]).
pub async fn list(db: &Db, user: &str) -> Result<Vec<Dashboard>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dashboards WHERE owner_id = $1 OR shared = 1 ORDER BY name, id LIMIT {MAX_LISTED}"
    )))
    .bind(user)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(dashboard_of).collect()
}

pub async fn save(db: &Db, d: &Dashboard) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dashboards (id, name, reports, shared, owner_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, reports = excluded.reports, \
         shared = excluded.shared, updated_at = excluded.updated_at",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(serde_json::to_string(&d.reports).expect("strings serialise"))
    .bind(i64::from(d.shared))
    .bind(&d.owner)
    .bind(&d.created_at)
    .bind(&d.updated_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM dashboards WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub fn new_dashboard(owner: &str) -> Dashboard {
    let now = db::now();
    Dashboard {
        id: db::new_id(),
        name: String::new(),
        reports: Vec::new(),
        shared: false,
        owner: owner.to_string(),
        created_at: now.clone(),
        updated_at: now,
    }
}

/// Every problem with a dashboard, by field: its name, and reports the author may
/// open, each once, at most [`MAX_TILES`].
pub async fn check(
    app: &AppState,
    actor: &Actor,
    d: &Dashboard,
) -> Result<Vec<FieldError>, sqlx::Error> {
    let mut errors = Vec::new();
    if d.name.trim().is_empty() || d.name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let mut seen = std::collections::HashSet::new();
    if d.reports.is_empty() || d.reports.len() > MAX_TILES {
        errors.push(FieldError::new(
            "reports",
            format!("must name 1 to {MAX_TILES} reports"),
        ));
        return Ok(errors);
    }
    for id in &d.reports {
        if !seen.insert(id) {
            errors.push(FieldError::new(
                "reports",
                format!("names report {id} twice"),
            ));
        } else if super::visible(&app.db, &actor.user_id, id).await?.is_none() {
            errors.push(FieldError::new(
                "reports",
                format!("there is no report {id} you may open"),
            ));
        }
    }
    Ok(errors)
}

/// Runs each tile for `actor`.
pub async fn run(
    app: &AppState,
    actor: &Actor,
    dashboard: Dashboard,
) -> Result<DashboardResult, sqlx::Error> {
    let mut tiles = Vec::with_capacity(dashboard.reports.len());
    for id in &dashboard.reports {
        let tile = match super::visible(&app.db, &actor.user_id, id).await? {
            None => Tile {
                report: id.clone(),
                result: None,
                error: Some("this report is not shared with you, or was removed".into()),
            },
            Some(report) => match super::run(app, actor, report).await {
                Ok(result) => Tile {
                    report: id.clone(),
                    result: Some(result),
                    error: None,
                },
                Err(e) => Tile {
                    report: id.clone(),
                    result: None,
                    error: Some(e.to_string()),
                },
            },
        };
        tiles.push(tile);
    }
    Ok(DashboardResult { dashboard, tiles })
}

/// A report's first measure: what its chart shows on a dashboard.
pub fn first_measure(report: &Report) -> &str {
    report
        .measures
        .first()
        .map(String::as_str)
        .unwrap_or("count")
}
