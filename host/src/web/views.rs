//! Pages plugins add to the web interface. A plugin declares menu entries in its
//! manifest (`[[menu]]`: a label and a route); the route answers a declarative view
//! as JSON (a board, a table, a detail panel, a chart or a form). The host checks
//! the JSON against the types below and renders it with its own templates: a
//! plugin supplies text and numbers, never markup, so its content cannot run
//! script. A form posts its values back to the same route (as a JSON object),
//! which answers another view or where to go next.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::Value;

use super::i18n::Tr;
use super::{Choice, FormData, Visitor, WebError, WebResult, render};
use crate::api::AppState;
use crate::plugins::{Installed, gateway};
use std::sync::Arc;

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
    Form(FormView),
    /// After a form was taken: the page to go to (a view the plugin declares).
    Redirect {
        to: String,
    },
}

/// A link above a view to another of the plugin's views: `to` is a view its
/// manifest declares, with a query string if wanted (`/views/forms?edit=x`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewLink {
    pub label: String,
    pub to: String,
}

/// A form the host draws; submitting it posts `{input name: text}` (a checkbox
/// sends `"on"` when ticked and nothing otherwise) to the same route with the
/// page's query string. The plugin answers with a view (this form again with its
/// errors, with a 4xx status, say) or a redirect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormView {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Reasons not tied to one input, shown above the form.
    #[serde(default)]
    pub errors: Vec<String>,
    pub sections: Vec<FormSection>,
    /// The button's text ("Save" when empty).
    #[serde(default)]
    pub submit: String,
    #[serde(default)]
    pub links: Vec<ViewLink>,
}

/// Inputs drawn together under a title (a fieldset).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormSection {
    #[serde(default)]
    pub title: String,
    pub inputs: Vec<FormInput>,
}

/// Input types a form view may use.
const INPUT_TYPES: &[&str] = &["text", "textarea", "number", "email", "select", "checkbox"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormInput {
    pub name: String,
    pub label: String,
    /// One of [`INPUT_TYPES`] (`text` when left out).
    #[serde(default = "text_input", rename = "type")]
    pub kind: String,
    /// Its text (a number or true/false for a checkbox also do).
    #[serde(default)]
    pub value: Value,
    /// A select's choices.
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// Shown but not sent back.
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub help: String,
    /// Why the value was refused, shown beside the input.
    #[serde(default)]
    pub error: String,
}

fn text_input() -> String {
    "text".into()
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
    #[serde(default)]
    pub links: Vec<ViewLink>,
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
    #[serde(default)]
    pub links: Vec<ViewLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRow {
    /// One value per column: text, number, true/false or null.
    pub cells: Vec<Value>,
    #[serde(default)]
    pub record: Option<RecordLink>,
    /// Another of the plugin's views instead of a record (as [`ViewLink::to`]).
    #[serde(default)]
    pub link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    pub title: String,
    pub fields: Vec<DetailField>,
    #[serde(default)]
    pub links: Vec<ViewLink>,
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
    #[serde(default)]
    pub links: Vec<ViewLink>,
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

/// Whether `to` is a view the plugin declares (`declared`, its manifest's menu
/// views), with a query string of plain address characters.
fn declared_link(to: &str, declared: &[&str]) -> bool {
    let (path, query) = to.split_once('?').unwrap_or((to, ""));
    declared.contains(&path)
        && query.len() <= 1_000
        && query
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~%=&+".contains(c))
}

/// A form input's name: what the plugin reads back. Names starting with `_` are
/// the host's own (`_csrf`).
fn is_input_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('_')
        && name.chars().all(|c| c.is_ascii_graphic())
}

impl View {
    /// Refuses what the page would not show faithfully, and links to anything but
    /// the plugin's declared views.
    fn check(&self, declared: &[&str]) -> Result<(), String> {
        let too_many = |what: &str, n: usize| {
            if n > MAX_ITEMS {
                Err(format!("a view holds at most {MAX_ITEMS} {what}, not {n}"))
            } else {
                Ok(())
            }
        };
        let linked = |to: &str| {
            if declared_link(to, declared) {
                Ok(())
            } else {
                Err(format!(
                    "a link goes to '{}', which is not a view the plugin declares",
                    cut(to)
                ))
            }
        };
        too_many("links", self.links().len())?;
        for l in self.links() {
            linked(&l.to)?;
        }
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
                for to in t.rows.iter().filter_map(|r| r.link.as_deref()) {
                    linked(to)?;
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
            View::Form(f) => {
                too_many("sections", f.sections.len())?;
                too_many("errors", f.errors.len())?;
                let inputs = || f.sections.iter().flat_map(|s| &s.inputs);
                too_many("inputs", inputs().count())?;
                too_many("options", inputs().map(|i| i.options.len()).sum())?;
                for input in inputs() {
                    if !is_input_name(&input.name) {
                        return Err(format!(
                            "an input's name is 1 to 100 visible characters not starting with _, not '{}'",
                            cut(&input.name)
                        ));
                    }
                    if !INPUT_TYPES.contains(&input.kind.as_str()) {
                        return Err(format!(
                            "an input is one of {}, not '{}'",
                            INPUT_TYPES.join(", "),
                            cut(&input.kind)
                        ));
                    }
                }
            }
            View::Redirect { to } => linked(to)?,
        }
        Ok(())
    }

    fn links(&self) -> &[ViewLink] {
        match self {
            View::Board(b) => &b.links,
            View::Table(t) => &t.links,
            View::Detail(d) => &d.links,
            View::Chart(c) => &c.links,
            View::Form(f) => &f.links,
            View::Redirect { .. } => &[],
        }
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

/// An input of a form view as drawn: its text, or its choices with the one
/// chosen marked.
pub struct ShownInput {
    pub id: String,
    pub name: String,
    pub label: String,
    pub kind: String,
    pub value: String,
    pub checked: bool,
    pub options: Vec<Choice>,
    pub required: bool,
    pub read_only: bool,
    pub help: String,
    pub error: String,
}

pub struct ShownSection {
    pub title: String,
    pub inputs: Vec<ShownInput>,
}

pub struct ShownForm {
    pub errors: Vec<String>,
    pub sections: Vec<ShownSection>,
    pub submit: String,
}

/// An input's value as the text it holds. Not cut and in Latin digits: the text
/// comes back when the form is sent.
fn input_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn shown_form(tr: &Tr, form: FormView) -> ShownForm {
    let sections = form
        .sections
        .into_iter()
        .enumerate()
        .map(|(s, section)| ShownSection {
            title: cut(&section.title),
            inputs: section
                .inputs
                .into_iter()
                .enumerate()
                .map(|(i, input)| {
                    let value = input_text(&input.value);
                    let mut options: Vec<Choice> = input
                        .options
                        .iter()
                        .map(|o| Choice {
                            value: o.clone(),
                            label: cut(o),
                            selected: *o == value,
                        })
                        .collect();
                    if !input.required && !input.options.contains(&String::new()) {
                        options.insert(
                            0,
                            Choice {
                                value: String::new(),
                                label: String::new(),
                                selected: value.is_empty(),
                            },
                        );
                    }
                    ShownInput {
                        id: format!("in-{s}-{i}"),
                        checked: matches!(input.value, Value::Bool(true))
                            || matches!(&input.value, Value::String(t) if t == "on"),
                        // A read-only input is drawn without a name, so it is not sent.
                        name: if input.read_only {
                            String::new()
                        } else {
                            input.name
                        },
                        label: cut(&input.label),
                        kind: input.kind,
                        value,
                        options,
                        required: input.required,
                        read_only: input.read_only,
                        help: cut(&input.help),
                        error: cut(&input.error),
                    }
                })
                .collect(),
        })
        .collect();
    ShownForm {
        errors: form.errors.iter().map(|e| cut(e)).collect(),
        sections,
        submit: match form.submit.trim() {
            "" => tr.t("form-save"),
            text => cut(text),
        },
    }
}

#[derive(Template)]
#[template(path = "web/view.html")]
struct ViewPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    heading: String,
    description: String,
    here: String,
    /// (address, label) of the links above the view.
    links: Vec<(String, String)>,
    moves_field: String,
    columns: Vec<ShownColumn>,
    table_heads: Vec<String>,
    rows: Vec<ShownRow>,
    fields: Vec<(String, String)>,
    chart: Option<Drawing>,
    form: Option<ShownForm>,
}

/// A view page asked for: the plugin, and the view its manifest declares.
struct Target {
    installed: Arc<Installed>,
    plugin: String,
    path: String,
    query: String,
}

impl Target {
    fn of(
        app: &AppState,
        v: &Visitor,
        plugin: String,
        view: &str,
        query: Option<String>,
    ) -> Result<Self, WebError> {
        let path = format!("/{view}");
        let declared = app
            .plugins
            .installed(&plugin)
            .filter(|p| p.info.manifest.menu.iter().any(|m| m.view == path));
        let Some(installed) = declared else {
            return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found")));
        };
        Ok(Target {
            installed,
            plugin,
            path,
            query: query.unwrap_or_default(),
        })
    }

    /// A page address of the plugin's view `to` (a path it declares, and a query).
    fn page(&self, to: &str) -> String {
        format!("/apps/{}{to}", self.plugin)
    }

    /// Calls the view's route as the visitor (GET, or POST with a form's values)
    /// and makes the page of its answer.
    async fn call(&self, app: &AppState, v: &Visitor, json: Option<Vec<u8>>) -> WebResult {
        let (status, body) =
            gateway::call_as(app, &v.actor, &self.plugin, &self.path, &self.query, json)
                .await
                .map_err(|e| v.fail(e))?;
        show(app, v, self, status, &body)
    }
}

/// `GET /apps/{plugin}/{view}`: a view the plugin's manifest declares, rendered.
pub async fn plugin_page(
    State(app): State<AppState>,
    v: Visitor,
    Path((plugin, view)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> WebResult {
    let target = Target::of(&app, &v, plugin, &view, query)?;
    target.call(&app, &v, None).await
}

/// `POST /apps/{plugin}/{view}`: a form view sent. Its values go to the plugin's
/// route as a JSON object of texts (the host's own `_csrf` left out), as the
/// signed-in user; the plugin answers the next view or where to go.
pub async fn plugin_post(
    State(app): State<AppState>,
    v: Visitor,
    Path((plugin, view)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let target = Target::of(&app, &v, plugin, &view, query)?;
    let values: serde_json::Map<String, Value> = form
        .0
        .into_iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .map(|(name, text)| (name, Value::String(text)))
        .collect();
    let json = serde_json::to_vec(&values).expect("a map of strings is JSON");
    target.call(&app, &v, Some(json)).await
}

/// The plugin's answer as a page: its view drawn (with the plugin's status when
/// that is a 4xx, such as a form with errors), a redirect followed, or an error
/// page with the plugin's reason.
fn show(
    app: &AppState,
    v: &Visitor,
    target: &Target,
    status: StatusCode,
    body: &[u8],
) -> WebResult {
    let installed = &target.installed;
    let name = &installed.info.name;
    let declared: Vec<&str> = installed
        .info
        .manifest
        .menu
        .iter()
        .map(|m| m.view.as_str())
        .collect();
    let parsed = serde_json::from_slice::<View>(body)
        .map_err(|e| e.to_string())
        .and_then(|view| view.check(&declared).map(|()| view));
    let view = match parsed {
        Ok(view) if status.is_success() || status.is_client_error() => view,
        Err(e) if status.is_success() => return Err(bad_view(v, name, &e)),
        _ => {
            let detail = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|p| p["detail"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{name} answered {status}"));
            return Err(v.error(status, cut(&detail)));
        }
    };
    let here = match target.query.as_str() {
        "" => target.page(&target.path),
        q => target.page(&format!("{}?{q}", target.path)),
    };
    let tr = &v.tr;
    let links = view
        .links()
        .iter()
        .map(|l| (target.page(&l.to), cut(&l.label)))
        .collect();
    let mut page = ViewPage {
        v,
        tr,
        heading: String::new(),
        description: String::new(),
        here,
        links,
        moves_field: String::new(),
        columns: Vec::new(),
        table_heads: Vec::new(),
        rows: Vec::new(),
        fields: Vec::new(),
        chart: None,
        form: None,
    };
    match view {
        View::Board(mut b) => {
            if let Some(m) = &b.moves
                && !may_move(app, installed, m, &b.columns)
            {
                tracing::warn!(plugin = target.plugin, field = %m.field, "a board's moves were ignored: the field is neither the plugin's own nor a picklist of its columns");
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
                    href: match &r.link {
                        Some(to) => Some(target.page(to)),
                        None => link(&r.record),
                    },
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
        View::Form(f) => {
            page.heading = cut(&f.title);
            page.description = cut(&f.description);
            page.form = Some(shown_form(tr, f));
        }
        View::Redirect { to } => return Ok(Redirect::to(&target.page(&to)).into_response()),
    }
    let mut response = render(&page);
    if status.is_client_error() {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// A board may move cards by a field the plugin added to the object itself (its
/// manifest's fields), or by a picklist holding every column's key: never by any
/// other field the user happens to be able to write.
fn may_move(app: &AppState, plugin: &Installed, moves: &Moves, columns: &[BoardColumn]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::i18n::{Locale, Preferences};
    use super::*;
    use serde_json::json;

    fn checked(view: Value) -> Result<(), String> {
        serde_json::from_value::<View>(view)
            .map_err(|e| e.to_string())?
            .check(&["/views/forms", "/views/board"])
    }

    #[test]
    fn links_go_only_to_the_plugins_declared_views() {
        let table = |to: &str| {
            json!({"view": "table", "title": "t", "columns": ["a"],
                   "rows": [{"cells": [1], "link": to}], "links": [{"label": "New", "to": "/views/forms?new"}]})
        };
        assert_eq!(checked(table("/views/forms?edit=talk-to-sales")), Ok(()));
        for bad in [
            "/views/other",
            "https://evil.example/",
            "//evil.example/views/forms",
            "/views/forms?x=\"><script>",
        ] {
            assert!(checked(table(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            checked(json!({"view": "redirect", "to": "/views/board"})),
            Ok(())
        );
        assert!(checked(json!({"view": "redirect", "to": "/records/deals"})).is_err());
    }

    #[test]
    fn a_form_view_keeps_to_its_inputs() {
        let form =
            |input: Value| json!({"view": "form", "title": "f", "sections": [{"inputs": [input]}]});
        let input = |name: &str, kind: &str| json!({"name": name, "label": "L", "type": kind});
        assert_eq!(checked(form(input("q0.name", "select"))), Ok(()));
        assert_eq!(
            checked(form(json!({"name": "title", "label": "Title"}))),
            Ok(()),
            "text by default"
        );
        let reason = checked(form(input("_csrf", "text"))).unwrap_err();
        assert!(reason.contains("not starting with _"), "{reason}");
        assert!(checked(form(input("a b", "text"))).is_err());
        let reason = checked(form(input("x", "file"))).unwrap_err();
        assert!(reason.contains("not 'file'"), "{reason}");
        assert!(checked(form(json!({"name": "x", "label": "L", "onclick": "x"}))).is_err());
    }

    #[test]
    fn a_read_only_input_is_drawn_without_a_name_and_a_select_marks_its_value() {
        let view: FormView = serde_json::from_value(json!({"title": "f", "sections": [{"inputs": [
            {"name": "name", "label": "Name", "value": "talk", "read_only": true},
            {"name": "kind", "label": "Kind", "type": "select", "options": ["form", "nps"], "value": "nps"},
            {"name": "max", "label": "Max", "type": "number", "value": 1200},
            {"name": "required", "label": "Required", "type": "checkbox", "value": true},
        ]}]}))
        .unwrap();
        let tr = Tr::new(Preferences::defaults_for(Locale::Fa));
        let shown = shown_form(&tr, view);
        let inputs = &shown.sections[0].inputs;
        assert_eq!(
            (inputs[0].name.as_str(), inputs[0].value.as_str()),
            ("", "talk")
        );
        let chosen: Vec<&str> = inputs[1]
            .options
            .iter()
            .filter(|o| o.selected)
            .map(|o| o.value.as_str())
            .collect();
        assert_eq!(chosen, ["nps"]);
        assert_eq!(
            inputs[1].options[0].value, "",
            "not required: a blank choice"
        );
        assert_eq!(
            inputs[2].value, "1200",
            "Latin digits: the text is sent back"
        );
        assert!(inputs[3].checked);
    }
}
