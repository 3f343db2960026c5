//! Extractors that turn every malformed request into a problem+json answer.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// `axum::Json`, but its rejections speak problem+json with a clear message:
/// malformed JSON is a 400, a wrong type or an unknown field a 422, an oversized body
/// a 413 and a missing content type a 415.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let detail = match &rejection {
        JsonRejection::JsonSyntaxError(_) => {
            format!("malformed JSON: {}", inner_message(&rejection))
        }
        JsonRejection::JsonDataError(_) => {
            format!("invalid request body: {}", inner_message(&rejection))
        }
        JsonRejection::MissingJsonContentType(_) => {
            "the request body must be JSON with Content-Type: application/json".to_string()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_string(),
        _ => rejection.body_text(),
    };
    ApiError::new(status, detail)
}

/// The serde message without axum's generic prefix.
fn inner_message(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    match text.split_once(": ") {
        Some((_, rest)) => rest.to_string(),
        None => text,
    }
}
