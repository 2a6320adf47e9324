//! `/v1/backtests`: replay stored history under a candidate policy, as a background job.
//! Jobs are bounded (in all and per caller), every job ends with an outcome even if its task
//! panics, and finished jobs are forgotten after a while.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use sentinel_catalog::backtest::{self, BacktestFilter, BacktestRange, BacktestReport, Progress};
use sentinel_catalog::Candidate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Backtests that may run at once on the node; more get 429.
const MAX_RUNNING: usize = 4;
/// Backtests one caller may run at once; more get 429.
const MAX_RUNNING_PER_CALLER: usize = 1;
/// Finished jobs kept for their reports; the oldest are forgotten first.
const MAX_FINISHED: usize = 100;
/// How long a finished job's report stays readable.
const FINISHED_TTL: Duration = Duration::from_secs(3600);

/// The node's backtest jobs (kept in memory; a restart forgets them).
#[derive(Default)]
pub struct Backtests {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

struct Job {
    id: String,
    /// Who asked: jobs are bounded per caller.
    owner: String,
    requested_at: DateTime<Utc>,
    started: Instant,
    done_users: AtomicU64,
    total_users: AtomicU64,
    outcome: Mutex<Option<Finished>>,
}

/// A job's result and when it came.
#[derive(Clone)]
struct Finished {
    result: Result<BacktestReport, String>,
    at: Instant,
}

impl Backtests {
    fn jobs(&self) -> MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new running job for `owner`, or says why not (429).
    fn admit(&self, owner: &str, now: Instant) -> Result<Arc<Job>, ApiError> {
        let mut jobs = self.jobs();
        evict(&mut jobs, now);
        let running: Vec<&Arc<Job>> = jobs.values().filter(|j| j.finished().is_none()).collect();
        if running.len() >= MAX_RUNNING {
            return Err(ApiError::too_many(&format!(
                "{MAX_RUNNING} backtests are already running"
            )));
        }
        if running.iter().filter(|j| j.owner == owner).count() >= MAX_RUNNING_PER_CALLER {
            return Err(ApiError::too_many(&format!(
                "you already run {MAX_RUNNING_PER_CALLER} backtest(s); wait for it to finish"
            )));
        }
        let job = Arc::new(Job {
            id: uuid_like(),
            owner: owner.to_owned(),
            requested_at: Utc::now(),
            started: now,
            done_users: AtomicU64::new(0),
            total_users: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        jobs.insert(job.id.clone(), Arc::clone(&job));
        Ok(job)
    }
}

/// Forgets finished jobs older than [`FINISHED_TTL`], then the oldest beyond [`MAX_FINISHED`].
fn evict(jobs: &mut HashMap<String, Arc<Job>>, now: Instant) {
    jobs.retain(|_, j| {
        j.finished()
            .is_none_or(|at| now.duration_since(at) < FINISHED_TTL)
    });
    let mut finished: Vec<(Instant, String)> = jobs
        .values()
        .filter_map(|j| j.finished().map(|at| (at, j.id.clone())))
        .collect();
    if finished.len() > MAX_FINISHED {
        finished.sort();
        for (_, id) in &finished[..finished.len() - MAX_FINISHED] {
            jobs.remove(id);
        }
    }
}

/// Runs `work` in its own task and records its result, or a failure if the task panics, so
/// that no job counts as running forever.
async fn supervise(
    job: Arc<Job>,
    work: impl Future<Output = Result<BacktestReport, String>> + Send + 'static,
) {
    let result = match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(job = %job.id, error = %e, "a backtest task stopped unexpectedly");
            Err("the backtest stopped unexpectedly; see the node's log".to_owned())
        }
    };
    *job.outcome() = Some(Finished {
        result,
        at: Instant::now(),
    });
}

impl Progress for Job {
    fn update(&self, done: u64, total: u64) {
        self.total_users.store(total, Ordering::Relaxed);
        self.done_users.store(done, Ordering::Relaxed);
    }
}

/// What to replay.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct BacktestRequest {
    /// `"current"`, `{"rule": {…}}` (the current policy plus this rule) or
    /// `{"policy_version": n}`.
    pub candidate: Candidate,
    /// Events at or after this time count.
    pub from: DateTime<Utc>,
    /// Events before this time count.
    pub until: DateTime<Utc>,
    /// Which of them count.
    #[serde(default)]
    pub filter: BacktestFilter,
}

/// A job's state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// `running`, `done` or `failed`.
    pub status: &'static str,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Users replayed so far.
    pub processed: u64,
    /// Users to replay (known after the range scan).
    pub total: u64,
    /// Users per second so far.
    pub rate: f64,
    /// Seconds left at that rate, while running.
    pub eta_seconds: Option<f64>,
    /// The result, when done.
    pub report: Option<BacktestReport>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Job {
    fn outcome(&self) -> MutexGuard<'_, Option<Finished>> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the job finished; `None` while it runs.
    fn finished(&self) -> Option<Instant> {
        self.outcome().as_ref().map(|f| f.at)
    }

    fn view(&self) -> JobView {
        let processed = self.done_users.load(Ordering::Relaxed);
        let total = self.total_users.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = processed as f64 / elapsed;
        let outcome = self.outcome().clone().map(|f| f.result);
        let (status, report, error) = match outcome {
            None => ("running", None, None),
            Some(Ok(report)) => ("done", Some(report), None),
            Some(Err(e)) => ("failed", None, Some(e)),
        };
        JobView {
            id: self.id.clone(),
            status,
            requested_at: self.requested_at,
            processed,
            total,
            rate,
            eta_seconds: (status == "running" && rate > 0.0)
                .then(|| total.saturating_sub(processed) as f64 / rate),
            report,
            error,
        }
    }
}

/// `POST /v1/backtests`: starts a job; 202 with its id.
#[utoipa::path(post, path = "/v1/backtests", tag = "backtests", request_body = BacktestRequest, responses((status = 202, body = JobView), (status = 404, description = "The candidate policy version does not exist", body = ErrorResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub async fn start(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    JsonBody(request): JsonBody<BacktestRequest>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let range = BacktestRange {
        from: request.from,
        until: request.until,
        filter: request.filter,
    };
    range.validate()?;
    let policy = state.catalog.candidate(request.candidate).await?;
    let job = state.backtests.admit(&caller.name, Instant::now())?;
    let catalog = Arc::clone(&state.catalog);
    let progress = Arc::clone(&job);
    tokio::spawn(supervise(Arc::clone(&job), async move {
        let store = Arc::clone(catalog.store());
        let lateness = catalog.lateness_ms();
        backtest::run(&store, &catalog, &policy, &range, lateness, &*progress)
            .await
            .map_err(|e| e.to_string())
    }));
    Ok((StatusCode::ACCEPTED, Json(job.view())))
}

/// `GET /v1/backtests/{id}`: progress, then the report.
#[utoipa::path(get, path = "/v1/backtests/{id}", tag = "backtests", params(("id" = String, Path)), responses((status = 200, body = JobView), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let jobs = state.backtests.jobs();
    jobs.get(&id)
        .map(|j| Json(j.view()))
        .ok_or_else(|| ApiError::not_found(format!("no backtest {id}")))
}

fn uuid_like() -> String {
    format!(
        "bt-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_ends_failed_instead_of_running_forever() {
        let backtests = Backtests::default();
        let job = backtests.admit("alice", Instant::now()).unwrap();
        supervise(Arc::clone(&job), async {
            panic!("day arithmetic overflowed")
        })
        .await;
        let view = job.view();
        assert_eq!(view.status, "failed");
        assert!(view.error.unwrap().contains("stopped unexpectedly"));
        // Its slot is free again.
        assert!(backtests.admit("alice", Instant::now()).is_ok());
    }

    #[tokio::test]
    async fn jobs_are_bounded_per_caller_and_in_all() {
        let backtests = Backtests::default();
        let now = Instant::now();
        backtests.admit("alice", now).unwrap();
        let Err(refused) = backtests.admit("alice", now) else {
            panic!("a second job for one caller was admitted");
        };
        assert_eq!(
            axum::response::IntoResponse::into_response(refused).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        for caller in ["bob", "carol", "dave"] {
            backtests.admit(caller, now).unwrap();
        }
        assert!(
            backtests.admit("erin", now).is_err(),
            "{MAX_RUNNING} at most"
        );
    }

    #[tokio::test]
    async fn finished_jobs_are_forgotten_after_their_time_and_beyond_the_bound() {
        let backtests = Backtests::default();
        let start = Instant::now();
        for i in 0..MAX_FINISHED + 10 {
            let job = backtests.admit(&format!("caller-{i}"), start).unwrap();
            *job.outcome() = Some(Finished {
                result: Err("done".into()),
                at: start + Duration::from_millis(i as u64),
            });
        }
        let running = backtests.admit("still-running", start).unwrap();
        let after = start + Duration::from_secs(1);
        backtests.admit("one-more", after).unwrap();
        {
            let jobs = backtests.jobs();
            let finished = jobs.values().filter(|j| j.finished().is_some()).count();
            assert_eq!(finished, MAX_FINISHED);
            assert!(jobs.contains_key(&running.id));
        }
        backtests
            .admit("later", start + FINISHED_TTL + Duration::from_secs(1))
            .unwrap();
        let jobs = backtests.jobs();
        assert!(jobs.values().all(|j| j.finished().is_none()), "all expired");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_range_at_the_calendars_limits_is_refused_naming_the_field() {
        use crate::tests::{admin, call_as, router};
        let dir = tempfile::tempdir().unwrap();
        let r = router(&dir);
        let max = DateTime::<Utc>::MAX_UTC;
        let min = DateTime::<Utc>::MIN_UTC;
        // The limits are valid JSON times: the refusal comes from the range check, not parsing.
        for t in [max, min] {
            let parsed: DateTime<Utc> = serde_json::from_value(serde_json::json!(t)).unwrap();
            assert_eq!(parsed, t);
        }
        for (from, until, field) in [
            (max - chrono::Duration::days(2), max, "until"),
            (min, min + chrono::Duration::days(2), "from"),
        ] {
            let request = serde_json::json!({"candidate": "current", "from": from, "until": until});
            let (status, body) =
                call_as(&r, Some(&admin()), "POST", "/v1/backtests", Some(request)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["field"], field, "{body}");
        }
    }
}
