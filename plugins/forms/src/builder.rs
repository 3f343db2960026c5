//! The form builder: the plugin's page in the CRM's menu (`/views/forms`, declared
//! in plugin.toml). It answers declarative views that the host draws (a table of
//! the forms, a form to define one) and takes that form's values back. The
//! plugin sends no HTML here, so nothing it shows can run script in the CRM.
//!
//! - `GET /views/forms[?saved=&removed=]`: the forms, each linking to its editor.
//! - `GET /views/forms?new` and `?edit={form}`: the editor, blank or filled in.
//! - `POST` the same addresses (admins of the department): the editor's values
//!   as `{input: text}`; saved (or removed), the answer sends the browser back to
//!   the list, otherwise the editor comes back (422) with every reason beside its
//!   input and what was typed kept.

use std::collections::BTreeMap;

use crm_plugin_sdk::{HttpRequest, HttpResponse, Map, Value, http, json, kv};

use crate::form::{Form, FormField, KINDS, KINDS_OF_FORM, OBJECTS, ShowIf};

/// The view's own path (the manifest's menu entry).
const VIEW: &str = "/views/forms";
/// Blank questions offered below a form's own, to add new ones.
const BLANK_QUESTIONS: usize = 3;
/// Most questions a form has ([`Form::check`] says the same).
const MAX_QUESTIONS: usize = 50;

/// The editor's inputs as sent (or as a stored form fills them in).
type Draft = BTreeMap<String, String>;
/// Why an input's value was refused, by input name.
type Refusals = BTreeMap<String, String>;

/// `GET /views/forms`: the list, or the editor.
pub fn show(request: &HttpRequest) -> HttpResponse {
    let query = crate::web::decode_form(request.query.as_bytes());
    let param = |name: &str| query.get(name).and_then(Value::as_str);
    if let Some(slug) = param("edit") {
        return match crate::load(slug) {
            Ok(Some(form)) => editor(200, Some(slug), &draft_of(&form), &Refusals::new(), &[]),
            Ok(None) => http::problem(404, "there is no such form"),
            Err(e) => http::problem(500, &e),
        };
    }
    if query.contains_key("new") {
        let mut draft = Draft::new();
        draft.insert("dedupe_by".into(), "email".into());
        return editor(200, None, &draft, &Refusals::new(), &[]);
    }
    list(param("saved"), param("removed"))
}

/// `POST /views/forms?new|edit={form}`: the editor's values, saved as a form.
pub fn take(request: &HttpRequest) -> HttpResponse {
    if !crate::is_admin(request) {
        return http::problem(403, "only admins of the department define forms");
    }
    let sent: Map<String, Value> = match http::body_json(request) {
        Ok(values) => values,
        Err(answer) => return answer,
    };
    let draft: Draft = sent
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect();
    let query = crate::web::decode_form(request.query.as_bytes());
    let editing = query.get("edit").and_then(Value::as_str);
    if let Some(slug) = editing {
        match crate::load(slug) {
            Ok(Some(_)) => {}
            Ok(None) => return http::problem(404, "there is no such form"),
            Err(e) => return http::problem(500, &e),
        }
        if draft.get("remove").is_some_and(|v| v == "on") {
            return match kv::delete(&crate::key(slug)) {
                Ok(()) => redirect(&format!("{VIEW}?removed={slug}")),
                Err(e) => http::problem(500, &e),
            };
        }
    }
    let slug = match editing {
        Some(slug) => slug.to_string(),
        None => draft
            .get("name")
            .map(|n| n.trim().to_string())
            .unwrap_or_default(),
    };
    let (mut form, mut refusals) = parse(&draft);
    let mut general = Vec::new();
    if editing.is_none() {
        if !crate::valid_slug(&slug) {
            refusals.insert(
                "name".into(),
                "1 to 64 lower-case letters, digits and -".into(),
            );
        } else {
            match crate::load(&slug) {
                Ok(Some(_)) => {
                    refusals.insert("name".into(), "a form has this name already".into());
                }
                Ok(None) => {}
                Err(e) => return http::problem(500, &e),
            }
        }
    }
    let problems = form.check();
    if problems.is_empty() && refusals.is_empty() {
        form.department = http::header(request, "x-crm-department").map(str::to_string);
        return match kv::set_json(&crate::key(&slug), &form) {
            Ok(()) => redirect(&format!("{VIEW}?saved={slug}")),
            Err(e) => http::problem(500, &e),
        };
    }
    place(
        &problems,
        &question_inputs(&draft),
        &mut refusals,
        &mut general,
    );
    editor(422, editing, &draft, &refusals, &general)
}

fn redirect(to: &str) -> HttpResponse {
    http::json(200, &json!({"view": "redirect", "to": to}))
}

/// The forms as a table, each row opening its editor.
fn list(saved: Option<&str>, removed: Option<&str>) -> HttpResponse {
    let stored = match crate::stored_forms() {
        Ok(stored) => stored,
        Err(e) => return http::problem(500, &e),
    };
    let rows: Vec<Value> = stored
        .iter()
        .map(|(slug, form)| {
            json!({
                "cells": [form.title, slug, form.kind, form.object, form.fields.len(), format!("/public/forms/f/{slug}")],
                "link": format!("{VIEW}?edit={slug}"),
            })
        })
        .collect();
    let description = match (saved, removed) {
        (Some(slug), _) => format!("Saved the form {slug}."),
        (_, Some(slug)) => format!("Removed the form {slug}."),
        _ if rows.is_empty() => "No forms yet.".into(),
        _ => "Open a form to change it. Anyone fills a form in at its public page.".into(),
    };
    http::json(
        200,
        &json!({
            "view": "table",
            "title": "Forms",
            "description": description,
            "columns": ["Title", "Name", "Kind", "Fills", "Questions", "Public page"],
            "rows": rows,
            "links": [{"label": "New form", "to": format!("{VIEW}?new")}],
        }),
    )
}

/// A stored form as the editor's inputs.
fn draft_of(form: &Form) -> Draft {
    let mut draft = Draft::new();
    let mut put = |name: String, value: String| {
        draft.insert(name, value);
    };
    put("title".into(), form.title.clone());
    put("kind".into(), form.kind.clone());
    put("object".into(), form.object.clone());
    put("question".into(), form.question.clone().unwrap_or_default());
    put("thank_you".into(), form.thank_you.clone());
    put("redirect".into(), form.redirect.clone().unwrap_or_default());
    put("dedupe_by".into(), form.dedupe_by.join(", "));
    put("assign_to".into(), form.assign_to.join("\n"));
    let hidden: Vec<String> = form
        .hidden
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    put("hidden".into(), hidden.join("\n"));
    for (i, f) in form.fields.iter().enumerate() {
        let at = |input: &str| format!("q{i}.{input}");
        put(at("name"), f.name.clone());
        put(at("label"), f.label.clone());
        put(at("type"), f.kind.clone());
        if f.required {
            put(at("required"), "on".into());
        }
        put(at("options"), f.options.join(", "));
        put(at("help"), f.help.clone());
        put(
            at("max_length"),
            f.max_length.map(|n| n.to_string()).unwrap_or_default(),
        );
        put(
            at("show_if"),
            f.show_if
                .as_ref()
                .map(|c| format!("{}={}", c.field, c.equals))
                .unwrap_or_default(),
        );
    }
    draft
}

/// The question numbers the draft has inputs for, in order.
fn question_numbers(draft: &Draft) -> Vec<usize> {
    let mut numbers: Vec<usize> = draft
        .keys()
        .filter_map(|k| k.strip_prefix('q')?.split_once('.')?.0.parse().ok())
        .filter(|n| *n < MAX_QUESTIONS + BLANK_QUESTIONS)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// The question numbers that become the form's fields (those with a field name),
/// in the order of the form's `fields`.
fn question_inputs(draft: &Draft) -> Vec<usize> {
    question_numbers(draft)
        .into_iter()
        .filter(|n| {
            draft
                .get(&format!("q{n}.name"))
                .is_some_and(|name| !name.trim().is_empty())
        })
        .collect()
}

/// The draft as a form, with the inputs that could not be read and why (the
/// form's own rules are [`Form::check`]'s).
fn parse(draft: &Draft) -> (Form, Refusals) {
    let mut refusals = Refusals::new();
    let text = |name: &str| {
        draft
            .get(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let list = |name: &str, by: char| -> Vec<String> {
        text(name)
            .split(by)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut hidden = Map::new();
    for line in list("hidden", '\n') {
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                hidden.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
            }
            _ => {
                refusals.insert(
                    "hidden".into(),
                    format!("'{line}' is not field=value (one a line)"),
                );
            }
        }
    }
    let mut fields = Vec::new();
    for n in question_inputs(draft) {
        let at = |input: &str| format!("q{n}.{input}");
        let name = text(&at("name"));
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            refusals.insert(
                at("name"),
                "a record field's name: lower-case letters, digits and _".into(),
            );
        }
        let max_length = match text(&at("max_length")).as_str() {
            "" => None,
            n => match n.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => Some(n),
                _ => {
                    refusals.insert(at("max_length"), "a whole number from 1 to 100000".into());
                    None
                }
            },
        };
        let show_if = match text(&at("show_if")).split_once('=') {
            Some((field, equals)) => Some(ShowIf {
                field: field.trim().to_string(),
                equals: equals.trim().to_string(),
            }),
            None if text(&at("show_if")).is_empty() => None,
            None => {
                refusals.insert(at("show_if"), "field=value, or empty".into());
                None
            }
        };
        let kind = match text(&at("type")) {
            t if t.is_empty() => "text".to_string(),
            t => t,
        };
        fields.push(FormField {
            name,
            label: text(&at("label")),
            kind,
            required: draft.get(&at("required")).is_some_and(|v| v == "on"),
            help: text(&at("help")),
            max_length,
            options: list(&at("options"), ','),
            show_if,
        });
    }
    let optional = |name: &str| Some(text(name)).filter(|t| !t.is_empty());
    let form = Form {
        title: text("title"),
        kind: optional("kind").unwrap_or_else(|| "form".into()),
        question: optional("question"),
        object: optional("object").unwrap_or_else(|| "leads".into()),
        fields,
        hidden,
        dedupe_by: list("dedupe_by", ','),
        thank_you: optional("thank_you")
            .unwrap_or_else(|| "Thank you. We will be in touch.".into()),
        redirect: optional("redirect"),
        assign_to: list("assign_to", '\n'),
        department: None,
    };
    (form, refusals)
}

/// [`Form::check`]'s problems beside the inputs they are about: `fields[i]` is
/// the i-th question with a name (`questions`), `fields` and what names no input
/// go above the form.
fn place(
    problems: &[(String, String)],
    questions: &[usize],
    refusals: &mut Refusals,
    general: &mut Vec<String>,
) {
    for (field, message) in problems {
        let input = match field
            .strip_prefix("fields[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => questions.get(i).map(|n| format!("q{n}.name")),
            None if [
                "title",
                "kind",
                "object",
                "question",
                "dedupe_by",
                "assign_to",
            ]
            .contains(&field.as_str()) =>
            {
                Some(field.clone())
            }
            None => None,
        };
        match input {
            Some(input) => {
                let entry = refusals.entry(input).or_default();
                if !entry.is_empty() {
                    entry.push_str("; ");
                }
                entry.push_str(message);
            }
            None => general.push(format!("{field}: {message}")),
        }
    }
}

/// The editor as a form view: the form's settings, one section per question
/// (and blank ones to add questions), and for a stored form a box to remove it.
fn editor(
    status: u16,
    editing: Option<&str>,
    draft: &Draft,
    refusals: &Refusals,
    general: &[String],
) -> HttpResponse {
    let value = |name: &str| draft.get(name).cloned().unwrap_or_default();
    let input = |name: &str, label: &str, kind: &str, help: &str| {
        json!({
            "name": name, "label": label, "type": kind, "value": value(name),
            "help": help, "error": refusals.get(name).cloned().unwrap_or_default(),
        })
    };
    let choice = |name: &str, label: &str, options: &[&str]| {
        let mut i = input(name, label, "select", "");
        i["options"] = json!(options);
        i["required"] = json!(true);
        if value(name).is_empty() {
            i["value"] = json!(options[0]);
        }
        i
    };
    let mut name = input(
        "name",
        "Name",
        "text",
        "Its public page is /public/forms/f/{name}: lower-case letters, digits and -.",
    );
    name["required"] = json!(true);
    if let Some(slug) = editing {
        name["value"] = json!(slug);
        name["read_only"] = json!(true);
        name["help"] = json!(format!("Its public page is /public/forms/f/{slug}."));
    }
    let mut title = input("title", "Title", "text", "");
    title["required"] = json!(true);
    let mut sections = vec![json!({"title": "Form", "inputs": [
        name,
        title,
        choice("kind", "Kind", KINDS_OF_FORM),
        choice("object", "Each submission fills", OBJECTS),
        input("question", "Survey question", "text", "A csat or nps survey's question (a default one otherwise)."),
        input("thank_you", "Thank-you message", "textarea", ""),
        input("redirect", "Go to this address after sending instead", "text", ""),
        input("dedupe_by", "Find an existing record by", "text", "Field names, separated by commas: the first that matches a record updates it."),
        input("assign_to", "Give new records in turn to", "textarea", "User ids, one a line; empty: the form keeps them."),
        input("hidden", "Fixed values", "textarea", "field=value, one a line, given to every submission."),
    ]})];
    let numbers = question_numbers(draft);
    let used = numbers.last().map_or(0, |n| n + 1);
    let shown = (used + BLANK_QUESTIONS).min(MAX_QUESTIONS + BLANK_QUESTIONS);
    for n in 0..shown {
        let at = |input: &str| format!("q{n}.{input}");
        let mut required = input(&at("required"), "Required", "checkbox", "");
        required["value"] = json!(value(&at("required")) == "on");
        let mut kind = choice(&at("type"), "Type", KINDS);
        if value(&at("type")).is_empty() {
            kind["value"] = json!("text");
        }
        sections.push(json!({
            "title": format!("Question {}", n + 1),
            "inputs": [
                input(&at("name"), "Field it fills", "text", if n >= used { "Leave empty for no question; empty a question's field to drop it." } else { "" }),
                input(&at("label"), "Label", "text", ""),
                kind,
                required,
                input(&at("options"), "Choices of a select", "text", "Separated by commas."),
                input(&at("help"), "Help text", "text", ""),
                input(&at("max_length"), "Longest answer (characters)", "number", "500 when empty."),
                input(&at("show_if"), "Ask only when", "text", "field=value: asked only when another answer has that value."),
            ],
        }));
    }
    if editing.is_some() {
        sections.push(json!({"title": "Remove", "inputs": [
            input("remove", "Remove this form (its submissions stay)", "checkbox", ""),
        ]}));
    }
    let title = match editing {
        Some(slug) => format!("Form {slug}"),
        None => "New form".into(),
    };
    http::json(
        status,
        &json!({
            "view": "form",
            "title": title,
            "description": "Admins of the department define its forms; submissions go to the department.",
            "errors": general,
            "sections": sections,
            "submit": "Save the form",
            "links": [{"label": "All forms", "to": VIEW}],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_form_fills_the_editor_and_reads_back_the_same() {
        let form: Form = crm_plugin_sdk::serde_json::from_value(json!({
            "title": "Talk to sales",
            "fields": [
                {"name": "last_name", "label": "Your name", "required": true},
                {"name": "interest", "type": "select", "options": ["demo", "pricing"]},
                {"name": "company_name", "show_if": {"field": "interest", "equals": "pricing"}, "max_length": 80}
            ],
            "hidden": {"source": "Web"},
            "dedupe_by": ["email", "phone"]
        }))
        .unwrap();
        let draft = draft_of(&form);
        assert_eq!(draft["q1.options"], "demo, pricing");
        assert_eq!(draft["q2.show_if"], "interest=pricing");
        let (back, refusals) = parse(&draft);
        assert!(refusals.is_empty(), "{refusals:?}");
        assert_eq!(json!(back), json!(form));
    }

    #[test]
    fn problems_go_beside_the_question_they_are_about() {
        let mut draft = Draft::new();
        draft.insert("q0.name".into(), "".into());
        draft.insert("q1.name".into(), "interest".into());
        draft.insert("q1.type".into(), "select".into());
        draft.insert("q1.max_length".into(), "lots".into());
        draft.insert("hidden".into(), "no equals sign".into());
        let (form, mut refusals) = parse(&draft);
        let mut general = Vec::new();
        assert_eq!(refusals["q1.max_length"], "a whole number from 1 to 100000");
        assert!(refusals["hidden"].contains("not field=value"));
        assert_eq!(form.fields.len(), 1, "the blank question is no field");
        place(
            &form.check(),
            &question_inputs(&draft),
            &mut refusals,
            &mut general,
        );
        assert_eq!(refusals["q1.name"], "a select needs options");
        assert_eq!(refusals["title"], "must be 1 to 200 characters");
        assert!(general.is_empty(), "{general:?}");
    }
}
