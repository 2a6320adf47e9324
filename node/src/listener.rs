//! The API's listener: a request timeout around every handler, and a header read timeout so a
//! slow client (one byte a minute) cannot hold a connection open; optionally TLS.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::Layer;

/// Longest the listener waits for open connections (event streams) after a stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Answers 503 in the API's error shape when a handler takes longer than `limit` to answer.
/// Only producing the answer is timed, so event streams stay open.
pub fn with_request_timeout(router: Router, limit: Duration) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => response,
                Err(_) => sentinel_api::ApiError::unavailable(
                    "the request took longer than the server's request timeout",
                )
                .into_response(),
            }
        },
    ))
}

/// Serves `app` until `stop` fires, closing connections whose request headers (or, with `tls`,
/// TLS handshake) do not arrive within `header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, usually: wait rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // The peer's address reaches handlers as `ConnectInfo` (failed-auth limits).
                let service = TowerToHyperService::new(
                    axum::Extension(ConnectInfo(peer)).layer(app.clone()),
                );
                let Some(tls) = &tls else {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        // Client resets and header timeouts end here; nothing to report.
                        let _ = connection.await;
                    });
                    continue;
                };
                // The handshake runs in the connection's task so a slow client cannot stall
                // the accept loop; it gets the same limit as the request headers.
                let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(header_read_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_LIMIT) => {
            tracing::warn!("connections still open after the drain limit; closing them");
        }
    }
}
