//! The OpenAPI document, generated from the handlers' annotations, and a Swagger UI page.

use crate::openapi_refusals::RefusalResponses;
use axum::response::{Html, IntoResponse};
use axum::Json;
use utoipa::OpenApi;

/// The REST API's OpenAPI 3.1 description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SentinelStream",
        description = "Real-time card-fraud scoring: decide transactions, manage rules and lists, look things up, backtest.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::transactions::score,
        crate::screen::screen,
        crate::transactions::decision,
        crate::transactions::user_decisions,
        crate::transactions::user_transactions,
        crate::transactions::label,
        crate::transactions::get_label,
        crate::transactions::label_batch,
        crate::decisions::search,
        crate::decisions::aggregates,
        crate::users::profile,
        crate::users::balance,
        crate::opening_balance::put,
        crate::rules::list,
        crate::rules::create,
        crate::rules::get,
        crate::rules::update,
        crate::rules::delete,
        crate::rules::versions,
        crate::rules::rollback,
        crate::rules::test,
        crate::lists::list,
        crate::lists::create,
        crate::lists::get,
        crate::lists::update,
        crate::lists::delete,
        crate::lists::add_item,
        crate::lists::remove_item,
        crate::models::upload,
        crate::models::list,
        crate::models::get,
        crate::models::activate,
        crate::models::rollback,
        crate::models::clear_challenger,
        crate::audit::list,
        crate::alerts::list,
        crate::alerts::retry,
        crate::backtests::start,
        crate::backtests::get,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
        crate::dashboard::stream,
        crate::cluster::cluster,
        crate::api_keys::list,
        crate::api_keys::create,
        crate::api_keys::revoke,
    ),
    // `Agg` and `GroupBy` are only referenced from query parameters, which do not register their schemas.
    components(schemas(sentinel_rules::Agg, crate::decisions::GroupBy)),
    modifiers(&SecuritySchemes, &RefusalResponses),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "scoring", description = "Decide one transaction"),
        (name = "decisions", description = "Stored decisions, labels and aggregates"),
        (name = "users", description = "A user's history, live state and balance"),
        (name = "rules", description = "Versioned rules in the analyst language"),
        (name = "lists", description = "Named lists rules use as @name"),
        (name = "models", description = "Machine-learned models: upload, activate, roll back"),
        (name = "audit", description = "Who changed what"),
        (name = "alerts", description = "Notifications owed to webhook, Slack and Discord sinks"),
        (name = "backtests", description = "Replay history under a candidate policy"),
        (name = "operations", description = "Health and metrics"),
        (name = "keys", description = "API keys for producers and scripts (admin)"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate: a JWT bearer token, or an API key in `X-Api-Key`.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 or RS256 token with `sub`, `role`, `iss`, `aud` and `exp` claims",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "A key from `POST /v1/keys` or the configuration",
            ))),
        );
    }
}

/// `GET /openapi.json`
pub async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// `GET /docs`: Swagger UI for the document above. The page loads Swagger UI's assets from the
/// unpkg CDN, so it needs a browser with internet access; `/openapi.json` itself does not.
pub async fn swagger_ui() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>SentinelStream API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5.17.14/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5.17.14/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });</script>
</body>
</html>"##,
    )
}
