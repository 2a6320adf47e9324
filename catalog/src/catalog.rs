//! The catalogue itself: load, change, compile, persist, publish.

use crate::error::CatalogError;
use crate::models::Deployment;
use crate::records::{AuditEntry, ListItem, ListRecord, RuleTest, RuleVersion};
use chrono::{DateTime, Utc};
use sentinel_engine::{EntityRiskFeed, Models, Policy, PolicyDef, PolicyError, UserState};
use sentinel_event::{Thresholds, Transaction};
use sentinel_rules::{Expr, Mode, RuleDef};
use sentinel_store::{RecordGuard, RecordKind, RecordWrite, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{watch, Mutex};

/// A rule as an analyst submits it (create, or full replacement on update): the rule
/// language's own definition.
pub type RuleChange = RuleDef;

/// Which rules to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RuleFilter {
    /// Only rules in this mode.
    pub mode: Option<Mode>,
    /// Only rules whose name contains this text.
    pub name_contains: Option<String>,
    /// Include deleted rules.
    #[serde(default)]
    pub include_deleted: bool,
}

/// The policy a backtest replays.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Candidate {
    /// The current policy.
    Current,
    /// The current policy with this rule added (or replacing the rule of the same name).
    Rule(RuleChange),
    /// A stored policy version.
    PolicyVersion(u64),
}

/// How many events of history a rule test may replay.
const MAX_TEST_HISTORY: usize = 1_000;
const HEAD_KEY: &str = "head";
/// How often a change is checked and applied again on top of a version another node
/// published first, before the analyst gets 409.
const PUBLISH_ATTEMPTS: usize = 5;

pub(crate) struct State {
    /// Current version of every rule, deleted ones included.
    rules: BTreeMap<String, RuleVersion>,
    lists: BTreeMap<String, ListRecord>,
    thresholds: Thresholds,
    pub(crate) policy_version: u64,
    audit_seq: u64,
    /// The earliest expiry among list items, when the policy must be compiled again.
    next_expiry: Option<DateTime<Utc>>,
    /// Which models are champion and challenger.
    pub(crate) deployment: Deployment,
    /// The loaded models of the deployment, attached to every compiled policy.
    pub(crate) models: Models,
    /// The live entity-risk index, attached to every compiled policy's models.
    pub(crate) entity_risk: EntityRiskFeed,
}

/// One checked change to rules or lists, what the audit calls it, and what its caller answers.
struct Edit<T> {
    change: Change,
    action: &'static str,
    answer: T,
}

/// The records one [`Edit`] changes.
enum Change {
    /// A rule's new version, replacing `before`.
    Rule {
        before: Option<RuleVersion>,
        rule: RuleVersion,
    },
    /// A list created, replaced or (`after` absent) deleted.
    List {
        name: String,
        before: Option<ListRecord>,
        after: Option<ListRecord>,
    },
}

impl Edit<RuleVersion> {
    /// A rule change that answers with the new version.
    fn rule(before: Option<RuleVersion>, rule: RuleVersion, action: &'static str) -> Self {
        Edit {
            answer: rule.clone(),
            change: Change::Rule { before, rule },
            action,
        }
    }
}

impl<T> Edit<T> {
    /// A list change that answers with `answer`.
    fn list(
        name: &str,
        before: Option<ListRecord>,
        after: Option<ListRecord>,
        action: &'static str,
        answer: T,
    ) -> Self {
        Edit {
            change: Change::List {
                name: name.to_owned(),
                before,
                after,
            },
            action,
            answer,
        }
    }
}

/// The catalogue: versioned rules, named lists, labels, audit; publishes compiled policies.
pub struct Catalog {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) state: Mutex<State>,
    pub(crate) published: watch::Sender<Arc<Policy>>,
    lateness_ms: i64,
    /// The entity-risk index every policy's models read (see `entity_index.rs`).
    pub(crate) entity_risk: EntityRiskFeed,
    /// What the live index is rebuilt from: the tailed activity and the labelled entities.
    pub(crate) entity_sources: Mutex<crate::entity_index::Sources>,
    /// Decisions committed in this process (its writer's, and on a store host its members'),
    /// waiting for the live index's next pass.
    pub(crate) committed_here: Arc<crate::entity_index::CommittedHere>,
    /// Woken when a label is posted here.
    pub(crate) label_posted: tokio::sync::Notify,
}

#[derive(Serialize, Deserialize)]
struct PolicyHead {
    version: u64,
}

impl Catalog {
    /// Loads the catalogue, seeding an empty store with `seed`'s rules and lists.
    pub async fn open(
        store: Arc<dyn Store>,
        seed: PolicyDef,
        lateness_ms: i64,
    ) -> Result<Catalog, CatalogError> {
        let now = Utc::now();
        let head: Option<PolicyHead> = read(&*store, RecordKind::PolicyVersion, HEAD_KEY).await?;
        let entity_risk = EntityRiskFeed::default();
        let mut state = State {
            rules: BTreeMap::new(),
            lists: BTreeMap::new(),
            thresholds: seed.thresholds,
            policy_version: 0,
            audit_seq: 0,
            next_expiry: None,
            deployment: Deployment::default(),
            models: Models::default(),
            entity_risk: entity_risk.clone(),
        };
        (state.deployment, state.models) = crate::models::load(&*store).await?;
        let policy = match head {
            Some(head) => {
                load_stored(&*store, head.version, &mut state).await?;
                compile(&state, state.policy_version, now)?
            }
            None => {
                // First start: the seed becomes version 1 of everything.
                for def in &seed.rules {
                    let id = new_id();
                    state.rules.insert(
                        id.clone(),
                        RuleVersion {
                            id,
                            version: 1,
                            name: def.name.clone(),
                            expression: def.expression.clone(),
                            action: def.action,
                            priority: def.priority,
                            mode: def.mode,
                            description: def.description.clone(),
                            deleted: false,
                            created_at: now,
                            created_by: "seed".into(),
                        },
                    );
                }
                for (name, items) in &seed.lists {
                    let items = items
                        .iter()
                        .map(|v| ListItem {
                            value: v.clone(),
                            expires_at: None,
                        })
                        .collect();
                    state.lists.insert(
                        name.clone(),
                        ListRecord {
                            name: name.clone(),
                            description: String::new(),
                            items,
                            version: 1,
                            updated_at: now,
                            updated_by: "seed".into(),
                        },
                    );
                }
                let policy = compile(&state, seed.version.max(1), now)?;
                let mut writes = Vec::new();
                for rule in state.rules.values() {
                    writes.push(put(RecordKind::RuleVersion, rule_key(&rule.id, 1), rule)?);
                    writes.push(put(RecordKind::RuleHead, rule.id.clone(), &1u32)?);
                }
                for list in state.lists.values() {
                    writes.push(put(RecordKind::List, list.name.clone(), list)?);
                }
                writes.extend(policy_writes(&policy)?);
                let guard = RecordGuard {
                    kind: RecordKind::PolicyVersion,
                    key: HEAD_KEY.to_owned(),
                    expected: None,
                };
                if store.put_records_if(guard, writes).await? {
                    state.policy_version = policy.rules.version;
                    policy
                } else {
                    // Another node sharing the store seeded it first: use what it stored.
                    let head: PolicyHead = read(&*store, RecordKind::PolicyVersion, HEAD_KEY)
                        .await?
                        .ok_or_else(|| CatalogError::NotFound("policy head".into()))?;
                    state.rules.clear();
                    state.lists.clear();
                    load_stored(&*store, head.version, &mut state).await?;
                    compile(&state, state.policy_version, now)?
                }
            }
        };
        state.next_expiry = next_expiry(&state.lists, now);
        let (published, _) = watch::channel(Arc::new(policy));
        Ok(Catalog {
            store,
            state: Mutex::new(state),
            published,
            lateness_ms,
            entity_risk,
            entity_sources: Mutex::default(),
            committed_here: Arc::default(),
            label_posted: tokio::sync::Notify::new(),
        })
    }

    /// Reloads rules, lists and thresholds from the store when another node sharing it has
    /// published a newer policy version there, and publishes that version here. Returns the
    /// version now published (unchanged when the store holds nothing newer).
    pub async fn reload(&self) -> Result<u64, CatalogError> {
        let mut state = self.state.lock().await;
        self.reload_into(&mut state).await
    }

    /// [`Catalog::reload`] with the state already locked.
    pub(crate) async fn reload_into(&self, state: &mut State) -> Result<u64, CatalogError> {
        let head: Option<PolicyHead> =
            read(&*self.store, RecordKind::PolicyVersion, HEAD_KEY).await?;
        let Some(head) = head.filter(|h| h.version > state.policy_version) else {
            return Ok(state.policy_version);
        };
        let now = Utc::now();
        let mut fresh = State {
            rules: BTreeMap::new(),
            lists: BTreeMap::new(),
            thresholds: state.thresholds,
            policy_version: 0,
            audit_seq: state.audit_seq,
            next_expiry: None,
            deployment: Deployment::default(),
            models: Models::default(),
            entity_risk: state.entity_risk.clone(),
        };
        load_stored(&*self.store, head.version, &mut fresh).await?;
        // A model activated on another node is a policy version too: load the deployment.
        (fresh.deployment, fresh.models) = crate::models::load(&*self.store).await?;
        let policy = compile(&fresh, fresh.policy_version, now)?;
        fresh.next_expiry = next_expiry(&fresh.lists, now);
        *state = fresh;
        self.published.send_replace(Arc::new(policy));
        tracing::info!(version = head.version, "policy reloaded from the store");
        Ok(head.version)
    }

    /// How late an event may be and still enter windows (backtests replay with it).
    pub fn lateness_ms(&self) -> i64 {
        self.lateness_ms
    }

    /// The store the catalogue lives in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current compiled policy.
    pub fn policy(&self) -> Arc<Policy> {
        self.published.borrow().clone()
    }

    /// Follows every new policy version.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Policy>> {
        self.published.subscribe()
    }

    /// Rules, current versions, highest priority first.
    pub async fn rules(&self, filter: &RuleFilter) -> Vec<RuleVersion> {
        let state = self.state.lock().await;
        let mut rules: Vec<RuleVersion> = state
            .rules
            .values()
            .filter(|r| filter.include_deleted || !r.deleted)
            .filter(|r| filter.mode.is_none_or(|m| m == r.mode))
            .filter(|r| {
                filter
                    .name_contains
                    .as_deref()
                    .is_none_or(|n| r.name.contains(n))
            })
            .cloned()
            .collect();
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        rules
    }

    /// One rule's current version.
    pub async fn rule(&self, id: &str) -> Result<RuleVersion, CatalogError> {
        let state = self.state.lock().await;
        state
            .rules
            .get(id)
            .cloned()
            .ok_or_else(|| not_found_rule(id))
    }

    /// Every version of a rule, oldest first.
    pub async fn rule_versions(&self, id: &str) -> Result<Vec<RuleVersion>, CatalogError> {
        let rows = self
            .store
            .scan_records(RecordKind::RuleVersion, &format!("{id}/"), None, usize::MAX)
            .await?;
        if rows.is_empty() {
            return Err(not_found_rule(id));
        }
        rows.iter().map(|(_, bytes)| decode(bytes)).collect()
    }

    /// Creates a rule (version 1).
    pub async fn create_rule(
        &self,
        change: RuleChange,
        principal: &str,
    ) -> Result<RuleVersion, CatalogError> {
        let id = new_id();
        self.apply(principal, |state| {
            check_name_free(state, &change.name, None)?;
            let rule = version_from(&id, 1, change.clone(), principal);
            Ok(Edit::rule(None, rule, "rule.create"))
        })
        .await
    }

    /// Replaces a rule with a new version.
    pub async fn update_rule(
        &self,
        id: &str,
        change: RuleChange,
        principal: &str,
    ) -> Result<RuleVersion, CatalogError> {
        self.apply(principal, |state| {
            let before = live_rule(state, id)?.clone();
            check_name_free(state, &change.name, Some(id))?;
            let rule = version_from(id, before.version + 1, change.clone(), principal);
            Ok(Edit::rule(Some(before), rule, "rule.update"))
        })
        .await
    }

    /// Deletes a rule: a new version marked deleted; the history stays.
    pub async fn delete_rule(
        &self,
        id: &str,
        principal: &str,
    ) -> Result<RuleVersion, CatalogError> {
        self.apply(principal, |state| {
            let before = live_rule(state, id)?.clone();
            let mut rule = before.clone();
            rule.version += 1;
            rule.deleted = true;
            rule.created_at = Utc::now();
            rule.created_by = principal.to_owned();
            Ok(Edit::rule(Some(before), rule, "rule.delete"))
        })
        .await
    }

    /// Makes an earlier version current again, as a new version with its content.
    pub async fn rollback_rule(
        &self,
        id: &str,
        version: u32,
        principal: &str,
    ) -> Result<RuleVersion, CatalogError> {
        // Stored rule versions never change: read once, outside the retries.
        let target: Option<RuleVersion> = read(
            &*self.store,
            RecordKind::RuleVersion,
            &rule_key(id, version),
        )
        .await?;
        self.apply(principal, |state| {
            let before = state
                .rules
                .get(id)
                .cloned()
                .ok_or_else(|| not_found_rule(id))?;
            let mut rule = target.clone().ok_or_else(|| {
                CatalogError::NotFound(format!("rule {id} has no version {version}"))
            })?;
            check_name_free(state, &rule.name, Some(id))?;
            rule.version = before.version + 1;
            rule.created_at = Utc::now();
            rule.created_by = principal.to_owned();
            Ok(Edit::rule(Some(before), rule, "rule.rollback"))
        })
        .await
    }

    /// Evaluates a rule text against a transaction, after an optional history of the same
    /// user's earlier transactions, with the current lists.
    pub async fn test_rule(
        &self,
        expression: &str,
        transaction: &Transaction,
        history: &[Transaction],
    ) -> Result<RuleTest, CatalogError> {
        if history.len() > MAX_TEST_HISTORY {
            return Err(CatalogError::invalid(
                "history",
                format!("at most {MAX_TEST_HISTORY} transactions"),
            ));
        }
        let policy = self.policy();
        let names: Vec<String> = self.state.lock().await.lists.keys().cloned().collect();
        let schema = sentinel_engine::schema(names.iter().map(String::as_str));
        let expr = Expr::compile(expression, &schema).map_err(|e| CatalogError::Invalid {
            field: "expression".into(),
            message: e.message.clone(),
            line: Some(e.line),
            column: Some(e.column),
        })?;
        let mut user = UserState::default();
        for event in history {
            user.observe(event, self.lateness_ms);
        }
        let (matches, values) = user.explain(transaction, &expr, &policy, self.lateness_ms);
        Ok(RuleTest { matches, values })
    }

    /// Compiles the policy a backtest should replay.
    pub async fn candidate(&self, candidate: Candidate) -> Result<Policy, CatalogError> {
        match candidate {
            Candidate::Current => {
                let def = self.policy().def.clone();
                def.compile()
                    .map_err(|e| CatalogError::invalid("policy", e.to_string()))
            }
            Candidate::PolicyVersion(version) => {
                let def: PolicyDef = read(
                    &*self.store,
                    RecordKind::PolicyVersion,
                    &version_key(version),
                )
                .await?
                .ok_or_else(|| CatalogError::NotFound(format!("no policy version {version}")))?;
                def.compile()
                    .map_err(|e| CatalogError::invalid("policy_version", e.to_string()))
            }
            Candidate::Rule(change) => {
                let state = self.state.lock().await;
                let mut trial = State {
                    rules: state.rules.clone(),
                    lists: state.lists.clone(),
                    thresholds: state.thresholds,
                    policy_version: state.policy_version,
                    audit_seq: 0,
                    next_expiry: None,
                    deployment: state.deployment.clone(),
                    models: state.models.clone(),
                    entity_risk: state.entity_risk.clone(),
                };
                drop(state);
                trial.rules.retain(|_, r| r.name != change.name);
                trial.rules.insert(
                    "candidate".into(),
                    version_from("candidate", 1, change, "backtest"),
                );
                compile(&trial, trial.policy_version, Utc::now())
            }
        }
    }

    /// Every list.
    pub async fn lists(&self) -> Vec<ListRecord> {
        self.state.lock().await.lists.values().cloned().collect()
    }

    /// One list.
    pub async fn list(&self, name: &str) -> Result<ListRecord, CatalogError> {
        let state = self.state.lock().await;
        state
            .lists
            .get(name)
            .cloned()
            .ok_or_else(|| not_found_list(name))
    }

    /// Creates a list, or replaces its items and description (`create` false).
    pub async fn put_list(
        &self,
        name: &str,
        description: String,
        items: Vec<ListItem>,
        create: bool,
        principal: &str,
    ) -> Result<ListRecord, CatalogError> {
        check_list_name(name)?;
        check_items(&items)?;
        self.apply(principal, |state| {
            let before = state.lists.get(name).cloned();
            let version = match (&before, create) {
                (Some(_), true) => {
                    return Err(CatalogError::Conflict(format!(
                        "list `{name}` already exists"
                    )))
                }
                (None, false) => return Err(not_found_list(name)),
                (Some(b), false) => b.version + 1,
                (None, true) => 1,
            };
            let list = ListRecord {
                name: name.to_owned(),
                description: description.clone(),
                items: items.clone(),
                version,
                updated_at: Utc::now(),
                updated_by: principal.to_owned(),
            };
            let action = if create { "list.create" } else { "list.update" };
            Ok(Edit::list(name, before, Some(list.clone()), action, list))
        })
        .await
    }

    /// Deletes a list that no rule uses.
    pub async fn delete_list(&self, name: &str, principal: &str) -> Result<(), CatalogError> {
        self.apply(principal, |state| {
            let before = state
                .lists
                .get(name)
                .cloned()
                .ok_or_else(|| not_found_list(name))?;
            let needle = format!("@{name}");
            let users: Vec<&str> = state
                .rules
                .values()
                .filter(|r| !r.deleted && r.expression.contains(&needle))
                .map(|r| r.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(CatalogError::Conflict(format!(
                    "list `{name}` is used by rules: {}",
                    users.join(", ")
                )));
            }
            Ok(Edit::list(name, Some(before), None, "list.delete", ()))
        })
        .await
    }

    /// Audit entries after the cursor (an entry key), oldest first, optionally for one entity.
    pub async fn audit(
        &self,
        entity: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, AuditEntry)>, CatalogError> {
        let mut out = Vec::new();
        let mut cursor = after.map(str::to_owned);
        while out.len() < limit {
            let page = self
                .store
                .scan_records(RecordKind::Audit, "", cursor.as_deref(), 500)
                .await?;
            let Some((last, _)) = page.last() else { break };
            cursor = Some(last.clone());
            for (key, bytes) in page {
                let entry: AuditEntry = decode(&bytes)?;
                if entity.is_none_or(|e| entry.entity == e) {
                    out.push((key, entry));
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Compiles again when a list item has expired since the last compilation; call
    /// periodically. Returns the new policy version when one was published.
    pub async fn expire_list_items(&self, now: DateTime<Utc>) -> Result<Option<u64>, CatalogError> {
        let mut state = self.state.lock().await;
        if state.next_expiry.is_none_or(|t| t > now) {
            return Ok(None);
        }
        let version = state.policy_version + 1;
        let policy = compile(&state, version, now)?;
        if !self.publish(&state, policy_writes(&policy)?).await? {
            // Another node published first; its version is compiled after this expiry too.
            self.reload_into(&mut state).await?;
            return Ok(None);
        }
        state.policy_version = version;
        state.next_expiry = next_expiry(&state.lists, now);
        self.published.send_replace(Arc::new(policy));
        Ok(Some(version))
    }

    /// Stores and publishes a rule change as the next policy version; `false` when another
    /// node published that version first (nothing was written, the state is as before).
    async fn commit_rule(
        &self,
        state: &mut State,
        before: Option<RuleVersion>,
        rule: RuleVersion,
        action: &str,
        principal: &str,
    ) -> Result<bool, CatalogError> {
        let previous = state.rules.insert(rule.id.clone(), rule.clone());
        let version = state.policy_version + 1;
        let now = Utc::now();
        let compiled = compile(state, version, now);
        let policy = match compiled {
            Ok(p) => p,
            Err(e) => {
                restore(&mut state.rules, &rule.id, previous);
                return Err(e);
            }
        };
        let mut writes = vec![
            put(
                RecordKind::RuleVersion,
                rule_key(&rule.id, rule.version),
                &rule,
            )?,
            put(RecordKind::RuleHead, rule.id.clone(), &rule.version)?,
        ];
        writes.extend(policy_writes(&policy)?);
        let entry = AuditEntry {
            at: now,
            principal: principal.to_owned(),
            action: action.to_owned(),
            entity: format!("rule/{}", rule.id),
            policy_version: version,
            before: before.map(|b| serde_json::to_value(b).unwrap_or_default()),
            after: Some(serde_json::to_value(&rule).unwrap_or_default()),
        };
        writes.push(self.audit_write(state, &entry)?);
        match self.publish(state, writes).await {
            Ok(true) => {}
            Ok(false) => {
                restore(&mut state.rules, &rule.id, previous);
                return Ok(false);
            }
            Err(e) => {
                restore(&mut state.rules, &rule.id, previous);
                return Err(e);
            }
        }
        state.policy_version = version;
        self.published.send_replace(Arc::new(policy));
        tracing::info!(rule = %rule.name, action, version, "policy changed");
        Ok(true)
    }

    /// Stores and publishes a list change as the next policy version; `false` when another
    /// node published that version first (nothing was written, the state is as before).
    async fn commit_list(
        &self,
        state: &mut State,
        name: &str,
        before: Option<ListRecord>,
        after: Option<ListRecord>,
        action: &str,
        principal: &str,
    ) -> Result<bool, CatalogError> {
        let previous = match &after {
            Some(list) => state.lists.insert(name.to_owned(), list.clone()),
            None => state.lists.remove(name),
        };
        let undo = |state: &mut State| match previous.clone() {
            Some(p) => {
                state.lists.insert(name.to_owned(), p);
            }
            None => {
                state.lists.remove(name);
            }
        };
        let version = state.policy_version + 1;
        let now = Utc::now();
        let policy = match compile(state, version, now) {
            Ok(p) => p,
            Err(e) => {
                undo(state);
                return Err(e);
            }
        };
        let mut writes = vec![match &after {
            Some(list) => put(RecordKind::List, name.to_owned(), list)?,
            None => RecordWrite {
                kind: RecordKind::List,
                key: name.to_owned(),
                value: None,
            },
        }];
        writes.extend(policy_writes(&policy)?);
        let entry = AuditEntry {
            at: now,
            principal: principal.to_owned(),
            action: action.to_owned(),
            entity: format!("list/{name}"),
            policy_version: version,
            before: before.map(|b| serde_json::to_value(b).unwrap_or_default()),
            after: after.map(|a| serde_json::to_value(a).unwrap_or_default()),
        };
        writes.push(self.audit_write(state, &entry)?);
        match self.publish(state, writes).await {
            Ok(true) => {}
            Ok(false) => {
                undo(state);
                return Ok(false);
            }
            Err(e) => {
                undo(state);
                return Err(e);
            }
        }
        state.policy_version = version;
        state.next_expiry = next_expiry(&state.lists, now);
        self.published.send_replace(Arc::new(policy));
        tracing::info!(list = name, action, version, "policy changed");
        Ok(true)
    }

    /// Checks a change against the current state (`check`) and publishes it as the next policy
    /// version. When another node sharing the store published that version first, loads it
    /// and checks the change again on top of it (see [`Catalog::catch_up`]).
    async fn apply<T>(
        &self,
        principal: &str,
        mut check: impl FnMut(&State) -> Result<Edit<T>, CatalogError>,
    ) -> Result<T, CatalogError> {
        let mut state = self.state.lock().await;
        let mut lost = 0;
        loop {
            let edit = check(&state)?;
            let published = match edit.change {
                Change::Rule { before, rule } => {
                    self.commit_rule(&mut state, before, rule, edit.action, principal)
                        .await?
                }
                Change::List {
                    name,
                    before,
                    after,
                } => {
                    self.commit_list(&mut state, &name, before, after, edit.action, principal)
                        .await?
                }
            };
            if published {
                return Ok(edit.answer);
            }
            self.catch_up(&mut state, &mut lost).await?;
        }
    }

    /// After a change lost the race for the next version to another node sharing the store:
    /// loads that node's version so the change is checked and applied again on top of it, or,
    /// after [`PUBLISH_ATTEMPTS`] lost races, gives up with 409 (nothing was written).
    async fn catch_up(&self, state: &mut State, lost: &mut usize) -> Result<(), CatalogError> {
        *lost += 1;
        if *lost >= PUBLISH_ATTEMPTS {
            return Err(CatalogError::Conflict(format!(
                "other nodes kept publishing policy versions meanwhile (now version {}); the \
                 change was not applied, retry it",
                state.policy_version
            )));
        }
        let now = self.reload_into(state).await?;
        tracing::info!(
            version = now,
            "another node published a policy version first; applying the change on top of it"
        );
        Ok(())
    }

    /// Writes a new policy version's records if the store's policy head is still the version
    /// `state` was built on (compare-and-set): `false`, writing nothing, when another node
    /// sharing the store published since.
    pub(crate) async fn publish(
        &self,
        state: &State,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, CatalogError> {
        let version = state.policy_version;
        let guard = RecordGuard {
            kind: RecordKind::PolicyVersion,
            key: HEAD_KEY.to_owned(),
            expected: put(
                RecordKind::PolicyVersion,
                HEAD_KEY.to_owned(),
                &PolicyHead { version },
            )?
            .value,
        };
        Ok(self.store.put_records_if(guard, writes).await?)
    }

    /// Writes `writes` together with an audit entry for a change outside the policy (API keys,
    /// for example), atomically.
    pub async fn commit_audited(
        &self,
        mut writes: Vec<RecordWrite>,
        action: &str,
        entity: String,
        principal: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), CatalogError> {
        let mut state = self.state.lock().await;
        let entry = AuditEntry {
            at: Utc::now(),
            principal: principal.to_owned(),
            action: action.to_owned(),
            entity,
            policy_version: state.policy_version,
            before,
            after,
        };
        writes.push(self.audit_write(&mut state, &entry)?);
        self.store.put_records(writes).await?;
        Ok(())
    }

    pub(crate) fn audit_write(
        &self,
        state: &mut State,
        entry: &AuditEntry,
    ) -> Result<RecordWrite, CatalogError> {
        state.audit_seq += 1;
        let key = format!(
            "{:020}-{:06}",
            entry.at.timestamp_micros().max(0),
            state.audit_seq % 1_000_000
        );
        put(RecordKind::Audit, key, entry)
    }
}

/// Compiles the policy the state describes; the whole policy must compile for any change to
/// be accepted.
pub(crate) fn compile(
    state: &State,
    version: u64,
    now: DateTime<Utc>,
) -> Result<Policy, CatalogError> {
    let def = PolicyDef {
        version,
        thresholds: state.thresholds,
        lists: state
            .lists
            .values()
            .map(|l| {
                let live = l
                    .items
                    .iter()
                    .filter(|i| i.expires_at.is_none_or(|t| t > now))
                    .map(|i| i.value.clone())
                    .collect();
                (l.name.clone(), live)
            })
            .collect(),
        rules: state
            .rules
            .values()
            .filter(|r| !r.deleted)
            .map(RuleVersion::def)
            .collect(),
    };
    let mut policy = def.compile().map_err(|e| match e {
        PolicyError::Rule { rule, error } => CatalogError::Invalid {
            field: if error.line == 0 {
                "rule".into()
            } else {
                "expression".into()
            },
            message: format!("rule `{rule}`: {}", error.message),
            line: (error.line > 0).then_some(error.line),
            column: (error.line > 0).then_some(error.column),
        },
        PolicyError::Thresholds => CatalogError::invalid("thresholds", e.to_string()),
    })?;
    policy.models = Models {
        entity_risk: state.entity_risk.clone(),
        ..state.models.clone()
    };
    Ok(policy)
}

pub(crate) fn policy_writes(policy: &Policy) -> Result<Vec<RecordWrite>, CatalogError> {
    let version = policy.rules.version;
    Ok(vec![
        put(RecordKind::PolicyVersion, version_key(version), &policy.def)?,
        put(
            RecordKind::PolicyVersion,
            HEAD_KEY.to_owned(),
            &PolicyHead { version },
        )?,
    ])
}

fn next_expiry(lists: &BTreeMap<String, ListRecord>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    lists
        .values()
        .flat_map(|l| l.items.iter().filter_map(|i| i.expires_at))
        .filter(|t| *t > now)
        .min()
}

fn restore(rules: &mut BTreeMap<String, RuleVersion>, id: &str, previous: Option<RuleVersion>) {
    match previous {
        Some(p) => {
            rules.insert(id.to_owned(), p);
        }
        None => {
            rules.remove(id);
        }
    }
}

fn version_from(id: &str, version: u32, c: RuleChange, principal: &str) -> RuleVersion {
    RuleVersion {
        id: id.to_owned(),
        version,
        name: c.name,
        expression: c.expression,
        action: c.action,
        priority: c.priority,
        mode: c.mode,
        description: c.description,
        deleted: false,
        created_at: Utc::now(),
        created_by: principal.to_owned(),
    }
}

fn live_rule<'a>(state: &'a State, id: &str) -> Result<&'a RuleVersion, CatalogError> {
    match state.rules.get(id) {
        Some(r) if !r.deleted => Ok(r),
        Some(_) => Err(CatalogError::NotFound(format!(
            "rule {id} is deleted; roll back to a version to restore it"
        ))),
        None => Err(not_found_rule(id)),
    }
}

fn check_name_free(state: &State, name: &str, except: Option<&str>) -> Result<(), CatalogError> {
    let taken = state
        .rules
        .values()
        .any(|r| !r.deleted && r.name == name && Some(r.id.as_str()) != except);
    if taken {
        return Err(CatalogError::Conflict(format!(
            "a rule named `{name}` already exists"
        )));
    }
    Ok(())
}

fn check_list_name(name: &str) -> Result<(), CatalogError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CatalogError::invalid(
            "name",
            "must be 1 to 64 characters of a-z, 0-9 and _",
        ))
    }
}

fn check_items(items: &[ListItem]) -> Result<(), CatalogError> {
    const MAX_ITEMS: usize = 100_000;
    if items.len() > MAX_ITEMS {
        return Err(CatalogError::invalid(
            "items",
            format!("at most {MAX_ITEMS} items"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        if item.value.is_empty() || item.value.chars().count() > 256 {
            return Err(CatalogError::invalid(
                &format!("items[{i}].value"),
                "must be 1 to 256 characters",
            ));
        }
    }
    Ok(())
}

fn not_found_rule(id: &str) -> CatalogError {
    CatalogError::NotFound(format!("no rule with id {id}"))
}

fn not_found_list(name: &str) -> CatalogError {
    CatalogError::NotFound(format!("no list named {name}"))
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn rule_key(id: &str, version: u32) -> String {
    format!("{id}/{version:010}")
}

fn version_key(version: u64) -> String {
    format!("{version:020}")
}

pub(crate) fn put<T: Serialize>(
    kind: RecordKind,
    key: String,
    value: &T,
) -> Result<RecordWrite, CatalogError> {
    let value = serde_json::to_vec(value)
        .map_err(|e| CatalogError::Store(sentinel_store::StoreError::Backend(e.to_string())))?;
    Ok(RecordWrite {
        kind,
        key,
        value: Some(value),
    })
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CatalogError> {
    serde_json::from_slice(bytes).map_err(|e| {
        CatalogError::Store(sentinel_store::StoreError::Corrupt {
            table: "records",
            reason: e.to_string(),
        })
    })
}

/// Fills `state` with the rules, lists and thresholds of the stored policy `version`.
async fn load_stored(
    store: &dyn Store,
    version: u64,
    state: &mut State,
) -> Result<(), CatalogError> {
    let def: PolicyDef = read(store, RecordKind::PolicyVersion, &version_key(version))
        .await?
        .ok_or_else(|| CatalogError::NotFound(format!("policy version {version}")))?;
    state.thresholds = def.thresholds;
    state.policy_version = version;
    for (id, bytes) in scan_all(store, RecordKind::RuleHead).await? {
        let rule_version: u32 = decode(&bytes)?;
        let rule: RuleVersion = read(store, RecordKind::RuleVersion, &rule_key(&id, rule_version))
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("rule {id} v{rule_version}")))?;
        state.rules.insert(id, rule);
    }
    for (name, bytes) in scan_all(store, RecordKind::List).await? {
        state.lists.insert(name, decode(&bytes)?);
    }
    Ok(())
}

pub(crate) async fn read<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: RecordKind,
    key: &str,
) -> Result<Option<T>, CatalogError> {
    store
        .record(kind, key)
        .await?
        .map(|b| decode(&b))
        .transpose()
}

pub(crate) async fn scan_all(
    store: &dyn Store,
    kind: RecordKind,
) -> Result<Vec<(String, Vec<u8>)>, CatalogError> {
    Ok(store.scan_records(kind, "", None, usize::MAX).await?)
}

mod list_items;
#[cfg(test)]
mod tests;

pub use list_items::ItemChange;
