//! The route table: every route the API serves, declared once with who may call it and, for
//! routes taking large bodies, their body limit. The router, the OpenAPI document, the guard's
//! access rules ([`crate::access::required`]) and the body limits are all built from it, so
//! they cannot disagree, and a route cannot be declared without its access rule.
//!
//! A documented route's method and path are its handler's `#[utoipa::path]`, read by
//! `utoipa_axum::routes!`; the few routes left out of the document (the document itself and
//! the dashboard's files) name theirs here.

use crate::access::Access::{self, Admin, Analyst, Ingest, Metrics, Public, Read};
use crate::alerts::AlertStore;
use crate::openapi_refusals::RefusalResponses;
use crate::{
    alerts, api_keys, audit, backtests, cluster, dashboard, decisions, health, lists, models,
    openapi, opening_balance, rules, screen, transactions, users, ApiState,
};
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodFilter;
use axum::Router;
use sentinel_event::Limits;
use std::sync::LazyLock;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::OpenApi;
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The API's routes, in the order the OpenAPI document lists them.
fn declare(table: Table<ApiState>) -> Table<ApiState> {
    table
        .api(Ingest, routes!(transactions::score))
        .large(Ingest, screen::MAX_BODY_BYTES, routes!(screen::screen))
        .api(Read, routes!(transactions::decision))
        .api(Read, routes!(transactions::user_decisions))
        .api(Read, routes!(transactions::user_transactions))
        .api(Analyst, routes!(transactions::label))
        .api(Read, routes!(transactions::get_label))
        // A full batch of labels with notes.
        .large(Analyst, 8 * 1024 * 1024, routes!(transactions::label_batch))
        .api(Read, routes!(decisions::search))
        .api(Read, routes!(decisions::aggregates))
        .api(Read, routes!(users::profile))
        .api(Read, routes!(users::balance))
        .api(Admin, routes!(opening_balance::put))
        .api(Analyst, routes!(rules::list))
        .api(Admin, routes!(rules::create))
        .api(Analyst, routes!(rules::get))
        .api(Admin, routes!(rules::update))
        .api(Admin, routes!(rules::delete))
        .api(Analyst, routes!(rules::versions))
        .api(Admin, routes!(rules::rollback))
        .api(Analyst, routes!(rules::test))
        .api(Analyst, routes!(lists::list))
        .api(Admin, routes!(lists::create))
        .api(Analyst, routes!(lists::get))
        .api(Admin, routes!(lists::update))
        .api(Admin, routes!(lists::delete))
        .api(Admin, routes!(lists::add_item))
        .api(Admin, routes!(lists::remove_item))
        .large(Admin, models::MAX_MODEL_BYTES, routes!(models::upload))
        .api(Analyst, routes!(models::list))
        .api(Analyst, routes!(models::get))
        .api(Admin, routes!(models::activate))
        .api(Admin, routes!(models::rollback))
        .api(Admin, routes!(models::clear_challenger))
        .api(Analyst, routes!(audit::list))
        .then(alert_routes)
        .api(Analyst, routes!(backtests::start))
        .api(Analyst, routes!(backtests::get))
        .api(Public, routes!(health::healthz))
        .api(Public, routes!(health::readyz))
        .api(Metrics, routes!(health::metrics))
        .api(Read, routes!(dashboard::stream))
        .api(Read, routes!(cluster::cluster))
        .api(Admin, routes!(api_keys::list))
        .api(Admin, routes!(api_keys::create))
        .api(Admin, routes!(api_keys::revoke))
        .hidden(Public, Method::GET, "/openapi.json", openapi::document)
        .hidden(Public, Method::GET, "/docs", openapi::swagger_ui)
        .hidden(Public, Method::GET, "/", dashboard::page)
        .hidden(
            Public,
            Method::GET,
            "/assets/dashboard.css",
            dashboard::style,
        )
        .hidden(
            Public,
            Method::GET,
            "/assets/dashboard.js",
            dashboard::script,
        )
        .hidden(Public, Method::GET, "/favicon.svg", dashboard::icon)
}

/// The alert outbox's routes, for any state that provides the outbox: the node's API and the
/// standalone alerts process ([`crate::alerts::routes`]) serve the same ones.
pub(crate) fn alert_routes<S>(table: Table<S>) -> Table<S>
where
    S: Clone + Send + Sync + 'static,
    AlertStore: FromRef<S>,
{
    table
        .api(Analyst, routes!(alerts::list))
        .api(Analyst, routes!(alerts::retry))
}

/// What the guard and the body limit know of one route.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The method routed (`GET` also answers `HEAD`).
    pub method: Method,
    /// The path as routed, e.g. `/v1/rules/{id}`.
    pub path: String,
    /// Who may call it.
    pub access: Access,
    /// Its own body limit, where it takes more than the general one.
    pub body_limit: Option<usize>,
}

/// Routes being declared: the router with its OpenAPI document, and each route's rule.
pub(crate) struct Table<S> {
    router: OpenApiRouter<S>,
    rules: Vec<Rule>,
}

impl<S: Clone + Send + Sync + 'static> Table<S> {
    /// An empty table whose document starts from `doc`.
    pub(crate) fn new(doc: OpenApi) -> Table<S> {
        Table {
            router: OpenApiRouter::with_openapi(doc),
            rules: Vec::new(),
        }
    }

    /// A route in the OpenAPI document, under the general body limit.
    fn api(self, access: Access, route: UtoipaMethodRouter<S>) -> Table<S> {
        self.add(access, None, route)
    }

    /// A route in the OpenAPI document that takes bodies up to `limit` bytes.
    fn large(self, access: Access, limit: usize, route: UtoipaMethodRouter<S>) -> Table<S> {
        self.add(
            access,
            Some(limit),
            route.layer(DefaultBodyLimit::max(limit)),
        )
    }

    fn add(
        mut self,
        access: Access,
        body_limit: Option<usize>,
        route: UtoipaMethodRouter<S>,
    ) -> Table<S> {
        for (path, item) in route.1.paths.iter() {
            for method in methods(item) {
                self.rules.push(Rule {
                    method,
                    path: path.clone(),
                    access,
                    body_limit,
                });
            }
        }
        self.router = self.router.routes(route);
        self
    }

    /// A route left out of the OpenAPI document.
    fn hidden<H, T>(mut self, access: Access, method: Method, path: &str, handler: H) -> Table<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        self.rules.push(Rule {
            method,
            path: path.to_owned(),
            access,
            body_limit: None,
        });
        self.router = self.router.route(path, axum::routing::on(filter, handler));
        self
    }

    /// `declare(self)`, so that a group of routes keeps its place in the chain.
    fn then(self, declare: impl FnOnce(Table<S>) -> Table<S>) -> Table<S> {
        declare(self)
    }

    /// The router, its document and the rules.
    pub(crate) fn build(self) -> (Router<S>, OpenApi, Vec<Rule>) {
        let (router, doc) = self.router.split_for_parts();
        (router, doc, self.rules)
    }
}

/// The HTTP methods `item` has an operation for.
fn methods(item: &PathItem) -> Vec<Method> {
    [
        (&item.get, Method::GET),
        (&item.put, Method::PUT),
        (&item.post, Method::POST),
        (&item.delete, Method::DELETE),
        (&item.options, Method::OPTIONS),
        (&item.head, Method::HEAD),
        (&item.patch, Method::PATCH),
        (&item.trace, Method::TRACE),
    ]
    .into_iter()
    .filter_map(|(operation, method)| operation.is_some().then_some(method))
    .collect()
}

/// The API declared once per process: the router (without its state and the layers that need
/// it), the OpenAPI document and the rules.
pub(crate) struct Api {
    /// Every route, each with its own body limit where it has one.
    pub router: Router<ApiState>,
    /// The OpenAPI document, served at `/openapi.json`.
    pub doc: OpenApi,
    /// Each route's rule.
    pub rules: Vec<Rule>,
}

/// The API's routes, document and rules.
pub(crate) fn api() -> &'static Api {
    static API: LazyLock<Api> = LazyLock::new(|| {
        let (router, mut doc, rules) = declare(Table::new(openapi::ApiDoc::openapi())).build();
        RefusalResponses.modify(&mut doc);
        Api { router, doc, rules }
    });
    &API
}

/// The rule of `method path` (`path` as routed, e.g. `/v1/rules/{id}`), if such a route is
/// declared. `HEAD` is answered like `GET`.
pub(crate) fn rule(method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    api()
        .rules
        .iter()
        .find(|r| r.method == method && r.path == path)
}

/// The largest body `method path` (as routed) takes; larger ones get 413. Model uploads are
/// big; everything else is an event or a small document, and the general limit sits a little
/// above the event limit so that an oversized event still reaches validation and gets its
/// precise answer. The idempotency layer buffers bodies with the same limit.
pub(crate) fn body_limit(limits: &Limits, method: &Method, path: &str) -> usize {
    rule(method, path)
        .and_then(|r| r.body_limit)
        .unwrap_or_else(|| general_body_limit(limits))
}

/// The body limit of routes without their own.
pub(crate) fn general_body_limit(limits: &Limits) -> usize {
    limits.max_payload_bytes.saturating_mul(2).max(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each documented operation: its method, path and whether it declares `security(())`
    /// (an empty requirement: no credentials needed).
    fn operations() -> Vec<(Method, String, bool)> {
        let doc = serde_json::to_value(&api().doc).unwrap();
        let mut operations = Vec::new();
        for (path, item) in api().doc.paths.paths.iter() {
            for method in methods(item) {
                let security = &doc["paths"][path][method.as_str().to_lowercase()]["security"];
                let public = security
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r == &serde_json::json!({})));
                operations.push((method, path.clone(), public));
            }
        }
        operations
    }

    #[test]
    fn the_document_names_each_operation_with_the_access_the_guard_applies() {
        let operations = operations();
        assert!(!operations.is_empty());
        for (method, path, public) in operations {
            let rule = rule(&method, &path).unwrap_or_else(|| panic!("{method} {path}"));
            assert_eq!(
                public,
                matches!(rule.access, Public | Metrics),
                "{method} {path}: the document and the access rule disagree on credentials"
            );
        }
    }

    #[test]
    fn only_the_document_itself_and_the_dashboard_files_are_left_out_of_it() {
        let documented = operations();
        let mut left_out: Vec<String> = api()
            .rules
            .iter()
            .filter(|r| {
                !documented
                    .iter()
                    .any(|(m, p, _)| *m == r.method && *p == r.path)
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        left_out.sort();
        assert_eq!(
            left_out,
            [
                "GET /",
                "GET /assets/dashboard.css",
                "GET /assets/dashboard.js",
                "GET /docs",
                "GET /favicon.svg",
                "GET /openapi.json",
            ]
        );
    }
}
