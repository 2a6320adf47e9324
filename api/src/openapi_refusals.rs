//! Documents the answers the access guard gives on every protected operation (401, 403, 429),
//! so the OpenAPI document matches what clients and the fuzz run actually receive.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Adds the guard's refusals to every operation that needs credentials.
pub(crate) struct RefusalResponses;

/// The guard's refusals: status and what it means.
const REFUSALS: [(&str, &str); 3] = [
    ("401", "Missing, malformed, expired or forged credentials"),
    ("403", "The caller's role may not use this operation"),
    (
        "429",
        "Over the caller's rate limit; `Retry-After` says when to retry",
    ),
];

impl utoipa::Modify for RefusalResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item).into_iter().flatten() {
                if is_public(operation) {
                    continue;
                }
                for (status, description) in REFUSALS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(error_response(description)));
                }
            }
        }
    }
}

/// Every method slot of a path.
fn operations(item: &mut PathItem) -> [Option<&mut Operation>; 8] {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
}

/// An operation declared with `security(())` (an empty requirement) needs no credentials.
fn is_public(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().any(|requirement| {
            serde_json::to_value(requirement).is_ok_and(|v| v == serde_json::json!({}))
        })
    })
}

/// A response in the API's one error shape.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use crate::openapi::ApiDoc;
    use utoipa::OpenApi;

    #[test]
    fn protected_operations_document_the_refusals_and_health_does_not() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let rules = &doc["paths"]["/v1/rules"]["get"]["responses"];
        for status in ["401", "403", "429"] {
            assert!(rules.get(status).is_some(), "GET /v1/rules lacks {status}");
        }
        let health = &doc["paths"]["/healthz"]["get"]["responses"];
        assert!(health.get("401").is_none(), "{health}");
    }
}
