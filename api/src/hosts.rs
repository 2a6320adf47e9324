//! The `Host` check: the API answers only to the names it is configured with. A DNS-rebinding
//! page (`evil.example` resolving to 127.0.0.1) reaches the node from the victim's browser as
//! the page's own origin, so the browser's CORS rules do not stop it; its `Host` still says
//! `evil.example`, and that is refused here with 421.

use crate::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The names requests may carry in `Host` (or the HTTP/2 `:authority`). Ports are not compared.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    names: Vec<String>,
    bind: IpAddr,
}

impl AllowedHosts {
    /// `localhost`, the loopback addresses and the bound address, plus `configured` (`*` turns
    /// the check off). A node bound to every interface (`0.0.0.0`, `::`) also answers to any
    /// IP address: a literal address cannot be rebound, only a name can.
    pub fn new(configured: &[String], bind: SocketAddr) -> AllowedHosts {
        AllowedHosts {
            any: configured.iter().any(|h| h == "*"),
            names: configured.iter().map(|h| normalise(h)).collect(),
            bind: bind.ip(),
        }
    }

    /// Whether `host` (a `Host` header value, with or without a port) is one of ours.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = normalise(strip_port(host));
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip.is_loopback() || ip == self.bind || self.bind.is_unspecified();
        }
        name == "localhost" || self.names.contains(&name)
    }
}

/// Lower case without a trailing dot (`Example.COM.` is `example.com`), brackets removed.
fn normalise(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `host:port`, `[v6]:port` or a bare `host`/`v6` without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((name, _)) if !name.contains(':') => name,
        _ => host,
    }
}

/// Adds the check in front of every route of `router`.
pub fn check_hosts(router: Router, allowed: AllowedHosts) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(allowed),
        guard,
    ))
}

async fn guard(State(allowed): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    // HTTP/2 carries the name in `:authority`, which hyper puts in the URI.
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.host().to_owned()),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    match host {
        None => ApiError::invalid_header("Host", "the request names no host").into_response(),
        Some(host) if !allowed.allows(&host) => {
            crate::metrics::refused("host");
            ApiError::misdirected(
                "Host",
                "this server does not answer to that name; add it to http_allowed_hosts",
            )
            .into_response()
        }
        Some(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(configured: &[&str], bind: &str) -> AllowedHosts {
        let configured: Vec<String> = configured.iter().map(|s| (*s).to_owned()).collect();
        AllowedHosts::new(&configured, bind.parse().unwrap())
    }

    #[test]
    fn loopback_and_the_bound_address_by_default_and_configured_names() {
        let local = allowed(&[], "127.0.0.1:8080");
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "127.0.0.1:8080",
            "[::1]:8080",
            "::1",
        ] {
            assert!(local.allows(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "10.0.0.7:8080", ""] {
            assert!(!local.allows(bad), "{bad}");
        }
        let named = allowed(&["Sentinel.Bank.Example"], "10.0.0.7:8080");
        assert!(named.allows("sentinel.bank.example:443"));
        assert!(named.allows("10.0.0.7"));
        assert!(!named.allows("10.0.0.8"));
        assert!(!named.allows("evil.example"));
        let everywhere = allowed(&[], "0.0.0.0:8080");
        assert!(everywhere.allows("192.168.1.20:8080"));
        assert!(!everywhere.allows("rebound.evil.example:8080"));
        assert!(allowed(&["*"], "127.0.0.1:1").allows("anything.example"));
    }
}
