//! The items of a `POST /v1/labels` batch, read one by one: an item that is not a label (a
//! verdict of `maybe`, a time that is not RFC 3339, an unknown field) is rejected on its own,
//! naming the field at fault, and the rest of the batch goes on.

use sentinel_catalog::{LabelInput, LabelOutcome};

/// Reads one item of a batch as a label, or rejects it with the field at fault (boxed: a
/// rejection is the rare, larger case).
pub(crate) fn read(item: serde_json::Value) -> Result<LabelInput, Box<LabelOutcome>> {
    let transaction_id = item
        .get("transaction_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let field = match path.as_str() {
            // Unknown and missing fields are reported at the item itself; their message
            // names the field between backticks.
            "." => named_field(&reason).unwrap_or("item").to_owned(),
            _ => path,
        };
        Box::new(LabelOutcome::Rejected {
            transaction_id,
            field,
            reason,
        })
    })
}

/// The field a serde message such as "unknown field `colour`, expected …" names.
fn named_field(message: &str) -> Option<&str> {
    ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(item: serde_json::Value) -> (String, String) {
        match read(item).map_err(|r| *r) {
            Err(LabelOutcome::Rejected {
                transaction_id,
                field,
                ..
            }) => (transaction_id, field),
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn bad_items_are_rejected_naming_their_field() {
        let cases = [
            (json!({"transaction_id": "t", "label": "maybe"}), "label"),
            (
                json!({"transaction_id": "t", "label": "fraud", "labelled_at": "last tuesday"}),
                "labelled_at",
            ),
            (
                json!({"transaction_id": "t", "label": "fraud", "source": "bank"}),
                "source",
            ),
            (
                json!({"transaction_id": "t", "label": "fraud", "colour": "red"}),
                "colour",
            ),
            (json!({"transaction_id": "t"}), "label"),
            (json!({"label": "fraud"}), "transaction_id"),
        ];
        for (item, field) in cases {
            let text = item.to_string();
            let (id, got) = refusal(item);
            assert_eq!(got, field, "{text}");
            assert_eq!(id, if field == "transaction_id" { "" } else { "t" });
        }
        assert_eq!(refusal(json!(7)).1, "item");
    }

    #[test]
    fn a_good_item_reads_with_its_defaults() {
        let input = read(json!({"transaction_id": "t", "label": "legit"})).unwrap();
        assert_eq!(
            input,
            LabelInput::new("t", sentinel_catalog::LabelValue::Legit)
        );
    }
}
