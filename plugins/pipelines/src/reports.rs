//! Reports over the deals the caller may read: the board by stage, the forecast
//! by close month and the conversion funnel.

use crm_plugin_sdk::{HttpResponse, Record, Value, http, json, records};

use crate::pipeline::{self, Kind, Pipeline, Stage};
use crate::text;

/// Deals read for one report at most (pages of 200).
const MAX_PAGES: usize = 50;

/// The deals of a report: its pipeline, the deals the caller may read in it
/// (narrowed by `owner` and `department`), and whether there were more than read.
pub struct Deals {
    pub pipeline: &'static Pipeline,
    pub items: Vec<Record>,
    pub truncated: bool,
}

/// Reads the deals a report's query asks for, or the answer explaining why not.
pub fn read(query: &str) -> Result<Deals, HttpResponse> {
    let mut pipeline_name = pipeline::DEFAULT.to_string();
    let mut filters = String::new();
    for (key, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        match key {
            "pipeline" => pipeline_name = value.to_string(),
            "owner" | "department" => filters.push_str(&format!("&filter[{key}]={value}")),
            _ => {
                return Err(http::problem(
                    400,
                    &format!("'{key}' is not a filter here; use pipeline, owner or department"),
                ));
            }
        }
    }
    let Some(pipeline) = pipeline::find(&pipeline_name) else {
        return Err(http::problem(
            404,
            &format!("there is no pipeline '{pipeline_name}'"),
        ));
    };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut list = format!("filter[pipeline]={}&limit=200{filters}", pipeline.name);
        if let Some(c) = &cursor {
            list.push_str(&format!("&cursor={c}"));
        }
        let (page, next) = records::list("deals", &list).map_err(|e| http::problem(400, &e))?;
        items.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => {
                return Ok(Deals {
                    pipeline,
                    items,
                    truncated: false,
                });
            }
        }
    }
    Ok(Deals {
        pipeline,
        items,
        truncated: true,
    })
}

fn amount(deal: &Record) -> f64 {
    deal.get("amount").and_then(Value::as_f64).unwrap_or(0.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One stage of the board.
struct Column {
    stage: &'static Stage,
    count: u64,
    amount: f64,
}

impl Column {
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

fn columns(deals: &Deals) -> Vec<Column> {
    let mut columns: Vec<Column> = deals
        .pipeline
        .stages
        .iter()
        .map(|stage| Column {
            stage,
            count: 0,
            amount: 0.0,
        })
        .collect();
    for deal in &deals.items {
        let stage = text(deal, "stage").unwrap_or_default();
        if let Some(column) = columns.iter_mut().find(|c| c.stage.name == stage) {
            column.count += 1;
            column.amount += amount(deal);
        }
    }
    columns
}

/// `GET /board[?pipeline=&owner=&department=]`: the deals by stage, in order.
pub fn board(query: &str) -> HttpResponse {
    let deals = match read(query) {
        Ok(deals) => deals,
        Err(answer) => return answer,
    };
    let columns = columns(&deals);
    let open: Vec<&Column> = columns
        .iter()
        .filter(|c| c.stage.kind == Kind::Open)
        .collect();
    http::json(
        200,
        &json!({
            "pipeline": deals.pipeline.name,
            "stages": columns.iter().map(Column::to_json).collect::<Vec<_>>(),
            "open": {
                "count": open.iter().map(|c| c.count).sum::<u64>(),
                "amount": round2(open.iter().map(|c| c.amount).sum::<f64>()),
                "weighted": round2(open.iter().map(|c| c.weighted()).sum::<f64>()),
            },
            "truncated": deals.truncated,
        }),
    )
}

/// `GET /forecast[?pipeline=&owner=&department=]`: open deals by close month
/// (`YYYY-MM`, in order; `unscheduled` last), with amounts weighted by the
/// probability of their stage.
pub fn forecast(query: &str) -> HttpResponse {
    let deals = match read(query) {
        Ok(deals) => deals,
        Err(answer) => return answer,
    };
    let mut months: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
    for deal in &deals.items {
        let Some(stage) = text(deal, "stage").and_then(|s| deals.pipeline.stage(&s)) else {
            continue;
        };
        if stage.kind != Kind::Open {
            continue;
        }
        let month = text(deal, "close_date")
            .and_then(|d| d.get(..7).map(str::to_string))
            .unwrap_or_else(|| "unscheduled".to_string());
        let entry = months.entry(month).or_default();
        entry.0 += 1;
        entry.1 += amount(deal);
        entry.2 += amount(deal) * f64::from(stage.probability) / 100.0;
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
        &json!({"pipeline": deals.pipeline.name, "months": months, "truncated": deals.truncated}),
    )
}

/// `GET /funnel[?pipeline=&owner=&department=]`: for each stage up to the won
/// one, the deals that reached it (those in it or in a later one, won counting as
/// having passed them all) and the share of them that went on to the next stage.
/// Lost deals are left out: where they were lost is in their history, not their
/// stage.
pub fn funnel(query: &str) -> HttpResponse {
    let deals = match read(query) {
        Ok(deals) => deals,
        Err(answer) => return answer,
    };
    let path: Vec<&Stage> = deals
        .pipeline
        .stages
        .iter()
        .filter(|s| s.kind != Kind::Lost)
        .collect();
    let mut reached = vec![0u64; path.len()];
    for deal in &deals.items {
        let stage = text(deal, "stage").unwrap_or_default();
        if let Some(at) = path.iter().position(|s| s.name == stage) {
            for r in &mut reached[..=at] {
                *r += 1;
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
        &json!({"pipeline": deals.pipeline.name, "stages": stages, "truncated": deals.truncated}),
    )
}
