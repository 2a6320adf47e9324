//! Documents the answers the access guard gives on every protected operation (401, 403, 429),
//! the content-type check on every operation with a body (415) and the `Host` check on every
//! operation (421), so the OpenAPI document matches what clients and the fuzz run receive.

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

/// The content-type check's refusal, on `POST`, `PUT` and `PATCH`.
const NOT_JSON: (&str, &str) = (
    "415",
    "`Content-Type` is not `application/json` (required even without a body)",
);

/// The `Host` check's refusal, on every operation.
const MISDIRECTED: (&str, &str) = (
    "421",
    "`Host` is not a name this node answers to (`http_allowed_hosts`)",
);

impl utoipa::Modify for RefusalResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (operation, has_body) in operations(item).into_iter().flatten() {
                let mut refusals = vec![MISDIRECTED];
                if has_body {
                    refusals.push(NOT_JSON);
                }
                if !is_public(operation) {
                    refusals.extend(REFUSALS);
                }
                for (status, description) in refusals {
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

/// Every method slot of a path, and whether the method carries a body.
fn operations(item: &mut PathItem) -> [Option<(&mut Operation, bool)>; 8] {
    [
        item.get.as_mut().map(|o| (o, false)),
        item.put.as_mut().map(|o| (o, true)),
        item.post.as_mut().map(|o| (o, true)),
        item.delete.as_mut().map(|o| (o, false)),
        item.options.as_mut().map(|o| (o, false)),
        item.head.as_mut().map(|o| (o, false)),
        item.patch.as_mut().map(|o| (o, true)),
        item.trace.as_mut().map(|o| (o, false)),
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
    #[test]
    fn protected_operations_document_the_refusals_and_health_does_not() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let rules = &doc["paths"]["/v1/rules"]["get"]["responses"];
        for status in ["401", "403", "429"] {
            assert!(rules.get(status).is_some(), "GET /v1/rules lacks {status}");
        }
        assert!(rules.get("415").is_none(), "a GET has no body to check");
        assert!(doc["paths"]["/v1/rules"]["post"]["responses"]
            .get("415")
            .is_some());
        let health = &doc["paths"]["/healthz"]["get"]["responses"];
        assert!(health.get("401").is_none(), "{health}");
        assert!(health.get("421").is_some(), "{health}");
    }
}
