//! Call logging: a telephony system (a PBX, a cloud phone service) posts each call's
//! facts, signed in with an API token; the host logs the call as an activity on the
//! contact whose phone matches the other party's number, or on a lead: one that
//! matches, or one made for an unknown number. Everything goes through the records
//! service as the posting user, so its rights decide what it may match and create.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, FieldError, Problem};
use crate::api::extract::ApiJson;
use crate::auth::Actor;
use crate::records::metadata::FieldType;
use crate::records::query::{Bind, SqlBuilder, bind_all};
use crate::records::validate::{is_phone, normalise_datetime};
use crate::records::{Record, RecordError, values_of};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(log_call))
}

/// Longest call the host believes: two days.
const MAX_DURATION_SECONDS: i64 = 2 * 86_400;
/// Trailing digits two numbers must share to be one phone (a country or trunk prefix
/// may differ: `+98 21 5555 1234` is `021 5555 1234`).
const SIGNIFICANT_DIGITS: usize = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The customer called in: `caller` is their number.
    Inbound,
    /// Someone here called out: `callee` is the customer's number.
    Outbound,
}

/// One finished call as the telephony system reports it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallEvent {
    /// The calling number.
    pub caller: String,
    /// The called number.
    pub callee: String,
    pub direction: Direction,
    /// When the call started, RFC 3339.
    pub started_at: String,
    /// How long it lasted; 0 for an inbound call nobody answered (a missed call).
    #[serde(default)]
    pub duration_seconds: i64,
    /// Where the recording can be played (http or https).
    pub recording_url: Option<String>,
    /// The telephony system's id of the call: posting it again logs nothing new.
    pub call_id: Option<String>,
    /// The email of the user who took or made the call (default: the poster).
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedCall {
    /// The call activity.
    pub activity: Record,
    /// The matched contact's id, if a contact matched.
    pub contact: Option<String>,
    /// The lead's id when no contact matched.
    pub lead: Option<String>,
    /// Whether the lead was made for this call (an unknown number).
    pub lead_created: bool,
    /// Whether this `call_id` was logged before (nothing new was written).
    pub duplicate: bool,
}

/// Logs a call as an activity on the matching contact, or on a lead (made when the
/// number is unknown). Needs the create right on activities (and on leads for an
/// unknown number); only contacts and leads the caller may read are matched.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])),
    request_body = CallEvent,
    responses(
        (status = 201, description = "Logged", body = LoggedCall),
        (status = 200, description = "This call_id was logged before", body = LoggedCall),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad numbers, time, duration or link, all listed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn log_call(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(call): ApiJson<CallEvent>,
) -> ApiResult<(StatusCode, Json<LoggedCall>)> {
    let (started, assignee) = check(&app, &actor, &call).await?;
    // The activity's right first, so an unknown number never leaves a lead behind
    // without its call.
    app.records.creatable(&actor, "activities").await?;
    let Some(call_id) = call.call_id.clone() else {
        let logged = write_call(&app, &actor, &call, started, assignee).await?;
        return Ok((StatusCode::CREATED, Json(logged)));
    };
    // Retries of one call often arrive together (the PBX timed out on the first):
    // one request claims the call_id, the others wait for its activity.
    let waited_enough = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        match claim(&app, &call_id).await? {
            Claim::Ours => break,
            Claim::Logged(activity) => return logged_before(&app, &actor, &activity).await,
            Claim::Busy if tokio::time::Instant::now() < waited_enough => {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await
            }
            Claim::Busy => {
                return Err(ApiError::conflict(
                    "this call_id is being logged by another request; try again",
                ));
            }
        }
    }
    // The activity may be there already: written by a host that stopped before
    // settling its claim, or given this call_id by hand.
    if let Some(activity) = activity_with_call_id(&app, &call_id).await? {
        settle(&app, &call_id, Some(&activity)).await?;
        return logged_before(&app, &actor, &activity).await;
    }
    // Its own task, so a request the client gives up on still settles its claim.
    let task = tokio::spawn(async move {
        let logged = write_call(&app, &actor, &call, started, assignee).await;
        let activity = logged.as_ref().ok().map(|l| l.activity.id.as_str());
        settle(&app, &call_id, activity).await?;
        logged
    });
    let logged = task.await.map_err(ApiError::internal)??;
    Ok((StatusCode::CREATED, Json(logged)))
}

/// How long a retry waits for the request that claimed its call_id.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// A claim this old without its activity was left by a host that stopped mid-way.
const CLAIM_HOLDS_SECONDS: i64 = 30;

enum Claim {
    /// This request logs the call.
    Ours,
    /// Logged before, as this activity.
    Logged(String),
    /// Another request is logging it now.
    Busy,
}

async fn claim(app: &AppState, call_id: &str) -> ApiResult<Claim> {
    let now = chrono::Utc::now();
    let stale = crate::db::format_time(now - chrono::Duration::seconds(CLAIM_HOLDS_SECONDS));
    let claimed = sqlx::query(
        "INSERT INTO logged_calls (call_id, claimed_at) VALUES ($1, $2) \
         ON CONFLICT (call_id) DO UPDATE SET claimed_at = excluded.claimed_at \
         WHERE logged_calls.activity_id IS NULL AND logged_calls.claimed_at < $3",
    )
    .bind(call_id)
    .bind(crate::db::format_time(now))
    .bind(stale)
    .execute(&app.db.pool)
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(Claim::Ours);
    }
    let activity: Option<Option<String>> =
        sqlx::query_scalar("SELECT activity_id FROM logged_calls WHERE call_id = $1")
            .bind(call_id)
            .fetch_optional(&app.db.pool)
            .await?;
    Ok(match activity {
        Some(Some(activity)) => Claim::Logged(activity),
        // Claimed, or released since (the claimer failed): ask again.
        _ => Claim::Busy,
    })
}

/// Records the claimed call's activity, or gives the claim up when the call was not
/// logged (a refused value), so a corrected retry may log it.
async fn settle(app: &AppState, call_id: &str, activity: Option<&str>) -> ApiResult<()> {
    let query = match activity {
        Some(activity) => {
            sqlx::query("UPDATE logged_calls SET activity_id = $2 WHERE call_id = $1")
                .bind(call_id)
                .bind(activity.to_string())
        }
        None => sqlx::query("DELETE FROM logged_calls WHERE call_id = $1 AND activity_id IS NULL")
            .bind(call_id),
    };
    query.execute(&app.db.pool).await?;
    Ok(())
}

/// Writes the call: the lead for an unknown number, then the activity.
async fn write_call(
    app: &AppState,
    actor: &Actor,
    call: &CallEvent,
    started: String,
    assignee: String,
) -> ApiResult<LoggedCall> {
    let number = match call.direction {
        Direction::Inbound => &call.caller,
        Direction::Outbound => &call.callee,
    }
    .trim()
    .to_string();
    let ends = chrono::DateTime::parse_from_rfc3339(&started)
        .map(|t| t + chrono::Duration::seconds(call.duration_seconds))
        .map_err(ApiError::internal)?;
    let topic = match (call.direction, call.duration_seconds) {
        (Direction::Inbound, 0) => format!("Missed call from {number}"),
        (Direction::Inbound, _) => format!("Call from {number}"),
        (Direction::Outbound, _) => format!("Call to {number}"),
    };
    let mut input = values_of(json!({
        "kind": "call",
        "topic": topic,
        "status": "completed",
        "starts_at": started,
        "ends_at": crate::db::format_time(ends.with_timezone(&chrono::Utc)),
        "direction": match call.direction { Direction::Inbound => "inbound", Direction::Outbound => "outbound" },
        "phone": number,
        "duration_seconds": call.duration_seconds,
        "assigned_to": assignee,
    }));
    for (key, value) in [
        ("recording_url", call.recording_url.clone()),
        ("call_id", call.call_id.clone()),
    ] {
        if let Some(v) = value {
            input.insert(key.into(), Value::String(v));
        }
    }
    // The activity's own values checked before any lead is made for it, so a call
    // refused for its values (a link too long) leaves nothing behind.
    if let Some(meta) = app.records.schema().object("activities")
        && let Err(errors) =
            crate::records::validate::validate(meta, &input, crate::records::validate::Mode::Create)
    {
        return Err(ApiError::invalid(
            format!("{} field(s) invalid", errors.len()),
            errors,
        ));
    }
    let contact = find_by_phone(app, actor, "contacts", &number).await?;
    let (lead, lead_created) = match &contact {
        Some(_) => (None, false),
        None => match find_by_phone(app, actor, "leads", &number).await? {
            Some(lead) => (Some(lead), false),
            None => {
                let made = app
                    .records
                    .create(
                        actor,
                        "leads",
                        &values_of(json!({
                            "last_name": format!("Caller {number}"),
                            "phone": number,
                            "source": "Phone",
                        })),
                    )
                    .await?;
                (Some(made.id), true)
            }
        },
    };
    for (key, value) in [("contact", contact.clone()), ("lead", lead.clone())] {
        if let Some(v) = value {
            input.insert(key.into(), Value::String(v));
        }
    }
    let activity = app.records.create(actor, "activities", &input).await?;
    Ok(LoggedCall {
        activity,
        contact,
        lead,
        lead_created,
        duplicate: false,
    })
}

/// Checks the event (every problem at once); answers the start time, normalised, and
/// the id of the user the activity is assigned to.
async fn check(app: &AppState, actor: &Actor, call: &CallEvent) -> ApiResult<(String, String)> {
    let mut errors = Vec::new();
    for (name, number) in [("caller", &call.caller), ("callee", &call.callee)] {
        if !is_phone(number.trim()) {
            errors.push(FieldError::new(
                name,
                "must be a phone number: digits, spaces and + - ( ) . only",
            ));
        }
    }
    let started = normalise_datetime(&call.started_at)
        .map_err(|hint| errors.push(FieldError::new("started_at", hint)))
        .ok();
    if !(0..=MAX_DURATION_SECONDS).contains(&call.duration_seconds) {
        errors.push(FieldError::new(
            "duration_seconds",
            format!("must be 0 to {MAX_DURATION_SECONDS}"),
        ));
    }
    if let Some(url) = &call.recording_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(FieldError::new(
            "recording_url",
            "must be an http:// or https:// address",
        ));
    }
    if call
        .call_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > 200)
    {
        errors.push(FieldError::new("call_id", "must be 1 to 200 characters"));
    }
    let assignee = match &call.user {
        None => Some(actor.user_id.clone()),
        Some(email) => {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT id FROM users WHERE lower(email) = lower($1) AND active = 1",
            )
            .bind(email)
            .fetch_optional(&app.db.pool)
            .await?;
            if found.is_none() {
                errors.push(FieldError::new(
                    "user",
                    "there is no active user with this email",
                ));
            }
            found
        }
    };
    match (started, assignee) {
        (Some(started), Some(assignee)) if errors.is_empty() => Ok((started, assignee)),
        _ => Err(ApiError::invalid(
            format!("{} field(s) invalid", errors.len()),
            errors,
        )),
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The activity of a call whose call_id was logged before (the answer to a retry).
async fn logged_before(
    app: &AppState,
    actor: &Actor,
    activity: &str,
) -> ApiResult<(StatusCode, Json<LoggedCall>)> {
    let activity = match app.records.get(actor, "activities", activity).await {
        Ok(record) => record,
        // Logged by someone whose activities this caller cannot see, or the activity
        // was deleted since: a conflict, not a second activity.
        Err(RecordError::NotFound | RecordError::Forbidden(_)) => {
            return Err(ApiError::conflict(
                "this call_id was logged before, as an activity you cannot see or one deleted since",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let link = |name: &str| {
        activity
            .fields
            .get(name)
            .and_then(Value::as_str)
            .map(String::from)
    };
    let (contact, lead) = (link("contact"), link("lead"));
    Ok((
        StatusCode::OK,
        Json(LoggedCall {
            activity,
            contact,
            lead,
            lead_created: false,
            duplicate: true,
        }),
    ))
}

/// The activity holding `call_id`, written by a host that stopped before settling its
/// claim.
async fn activity_with_call_id(app: &AppState, call_id: &str) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM records WHERE object = 'activities' AND (data->>'call_id') = $1 ORDER BY id LIMIT 1",
    )
    .bind(call_id)
    .fetch_optional(&app.db.pool)
    .await?)
}

/// The most recently changed record of `object` (contacts or leads) the caller may
/// read whose phone fields hold `number`: the same digits, or the same last
/// SIGNIFICANT_DIGITS when both are that long.
async fn find_by_phone(
    app: &AppState,
    actor: &Actor,
    object: &str,
    number: &str,
) -> ApiResult<Option<String>> {
    let schema = app.records.schema();
    let Some(meta) = schema.object(object) else {
        return Ok(None);
    };
    let wanted = digits(number);
    // Without a `%`, LIKE compares whole: a short number must match all its digits.
    let pattern = if wanted.len() >= SIGNIFICANT_DIGITS {
        format!("%{}", &wanted[wanted.len() - SIGNIFICANT_DIGITS..])
    } else {
        wanted.clone()
    };
    let mut b = SqlBuilder::default();
    let object_param = b.bind(Bind::Text(object.to_string()));
    let pattern = b.bind(Bind::Text(pattern));
    let phones: Vec<String> = meta
        .fields
        .iter()
        .filter(|f| f.kind == FieldType::Phone)
        .map(|f| format!("{} LIKE {pattern}", digits_sql(&f.name)))
        .collect();
    if phones.is_empty() {
        return Ok(None);
    }
    // Only records the caller may read are candidates, so many unreadable records
    // with the number cannot hide a readable one.
    let readable = app
        .records
        .read_scope(actor, object)?
        .sql(object, &mut b)
        .map(|c| format!(" AND {c}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT id FROM records WHERE object = {object_param} AND ({}){readable} \
         ORDER BY updated_at DESC, id DESC LIMIT 20",
        phones.join(" OR ")
    );
    let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), b.binds)
        .fetch_all(&app.db.pool)
        .await?;
    for row in rows {
        let id: String = row.try_get("id")?;
        match app.records.get(actor, object, &id).await {
            Ok(_) => return Ok(Some(id)),
            Err(RecordError::NotFound | RecordError::Forbidden(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// A phone field's digits in SQL (both backends): the separators a phone field may
/// hold removed.
fn digits_sql(field: &str) -> String {
    let mut expr = format!("(data->>'{field}')");
    for separator in [" ", "+", "-", "(", ")", "."] {
        expr = format!("replace({expr}, '{separator}', '')");
    }
    expr
}
