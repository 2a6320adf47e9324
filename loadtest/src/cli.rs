//! Command-line interface of `sentinel-loadtest`.

use clap::{Args, Parser, Subcommand};
use sentinel_loadtest::loadgen::http::{Credential, HttpTarget};
use sentinel_loadtest::loadgen::kafka::KafkaTarget;
use sentinel_loadtest::loadgen::{Population, RateSchedule, Target, TrafficOptions};
use sentinel_simulator::{TransactionIds, REALISTIC_HOLDERS, REALISTIC_PAYMENTS_PER_DAY};
use std::path::PathBuf;

/// Load generator for SentinelStream: sends simulated card traffic with labelled fraud to a
/// running node and measures end-to-end latency, throughput, consumer lag and detection.
///
/// Prints a progress line each second on stderr, a summary table on stdout, and writes
/// report.json and report.svg into --report-dir.
#[derive(Parser, Debug)]
#[command(name = "sentinel-loadtest", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Produce to the node's input topic and read decisions back from
    /// transactions_approved / transactions_fraud (start the node first).
    Kafka {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        traffic: TrafficArgs,
    },
    /// POST each event to the node's /v1/transactions; the response is the decision.
    Http {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        traffic: TrafficArgs,
    },
}

#[derive(Args, Debug)]
struct KafkaArgs {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    brokers: String,
    /// The node's input topic.
    #[arg(long, default_value = "transactions")]
    topic: String,
    /// Topic of approved decisions.
    #[arg(long, default_value = "transactions_approved")]
    approved_topic: String,
    /// Topic of review and decline decisions.
    #[arg(long, default_value = "transactions_fraud")]
    fraud_topic: String,
    /// Extra librdkafka property for both clients, KEY=VALUE (repeatable), e.g.
    /// -X security.protocol=SASL_SSL.
    #[arg(short = 'X', value_parser = parse_property)]
    property: Vec<(String, String)>,
    /// No node: consume the input topic and republish each event as an approval from here,
    /// with the node's Kafka client settings. Measures the broker's own round trip for the
    /// same rate and run length (the floor under a run against the node); start only the
    /// broker, with the topics created.
    #[arg(long)]
    echo: bool,
}

#[derive(Args, Debug)]
struct HttpArgs {
    /// Base URL of the node's REST API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Most requests in flight at once; when all are busy, sending waits.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// API token (role ingest or admin), e.g. from `sentinel token --role ingest`.
    #[arg(
        long,
        env = "SENTINEL_TOKEN",
        hide_env_values = true,
        conflicts_with = "api_key"
    )]
    token: Option<String>,
    /// API key (role ingest or admin), sent as X-Api-Key.
    #[arg(long, env = "SENTINEL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// The traffic and the run, shared by both transports.
#[derive(Args, Debug)]
struct TrafficArgs {
    /// Steady send rate, events per second [default: 1000 unless ramping].
    #[arg(long, conflicts_with_all = ["ramp_from", "ramp_to", "ramp_step_secs"])]
    rate: Option<f64>,
    /// Ramp: rate of the first step, events per second.
    #[arg(long, requires_all = ["ramp_to", "ramp_step_secs"])]
    ramp_from: Option<f64>,
    /// Ramp: rate of the last step; the steps in --duration-secs climb to it evenly.
    #[arg(long, requires_all = ["ramp_from", "ramp_step_secs"])]
    ramp_to: Option<f64>,
    /// Ramp: seconds per step.
    #[arg(long, requires_all = ["ramp_from", "ramp_to"])]
    ramp_step_secs: Option<u64>,
    /// Hard stop: seconds of sending.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Seconds to wait after the stop for outstanding decisions.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// Simulator seed: the same seed gives the same traffic.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Distinct simulated card holders [default: 100000 dense (use at least 45 x the rate),
    /// 1000000 realistic].
    #[arg(long)]
    users: Option<u32>,
    /// How often each holder pays. dense: as often as the rate needs (every users / rate
    /// seconds, at least 45 s apart; mostly warm users). realistic: --payments-per-day each,
    /// so nearly every event comes from a holder last seen hours of event time earlier
    /// (event time then runs faster than the wall clock).
    #[arg(long, value_enum, default_value_t = PopulationArg::Dense)]
    population: PopulationArg,
    /// Realistic population: payments per holder and day, on average.
    #[arg(long, default_value_t = REALISTIC_PAYMENTS_PER_DAY)]
    payments_per_day: f64,
    /// Fraction of user turns that inject a labelled fraud scenario.
    #[arg(long, default_value_t = 0.002)]
    fraud_ratio: f64,
    /// Transaction ids: sequential (`sim-<seed>-<n>`, in the order sent) or random
    /// (UUID-shaped, as many gateways send; the store's indexes take them anywhere, which
    /// costs the node more).
    #[arg(long, value_enum, default_value_t = TransactionIdsArg::Sequential)]
    transaction_ids: TransactionIdsArg,
    /// p99 latency a rate step must stay within to count towards the sustained maximum.
    #[arg(long, default_value_t = 200.0)]
    p99_objective_ms: f64,
    /// Directory for report.json and report.svg (created).
    #[arg(long, default_value = "loadtest-report")]
    report_dir: PathBuf,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

/// The `--transaction-ids` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TransactionIdsArg {
    /// `sim-<seed>-<n>`, in the order sent.
    Sequential,
    /// UUID-shaped random hex.
    Random,
}

/// The `--population` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PopulationArg {
    /// Holders pay as often as the rate needs.
    Dense,
    /// A million card holders paying a few times a day.
    Realistic,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

impl TrafficArgs {
    fn into_options(self) -> anyhow::Result<TrafficOptions> {
        let schedule = match (self.ramp_from, self.ramp_to, self.ramp_step_secs) {
            (Some(from), Some(to), Some(step)) => {
                anyhow::ensure!(from > 0.0 && to > 0.0, "ramp rates must be positive");
                anyhow::ensure!(step > 0, "--ramp-step-secs must be positive");
                RateSchedule::ramp(from, to, step, self.duration_secs)
            }
            _ => {
                let rate = self.rate.unwrap_or(1_000.0);
                anyhow::ensure!(rate > 0.0, "--rate must be positive");
                RateSchedule::Steady { rate }
            }
        };
        anyhow::ensure!(self.duration_secs > 0, "--duration-secs must be positive");
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.fraud_ratio),
            "--fraud-ratio must be within 0..=1"
        );
        anyhow::ensure!(
            self.payments_per_day.is_finite() && self.payments_per_day > 0.0,
            "--payments-per-day must be positive"
        );
        let (population, default_users) = match self.population {
            PopulationArg::Dense => (Population::Dense, 100_000),
            PopulationArg::Realistic => (
                Population::Realistic {
                    payments_per_day: self.payments_per_day,
                },
                REALISTIC_HOLDERS,
            ),
        };
        Ok(TrafficOptions {
            schedule,
            duration_secs: self.duration_secs,
            drain_secs: self.drain_secs,
            seed: self.seed,
            users: self.users.unwrap_or(default_users),
            population,
            fraud_ratio: self.fraud_ratio,
            transaction_ids: match self.transaction_ids {
                TransactionIdsArg::Sequential => TransactionIds::Sequential,
                TransactionIdsArg::Random => TransactionIds::Random,
            },
            p99_objective_ms: self.p99_objective_ms,
            report_dir: self.report_dir,
            progress: !self.quiet,
        })
    }
}

impl Cli {
    /// The run the arguments describe.
    pub fn into_run(self) -> anyhow::Result<(TrafficOptions, Target)> {
        match self.command {
            Command::Kafka { kafka, traffic } => Ok((
                traffic.into_options()?,
                Target::Kafka(KafkaTarget {
                    brokers: kafka.brokers,
                    topic: kafka.topic,
                    approved_topic: kafka.approved_topic,
                    fraud_topic: kafka.fraud_topic,
                    options: kafka.property,
                    echo: kafka.echo,
                }),
            )),
            Command::Http { http, traffic } => Ok((
                traffic.into_options()?,
                Target::Http(HttpTarget {
                    url: http.url,
                    concurrency: http.concurrency,
                    credential: match (http.token, http.api_key) {
                        (Some(token), _) => Some(Credential::Token(token)),
                        (None, Some(key)) => Some(Credential::ApiKey(key)),
                        (None, None) => None,
                    },
                }),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn transaction_ids_are_sequential_unless_asked_for_random() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["sentinel-loadtest", "http"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).unwrap().into_run().unwrap().0
        };
        assert_eq!(parse(&[]).transaction_ids, TransactionIds::Sequential);
        assert_eq!(
            parse(&["--transaction-ids", "random"]).transaction_ids,
            TransactionIds::Random
        );
        assert!(
            Cli::try_parse_from(["sentinel-loadtest", "http", "--transaction-ids", "uuid"])
                .is_err()
        );
    }

    #[test]
    fn realistic_population_defaults_to_a_million_holders() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["sentinel-loadtest", "http", "--population", "realistic"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
                .unwrap()
                .into_run()
                .map(|(opts, _)| opts)
        };
        let opts = parse(&[]).unwrap();
        assert_eq!(opts.users, 1_000_000);
        assert_eq!(
            opts.population,
            Population::Realistic {
                payments_per_day: 4.0
            }
        );
        let opts = parse(&["--users", "5000", "--payments-per-day", "2.5"]).unwrap();
        assert_eq!(opts.users, 5_000);
        assert_eq!(
            opts.population,
            Population::Realistic {
                payments_per_day: 2.5
            }
        );
        assert!(parse(&["--payments-per-day", "0"]).is_err());
        assert!(parse(&["--payments-per-day", "NaN"]).is_err());
    }

    #[test]
    fn ramp_and_rate_parse() {
        let cli = Cli::try_parse_from([
            "sentinel-loadtest",
            "kafka",
            "--brokers",
            "127.0.0.1:9092",
            "--ramp-from",
            "1000",
            "--ramp-to",
            "20000",
            "--ramp-step-secs",
            "10",
            "-X",
            "acks=all",
        ])
        .unwrap();
        let (opts, target) = cli.into_run().unwrap();
        assert_eq!(opts.schedule.step_rate(0), 1000.0);
        assert_eq!(opts.schedule.step_rate(5), 20000.0);
        let Target::Kafka(k) = target else {
            panic!("kafka")
        };
        assert_eq!(k.options, vec![("acks".to_owned(), "all".to_owned())]);
        let cli = Cli::try_parse_from(["sentinel-loadtest", "http", "--rate", "200"]).unwrap();
        let (opts, _) = cli.into_run().unwrap();
        assert_eq!(opts.schedule, RateSchedule::Steady { rate: 200.0 });
        assert_eq!((opts.population, opts.users), (Population::Dense, 100_000));
        assert!(Cli::try_parse_from([
            "sentinel-loadtest",
            "http",
            "--rate",
            "200",
            "--ramp-from",
            "1"
        ])
        .is_err());
    }
}
