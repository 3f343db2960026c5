//! The web interface served by `crm serve` itself: server-rendered pages
//! (askama templates in host/templates/web, checked at compile time), a small script
//! for progressive enhancement and Fluent translations (host/locales).
//!
//! Pages read and write through the same services as the REST API (records,
//! access, processes), as the signed-in user, so every right holds here too.
//! Sign-in puts a login token in an HttpOnly, SameSite=Lax cookie; every form
//! carries a CSRF token derived from it.

pub mod admin;
pub mod calendar;
pub mod documents;
pub mod home;
pub mod i18n;
pub mod imports;
pub mod notifications;
pub mod objects;
pub mod records;
pub mod report_forms;
pub mod reports;
pub mod roles;
pub mod session;
pub mod sharing;
pub mod tasks;
pub mod view;
pub mod views;
pub mod webhooks;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use self::i18n::{Locale, Tr};
use crate::access::Action;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::auth::Actor;

/// The cookie holding the login token of a browser session.
pub const SESSION_COOKIE: &str = "crm_session";
/// The cookie remembering the language chosen before signing in.
pub const LANG_COOKIE: &str = "crm_lang";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route(
            "/settings",
            get(session::settings_page).post(session::save_settings),
        )
        .route("/static/{file}", get(asset))
        .route(
            "/records/{object}",
            get(records::list).post(records::create),
        )
        .route("/records/{object}/new", get(records::new_form))
        .route("/records/{object}/choices", get(records::choices))
        .route("/sharing/choices", get(sharing::choices))
        .route("/records/{object}/views", post(records::save_view))
        .route(
            "/records/{object}/views/{id}/delete",
            post(records::remove_view),
        )
        .route(
            "/records/{object}/{id}",
            get(records::show).post(records::update),
        )
        .route("/records/{object}/{id}/edit", get(records::edit_form))
        .route("/records/{object}/{id}/set", post(records::set_field))
        .route("/records/{object}/{id}/shares", post(records::share))
        .route(
            "/records/{object}/{id}/shares/{share}/delete",
            post(records::unshare),
        )
        .route(
            "/apps/{plugin}/{*view}",
            get(views::plugin_page).post(views::plugin_post),
        )
        .route(
            "/admin/plugins",
            get(admin::plugins)
                .post(admin::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::plugins::MAX_PACKAGE_BYTES + 1,
                )),
        )
        .route("/admin/plugins/{id}/{action}", post(admin::act))
        .route(
            "/admin/plugins/{id}/dead-letters/{letter}/replay",
            post(admin::replay_dead_letter),
        )
        .route("/admin/users/{id}/{action}", post(admin::set_active))
        .route("/admin/people", get(admin::people))
        .route("/admin/users", post(admin::add_user))
        .route("/admin/departments", post(admin::add_department))
        .route(
            "/admin/objects",
            get(objects::objects).post(objects::create_object),
        )
        .route("/admin/objects/{name}", get(objects::object))
        .route("/admin/objects/{name}/fields", post(objects::add_field))
        .route(
            "/admin/objects/{name}/fields/{field}",
            get(objects::field).post(objects::change_field),
        )
        .route(
            "/admin/objects/{name}/fields/{field}/delete",
            post(objects::remove_field),
        )
        .route("/admin/roles", post(roles::create))
        .route("/admin/roles/new", get(roles::new_role))
        .route("/admin/roles/{name}", get(roles::role).post(roles::update))
        .route("/admin/roles/{name}/delete", post(roles::delete))
        .route(
            "/admin/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/admin/webhooks/{id}",
            get(webhooks::show).post(webhooks::update),
        )
        .route("/admin/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/admin/webhooks/{id}/deliveries/{delivery}/replay",
            post(webhooks::replay),
        )
        .route("/calendar", get(calendar::calendar))
        .route("/notifications", get(notifications::page))
        .route("/notifications/read-all", post(notifications::read_all))
        .route(
            "/reports",
            get(reports::dashboard).post(report_forms::create_report),
        )
        .route("/reports/new", get(report_forms::new_report))
        .route("/reports/{id}", get(reports::report))
        .route("/reports/{id}/delete", post(report_forms::delete_report))
        .route("/dashboards", post(report_forms::create_dashboard))
        .route("/dashboards/new", get(report_forms::new_dashboard))
        .route("/dashboards/{id}", get(reports::saved_dashboard))
        .route(
            "/dashboards/{id}/delete",
            post(report_forms::delete_dashboard),
        )
        .route("/tasks", get(tasks::inbox))
        .route("/tasks/{id}/{action}", post(tasks::act))
        .route("/documents", get(documents::library))
        .route("/documents/folders", post(documents::new_folder))
        .route(
            "/documents/upload",
            post(documents::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/documents/{id}", get(documents::document))
        .route(
            "/documents/{id}/versions",
            post(documents::new_version).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/documents/{id}/versions/{version}/content",
            get(documents::content),
        )
        .route("/documents/{id}/shares", post(documents::share))
        .route(
            "/documents/{id}/shares/{share}/delete",
            post(documents::unshare),
        )
        .route("/documents/{id}/{action}", post(documents::act))
        .route("/imports", get(imports::list))
        .route(
            "/imports/upload",
            post(imports::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/imports/{id}", get(imports::show))
        .route("/imports/{id}/run", post(imports::run))
        .route("/imports/{id}/{action}", post(imports::act))
}

/// A signed-in user on a page: who, in which language, and the CSRF token its forms
/// carry. Without a valid session a page redirects to the sign-in page.
pub struct Visitor {
    pub actor: Actor,
    /// The objects it may read, for the menu.
    pub nav: Vec<NavItem>,
    pub tr: Tr,
    pub csrf: String,
    pub is_admin: bool,
}

/// Where a page without a session sends the browser.
pub struct SignInFirst(String);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let next = form_urlencoded::byte_serialize(self.0.as_bytes()).collect::<String>();
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = SignInFirst;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let back = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let token =
            cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| SignInFirst(back.clone()))?;
        let actor = app
            .auth
            .authenticate(&token)
            .await
            .map_err(|_| SignInFirst(back))?;
        let stored = app.auth.ui_preferences(&actor.user_id).await.ok().flatten();
        let prefs = session::preferences(stored.as_ref(), &parts.headers);
        let is_admin = app.access.user(&actor).is_org_admin();
        let tr = Tr::new(prefs);
        Ok(Visitor {
            nav: nav(app, &actor, &tr),
            actor,
            tr,
            csrf: csrf_token(&token),
            is_admin,
        })
    }
}

/// An entry of the menu: an object's list.
pub struct NavItem {
    pub href: String,
    pub label: String,
}

/// Objects in the order a sales team meets them; custom ones follow by name.
const MENU_ORDER: [&str; 7] = [
    "companies",
    "contacts",
    "leads",
    "deals",
    "activities",
    "notes",
    "outgoing_emails",
];

/// The objects `actor` may read, as menu entries.
fn nav(app: &AppState, actor: &Actor, tr: &Tr) -> Vec<NavItem> {
    let schema = app.records.schema();
    let mut objects: Vec<_> = schema
        .objects
        .values()
        .filter(|o| {
            app.records
                .view_of(actor, &o.name)
                .is_ok_and(|(_, access)| !access.grants(Action::Read).is_empty())
        })
        .collect();
    objects.sort_by_key(|o| {
        (
            MENU_ORDER
                .iter()
                .position(|n| *n == o.name)
                .unwrap_or(MENU_ORDER.len()),
            o.name.clone(),
        )
    });
    let mut items: Vec<NavItem> = objects
        .into_iter()
        .map(|o| NavItem {
            href: format!("/records/{}", o.name),
            label: tr.object(&o.name, &o.label_plural),
        })
        .collect();
    // Pages of the plugins enabled where the user works.
    for plugin in app.plugins.with_menus() {
        if crate::plugins::gateway::department_for(app, &plugin, actor).is_none() {
            continue;
        }
        items.extend(plugin.info.manifest.menu.iter().map(|m| NavItem {
            href: format!("/apps/{}{}", plugin.info.id, m.view),
            label: m.label.clone(),
        }));
    }
    items
}

impl Visitor {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, form: &FormData) -> Result<(), WebError> {
        self.check_csrf_token(form.get("_csrf").unwrap_or_default())
    }

    /// Refuses a token that is not this session's (uploads send it apart from the
    /// form's fields).
    pub fn check_csrf_token(&self, sent: &str) -> Result<(), WebError> {
        let same = sent.len() == self.csrf.len()
            && sent
                .bytes()
                .zip(self.csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(self.error(StatusCode::FORBIDDEN, self.tr.t("error-csrf")))
        }
    }

    pub fn error(&self, status: StatusCode, message: String) -> WebError {
        WebError {
            status,
            message,
            tr: self.tr.clone(),
        }
    }

    /// An error of a service as a page: its status and its message.
    pub fn fail(&self, e: impl Into<ApiError>) -> WebError {
        let e: ApiError = e.into();
        let message = match e.status {
            StatusCode::NOT_FOUND => self.tr.t("error-not-found"),
            _ => e.described(),
        };
        self.error(e.status, message)
    }
}

/// The language of a visitor without a session: the cookie it chose, else its
/// browser's `Accept-Language`.
pub fn guess_locale(headers: &HeaderMap) -> Locale {
    cookie(headers, LANG_COOKIE)
        .and_then(|c| Locale::parse(&c))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Locale::from_accept_language)
        })
        .unwrap_or(Locale::En)
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: derived from its secret, so it needs no storage and
/// a page of another site cannot know it.
fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("crm-csrf\0{session_token}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A page that could not be shown: the status and a message in the user's language.
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    pub tr: Tr,
}

#[derive(askama::Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    tr: &'a Tr,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            tr: &self.tr,
            message: &self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

pub type WebResult = Result<Response, WebError>;

/// Renders a template into an HTML response.
pub fn render(page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            // Pages run only our own script and style: text from records or plugins
            // cannot become code even if a template missed an escape.
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                     form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The fields of a submitted form (`application/x-www-form-urlencoded`), in order.
pub struct FormData(pub Vec<(String, String)>);

/// One option of a select on a form.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Every refusal as "field: reason", for the summary above a form.
pub fn listed(errors: &[crate::api::error::FieldError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}

/// Refuses a visitor who is not an organisation admin, as the API would, saying
/// `what` they may not do.
pub async fn require_admin(app: &AppState, v: &Visitor, what: &str) -> Result<(), WebError> {
    app.access
        .require_admin(&v.actor, None, what)
        .await
        .map(|_| ())
        .map_err(|e| v.fail(e))
}

/// Every reason given for `field`, to show beside its input.
pub fn beside(errors: &[crate::api::error::FieldError], field: &str) -> Option<String> {
    let reasons: Vec<&str> = errors
        .iter()
        .filter(|e| e.field == field)
        .map(|e| e.message.as_str())
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

impl FormData {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(FormData(
            form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// True when the page was asked for by the page script (it swaps in a fragment).
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("x-crm-fragment")
}

/// A local path to go back to after a form: only paths of this site.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from addresses: `/\t/evil.example` would
        // become `//evil.example`, another site.
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            p.into()
        }
        _ => "/".into(),
    }
}

/// A sign-in form posted from another site (signing a victim in as the attacker)
/// is refused: browsers name the page's origin in `Origin` on every form post.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

const APP_CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");

/// The stylesheet and the script, cached by browsers for a day.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_a_form() {
        for ok in ["/", "/records/deals?x=1", "/apps/p/views/board"] {
            assert_eq!(local_path(Some(ok)), ok);
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/\n/evil.example",
            "/ /x",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
    }
}
