//! The message each sink kind receives, in its native format.
//!
//! - Webhook: `{"delivery_id", "alert_id", "sink", "link", "decision": <the stored decision>}`.
//! - Slack incoming webhook: `text` (notification fallback) + Block Kit `blocks` (header,
//!   section with fields, reasons, a link button); text limits per Slack's Block Kit reference.
//! - Discord webhook: `content` + one rich `embeds` entry (title, url, description, fields,
//!   colour, timestamp) within Discord's documented limits, with mentions disabled.

use crate::config::SinkKind;
use sentinel_event::{Decision, Outcome};
use sentinel_rules::Action;
use sentinel_store::outbox::AlertRecord;
use serde_json::{json, Value};
use std::fmt::Write;

/// The JSON body for `alert` about `decision` in `kind`'s format.
pub fn body(kind: SinkKind, alert: &AlertRecord, decision: &Decision, base_url: &str) -> Value {
    let link = decision_link(base_url, &decision.transaction_id);
    match kind {
        SinkKind::Webhook => json!({
            "delivery_id": alert.id,
            "alert_id": alert.id,
            "sink": alert.sink,
            "link": link,
            "decision": decision,
        }),
        SinkKind::Slack => slack(decision, &link),
        SinkKind::Discord => discord(decision, &link),
    }
}

/// `<base>/v1/decisions/<percent-encoded transaction id>`.
pub fn decision_link(base_url: &str, transaction_id: &str) -> String {
    let mut link = String::with_capacity(base_url.len() + transaction_id.len() + 16);
    link.push_str(base_url.trim_end_matches('/'));
    link.push_str("/v1/decisions/");
    for b in transaction_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            link.push(b as char);
        } else {
            let _ = write!(link, "%{b:02X}");
        }
    }
    link
}

fn headline(d: &Decision) -> String {
    let verb = match d.outcome {
        Outcome::Decline => "Declined",
        Outcome::Review => "Review needed",
        Outcome::Approve => "Approved",
    };
    format!(
        "{verb}: {} {} for user {} (score {:.2})",
        d.event.amount, d.event.currency, d.user_id, d.score
    )
}

/// One line per fired rule: `rule (action)`.
fn reason_lines(d: &Decision, bullet: &str) -> String {
    if d.reasons.is_empty() {
        return format!("{bullet}score above the threshold");
    }
    let mut out = String::new();
    for r in &d.reasons {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = match r.action {
            Action::Flag => write!(out, "{bullet}{} (flag)", r.rule),
            Action::Review => write!(out, "{bullet}{} (review)", r.rule),
            Action::Decline => write!(out, "{bullet}{} (decline)", r.rule),
            Action::AddScore(n) => write!(out, "{bullet}{} (+{n} score)", r.rule),
        };
    }
    out
}

/// `text` cut to at most `max` characters, marking the cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn slack(d: &Decision, link: &str) -> Value {
    let head = headline(d);
    let merchant = d.event.merchant_id.as_deref().unwrap_or("-");
    let field = |label: &str, value: &str| json!({"type": "mrkdwn", "text": clip(&format!("*{label}*\n{value}"), 2000)});
    json!({
        "text": clip(&head, 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(&head, 150)}},
            {"type": "section", "fields": [
                field("Transaction", &d.transaction_id),
                field("User", &d.user_id),
                field("Outcome", d.outcome.as_str()),
                field("Score", &format!("{:.2}", d.score)),
                field("Amount", &format!("{} {}", d.event.amount, d.event.currency)),
                field("Merchant", merchant),
            ]},
            {"type": "section", "text": {"type": "mrkdwn",
                "text": clip(&format!("*Reasons*\n{}", reason_lines(d, "• ")), 3000)}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open decision"},
                 "url": clip(link, 3000), "action_id": "open_decision"}
            ]},
        ],
    })
}

fn discord(d: &Decision, link: &str) -> Value {
    let head = headline(d);
    let colour = match d.outcome {
        Outcome::Decline => 0xD9_2D_20,
        Outcome::Review => 0xF2_A9_00,
        Outcome::Approve => 0x2E_A0_43,
    };
    let field = |name: &str, value: &str| json!({"name": clip(name, 256), "value": clip(value, 1024), "inline": true});
    json!({
        "content": clip(&head, 2000),
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": clip(&format!("Transaction {}", d.transaction_id), 256),
            "url": link,
            "description": clip(&reason_lines(d, "• "), 4096),
            "color": colour,
            "timestamp": d.decided_at.to_rfc3339(),
            "fields": [
                field("User", &d.user_id),
                field("Outcome", d.outcome.as_str()),
                field("Score", &format!("{:.2}", d.score)),
                field("Amount", &format!("{} {}", d.event.amount, d.event.currency)),
                field("Merchant", d.event.merchant_id.as_deref().unwrap_or("-")),
            ],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_store::conformance::decision;

    #[test]
    fn links_percent_encode_the_transaction_id() {
        assert_eq!(
            decision_link("http://h:1/", "a b/c"),
            "http://h:1/v1/decisions/a%20b%2Fc"
        );
    }

    #[test]
    fn long_texts_are_clipped_to_the_documented_limits() {
        let mut d = decision(&"t".repeat(400), "u", 1, 1);
        d.outcome = Outcome::Decline;
        let alert = AlertRecord::queued("id".into(), "s", &d, d.decided_at);
        let slack = body(SinkKind::Slack, &alert, &d, "http://x");
        let header = slack["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= 150);
        let discord = body(SinkKind::Discord, &alert, &d, "http://x");
        let title = discord["embeds"][0]["title"].as_str().unwrap();
        assert_eq!(title.chars().count(), 256);
        assert!(title.ends_with('…'));
    }
}
