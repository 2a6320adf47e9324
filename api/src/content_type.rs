//! Every `POST`, `PUT` and `PATCH` must say `Content-Type: application/json`, even one with no
//! body. A web page on another origin can send a "simple" cross-site request (`text/plain`,
//! a form, or no body at all) without asking first; `application/json` needs a CORS preflight,
//! which the API refuses unless `cors_allowed_origins` allows that origin. With authentication
//! disabled this is what stops any page the operator visits from changing rules.

use crate::ApiError;
use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware on every route: refuses a body-carrying method without a JSON content type.
pub async fn require_json(request: Request, next: Next) -> Response {
    let carries_body = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    );
    if carries_body && !is_json(request.headers().get(header::CONTENT_TYPE)) {
        crate::metrics::refused("content_type");
        return ApiError::unsupported_media_type(
            "Content-Type",
            "must be application/json (also for a request without a body)",
        )
        .into_response();
    }
    next.run(request).await
}

/// `application/json`, with or without parameters such as `; charset=utf-8`.
fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::is_json;
    use axum::http::HeaderValue;

    #[test]
    fn only_json_media_types_pass() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(ok))), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }
}
