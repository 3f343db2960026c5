//! Pages plugins add to the web interface. A plugin declares menu entries in its
//! manifest (`[[menu]]`: a label and a route); the route answers a declarative view
//! as JSON (a board, a table, a detail panel or a chart). The host checks the JSON
//! against the types below and renders it with its own templates: a plugin
//! supplies text and numbers, never markup, so its content cannot run script.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::i18n::Tr;
use super::{Visitor, WebError, WebResult, render};
use crate::api::AppState;
use crate::plugins::gateway;

/// Most columns, cards, rows or points a view may hold.
const MAX_ITEMS: usize = 1_000;
/// Longest text shown from a view (longer is cut).
const MAX_TEXT: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(tag = "view", rename_all = "snake_case")]
pub enum View {
    Board(Board),
    Table(Table),
    Detail(Detail),
    Chart(Chart),
}

/// Columns of cards; with `moves`, a card moves to another column by setting a
/// field of its record to that column's key (through the records service, so the
/// record's rules and the user's rights decide).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub columns: Vec<BoardColumn>,
    #[serde(default)]
    pub moves: Option<Moves>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardColumn {
    pub key: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub cards: Vec<Card>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub title: String,
    #[serde(default)]
    pub subtitle: String,
    #[serde(default)]
    pub record: Option<RecordLink>,
}

/// A record of the CRM a card or row stands for (the page links to it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLink {
    pub object: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moves {
    pub object: String,
    pub field: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub columns: Vec<String>,
    pub rows: Vec<TableRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRow {
    /// One value per column: text, number, true/false or null.
    pub cells: Vec<Value>,
    #[serde(default)]
    pub record: Option<RecordLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    pub title: String,
    pub fields: Vec<DetailField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailField {
    pub label: String,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    pub title: String,
    /// `bar` or `line`.
    pub kind: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub label: String,
    pub value: f64,
}

/// `text` cut to [`MAX_TEXT`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn link(record: &Option<RecordLink>) -> Option<String> {
    record
        .as_ref()
        .filter(|r| is_name(&r.object) && is_name(&r.id))
        .map(|r| format!("/records/{}/{}", r.object, r.id))
}

fn value_text(tr: &Tr, value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => tr.t(if *b { "yes" } else { "no" }),
        Value::Number(n) => tr.digits(&n.to_string()),
        Value::String(s) => cut(s),
        other => cut(&other.to_string()),
    }
}

impl View {
    /// Refuses what the page would not show faithfully.
    fn check(&self) -> Result<(), String> {
        let too_many = |what: &str, n: usize| {
            if n > MAX_ITEMS {
                Err(format!("a view holds at most {MAX_ITEMS} {what}, not {n}"))
            } else {
                Ok(())
            }
        };
        match self {
            View::Board(b) => {
                too_many("columns", b.columns.len())?;
                too_many("cards", b.columns.iter().map(|c| c.cards.len()).sum())?;
                if let Some(m) = &b.moves
                    && !(is_name(&m.object) && is_name(&m.field))
                {
                    return Err("moves names an object and a field".into());
                }
            }
            View::Table(t) => {
                too_many("rows", t.rows.len())?;
                if let Some(row) = t.rows.iter().find(|r| r.cells.len() != t.columns.len()) {
                    return Err(format!(
                        "a row has {} cells for {} columns",
                        row.cells.len(),
                        t.columns.len()
                    ));
                }
            }
            View::Detail(d) => too_many("fields", d.fields.len())?,
            View::Chart(c) => {
                too_many("points", c.points.len())?;
                if !matches!(c.kind.as_str(), "bar" | "line") {
                    return Err(format!("a chart is a bar or line chart, not '{}'", c.kind));
                }
                if c.points.iter().any(|p| !p.value.is_finite()) {
                    return Err("chart values are finite numbers".into());
                }
            }
        }
        Ok(())
    }
}

pub struct ShownCard {
    pub title: String,
    pub subtitle: String,
    pub href: Option<String>,
    /// Where its move form posts (`None`: it does not move).
    pub move_action: Option<String>,
}

pub struct ShownColumn {
    pub key: String,
    pub title: String,
    pub summary: String,
    pub cards: Vec<ShownCard>,
}

pub struct ShownRow {
    pub cells: Vec<String>,
    pub href: Option<String>,
}

/// A chart drawn as SVG: bars or the points of a line, in a 600 x 260 box.
pub struct Drawing {
    pub bars: Vec<(f64, f64, f64, f64)>,
    pub line: String,
    /// (x of the label's centre, label, value)
    pub labels: Vec<(f64, String, String)>,
}

const CHART_W: f64 = 600.0;
const CHART_H: f64 = 220.0;

fn draw(tr: &Tr, chart: &Chart) -> Drawing {
    let n = chart.points.len().max(1) as f64;
    let top = chart
        .points
        .iter()
        .map(|p| p.value)
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = CHART_W / n;
    let height = |v: f64| (v.max(0.0) / top * (CHART_H - 10.0)).round();
    let mut drawing = Drawing {
        bars: Vec::new(),
        line: String::new(),
        labels: Vec::new(),
    };
    for (i, p) in chart.points.iter().enumerate() {
        let x = slot * i as f64;
        let h = height(p.value);
        if chart.kind == "bar" {
            drawing
                .bars
                .push((x + slot * 0.15, CHART_H - h, slot * 0.7, h));
        } else {
            drawing
                .line
                .push_str(&format!("{:.1},{:.1} ", x + slot / 2.0, CHART_H - h));
        }
        drawing.labels.push((
            x + slot / 2.0,
            cut(&p.label),
            tr.digits(&format!("{}", (p.value * 100.0).round() / 100.0)),
        ));
    }
    drawing
}

#[derive(Template)]
#[template(path = "web/view.html")]
struct ViewPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    heading: String,
    description: String,
    here: String,
    moves_field: String,
    columns: Vec<ShownColumn>,
    table_heads: Vec<String>,
    rows: Vec<ShownRow>,
    fields: Vec<(String, String)>,
    chart: Option<Drawing>,
}

/// `GET /apps/{plugin}/{view}`: a view the plugin's manifest declares, rendered.
pub async fn plugin_page(
    State(app): State<AppState>,
    v: Visitor,
    Path((plugin, view)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> WebResult {
    let path = format!("/{view}");
    let declared = app
        .plugins
        .installed(&plugin)
        .filter(|p| p.info.manifest.menu.iter().any(|m| m.view == path));
    let Some(installed) = declared else {
        return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found")));
    };
    let query = query.unwrap_or_default();
    let (status, body) = gateway::get_as(&app, &v.actor, &plugin, &path, &query)
        .await
        .map_err(|e| v.fail(e))?;
    let name = &installed.info.name;
    if !status.is_success() {
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{name} answered {status}"));
        return Err(v.error(status, cut(&detail)));
    }
    let parsed = serde_json::from_slice::<View>(&body)
        .map_err(|e| e.to_string())
        .and_then(|view| view.check().map(|()| view));
    let view = parsed.map_err(|e| bad_view(&v, name, &e))?;
    let here = match query.as_str() {
        "" => format!("/apps/{plugin}{path}"),
        q => format!("/apps/{plugin}{path}?{q}"),
    };
    let tr = &v.tr;
    let mut page = ViewPage {
        v: &v,
        tr,
        heading: String::new(),
        description: String::new(),
        here,
        moves_field: String::new(),
        columns: Vec::new(),
        table_heads: Vec::new(),
        rows: Vec::new(),
        fields: Vec::new(),
        chart: None,
    };
    match view {
        View::Board(mut b) => {
            if let Some(m) = &b.moves
                && !may_move(&app, &installed, m, &b.columns)
            {
                tracing::warn!(plugin, field = %m.field, "a board's moves were ignored: the field is neither the plugin's own nor a picklist of its columns");
                b.moves = None;
            }
            page.heading = cut(&b.title);
            page.description = cut(&b.description);
            page.moves_field = b
                .moves
                .as_ref()
                .map(|m| m.field.clone())
                .unwrap_or_default();
            page.columns = b
                .columns
                .iter()
                .map(|c| ShownColumn {
                    key: cut(&c.key),
                    title: cut(&c.title),
                    summary: tr.digits(&cut(&c.summary)),
                    cards: c
                        .cards
                        .iter()
                        .map(|card| ShownCard {
                            title: cut(&card.title),
                            subtitle: tr.digits(&cut(&card.subtitle)),
                            href: link(&card.record),
                            move_action: b.moves.as_ref().and_then(|m| {
                                let r = card.record.as_ref()?;
                                (r.object == m.object && link(&card.record).is_some())
                                    .then(|| format!("/records/{}/{}/set", r.object, r.id))
                            }),
                        })
                        .collect(),
                })
                .collect();
        }
        View::Table(t) => {
            page.heading = cut(&t.title);
            page.description = cut(&t.description);
            page.table_heads = t.columns.iter().map(|c| cut(c)).collect();
            page.rows = t
                .rows
                .iter()
                .map(|r| ShownRow {
                    cells: r.cells.iter().map(|c| value_text(tr, c)).collect(),
                    href: link(&r.record),
                })
                .collect();
        }
        View::Detail(d) => {
            page.heading = cut(&d.title);
            page.fields = d
                .fields
                .iter()
                .map(|f| (cut(&f.label), value_text(tr, &f.value)))
                .collect();
        }
        View::Chart(c) => {
            page.heading = cut(&c.title);
            page.chart = Some(draw(tr, &c));
        }
    }
    Ok(render(&page))
}

/// A board may move cards by a field the plugin added to the object itself (its
/// manifest's fields), or by a picklist holding every column's key: never by any
/// other field the user happens to be able to write.
fn may_move(
    app: &AppState,
    plugin: &crate::plugins::Installed,
    moves: &Moves,
    columns: &[BoardColumn],
) -> bool {
    let own = plugin
        .info
        .manifest
        .fields
        .get(&moves.object)
        .is_some_and(|fields| fields.iter().any(|f| f.name == moves.field));
    let schema = app.records.schema();
    let picklist = schema
        .object(&moves.object)
        .and_then(|o| o.field(&moves.field))
        .is_some_and(|f| {
            f.kind == crate::records::metadata::FieldType::Picklist
                && columns.iter().all(|c| f.values.contains(&c.key))
        });
    own || picklist
}

fn bad_view(v: &Visitor, plugin: &str, reason: &str) -> WebError {
    tracing::warn!(
        plugin,
        reason,
        "a plugin answered a view the host cannot show"
    );
    v.error(
        StatusCode::BAD_GATEWAY,
        format!(
            "{plugin} answered a view this page cannot show: {}",
            cut(reason)
        ),
    )
}
