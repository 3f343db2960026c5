//! Sign-in, sign-out and the user's settings (language, digits, calendar).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::{Calendar, Digits, Locale, Preferences, Tr};
use super::{FormData, LANG_COOKIE, SESSION_COOKIE, Visitor, WebResult, guess_locale, local_path};
use crate::api::AppState;
use crate::auth::UiPreferences;

/// The user's stored choices, or what its browser suggests until it chooses.
pub fn preferences(stored: Option<&UiPreferences>, headers: &HeaderMap) -> Preferences {
    let Some(stored) = stored else {
        return Preferences::defaults_for(guess_locale(headers));
    };
    let locale = Locale::parse(&stored.locale).unwrap_or_else(|| guess_locale(headers));
    let defaults = Preferences::defaults_for(locale);
    Preferences {
        locale,
        digits: Digits::parse(&stored.digits).unwrap_or(defaults.digits),
        calendar: Calendar::parse(&stored.calendar).unwrap_or(defaults.calendar),
    }
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage<'a> {
    tr: &'a Tr,
    next: &'a str,
    email: &'a str,
    failed: bool,
    locales: &'a [Locale],
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
}

/// The sign-in page; `?lang=` picks its language (remembered in a cookie).
pub async fn login_page(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let chosen = q.lang.as_deref().and_then(Locale::parse);
    let locale = chosen.unwrap_or_else(|| guess_locale(&headers));
    let tr = Tr::new(Preferences::defaults_for(locale));
    let next = local_path(q.next.as_deref());
    let page = super::render(&LoginPage {
        tr: &tr,
        next: &next,
        email: "",
        failed: false,
        locales: &Locale::ALL,
    });
    match chosen {
        Some(l) => (
            [(
                header::SET_COOKIE,
                format!(
                    "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                    l.code()
                ),
            )],
            page,
        )
            .into_response(),
        None => page,
    }
}

/// Checks the password and opens a browser session.
pub async fn login(State(app): State<AppState>, headers: HeaderMap, form: FormData) -> Response {
    if !super::same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "a sign-in from another site is refused",
        )
            .into_response();
    }
    let email = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let next = local_path(form.get("next"));
    match app.auth.login(email, password).await {
        Ok((token, _expires)) => {
            let secure = headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes() == b"https");
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
                app.config.session_hours * 3600,
                if secure { "; Secure" } else { "" }
            );
            let mut response = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(_) => {
            let tr = Tr::new(Preferences::defaults_for(guess_locale(&headers)));
            let page = super::render(&LoginPage {
                tr: &tr,
                next: &next,
                email,
                failed: true,
                locales: &Locale::ALL,
            });
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
    }
}

/// Revokes the session's token and forgets the cookie.
pub async fn logout(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    app.auth.logout(&v.actor).await.map_err(|e| v.fail(e))?;
    Ok((
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "web/settings.html")]
struct SettingsPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    locales: &'a [Locale],
    saved: bool,
    /// The user wants notification emails; the server can send them.
    email: bool,
    email_available: bool,
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
}

pub async fn settings_page(
    State(app): State<AppState>,
    v: Visitor,
    Query(q): Query<SettingsQuery>,
) -> WebResult {
    let email = crate::notifications::wants_email(&app.db, &v.actor.user_id)
        .await
        .map_err(|e| v.fail(crate::api::error::ApiError::from(e)))?;
    Ok(super::render(&SettingsPage {
        v: &v,
        tr: &v.tr,
        locales: &Locale::ALL,
        saved: q.saved.is_some(),
        email,
        email_available: app.config.smtp_url.is_some(),
    }))
}

/// Saves language, digits and calendar; unknown codes are refused.
pub async fn save_settings(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let locale = form.get("locale").and_then(Locale::parse);
    let digits = form.get("digits").and_then(Digits::parse);
    let calendar = form.get("calendar").and_then(Calendar::parse);
    let (Some(locale), Some(digits), Some(calendar)) = (locale, digits, calendar) else {
        return Err(v.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "language, digits or calendar is not one of the choices".into(),
        ));
    };
    let prefs = UiPreferences {
        locale: locale.code().into(),
        digits: digits.code().into(),
        calendar: calendar.code().into(),
    };
    app.auth
        .set_ui_preferences(&v.actor.user_id, &prefs)
        .await
        .map_err(|e| v.fail(e))?;
    // An unticked box is not sent: the form says it shows the box with `email_shown`.
    if form.get("email_shown").is_some() {
        crate::notifications::set_wants_email(
            &app.db,
            &v.actor.user_id,
            form.get("email_notifications") == Some("on"),
        )
        .await
        .map_err(|e| v.fail(crate::api::error::ApiError::from(e)))?;
    }
    Ok(Redirect::to("/settings?saved=1").into_response())
}
