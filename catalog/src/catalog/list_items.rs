//! Adding or removing one list item as one catalogue change. The item is applied to the list as
//! it stands when the change commits (and again on top of another node's version if that one
//! was published first), so concurrent additions and removals all survive; reading the list
//! and writing it back whole would lose all but the last.

use super::{check_items, not_found_list, Catalog, Edit};
use crate::error::CatalogError;
use crate::records::{ListItem, ListRecord};
use chrono::Utc;

/// One change to a list's items.
#[derive(Debug, Clone)]
pub enum ItemChange {
    /// Adds the item, or replaces the item with the same value (a new expiry).
    Add(ListItem),
    /// Removes the item with this value; 404 when there is none.
    Remove(String),
}

impl Catalog {
    /// Applies `change` to the list `name`; the list as it is afterwards.
    pub async fn change_list_item(
        &self,
        name: &str,
        change: ItemChange,
        principal: &str,
    ) -> Result<ListRecord, CatalogError> {
        self.apply(principal, |state| {
            let before = state
                .lists
                .get(name)
                .cloned()
                .ok_or_else(|| not_found_list(name))?;
            let mut items = before.items.clone();
            match &change {
                ItemChange::Add(item) => {
                    items.retain(|i| i.value != item.value);
                    items.push(item.clone());
                }
                ItemChange::Remove(value) => {
                    if !items.iter().any(|i| i.value == *value) {
                        return Err(CatalogError::NotFound(format!(
                            "list {name} has no item {value}"
                        )));
                    }
                    items.retain(|i| i.value != *value);
                }
            }
            check_items(&items)?;
            let list = ListRecord {
                name: name.to_owned(),
                description: before.description.clone(),
                items,
                version: before.version + 1,
                updated_at: Utc::now(),
                updated_by: principal.to_owned(),
            };
            Ok(Edit::list(
                name,
                Some(before),
                Some(list.clone()),
                "list.update",
                list,
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_engine::PolicyDef;
    use sentinel_store::{EmbeddedStore, Store};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_additions_and_removals_all_survive() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        let catalog = Arc::new(
            Catalog::open(store, PolicyDef::seed(), 300_000)
                .await
                .unwrap(),
        );
        let keep = |v: &str| ListItem {
            value: v.to_owned(),
            expires_at: None,
        };
        catalog
            .put_list(
                "mules",
                String::new(),
                vec![keep("gone-1"), keep("gone-2")],
                true,
                "t",
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let catalog = Arc::clone(&catalog);
            tasks.push(tokio::spawn(async move {
                let change = ItemChange::Add(ListItem {
                    value: format!("m-{i}"),
                    expires_at: None,
                });
                catalog
                    .change_list_item("mules", change, "t")
                    .await
                    .unwrap();
            }));
        }
        for value in ["gone-1", "gone-2"] {
            let catalog = Arc::clone(&catalog);
            tasks.push(tokio::spawn(async move {
                let change = ItemChange::Remove(value.to_owned());
                catalog
                    .change_list_item("mules", change, "t")
                    .await
                    .unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let list = catalog.list("mules").await.unwrap();
        let mut values: Vec<String> = list.items.into_iter().map(|i| i.value).collect();
        values.sort();
        let mut expected: Vec<String> = (0..20).map(|i| format!("m-{i}")).collect();
        expected.sort();
        assert_eq!(values, expected);
        assert_eq!(list.version, 1 + 22);
        let missing = catalog
            .change_list_item("mules", ItemChange::Remove("nope".into()), "t")
            .await;
        assert!(
            matches!(missing, Err(CatalogError::NotFound(_))),
            "{missing:?}"
        );
    }
}
