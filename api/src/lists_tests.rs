//! Concurrent list item changes through the router.

use crate::tests::{admin, call_as, router};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_item_additions_and_removals_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let admin = admin();
    let (status, body) = call_as(
        &r,
        Some(&admin),
        "POST",
        "/v1/lists",
        Some(json!({"name": "mules", "items": [{"value": "old-1"}, {"value": "old-2"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (r, admin) = (r.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let item = json!({"value": format!("m-{i}")});
            call_as(
                &r,
                Some(&admin),
                "POST",
                "/v1/lists/mules/items",
                Some(item),
            )
            .await
        }));
    }
    for old in ["old-1", "old-2"] {
        let (r, admin) = (r.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let uri = format!("/v1/lists/mules/items/{old}");
            call_as(&r, Some(&admin), "DELETE", &uri, None).await
        }));
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, list) = call_as(&r, Some(&admin), "GET", "/v1/lists/mules", None).await;
    let mut values: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    values.sort_unstable();
    let mut expected: Vec<String> = (0..32).map(|i| format!("m-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(values, expected, "an item change was lost");
}
