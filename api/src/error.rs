//! One error body everywhere — `{"code", "message", "request_id"}` — and the
//! one mapping from [`hyperfleet_core::Error`] to HTTP. Internal causes are
//! logged with the request id, never sent to the client.

use hyperfleet_core::Error;
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::request_id::current_request_id;

/// The error body of every 4xx and 5xx answer.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `invalid_vm_name`, `operation_not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request id, also sent as the `X-Request-Id` header.
    pub request_id: String,
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request was malformed; nothing was changed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid bearer token was sent.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The token's role does not allow this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The resource does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state; nothing was changed.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request fits the schema but breaks a rule the schema cannot
    /// express (a cron field out of range, an unknown time zone, a time window
    /// in the past); the code says which. Nothing was changed.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The request body is larger than the server accepts.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The token is over its rate limit (`rate_limited`), or its address made
    /// too many failed authentications (`auth_rate_limited`); see `Retry-After`.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>),
    /// Unexpected server error; the request id identifies it in the log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database is unavailable (`database_unavailable`) or its disk is full
    /// (`storage_full`); nothing was confirmed written. Retry later (with the
    /// same `Idempotency-Key`, a retried submit is never done twice).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

pub fn body(code: &str, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody { code: code.to_owned(), message: message.into(), request_id: current_request_id() })
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let code = err.code();
        match &err {
            // Requests that break the schema are refused before any handler runs
            // (400, see `render_poem_error`); what a handler refuses passed it.
            Error::InvalidInput { message, .. } => Self::Unprocessable(body(code, message.clone())),
            Error::NotFound { what, .. } => Self::NotFound(body(code, format!("{what} not found"))),
            Error::Conflict { message, .. } => Self::Conflict(body(code, message.clone())),
            Error::Unauthenticated(message) => Self::Unauthorized(body(code, message.clone())),
            Error::Forbidden(message) => Self::Forbidden(body(code, message.clone())),
            Error::Unavailable { message, .. } => {
                tracing::warn!(request_id = %current_request_id(), code, "{message}");
                Self::Unavailable(body(code, format!("{message}; nothing was confirmed written, retry later")))
            }
            Error::Corrupt(message) => {
                tracing::error!(request_id = %current_request_id(), "stored data the code does not know: {message}");
                Self::Internal(body(code, format!("stored data the code does not know: {message}")))
            }
            Error::Internal(cause) => {
                tracing::error!(request_id = %current_request_id(), error = %cause, source = ?cause, "internal error");
                Self::Internal(body(code, "internal error; the request id identifies it in the server log"))
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Turns poem's own errors (unparsable path/query parameters, bad JSON, unknown
/// routes) into the same error body instead of plain text.
pub async fn render_poem_error(err: poem::Error) -> poem::Response {
    use poem::http::StatusCode;
    if err.is_from_response() {
        return err.into_response(); // our own ApiError, already in shape
    }
    let status = err.status();
    let (code, message) =
        if err.is::<poem_openapi::error::ParseParamError>() || err.is::<poem_openapi::error::ParsePathError>() {
            ("invalid_parameter", err.to_string())
        } else if err.is::<poem_openapi::error::ParseRequestPayloadError>() {
            ("invalid_body", err.to_string())
        } else if err.is::<poem_openapi::error::ContentTypeError>() {
            ("unsupported_media_type", err.to_string())
        } else {
            match status {
                StatusCode::NOT_FOUND => ("not_found", "no such route".to_owned()),
                StatusCode::UNAUTHORIZED => ("unauthorized", "send `Authorization: Bearer <token>`".to_owned()),
                StatusCode::SERVICE_UNAVAILABLE => ("timeout", "the request took too long".to_owned()),
                StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed on this route".to_owned()),
                StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large".to_owned()),
                s if s.is_client_error() => ("bad_request", err.to_string()),
                _ => {
                    tracing::error!(request_id = %current_request_id(), error = %err, "unhandled error");
                    ("internal", "internal error".to_owned())
                }
            }
        };
    let status = if status == StatusCode::INTERNAL_SERVER_ERROR && code != "internal" {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let body = serde_json::json!({ "code": code, "message": message, "request_id": current_request_id() });
    poem::Response::builder().status(status).content_type("application/json; charset=utf-8").body(body.to_string())
}
