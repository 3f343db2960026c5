//! Reports over the deals the caller may read: the board by stage, the forecast
//! by close month and the conversion funnel. Each is one aggregate query in the
//! host (`records::aggregate`), counted where the records are, whatever their
//! number.

use crm_plugin_sdk::records::{self, Group};
use crm_plugin_sdk::{HttpResponse, Value, http, json};

use crate::pipeline::{self, Kind, Pipeline, Stage};

/// The groups of a report: its pipeline, the deals the caller may read in it
/// (narrowed by `owner` and `department`) counted and summed by `group_by`, and
/// whether there were more groups than the host answers.
pub struct Groups {
    pub pipeline: Pipeline,
    pub groups: Vec<Group>,
    pub truncated: bool,
}

/// Counts the deals a report's query asks for by `group_by`, with their amounts,
/// or the answer explaining why not.
pub fn read(query: &str, group_by: &str) -> Result<Groups, HttpResponse> {
    let mut pipeline_name = pipeline::DEFAULT.to_string();
    let mut filters = String::new();
    for (key, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        match key {
            "pipeline" => pipeline_name = value.to_string(),
            "owner" | "department" => filters.push_str(&format!("&filter[{key}]={value}")),
            // Deals closing in a month, quarter or year: `2026-11`, `2026-Q4`, `2026`.
            "period" => {
                let Some((first, last)) = crate::targets::period_days(value) else {
                    return Err(http::problem(
                        400,
                        "period is a month (2026-11), a quarter (2026-Q4) or a year (2026)",
                    ));
                };
                filters.push_str(&format!(
                    "&filter[close_date][gte]={first}&filter[close_date][lte]={last}"
                ));
            }
            _ => {
                return Err(http::problem(
                    400,
                    &format!(
                        "'{key}' is not a filter here; use pipeline, owner, department or period"
                    ),
                ));
            }
        }
    }
    let pipeline = match pipeline::find(&pipeline_name) {
        Ok(Some(pipeline)) => pipeline,
        Ok(None) => {
            return Err(http::problem(
                404,
                &format!("there is no pipeline '{pipeline_name}'"),
            ));
        }
        Err(e) => return Err(http::problem(500, &e)),
    };
    let query = format!(
        "group_by={group_by}&sum=amount&filter[pipeline]={}{filters}",
        pipeline.name
    );
    let (groups, truncated) =
        records::aggregate("deals", &query).map_err(|e| http::problem(400, &e))?;
    Ok(Groups {
        pipeline,
        groups,
        truncated,
    })
}

fn key<'g>(group: &'g Group, name: &str) -> Option<&'g str> {
    group.key.get(name).and_then(Value::as_str)
}

fn amount(group: &Group) -> f64 {
    group
        .sums
        .get("amount")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One stage of the board.
struct Column<'p> {
    stage: &'p Stage,
    count: u64,
    amount: f64,
}

impl Column<'_> {
    fn weighted(&self) -> f64 {
        self.amount * f64::from(self.stage.probability) / 100.0
    }

    fn to_json(&self) -> Value {
        json!({
            "stage": self.stage.name,
            "label": self.stage.label,
            "kind": self.stage.kind.as_str(),
            "probability": self.stage.probability,
            "count": self.count,
            "amount": round2(self.amount),
            "weighted": round2(self.weighted()),
        })
    }
}

fn columns(report: &Groups) -> Vec<Column<'_>> {
    report
        .pipeline
        .stages
        .iter()
        .map(|stage| {
            let group = report
                .groups
                .iter()
                .find(|g| key(g, "stage") == Some(stage.name.as_str()));
            Column {
                stage,
                count: group.map_or(0, |g| g.count as u64),
                amount: group.map_or(0.0, amount),
            }
        })
        .collect()
}

/// `GET /board[?pipeline=&owner=&department=&period=]`: the deals by stage, in order.
pub fn board(query: &str) -> HttpResponse {
    let report = match read(query, "stage") {
        Ok(report) => report,
        Err(answer) => return answer,
    };
    let columns = columns(&report);
    let open: Vec<&Column> = columns
        .iter()
        .filter(|c| c.stage.kind == Kind::Open)
        .collect();
    http::json(
        200,
        &json!({
            "pipeline": report.pipeline.name,
            "stages": columns.iter().map(Column::to_json).collect::<Vec<_>>(),
            "open": {
                "count": open.iter().map(|c| c.count).sum::<u64>(),
                "amount": round2(open.iter().map(|c| c.amount).sum::<f64>()),
                "weighted": round2(open.iter().map(|c| c.weighted()).sum::<f64>()),
            },
            "truncated": report.truncated,
        }),
    )
}

/// `GET /forecast[?pipeline=&owner=&department=&period=]`: open deals by close month
/// (`YYYY-MM`, in order; `unscheduled` last), with amounts weighted by the
/// probability of their stage.
pub fn forecast(query: &str) -> HttpResponse {
    let report = match read(query, "stage,close_date") {
        Ok(report) => report,
        Err(answer) => return answer,
    };
    let mut months: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
    for group in &report.groups {
        let Some(stage) = key(group, "stage").and_then(|s| report.pipeline.stage(s)) else {
            continue;
        };
        if stage.kind != Kind::Open {
            continue;
        }
        let month = key(group, "close_date")
            .and_then(|d| d.get(..7))
            .unwrap_or("unscheduled")
            .to_string();
        let entry = months.entry(month).or_default();
        entry.0 += group.count as u64;
        entry.1 += amount(group);
        entry.2 += amount(group) * f64::from(stage.probability) / 100.0;
    }
    // "unscheduled" sorts after every "YYYY-MM".
    let months: Vec<Value> = months
        .into_iter()
        .map(|(month, (count, amount, weighted))| {
            json!({"month": month, "count": count, "amount": round2(amount), "weighted": round2(weighted)})
        })
        .collect();
    http::json(
        200,
        &json!({"pipeline": report.pipeline.name, "months": months, "truncated": report.truncated}),
    )
}

/// `GET /funnel[?pipeline=&owner=&department=&period=]`: for each stage up to the
/// won one, the deals that reached it (those in it or in a later one, won counting
/// as having passed them all; a lost deal reached the stage it was lost from, which
/// before-save keeps in `lost_from`) and the share of them that went on to the next
/// stage. Deals created lost reached nothing.
pub fn funnel(query: &str) -> HttpResponse {
    let report = match read(query, "stage,lost_from") {
        Ok(report) => report,
        Err(answer) => return answer,
    };
    let path: Vec<&Stage> = report
        .pipeline
        .stages
        .iter()
        .filter(|s| s.kind != Kind::Lost)
        .collect();
    let mut reached = vec![0u64; path.len()];
    for group in &report.groups {
        let in_stage = key(group, "stage").unwrap_or_default();
        let lost = report
            .pipeline
            .stage(in_stage)
            .is_some_and(|s| s.kind == Kind::Lost);
        let stage = if lost {
            key(group, "lost_from").unwrap_or_default()
        } else {
            in_stage
        };
        if let Some(at) = path.iter().position(|s| s.name == stage) {
            for r in &mut reached[..=at] {
                *r += group.count as u64;
            }
        }
    }
    let stages: Vec<Value> = path
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next = reached.get(i + 1).copied();
            let conversion = match next {
                Some(n) if reached[i] > 0 => Some(round2(n as f64 * 100.0 / reached[i] as f64)),
                _ => None,
            };
            json!({"stage": s.name, "reached": reached[i], "went_on_percent": conversion})
        })
        .collect();
    http::json(
        200,
        &json!({"pipeline": report.pipeline.name, "stages": stages, "truncated": report.truncated}),
    )
}

/// Cards shown per stage on the board view (the counts cover them all).
const CARDS_PER_STAGE: usize = 50;

/// `GET /views/board[?pipeline=&owner=&department=&period=]`: the board as a
/// declarative view for the web interface (docs/web.md): a column per stage with
/// its count and amount, the largest deals of it as cards, moved by setting the
/// deal's `stage`.
pub fn board_view(query: &str) -> HttpResponse {
    let report = match read(query, "stage") {
        Ok(report) => report,
        Err(answer) => return answer,
    };
    let mut extra = String::new();
    for (key, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        if key == "owner" || key == "department" {
            extra.push_str(&format!("&filter[{key}]={value}"));
        }
    }
    let mut shown = Vec::new();
    for column in columns(&report) {
        let list = format!(
            "filter[pipeline]={}&filter[stage]={}&sort=-amount&limit={CARDS_PER_STAGE}{extra}",
            report.pipeline.name, column.stage.name
        );
        let deals = match records::list("deals", &list) {
            Ok((deals, _)) => deals,
            Err(e) => return http::problem(400, &e),
        };
        let cards: Vec<Value> = deals
            .iter()
            .map(|deal| {
                let amount = deal.get("amount").and_then(Value::as_f64).unwrap_or(0.0);
                json!({
                    "title": crate::text(deal, "name").unwrap_or_default(),
                    "subtitle": format!("{}", round2(amount)),
                    "record": {"object": "deals", "id": crate::text(deal, "id").unwrap_or_default()},
                })
            })
            .collect();
        let label = if column.stage.label.is_empty() {
            &column.stage.name
        } else {
            &column.stage.label
        };
        shown.push(json!({
            "key": column.stage.name,
            "title": label,
            "summary": format!("{} · {}", column.count, round2(column.amount)),
            "cards": cards,
        }));
    }
    http::json(
        200,
        &json!({
            "view": "board",
            "title": format!("Pipeline: {}", report.pipeline.name),
            "description": "Deals by stage, largest first; drag a card or use its menu to move it.",
            "columns": shown,
            "moves": {"object": "deals", "field": "stage"},
        }),
    )
}
