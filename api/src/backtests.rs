//! `/v1/backtests`: replay stored history under a candidate policy, as a background job.

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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Backtests that may run at once; more get 429.
const MAX_RUNNING: usize = 2;

/// The node's backtest jobs (kept in memory; a restart forgets them).
#[derive(Default)]
pub struct Backtests {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

struct Job {
    id: String,
    requested_at: DateTime<Utc>,
    started: Instant,
    done_users: AtomicU64,
    total_users: AtomicU64,
    outcome: Mutex<Option<Result<BacktestReport, String>>>,
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
    fn view(&self) -> JobView {
        let processed = self.done_users.load(Ordering::Relaxed);
        let total = self.total_users.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = processed as f64 / elapsed;
        let outcome = self.outcome.lock().expect("job lock").clone();
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
    JsonBody(request): JsonBody<BacktestRequest>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    if request.until <= request.from {
        return Err(ApiError::invalid_body("until", "must be after from"));
    }
    let policy = state.catalog.candidate(request.candidate).await?;
    let job = {
        let mut jobs = state.backtests.jobs.lock().expect("jobs lock");
        let running = jobs
            .values()
            .filter(|j| j.outcome.lock().expect("job lock").is_none())
            .count();
        if running >= MAX_RUNNING {
            return Err(ApiError::too_many(&format!(
                "{MAX_RUNNING} backtests are already running"
            )));
        }
        let job = Arc::new(Job {
            id: uuid_like(),
            requested_at: Utc::now(),
            started: Instant::now(),
            done_users: AtomicU64::new(0),
            total_users: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        jobs.insert(job.id.clone(), Arc::clone(&job));
        job
    };
    let range = BacktestRange {
        from: request.from,
        until: request.until,
        filter: request.filter,
    };
    let catalog = Arc::clone(&state.catalog);
    let running = Arc::clone(&job);
    tokio::spawn(async move {
        let store = Arc::clone(catalog.store());
        let lateness = catalog.lateness_ms();
        let result = backtest::run(&store, &catalog, &policy, &range, lateness, &*running).await;
        *running.outcome.lock().expect("job lock") = Some(result.map_err(|e| e.to_string()));
    });
    Ok((StatusCode::ACCEPTED, Json(job.view())))
}

/// `GET /v1/backtests/{id}`: progress, then the report.
#[utoipa::path(get, path = "/v1/backtests/{id}", tag = "backtests", params(("id" = String, Path)), responses((status = 200, body = JobView), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let jobs = state.backtests.jobs.lock().expect("jobs lock");
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
