//! Saved list views: a user's named list of an object, kept as the list's query (quick
//! search, filters, sort, columns), to open again in one click. A view is private to
//! the user who saved it, and opening it runs the list like any other, with the
//! opener's rights. The API (`/api/v1/records/{object}/views`) and the list page call
//! these functions.

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row as _};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, FieldError};
use crate::auth::Actor;
use crate::db;

/// Longest name of a view, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Longest query a view keeps, in bytes.
pub const MAX_QUERY_BYTES: usize = 2_000;
/// Most views one user keeps of one object.
pub const MAX_PER_OBJECT: i64 = 50;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SavedView {
    pub id: String,
    pub object: String,
    pub name: String,
    /// The list's query, as `GET /api/v1/records/{object}` and the list page take it
    /// (`q`, `filter[...]`, `sort`, `columns`), without a page cursor or size.
    pub query: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewView {
    pub name: String,
    #[serde(default)]
    pub query: String,
}

/// The parts of a list query a view keeps: not the page (`cursor`, `limit`), nor
/// empty parameters (a filter left at "any").
pub fn kept(query: &str) -> String {
    let pairs = form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .filter(|(k, v)| !v.is_empty() && !matches!(k.as_ref(), "cursor" | "limit" | "_csrf"));
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The query's own parameters without `columns` (which only the pages read), for the
/// records service to check.
fn list_part(query: &str) -> String {
    let pairs = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "columns");
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The caller's views of `object`, by name.
pub async fn list(app: &AppState, actor: &Actor, object: &str) -> ApiResult<Vec<SavedView>> {
    app.records.view_of(actor, object)?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_views WHERE user_id = $1 AND object = $2 ORDER BY name, id"
    )))
    .bind(&actor.user_id)
    .bind(object)
    .fetch_all(&app.db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(view_of)
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Saves the caller's view of `object` under its name (a view of that name is
/// replaced); true when it is new. The query is checked as the list would run it,
/// so a view never stores a filter or sort the list refuses.
pub async fn save(
    app: &AppState,
    actor: &Actor,
    object: &str,
    input: NewView,
) -> ApiResult<(SavedView, bool)> {
    app.records.view_of(actor, object)?;
    let name = input.name.trim().to_string();
    let query = kept(&input.query);
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::new("name", "is required"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if query.len() > MAX_QUERY_BYTES {
        errors.push(FieldError::new(
            "query",
            format!("is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    } else if let Err(e) = app
        .records
        .list(actor, object, &format!("{}&limit=1", list_part(&query)))
        .await
    {
        errors.push(FieldError::new("query", ApiError::from(e).described()));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("the view is not valid", errors));
    }
    let existing = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_views WHERE user_id = $1 AND object = $2 AND name = $3"
    )))
    .bind(&actor.user_id)
    .bind(object)
    .bind(&name)
    .fetch_optional(&app.db.pool)
    .await?;
    let now = db::now();
    if let Some(row) = existing {
        let mut view = view_of(&row)?;
        sqlx::query("UPDATE saved_views SET query = $1, updated_at = $2 WHERE id = $3")
            .bind(&query)
            .bind(&now)
            .bind(&view.id)
            .execute(&app.db.pool)
            .await?;
        view.query = query;
        view.updated_at = now;
        return Ok((view, false));
    }
    let held: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM saved_views WHERE user_id = $1 AND object = $2")
            .bind(&actor.user_id)
            .bind(object)
            .fetch_one(&app.db.pool)
            .await?;
    if held >= MAX_PER_OBJECT {
        return Err(ApiError::conflict(format!(
            "you keep {held} views of {object} already; remove one first"
        )));
    }
    let view = SavedView {
        id: db::new_id(),
        object: object.to_string(),
        name,
        query,
        created_at: now.clone(),
        updated_at: now,
    };
    let stored = sqlx::query(
        "INSERT INTO saved_views (id, user_id, object, name, query, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&view.id)
    .bind(&actor.user_id)
    .bind(&view.object)
    .bind(&view.name)
    .bind(&view.query)
    .bind(&view.created_at)
    .bind(&view.updated_at)
    .execute(&app.db.pool)
    .await;
    match stored {
        Ok(_) => Ok((view, true)),
        // The same name saved at the same moment by another request of the user.
        Err(e) if db::violated_constraint(&e).is_some() => Err(ApiError::conflict(
            "a view of that name was saved meanwhile; save again to replace it",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Removes the caller's view; 404 when they have no such view of `object`.
pub async fn remove(app: &AppState, actor: &Actor, object: &str, id: &str) -> ApiResult<()> {
    let done =
        sqlx::query("DELETE FROM saved_views WHERE id = $1 AND user_id = $2 AND object = $3")
            .bind(id)
            .bind(&actor.user_id)
            .bind(object)
            .execute(&app.db.pool)
            .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("you have no such view"));
    }
    Ok(())
}

/// The columns [`view_of`] reads.
const COLUMNS: &str = "id, object, name, query, created_at, updated_at";

fn view_of(row: &sqlx::any::AnyRow) -> Result<SavedView, sqlx::Error> {
    Ok(SavedView {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        name: row.try_get("name")?,
        query: row.try_get("query")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_the_list_but_not_the_page() {
        assert_eq!(
            kept("?q=acme&filter%5Bstatus%5D=&cursor=abc&limit=10&sort=-name&columns=name%2Cemail"),
            "q=acme&sort=-name&columns=name%2Cemail"
        );
        assert_eq!(list_part("q=a&columns=name"), "q=a");
    }
}
