//! The home page: the caller's open tasks, today's activities and progress counters,
//! all read with the caller's rights.

use askama::Template;
use axum::extract::State;
use chrono::{Datelike, Utc};
use serde_json::Value;

use super::i18n::Tr;
use super::{Visitor, WebResult, render};
use crate::api::AppState;

pub struct TaskItem {
    pub name: String,
    pub process: String,
    pub due: String,
}

pub struct TodayItem {
    pub href: String,
    pub time: String,
    pub kind: String,
    pub topic: String,
    pub status: String,
}

pub struct Counter {
    pub label: String,
    pub value: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "web/home.html")]
struct HomePage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    greeting: String,
    tasks: Vec<TaskItem>,
    today: Vec<TodayItem>,
    counters: Vec<Counter>,
}

/// How many records of `object` match `query` that the caller may read; `None`
/// when it may read none of that object.
async fn count(app: &AppState, v: &Visitor, object: &str, query: &str) -> Option<i64> {
    let found = app.records.aggregate(&v.actor, object, query).await.ok()?;
    Some(found.groups.iter().map(|g| g.count).sum())
}

pub async fn home(State(app): State<AppState>, v: Visitor) -> WebResult {
    let tr = &v.tr;
    let tasks = app
        .processes
        .tasks(&v.actor, "open", None, 20)
        .await
        .map(|(tasks, _)| {
            tasks
                .into_iter()
                .map(|t| TaskItem {
                    name: t.name,
                    process: t.process,
                    due: t.due_at.as_deref().map(|d| tr.date(d)).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let now = Utc::now();
    let day = now.format("%Y-%m-%d").to_string();
    let today_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("filter[starts_at][gte]", &format!("{day}T00:00:00Z"))
        .append_pair("filter[starts_at][lte]", &format!("{day}T23:59:59Z"))
        .append_pair("sort", "starts_at")
        .append_pair("limit", "50")
        .finish();
    let text = |fields: &serde_json::Map<String, Value>, f: &str| {
        fields
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let today = match app.records.list(&v.actor, "activities", &today_query).await {
        Ok(page) => page
            .items
            .iter()
            .map(|r| TodayItem {
                href: format!("/records/activities/{}", r.id),
                time: tr.digits(text(&r.fields, "starts_at").get(11..16).unwrap_or_default()),
                kind: tr.value(&text(&r.fields, "kind")),
                topic: text(&r.fields, "topic"),
                status: tr.value(&text(&r.fields, "status")),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let month_start = format!("{:04}-{:02}-01T00:00:00Z", now.year(), now.month());
    let wanted = [
        (
            "counter-open-deals",
            "deals",
            "filter[status][in]=new,in progress".to_string(),
        ),
        (
            "counter-won-deals",
            "deals",
            format!("filter[status]=won&filter[updated_at][gte]={month_start}"),
        ),
        (
            "counter-new-leads",
            "leads",
            "filter[status]=new".to_string(),
        ),
        (
            "counter-open-activities",
            "activities",
            "filter[status][in]=new,in progress".to_string(),
        ),
    ];
    let mut counters = Vec::new();
    for (label, object, query) in wanted {
        if let Some(n) = count(&app, &v, object, &query).await {
            counters.push(Counter {
                label: tr.t(label),
                value: tr.digits(&n.to_string()),
                href: format!("/records/{object}?{}", query.replace(' ', "%20")),
            });
        }
    }
    Ok(render(&HomePage {
        v: &v,
        tr,
        greeting: tr.t1("home-greeting", "name", &v.actor.name),
        tasks,
        today,
        counters,
    }))
}
