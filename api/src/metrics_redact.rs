//! `/metrics` is open to Prometheus by default, and rule names say what the fraud team looks
//! for (`shadow_new_mule_pattern`). Unless `[auth] metrics_rule_names = true`, the `rule`
//! label of the rule-hit counter carries the rule's catalogue id instead; a name the catalogue
//! no longer has (a rule renamed since) becomes `unknown`. Series that end up with the same
//! labels are summed, so the exposition never repeats a series.

use std::collections::HashMap;

/// The series whose `rule` label is rewritten.
const RULE_HITS: &str = "sentinel_rule_hits_total";

/// What replaces a name the catalogue does not know.
pub const UNKNOWN: &str = "unknown";

/// `text` with every `rule="<name>"` of the rule-hit counter replaced by `rule="<id>"`.
pub(crate) fn rule_ids(text: &str, ids: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    // Rewritten series in order of first appearance, with their summed values.
    let mut series: Vec<(String, f64)> = Vec::new();
    // The series are written where the first one was, after its HELP and TYPE lines.
    let mut insert_at = None;
    for line in text.lines() {
        let Some(labels) = line
            .strip_prefix(RULE_HITS)
            .filter(|rest| rest.starts_with('{'))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let rewritten = rewrite(labels, ids);
        let (key, value) = match rewritten.rsplit_once(' ') {
            Some((key, value)) => (key.to_owned(), value.parse::<f64>().unwrap_or(0.0)),
            None => (rewritten, 0.0),
        };
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, sum)) => *sum += value,
            None => series.push((key, value)),
        }
        insert_at.get_or_insert(out.len());
    }
    if let Some(at) = insert_at {
        let block: String = series
            .iter()
            .map(|(key, value)| format!("{RULE_HITS}{key} {value}\n"))
            .collect();
        out.insert_str(at, &block);
    }
    out
}

/// `{rule="name",mode="active"} 3` with the name replaced by its id.
fn rewrite(labels: &str, ids: &HashMap<String, String>) -> String {
    const KEY: &str = "rule=\"";
    let Some(start) = labels.find(KEY).map(|i| i + KEY.len()) else {
        return labels.to_owned();
    };
    // Rule names cannot contain quotes or backslashes, so the value ends at the next quote.
    let Some(len) = labels[start..].find('"') else {
        return labels.to_owned();
    };
    let name = &labels[start..start + len];
    let id = ids.get(name).map_or(UNKNOWN, String::as_str);
    format!("{}{id}{}", &labels[..start], &labels[start + len..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_ids_and_unknown_names_are_summed() {
        let text = "# HELP sentinel_rule_hits_total Rule hits.\n\
                    # TYPE sentinel_rule_hits_total counter\n\
                    sentinel_rule_hits_total{rule=\"velocity_5m\",mode=\"active\"} 3\n\
                    sentinel_rule_hits_total{rule=\"old name\",mode=\"shadow\"} 2\n\
                    sentinel_rule_hits_total{rule=\"older name\",mode=\"shadow\"} 5\n\
                    sentinel_decisions_total{outcome=\"approve\"} 9\n";
        let ids = HashMap::from([("velocity_5m".to_owned(), "0193-a".to_owned())]);
        let out = rule_ids(text, &ids);
        assert_eq!(
            out,
            "# HELP sentinel_rule_hits_total Rule hits.\n\
             # TYPE sentinel_rule_hits_total counter\n\
             sentinel_rule_hits_total{rule=\"0193-a\",mode=\"active\"} 3\n\
             sentinel_rule_hits_total{rule=\"unknown\",mode=\"shadow\"} 7\n\
             sentinel_decisions_total{outcome=\"approve\"} 9\n"
        );
        assert_eq!(rule_ids("up 1\n", &ids), "up 1\n");
    }
}
