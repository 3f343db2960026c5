//! Outgoing webhooks in the admin console: subscribe a URL to record events (its
//! signing secret shown once), change or pause one, read its delivery log (each
//! delivery's body, attempts and last answer) and replay a delivery. The same
//! functions as `/api/v1/webhooks`, for org admins only.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

use super::i18n::Tr;
use super::{Choice, FormData, Visitor, WebResult, render};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::webhooks::routes::{self as api, WebhookChange, WebhookInput};
use crate::webhooks::{TOPICS, Webhook};

/// Deliveries a page of the log shows.
const DELIVERIES_SHOWN: i64 = 50;

pub struct HookRow {
    pub href: String,
    pub url: String,
    pub events: String,
    pub objects: String,
    pub active: bool,
}

pub struct DeliveryRow {
    pub id: String,
    pub when: String,
    pub topic: String,
    pub status: String,
    pub failed: bool,
    pub attempts: String,
    pub answer: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "web/admin_webhooks.html")]
struct WebhooksPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    hooks: Vec<HookRow>,
    url: String,
    events: Vec<Choice>,
    objects: Vec<Choice>,
    error: String,
}

#[derive(Template)]
#[template(path = "web/admin_webhook.html")]
struct WebhookPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    id: String,
    url: String,
    active: bool,
    /// The signing secret, on the page that answers the creation only.
    secret: String,
    events: Vec<Choice>,
    objects: Vec<Choice>,
    filters: Vec<Choice>,
    deliveries: Vec<DeliveryRow>,
    next_href: Option<String>,
    error: String,
    saved: bool,
}

/// `GET /admin/webhooks`.
pub async fn list(State(app): State<AppState>, v: Visitor) -> WebResult {
    webhooks_page(&app, &v, StatusCode::OK, None, String::new()).await
}

/// The list and the subscription form (`tried`: a refused form's values, kept).
async fn webhooks_page(
    app: &AppState,
    v: &Visitor,
    status: StatusCode,
    tried: Option<&WebhookInput>,
    error: String,
) -> WebResult {
    api::admin(app, &v.actor).await.map_err(|e| v.fail(e))?;
    let tr = &v.tr;
    let hooks = crate::webhooks::list(&app.db)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .into_iter()
        .map(|h| HookRow {
            href: format!("/admin/webhooks/{}", h.id),
            events: h.events.join(", "),
            objects: if h.objects.is_empty() {
                tr.t("webhooks-every-object")
            } else {
                h.objects.join(", ")
            },
            active: h.active,
            url: h.url,
        })
        .collect();
    let (url, events, objects) = match tried {
        Some(t) => (t.url.clone(), t.events.clone(), t.objects.clone()),
        None => (
            String::new(),
            vec!["record.created".to_string()],
            Vec::new(),
        ),
    };
    let page = WebhooksPage {
        v,
        tr,
        hooks,
        url,
        events: topic_choices(&events),
        objects: object_choices(app, tr, &objects),
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /admin/webhooks`: a new subscription; its page shows the secret this once.
pub async fn create(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let input = WebhookInput {
        url: form.get("url").unwrap_or_default().trim().to_string(),
        events: form.all("events").map(str::to_string).collect(),
        objects: form.all("objects").map(str::to_string).collect(),
    };
    match api::subscribe(&app, &v.actor, input.clone()).await {
        Ok(hook) => webhook_page(&app, &v, hook, None, StatusCode::CREATED, String::new()).await,
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let message = v.fail(e).message;
            webhooks_page(
                &app,
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&input),
                message,
            )
            .await
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `GET /admin/webhooks/{id}[?status=&cursor=]`: settings and the delivery log.
pub async fn show(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> WebResult {
    api::admin(&app, &v.actor).await.map_err(|e| v.fail(e))?;
    let hook = api::found(&app, &id).await.map_err(|e| v.fail(e))?;
    webhook_page(
        &app,
        &v,
        hook,
        query.as_deref(),
        StatusCode::OK,
        String::new(),
    )
    .await
}

async fn webhook_page(
    app: &AppState,
    v: &Visitor,
    hook: Webhook,
    query: Option<&str>,
    status: StatusCode,
    error: String,
) -> WebResult {
    let tr = &v.tr;
    let (mut filter, mut cursor, mut saved) = (None, None, false);
    for (k, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "status" if ["pending", "delivered", "failed"].contains(&value.as_ref()) => {
                filter = Some(value.into_owned())
            }
            "cursor" => cursor = Some(value.into_owned()),
            "saved" => saved = true,
            _ => {}
        }
    }
    let mut items = crate::webhooks::deliveries(
        &app.db,
        &hook.id,
        filter.as_deref(),
        cursor.as_deref(),
        DELIVERIES_SHOWN + 1,
    )
    .await
    .map_err(|e| v.fail(ApiError::from(e)))?;
    let next_href = (items.len() as i64 > DELIVERIES_SHOWN).then(|| {
        items.truncate(DELIVERIES_SHOWN as usize);
        let last = items.last().map(|d| d.id.as_str()).unwrap_or_default();
        let status = filter.as_deref().unwrap_or_default();
        format!("/admin/webhooks/{}?status={status}&cursor={last}", hook.id)
    });
    let deliveries = items
        .into_iter()
        .map(|d| DeliveryRow {
            when: tr.date(&d.created_at),
            topic: d.topic,
            failed: d.status == "failed",
            status: tr.t(&format!("webhooks-status-{}", d.status)),
            attempts: tr.digits(&d.attempts.to_string()),
            answer: match (d.response_status, d.last_error) {
                (Some(code), _) => tr.digits(&code.to_string()),
                (None, Some(error)) => error,
                (None, None) => String::new(),
            },
            body: serde_json::to_string_pretty(&d.body).unwrap_or_default(),
            id: d.id,
        })
        .collect();
    let filters = ["", "pending", "delivered", "failed"]
        .into_iter()
        .map(|s| Choice {
            value: if s.is_empty() {
                format!("/admin/webhooks/{}", hook.id)
            } else {
                format!("/admin/webhooks/{}?status={s}", hook.id)
            },
            label: if s.is_empty() {
                tr.t("webhooks-all")
            } else {
                tr.t(&format!("webhooks-status-{s}"))
            },
            selected: filter.as_deref().unwrap_or_default() == s,
        })
        .collect();
    let page = WebhookPage {
        v,
        tr,
        events: topic_choices(&hook.events),
        objects: object_choices(app, tr, &hook.objects),
        secret: hook.secret.unwrap_or_default(),
        id: hook.id,
        url: hook.url,
        active: hook.active,
        filters,
        deliveries,
        next_href,
        error,
        saved,
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /admin/webhooks/{id}`: new URL, events, objects, paused or not.
pub async fn update(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let change = WebhookChange {
        url: Some(form.get("url").unwrap_or_default().trim().to_string()),
        events: Some(form.all("events").map(str::to_string).collect()),
        objects: Some(form.all("objects").map(str::to_string).collect()),
        active: Some(form.get("active") == Some("1")),
    };
    match api::amend(&app, &v.actor, &id, change).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/webhooks/{id}?saved=1")).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let hook = api::found(&app, &id).await.map_err(|e| v.fail(e))?;
            let message = v.fail(e).message;
            webhook_page(
                &app,
                &v,
                hook,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                message,
            )
            .await
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `POST /admin/webhooks/{id}/delete`.
pub async fn delete(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    api::unsubscribe(&app, &v.actor, &id)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to("/admin/webhooks").into_response())
}

/// `POST /admin/webhooks/{id}/deliveries/{delivery}/replay`.
pub async fn replay(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, delivery)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    api::replay(&app, &v.actor, &id, &delivery)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/admin/webhooks/{id}")).into_response())
}

fn topic_choices(chosen: &[String]) -> Vec<Choice> {
    TOPICS
        .iter()
        .map(|t| Choice {
            value: t.to_string(),
            label: t.to_string(),
            selected: chosen.iter().any(|c| c == t),
        })
        .collect()
}

/// Every object, by label; the chosen ones selected (none: every object).
fn object_choices(app: &AppState, tr: &Tr, chosen: &[String]) -> Vec<Choice> {
    let schema = app.records.schema();
    let mut choices: Vec<Choice> = schema
        .objects
        .values()
        .map(|o| Choice {
            value: o.name.clone(),
            label: tr.object(&o.name, &o.label_plural),
            selected: chosen.contains(&o.name),
        })
        .collect();
    choices.sort_by(|a, b| a.label.cmp(&b.label));
    choices
}
