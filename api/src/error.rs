//! The one error shape of the API: `{"error": {"code", "message", "field"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_catalog::CatalogError;
use sentinel_event::{DecisionError, InvalidEvent};
use sentinel_store::StoreError;
use serde::Serialize;

/// An API error: a status, a stable machine-readable code, and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    position: Option<(u32, u32)>,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorResponse<'a> {
    /// What went wrong.
    error: ErrorDetail<'a>,
}

/// One error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable machine-readable code, e.g. `invalid_event`, `not_found`, `conflict`.
    code: &'a str,
    /// For people.
    message: &'a str,
    /// The offending field, when one is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// Line in a rule text, for rule errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    /// Column in a rule text, for rule errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
}

impl ApiError {
    /// 404 for a missing resource.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: what.into(),
            field: None,
            position: None,
        }
    }

    /// 409 when the resource's current state forbids the request.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: None,
            position: None,
        }
    }

    /// 400 for a bad query parameter.
    pub fn invalid_parameter(name: &str, reason: &str) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_parameter",
            message: format!("{name}: {reason}"),
            field: Some(name.to_owned()),
            position: None,
        }
    }

    /// 422 for a request body that does not fit its schema.
    pub fn invalid_body(field: &str, reason: &str) -> Self {
        let reason = match reason.rfind(" at line ") {
            Some(i) => &reason[..i],
            None => reason,
        };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_body",
            message: format!("{field}: {reason}"),
            field: Some(field.to_owned()),
            position: None,
        }
    }

    /// 413 for a body over the size limit.
    pub fn too_large(message: &str) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: message.to_owned(),
            field: Some("body".to_owned()),
            position: None,
        }
    }

    /// 400 for a bad request header.
    pub fn invalid_header(name: &str, reason: &str) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_header",
            message: format!("{name}: {reason}"),
            field: Some(name.to_owned()),
            position: None,
        }
    }

    /// 415 for a request body in a media type the endpoint does not take.
    pub fn unsupported_media_type(header: &str, reason: &str) -> Self {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!("{header}: {reason}"),
            field: Some(header.to_owned()),
            position: None,
        }
    }

    /// 421 for a request whose `Host` is not one of the names this server answers to.
    pub fn misdirected(header: &str, reason: &str) -> Self {
        ApiError {
            status: StatusCode::MISDIRECTED_REQUEST,
            code: "misdirected_request",
            message: format!("{header}: {reason}"),
            field: Some(header.to_owned()),
            position: None,
        }
    }

    /// 409 caused by one field or header of the request.
    pub fn conflict_on(field: &str, message: &str) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: format!("{field}: {message}"),
            field: Some(field.to_owned()),
            position: None,
        }
    }

    /// 401 for missing or invalid credentials (the message never repeats them).
    pub fn unauthorized(message: &str) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.to_owned(),
            field: None,
            position: None,
        }
    }

    /// 403 for a caller whose role may not do this.
    pub fn forbidden(message: &str) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.to_owned(),
            field: None,
            position: None,
        }
    }

    /// 429 when a limit on concurrent work is reached.
    pub fn too_many(message: &str) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_requests",
            message: message.to_owned(),
            field: None,
            position: None,
        }
    }

    /// 503 for a temporary condition.
    pub fn unavailable(message: &str) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.to_owned(),
            field: None,
            position: None,
        }
    }

    /// 500 whose details go to the log, never to the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the node's log".to_owned(),
            field: None,
            position: None,
        }
    }
}

impl From<InvalidEvent> for ApiError {
    fn from(e: InvalidEvent) -> Self {
        let (status, code) = if e.reason.contains("more than the limit") {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event")
        };
        ApiError {
            status,
            code,
            message: format!("{}: {}", e.field, e.reason),
            field: Some(e.field),
            position: None,
        }
    }
}

impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::Invalid(invalid) => invalid.into(),
            DecisionError::Poisoned(reason) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "unscorable_event",
                message: format!("this event could not be scored: {reason}"),
                field: None,
                position: None,
            },
            DecisionError::Unavailable(reason) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "unavailable",
                message: reason,
                field: None,
                position: None,
            },
            DecisionError::Store(reason) => ApiError::internal("storing a decision failed", reason),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound(message) => ApiError::not_found(message),
            CatalogError::Conflict(message) => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message,
                field: None,
                position: None,
            },
            CatalogError::Invalid {
                field,
                message,
                line,
                column,
            } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: if line.is_some() {
                    "invalid_rule"
                } else {
                    "invalid_field"
                },
                message: match line.zip(column) {
                    Some((l, c)) => format!("line {l}, column {c}: {message}"),
                    None => format!("{field}: {message}"),
                },
                field: Some(field),
                position: line.zip(column),
            },
            CatalogError::Store(StoreError::Refused(reason)) => ApiError::conflict(format!(
                "this node scores with another node's store, which takes changes only through \
                 its own API ({reason}); make this change on the store host node"
            )),
            CatalogError::Store(e) => ApiError::internal("catalogue storage failed", e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                line: self.position.map(|p| p.0),
                column: self.position.map(|p| p.1),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            // Every 503 and 429 is temporary: say when to try again (a caller that knows
            // better, such as the rate limit, overwrites it).
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read, so the server closes the connection after
            // this answer; saying so keeps a keep-alive client from sending its next request
            // down a connection about to close (seen as `IncompleteMessage` in reqwest).
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// Unknown routes answer in the same JSON shape.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
