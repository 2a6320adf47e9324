//! The OpenAPI document, generated from the handlers' annotations as the route table
//! ([`crate::routes`]) collects them, and a Swagger UI page.

use axum::response::{Html, IntoResponse};
use axum::Json;
use utoipa::OpenApi;

/// The REST API's OpenAPI 3.1 description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::routes::api().doc.clone()
}

/// What the document says besides its paths: the route table adds the paths and the schemas
/// they use, then the guard's refusals to each operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SentinelStream",
        description = "Real-time card-fraud scoring: decide transactions, manage rules and lists, look things up, backtest.",
        license(name = "Apache-2.0")
    ),
    // `Agg` and `GroupBy` are only referenced from query parameters, which do not register their schemas.
    components(schemas(sentinel_rules::Agg, crate::decisions::GroupBy)),
    modifiers(&SecuritySchemes),
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
pub(crate) struct ApiDoc;

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
    Json(&crate::routes::api().doc)
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
