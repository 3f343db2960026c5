//! Forms: admins define web forms whose submissions create or update leads (or
//! contacts); anyone fills them in, as an embeddable HTML page or as JSON.
//!
//! - `PUT /api/v1/x/forms/forms/{form}` (admins of the department, which the host
//!   vouches for in `x-crm-admin`): saves a definition; submissions go to that
//!   department. `GET /api/v1/x/forms/forms[/{form}]`, `DELETE .../forms/{form}`.
//! - `GET /public/forms/f/{form}`: the form as an HTML page (no script) to link or
//!   embed; `POST` to the same path takes the answers, form-encoded (from the page)
//!   or as JSON.
//! - Spam: a honeypot field people never see (`website`); a filled one is thanked
//!   and dropped. The host limits each client address to 2 posts a second (burst
//!   30) and bodies to 1 MiB.
//! - An `Idempotency-Key` header makes a repeated submission answer as the first
//!   did, creating nothing new.
//! - A submission with the email (or another `dedupe_by` field) of an existing
//!   record updates it instead of creating a second one.
//!
//! - `/views/forms`: the form builder, a page in the CRM's menu drawn by the host
//!   from declarative views (builder.rs).
//!
//! Built only with the public SDK, like any partner's plugin.

use crm_plugin_sdk::{HttpRequest, HttpResponse, Map, Plugin, Value, http, json, kv};

pub mod builder;
pub mod form;
pub mod results;
pub mod submissions;
pub mod web;

use form::{Form, HONEYPOT};
use submissions::Outcome;

pub struct Forms;

impl Plugin for Forms {
    fn handle(request: &HttpRequest) -> HttpResponse {
        let method = request.method.as_str();
        if request.user.is_none() {
            // Public: only /f/{form} is declared in the manifest.
            let Some(slug) = request.path.strip_prefix("/f/").filter(|s| valid_slug(s)) else {
                return http::problem(404, "there is no such form");
            };
            return match method {
                "GET" => show(slug),
                "POST" => submit(slug, request),
                _ => http::problem(405, "a form is read with GET and submitted with POST"),
            };
        }
        match (method, request.path.as_str()) {
            ("GET", "/forms") => list(),
            ("GET", "/views/forms") => builder::show(request),
            ("POST", "/views/forms") => builder::take(request),
            (_, p) if p.starts_with("/forms/") => {
                let (slug, rest) = match p["/forms/".len()..].split_once('/') {
                    Some((slug, rest)) => (slug, Some(rest)),
                    None => (&p["/forms/".len()..], None),
                };
                if !valid_slug(slug) {
                    return http::problem(
                        404,
                        "a form's name is 1 to 64 lower-case letters, digits and -",
                    );
                }
                if let Some(rest) = rest {
                    return match (method, rest) {
                        ("GET", "results") => match load(slug) {
                            Ok(Some(form)) => results::report(slug, &form, &request.query),
                            Ok(None) => http::problem(404, "there is no such form"),
                            Err(e) => http::problem(500, &e),
                        },
                        _ => http::problem(404, "below a form there is only GET .../results"),
                    };
                }
                match method {
                    "GET" => match load(slug) {
                        Ok(Some(f)) => http::json(200, &json!(f)),
                        Ok(None) => http::problem(404, "there is no such form"),
                        Err(e) => http::problem(500, &e),
                    },
                    "PUT" => save(slug, request),
                    "DELETE" => remove(slug, request),
                    _ => http::problem(405, "forms are read, saved with PUT and deleted"),
                }
            }
            _ => http::problem(
                404,
                "forms serves /forms, /forms/{form} and the builder's /views/forms",
            ),
        }
    }
}

crm_plugin_sdk::export_plugin!(Forms);

pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Where form definitions are kept in the plugin's store, by name.
const FORM_KEYS: &str = "form/";

pub(crate) fn key(slug: &str) -> String {
    format!("{FORM_KEYS}{slug}")
}

/// Every stored form with its name, in the store's order (one that no longer
/// reads is left out).
pub(crate) fn stored_forms() -> Result<Vec<(String, Form)>, String> {
    Ok(kv::keys(FORM_KEYS)?
        .iter()
        .filter_map(|k| {
            let slug = k.strip_prefix(FORM_KEYS)?;
            let form: Form = kv::get_json(k).ok()??;
            Some((slug.to_string(), form))
        })
        .collect())
}

pub(crate) fn load(slug: &str) -> Result<Option<Form>, String> {
    kv::get_json(&key(slug))
}

pub(crate) fn is_admin(request: &HttpRequest) -> bool {
    http::header(request, "x-crm-admin") == Some("true")
}

fn list() -> HttpResponse {
    let stored = match stored_forms() {
        Ok(stored) => stored,
        Err(e) => return http::problem(500, &e),
    };
    let forms: Vec<Value> = stored
        .iter()
        .map(|(slug, form)| {
            json!({"name": slug, "title": form.title, "object": form.object, "path": format!("/public/forms/f/{slug}")})
        })
        .collect();
    http::json(200, &json!(forms))
}

fn save(slug: &str, request: &HttpRequest) -> HttpResponse {
    if !is_admin(request) {
        return http::problem(403, "only admins of the department define forms");
    }
    let mut form: Form = match http::body_json(request) {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    let problems = form.check();
    if !problems.is_empty() {
        return http::invalid("the form definition is not valid", &problems);
    }
    form.department = http::header(request, "x-crm-department").map(str::to_string);
    match kv::set_json(&key(slug), &form) {
        Ok(()) => http::json(200, &json!(form)),
        Err(e) => http::problem(422, &e),
    }
}

fn remove(slug: &str, request: &HttpRequest) -> HttpResponse {
    if !is_admin(request) {
        return http::problem(403, "only admins of the department delete forms");
    }
    match kv::delete(&key(slug)) {
        Ok(()) => http::no_content(),
        Err(e) => http::problem(500, &e),
    }
}

fn show(slug: &str) -> HttpResponse {
    match load(slug) {
        Ok(Some(form)) => web::page(200, slug, &form, &[]),
        Ok(None) => http::problem(404, "there is no such form"),
        Err(e) => http::problem(500, &e),
    }
}

fn submit(slug: &str, request: &HttpRequest) -> HttpResponse {
    let form = match load(slug) {
        Ok(Some(form)) => form,
        Ok(None) => return http::problem(404, "there is no such form"),
        Err(e) => return http::problem(500, &e),
    };
    let from_page = http::header(request, "content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let answers: Map<String, Value> = if from_page {
        web::decode_form(&request.body)
    } else {
        match http::body_json(request) {
            Ok(Value::Object(answers)) => answers,
            Ok(_) => return http::problem(400, "the answers are a JSON object of fields"),
            Err(answer) => return answer,
        }
    };
    let reply = |outcome: &Outcome, status: u16| {
        if from_page {
            match &form.redirect {
                Some(to) => HttpResponse {
                    status: 303,
                    headers: vec![("location".into(), to.clone())],
                    body: vec![],
                },
                None => web::thanks(&form),
            }
        } else {
            http::json(
                status,
                &json!({"record": outcome.record, "created": outcome.created, "submission": outcome.submission, "message": form.thank_you}),
            )
        }
    };
    // A bot filled the field no person sees: thank it and keep nothing.
    if answers
        .get(HONEYPOT)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return reply(&Outcome::default(), 200);
    }
    let idempotency = match http::header(request, "idempotency-key") {
        Some(k) if k.is_empty() || k.len() > 100 => {
            return http::problem(400, "an Idempotency-Key is 1 to 100 characters");
        }
        Some(k) => Some(format!("idem/{slug}/{k}")),
        None => None,
    };
    if let Some(k) = &idempotency {
        match kv::get_json::<Outcome>(k) {
            Ok(Some(first)) => return reply(&first, 200),
            Ok(None) => {}
            Err(e) => return http::problem(500, &e),
        }
    }
    let answer = match form.answer(&answers) {
        Ok(answer) => answer,
        Err(problems) if from_page => return web::page(422, slug, &form, &problems),
        Err(problems) => return http::invalid("the answers are not valid", &problems),
    };
    let outcome = match submissions::store(slug, &form, answer) {
        Ok(outcome) => outcome,
        Err(e) => return http::problem(422, &e),
    };
    if let Some(k) = &idempotency
        && let Err(e) = kv::set_json(k, &outcome)
    {
        return http::problem(500, &e);
    }
    reply(&outcome, if outcome.created { 201 } else { 200 })
}
