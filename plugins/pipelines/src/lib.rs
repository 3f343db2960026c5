//! Sales pipelines: a deal moves through the stages of its pipeline (the fields
//! `pipeline` and `stage`, which the manifest adds to deals when an admin approves
//! the plugin).
//!
//! - Before a deal is saved, its stage's rules apply: the stage must be one of the
//!   pipeline's, the move from the previous stage must be allowed, and the fields
//!   the stage needs must be filled; a refusal names the fields. A deal without a
//!   stage (new, or saved before the plugin was enabled) starts in the first stage,
//!   or in the won or lost stage when its status says so. The stage sets the deal's
//!   `probability` and `status`.
//! - After a deal entered a stage, the move is added to its history (who, when);
//!   `GET /api/v1/x/pipelines/deals/{id}/history` answers it with the time spent in
//!   each stage, to anyone who may read the deal.
//! - `GET /api/v1/x/pipelines/board` groups the deals the caller may read by stage,
//!   with counts, amounts and probability-weighted amounts (`?owner=` and
//!   `?department=` narrow it).
//! - `GET /api/v1/x/pipelines/forecast`: open deals' amounts weighted by
//!   probability, by close month; `GET .../funnel`: how many deals reached each
//!   stage and how many of them went on.
//! - Targets: admins set goals per user or department and period (deals won,
//!   amount won, meetings held, calls made); `GET .../targets?period=2026-11`
//!   answers the progress ("5 of 10 deals won").
//! - `GET /api/v1/x/pipelines/pipelines` describes the pipelines.
//! - The web interface shows the board (menu entry "Pipeline board"): the route
//!   `/views/board` answers it as a declarative view; dragging a card moves the deal.
//!
//! Built only with the public SDK, like any partner's plugin.

use crm_plugin_sdk::{
    Committed, FieldError, HookError, HttpRequest, HttpResponse, Plugin, Record, SaveContext,
    Value, http, json, kv, records,
};

pub mod pipeline;
pub mod reports;
pub mod targets;
pub mod time;

use pipeline::{Kind, Pipeline, Stage};

pub struct Pipelines;

/// Moves kept per deal (a history holds well under the 64 KiB of a kv value).
const MAX_HISTORY: usize = 300;

impl Plugin for Pipelines {
    fn before_save(context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        let mut patch = Record::new();
        let pipeline_name = match text(record, "pipeline") {
            Some(name) => name,
            None => {
                patch.insert("pipeline".into(), pipeline::DEFAULT.into());
                pipeline::DEFAULT.to_string()
            }
        };
        let pipeline = match pipeline::find(&pipeline_name) {
            Ok(Some(pipeline)) => pipeline,
            Ok(None) => {
                let names: Vec<String> = pipeline::all()
                    .map_err(HookError::Failed)?
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                return Err(HookError::Invalid(vec![FieldError {
                    field: "pipeline".into(),
                    message: format!("is not a pipeline; pipelines: {}", names.join(", ")),
                }]));
            }
            Err(e) => return Err(HookError::Failed(e)),
        };
        let stage = match text(record, "stage") {
            Some(name) => name,
            None => {
                let start = pipeline
                    .start_for(text(record, "status").as_deref())
                    .to_string();
                patch.insert("stage".into(), start.clone().into());
                start
            }
        };
        let previous = if context.operation == "update" {
            previous_stage(record)?
        } else {
            None
        };
        let stage = check_move(&pipeline, previous.as_deref(), &stage, record)
            .map_err(HookError::Invalid)?;
        let probability = Value::from(stage.probability);
        if record.get("probability") != Some(&probability) {
            patch.insert("probability".into(), probability);
        }
        let status = Value::from(stage.status(&pipeline));
        if record.get("status") != Some(&status) {
            patch.insert("status".into(), status);
        }
        // Where a lost deal was lost, for the funnel; a deal taken back out of a
        // lost stage forgets it.
        let lost_from = match (&previous, stage.kind) {
            (Some(from), Kind::Lost)
                if pipeline.stage(from).is_some_and(|s| s.kind != Kind::Lost) =>
            {
                Value::from(from.as_str())
            }
            (_, Kind::Lost) => record.get("lost_from").cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if record.get("lost_from").unwrap_or(&Value::Null) != &lost_from {
            patch.insert("lost_from".into(), lost_from);
        }
        Ok((!patch.is_empty()).then_some(patch))
    }

    fn after_save(change: &Committed) -> Result<(), String> {
        if change.object != "deals" {
            return Ok(());
        }
        let key = format!("history/{}", change.record_id);
        if change.topic == "record.deleted" {
            return kv::delete(&key);
        }
        if change.topic != "record.created" && !change.changed("stage") {
            return Ok(());
        }
        let Some(stage) = text(&change.record, "stage") else {
            return Ok(());
        };
        let at = text(&change.record, "updated_at").unwrap_or_default();
        let mut history: Vec<Move> = kv::get_json(&key)?.unwrap_or_default();
        // After-save may run twice for one change: a move already there is not added.
        if history
            .last()
            .is_some_and(|m| m.stage == stage && m.at == at)
        {
            return Ok(());
        }
        history.push(Move {
            stage,
            at,
            by: change.actor.clone(),
        });
        if history.len() > MAX_HISTORY {
            history.drain(..history.len() - MAX_HISTORY);
        }
        kv::set_json(&key, &history)
    }

    fn handle(request: &HttpRequest) -> HttpResponse {
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("GET", "/pipelines") => match pipeline::all() {
                Ok(all) => http::json(
                    200,
                    &json!(all.iter().map(Pipeline::describe).collect::<Vec<_>>()),
                ),
                Err(e) => http::problem(500, &e),
            },
            (_, p) if p.starts_with("/pipelines/") => define(request, &p["/pipelines/".len()..]),
            ("GET", "/board") => reports::board(&request.query),
            ("GET", "/views/board") => reports::board_view(&request.query),
            ("GET", "/forecast") => reports::forecast(&request.query),
            ("GET", "/funnel") => reports::funnel(&request.query),
            ("GET", "/targets") => targets::progress(&request.query),
            (_, p) if p.starts_with("/targets/") => {
                targets::route(request, &p["/targets/".len()..])
            }
            ("GET", p) if p.starts_with("/deals/") && p.ends_with("/history") => {
                history(&p["/deals/".len()..p.len() - "/history".len()])
            }
            _ => http::problem(
                404,
                "pipelines serves /pipelines, /board, /views/board, /forecast, /funnel, /targets[/{id}] and /deals/{id}/history",
            ),
        }
    }
}

crm_plugin_sdk::export_plugin!(Pipelines);

/// One stage a deal entered.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Move {
    pub stage: String,
    /// When (the deal's `updated_at` of that change).
    pub at: String,
    /// Who moved it.
    pub by: Option<String>,
}

pub fn text(record: &Record, field: &str) -> Option<String> {
    record
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// The stage the deal is in now, before this update (read as the caller).
fn previous_stage(record: &Record) -> Result<Option<String>, HookError> {
    let Some(id) = text(record, "id") else {
        return Ok(None);
    };
    let stored = records::get("deals", &id).map_err(HookError::Failed)?;
    Ok(text(&stored, "stage"))
}

/// The rules of a move to `to` (from `from`, when the deal had a stage): answers
/// the stage, or the field errors that refuse the move.
pub fn check_move<'p>(
    pipeline: &'p Pipeline,
    from: Option<&str>,
    to: &str,
    record: &Record,
) -> Result<&'p Stage, Vec<FieldError>> {
    let error = |field: &str, message: String| FieldError {
        field: field.to_string(),
        message,
    };
    let Some(stage) = pipeline.stage(to) else {
        return Err(vec![error(
            "stage",
            format!(
                "'{to}' is not a stage of the {} pipeline; stages: {}",
                pipeline.name,
                pipeline.stage_names().join(", ")
            ),
        )]);
    };
    if let Some(from) = from.and_then(|f| pipeline.stage(f))
        && from.name != stage.name
        && !from.allows(&stage.name)
    {
        return Err(vec![error(
            "stage",
            format!(
                "a deal in '{}' cannot move to '{}'; it may move to: {}",
                from.name,
                stage.name,
                pipeline.moves_from(from).join(", ")
            ),
        )]);
    }
    let missing: Vec<FieldError> = stage
        .required
        .iter()
        .filter(|f| {
            record
                .get(f.as_str())
                .is_none_or(|v| v.is_null() || v == "")
        })
        .map(|f| error(f, format!("is required in stage '{}'", stage.name)))
        .collect();
    if missing.is_empty() {
        Ok(stage)
    } else {
        Err(missing)
    }
}

/// `GET /pipelines/{name}`; `PUT` (admins) saves a pipeline of that name, which
/// replaces a built-in one of the same name; `DELETE` (admins) removes it (a
/// built-in one comes back).
fn define(request: &HttpRequest, name: &str) -> HttpResponse {
    if !pipeline::valid_name(name) {
        return http::problem(
            404,
            "a pipeline's name is 1 to 64 lower-case letters, digits and -",
        );
    }
    let admin = http::header(request, "x-crm-admin") == Some("true");
    match request.method.as_str() {
        "GET" => match pipeline::find(name) {
            Ok(Some(p)) => http::json(200, &p.describe()),
            Ok(None) => http::problem(404, "there is no such pipeline"),
            Err(e) => http::problem(500, &e),
        },
        "PUT" if admin => {
            let mut definition: Pipeline = match http::body_json(request) {
                Ok(p) => p,
                Err(answer) => return answer,
            };
            definition.name = name.to_string();
            let problems = definition.check();
            if !problems.is_empty() {
                return http::invalid("the pipeline is not valid", &problems);
            }
            match kv::set_json(&pipeline::key(name), &definition) {
                Ok(()) => http::json(200, &definition.describe()),
                Err(e) => http::problem(422, &e),
            }
        }
        "DELETE" if admin => match kv::delete(&pipeline::key(name)) {
            Ok(()) => http::no_content(),
            Err(e) => http::problem(500, &e),
        },
        "PUT" | "DELETE" => http::problem(403, "only admins of the department define pipelines"),
        _ => http::problem(405, "pipelines are read, saved with PUT and deleted"),
    }
}

/// `GET /deals/{id}/history`: the moves of a deal the caller may read, each with
/// when it left the stage and the seconds spent in it.
fn history(id: &str) -> HttpResponse {
    if let Err(e) = records::get("deals", id) {
        return http::problem(404, &e);
    }
    let moves: Vec<Move> = match kv::get_json(&format!("history/{id}")) {
        Ok(moves) => moves.unwrap_or_default(),
        Err(e) => return http::problem(500, &e),
    };
    let entries: Vec<Value> = moves
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let left = moves.get(i + 1).map(|next| next.at.clone());
            let seconds = left
                .as_deref()
                .and_then(|l| time::seconds_between(&m.at, l));
            json!({
                "stage": m.stage,
                "entered_at": m.at,
                "left_at": left,
                "seconds_in_stage": seconds,
                "moved_by": m.by,
            })
        })
        .collect();
    http::json(200, &json!({ "deal": id, "moves": entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deal(fields: Value) -> Record {
        fields.as_object().cloned().unwrap()
    }

    #[test]
    fn a_stage_asks_for_its_fields() {
        let sales = &pipeline::builtin()[0];
        let refused =
            check_move(sales, Some("qualified"), "proposal", &deal(json!({}))).unwrap_err();
        assert_eq!(refused[0].field, "amount");
        let ok = check_move(
            sales,
            Some("qualified"),
            "proposal",
            &deal(json!({"amount": 10})),
        );
        assert_eq!(ok.unwrap().probability, 50);
    }

    #[test]
    fn won_deals_stay_won_and_lost_ones_may_be_reopened() {
        let sales = &pipeline::builtin()[0];
        let full = deal(json!({"amount": 5, "close_date": "2026-12-01", "company": "c"}));
        assert!(check_move(sales, Some("won"), "negotiation", &full).is_err());
        assert!(check_move(sales, Some("lost"), "lead-in", &full).is_ok());
        assert!(check_move(sales, Some("lost"), "won", &full).is_err());
        assert!(check_move(sales, None, "nowhere", &full).is_err());
    }
}
