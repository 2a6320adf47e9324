//! Batch screening: what live scoring would decide for a list of events, leaving no trace.
//!
//! Each user's events are decided on a *detached copy* of the user's state, rebuilt from the
//! store exactly as the user's actor restores itself (snapshot, then the decisions stored
//! after it), under the policy and models the actors hold now. The copy is dropped afterwards.
//! Why a copy and not a read-only message to the user's actor: the copy touches no actor, so
//! screening a thousand users neither spawns a thousand actors on this node nor, in a cluster,
//! starts a second actor for a user another member owns, and it cannot delay live events
//! queued at those actors. The price is one store read per user per batch, and an event of the
//! user still being written when the batch arrives is not seen.
//!
//! Within a batch a user's events are decided in order, each seeing the earlier ones, as they
//! would be if posted one after another. Shared entities (`distinct_users`) are read without
//! recording the batch's sightings, so one user's screened events are not seen by another's.
//! Nothing is stored, published, alerted or counted as a decision.

use crate::restore::restore;
use crate::user_actor::Deps;
use futures::stream::{self, StreamExt};
use sentinel_engine::{entities_of, entry_of, EntityCounts, LookupMode, Policy, Screened};
use sentinel_event::{Decision, DecisionError, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Users screened at once.
const USERS_IN_FLIGHT: usize = 16;

/// One answer per event, in the order given.
pub(crate) async fn screen(
    deps: &Deps,
    policy: Arc<Policy>,
    events: Vec<Arc<Transaction>>,
) -> Vec<Result<Screened, DecisionError>> {
    let mut by_user: HashMap<String, Vec<(usize, Arc<Transaction>)>> = HashMap::new();
    let n = events.len();
    for (i, event) in events.into_iter().enumerate() {
        by_user
            .entry(event.user_id.clone())
            .or_default()
            .push((i, event));
    }
    let answers: Vec<_> = stream::iter(by_user)
        .map(|(user, events)| screen_user(deps, &policy, user, events))
        .buffer_unordered(USERS_IN_FLIGHT)
        .collect()
        .await;
    let mut out: Vec<Option<Result<Screened, DecisionError>>> = (0..n).map(|_| None).collect();
    for (i, answer) in answers.into_iter().flatten() {
        out[i] = Some(answer);
    }
    out.into_iter()
        .map(|a| a.expect("every event answered"))
        .collect()
}

/// One user's events, in order, on a detached copy of the user's state.
async fn screen_user(
    deps: &Deps,
    policy: &Policy,
    user: String,
    events: Vec<(usize, Arc<Transaction>)>,
) -> Vec<(usize, Result<Screened, DecisionError>)> {
    let store = deps.writer.store();
    let mut state = match restore(store.as_ref(), &user, deps.lateness_ms).await {
        Ok((state, _)) => state,
        Err(e) => {
            let why = e.to_string();
            return events
                .into_iter()
                .map(|(i, _)| (i, Err(DecisionError::Store(why.clone()))))
                .collect();
        }
    };
    let mut decided: HashMap<String, Decision> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for (i, event) in events {
        let received = Instant::now();
        // As the actor does: an event it may have seen is answered with its decision.
        if state.has_seen(&event) || state.beyond_memory(&event, deps.lateness_ms) {
            let earlier = match decided.get(&event.transaction_id) {
                Some(d) => Ok(Some(d.clone())),
                None => store.decision(&event.transaction_id).await,
            };
            match earlier {
                Ok(Some(decision)) => {
                    out.push((
                        i,
                        Ok(Screened {
                            decision,
                            duplicate: true,
                        }),
                    ));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    out.push((i, Err(DecisionError::Store(e.to_string()))));
                    continue;
                }
            }
        }
        let entities = if policy.entity_kinds.is_empty() {
            EntityCounts::default()
        } else {
            let entry = entry_of(&event);
            deps.entities
                .lookup(
                    &event.user_id,
                    entities_of(&entry),
                    entry.time_ms,
                    policy.entity_kinds,
                    LookupMode::Peek,
                )
                .await
        };
        let decision = state.decide_with(
            Arc::clone(&event),
            policy,
            &entities,
            deps.lateness_ms,
            received,
        );
        decided.insert(event.transaction_id.clone(), decision.clone());
        out.push((
            i,
            Ok(Screened {
                decision,
                duplicate: false,
            }),
        ));
    }
    out
}
