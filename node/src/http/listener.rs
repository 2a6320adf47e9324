//! The API's listener: a request timeout around every handler; a deadline on the TLS handshake,
//! the first bytes and every request's headers, so a slow or silent client (one byte a minute,
//! or only `PRI`) cannot hold a connection open; HTTP/2 keep-alive pings; a cap on open
//! connections; optionally TLS.

use super::first_bytes::{self, Prefixed};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{AddExtension, Next};
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::Layer;

/// Longest the listener waits for open connections (event streams, requests being answered)
/// after a stop, unless the request timeout is longer; then it closes them.
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

/// Limits on the listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has for its TLS handshake, its first bytes and each request's headers.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Interval of HTTP/2 keep-alive pings; a client that does not answer one within the
    /// same time is disconnected.
    pub http2_keep_alive: Duration,
    /// Longest open connections are waited for after a stop; then they are closed.
    pub drain_limit: Duration,
}

impl ConnectionLimits {
    /// The limits `config` sets for its API listener.
    pub fn of(config: &crate::config::NodeConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            max_connections: config.http_max_connections,
            http2_keep_alive: Duration::from_secs(config.http2_keep_alive_secs),
            // A request may take its whole timeout: it is not cut off sooner.
            drain_limit: DRAIN_LIMIT
                .max(Duration::from_secs(config.request_timeout_secs) + Duration::from_secs(1)),
        }
    }
}

/// The service of one connection: the router, with the peer's address as `ConnectInfo`.
type Service = TowerToHyperService<AddExtension<Router, ConnectInfo<SocketAddr>>>;

/// Serves `app` until `stop` fires, with `limits` on every connection; optionally over `tls`.
/// Returns once every connection is closed: finished, or closed at the drain limit (a request
/// being answered then is dropped with its connection; hyper ends an HTTP/2 stream's handler,
/// which runs in a task of its own, once its connection is gone).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.http2_keep_alive))
        .keep_alive_timeout(limits.http2_keep_alive);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
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
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    // Closed at once, so the client learns it now rather than waiting in a queue.
                    metrics::counter!(crate::telemetry::HTTP_CONNECTIONS_REFUSED).increment(1);
                    drop(stream);
                    continue;
                };
                // The peer's address reaches handlers as `ConnectInfo` (failed-auth limits).
                let service = TowerToHyperService::new(
                    axum::Extension(ConnectInfo(peer)).layer(app.clone()),
                );
                let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
                // Handshake and first bytes run in the connection's task, so a slow client
                // cannot stall the accept loop.
                connections.spawn(async move {
                    let _open = OpenConnection::new(slot);
                    let limit = limits.header_read_timeout;
                    match tls {
                        None => serve_connection(stream, builder, service, watcher, limit).await,
                        Some(tls) => match tokio::time::timeout(limit, tls.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                serve_connection(stream, builder, service, watcher, limit).await
                            }
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => {}
                        },
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.drain_limit) => {
            while connections.try_join_next().is_some() {}
            tracing::warn!(
                open = connections.len(),
                "connections still open after the drain limit; closing them"
            );
        }
    }
    // Those still handshaking, and those the drain limit ended.
    connections.shutdown().await;
}

/// Serves one connection once its first bytes arrived within `limit`.
async fn serve_connection<S>(
    mut stream: S,
    builder: Builder<TokioExecutor>,
    service: Service,
    watcher: Watcher,
    limit: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(prefix) = first_bytes::read_prefix(&mut stream, limit).await else {
        return;
    };
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(Prefixed::new(prefix, stream)), service)
        .into_owned();
    // Client resets and header timeouts end here; nothing to report.
    let _ = watcher.watch(connection).await;
}

/// One served connection: holds its slot and counts itself in the open-connections gauge.
struct OpenConnection {
    _slot: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(slot: OwnedSemaphorePermit) -> OpenConnection {
        metrics::gauge!(crate::telemetry::HTTP_CONNECTIONS_OPEN).increment(1.0);
        OpenConnection { _slot: slot }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(crate::telemetry::HTTP_CONNECTIONS_OPEN).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    /// A listener with a drain limit of `drain_limit`, serving `/hang` (never answers) and
    /// `/slow` (answers after 300 ms); each handler reports once it runs, and the receiver
    /// disconnects once no handler (nor the router) is left.
    fn listener_with_handlers(
        drain_limit: Duration,
    ) -> (
        SocketAddr,
        mpsc::Receiver<()>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (reached, handled) = mpsc::channel::<()>(1);
        let slow = reached.clone();
        let app = Router::new()
            .route(
                "/hang",
                axum::routing::get(move || async move {
                    let _ = reached.send(()).await;
                    std::future::pending::<&'static str>().await
                }),
            )
            .route(
                "/slow",
                axum::routing::get(move || async move {
                    let _ = slow.send(()).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            );
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 4,
            http2_keep_alive: Duration::from_secs(30),
            drain_limit,
        };
        let (stop, stopped) = watch::channel(false);
        let listener = TcpListener::from_std(listener).unwrap();
        let server = tokio::spawn(serve(listener, app, limits, None, stopped));
        (addr, handled, stop, server)
    }

    /// Sends `GET path` over a fresh HTTP/2 connection (prior knowledge, no TLS) to a
    /// listener with `drain_limit`, and stops the listener once the handler runs; returns the
    /// pending answer, the listener's task and the handlers' receiver.
    async fn http2_request_in_flight_at_a_stop(
        drain_limit: Duration,
        path: &str,
    ) -> (
        tokio::task::JoinHandle<hyper::Result<hyper::Response<hyper::body::Incoming>>>,
        tokio::task::JoinHandle<()>,
        mpsc::Receiver<()>,
    ) {
        let (addr, mut handled, stop, server) = listener_with_handlers(drain_limit);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::get(format!("http://{addr}{path}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = tokio::spawn(sender.send_request(request));
        handled
            .recv()
            .await
            .expect("the request reached its handler");
        stop.send(true).unwrap();
        (answer, server, handled)
    }

    /// Waits for `server` to return after a stop; then nothing of any request is left running.
    /// An HTTP/1 handler runs in its connection's task, which `serve` ends before returning;
    /// hyper runs an HTTP/2 stream's handler in a task of its own, which ends once it sees its
    /// connection gone: right after `serve` returns, not necessarily before.
    async fn returns_with_nothing_left(
        server: tokio::task::JoinHandle<()>,
        mut handled: mpsc::Receiver<()>,
        http2: bool,
    ) {
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("the listener returns after the drain limit")
            .unwrap();
        let left = match http2 {
            false => handled.try_recv().err(),
            true => match tokio::time::timeout(Duration::from_secs(5), handled.recv()).await {
                Ok(None) => Some(mpsc::error::TryRecvError::Disconnected),
                _ => None,
            },
        };
        assert_eq!(
            left,
            Some(mpsc::error::TryRecvError::Disconnected),
            "nothing of the request is left running"
        );
    }

    /// An HTTP/1 request still being answered at the drain limit is closed with its
    /// connection: the listener returns with nothing of it left running.
    #[tokio::test]
    async fn a_request_still_open_at_the_drain_limit_is_closed() {
        let (addr, mut handled, stop, server) = listener_with_handlers(Duration::from_millis(200));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /hang HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        handled
            .recv()
            .await
            .expect("the request reached its handler");
        stop.send(true).unwrap();
        returns_with_nothing_left(server, handled, false).await;
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
            .await
            .expect("the connection is closed, not left open");
        assert!(
            closed.map_or(true, |_| answer.is_empty()),
            "no answer: {answer:?}"
        );
    }

    /// The same over HTTP/2, where hyper runs each stream's handler in a task of its own: that
    /// task ends with the connection, and the client's request fails rather than hangs.
    #[tokio::test]
    async fn an_http2_stream_still_open_at_the_drain_limit_is_closed() {
        let (answer, server, handled) =
            http2_request_in_flight_at_a_stop(Duration::from_millis(200), "/hang").await;
        returns_with_nothing_left(server, handled, true).await;
        let answer = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .expect("the request ends, not left open")
            .unwrap();
        assert!(answer.is_err(), "no answer: {answer:?}");
    }

    /// An HTTP/2 request being answered at a stop is waited for (within the drain limit) and
    /// answered.
    #[tokio::test]
    async fn an_http2_request_in_flight_at_a_stop_is_answered() {
        let (answer, server, handled) =
            http2_request_in_flight_at_a_stop(Duration::from_secs(10), "/slow").await;
        let answer = answer.await.unwrap().expect("an answer");
        assert_eq!(answer.status(), 200);
        returns_with_nothing_left(server, handled, true).await;
    }
}
