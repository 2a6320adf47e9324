//! Request ids: every request gets an `x-request-id` (the client's, or a new UUID), answered in
//! the response header and carried by every log line the request's own task writes (its
//! `decided` line among them; actors log with their own fields, such as the user) — so an
//! operator can go from a client's complaint to the node's log lines and the decision.

use axum::http::{HeaderName, Request};
use axum::Router;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The header clients may set, and the node always answers with.
pub const HEADER: &str = "x-request-id";

/// Opens the `http` span of one request with its method, path and request id.
#[derive(Clone, Copy)]
pub struct RequestSpan;

impl<B> tower_http::trace::MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> tracing::Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "http",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id,
        )
    }
}

/// Sets (or keeps) the request id, traces the request in a span carrying it, and echoes it.
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let header = HeaderName::from_static(HEADER);
    // The last layer added runs first: the id is set before the span opens.
    router
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RequestSpan)
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}
