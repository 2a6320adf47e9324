//! `sentinel token`: mints an HS256 API token from the configured secret.

use crate::config::NodeConfig;
use crate::security::AuthArgs;
use clap::Args;
use sentinel_api::Role;
use std::path::PathBuf;
use std::time::Duration;

/// `sentinel token`: mints an HS256 token from the configured secret.
#[derive(Args)]
pub struct TokenArgs {
    /// What the token may do: admin, analyst, viewer or ingest.
    #[arg(long)]
    role: Role,
    /// Lifetime: seconds, or a number with s, m, h or d (e.g. 15m, 12h, 7d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// Who the token stands for; recorded in the audit log.
    #[arg(long, default_value = "cli")]
    subject: String,
    /// TOML config file for issuer, audience and secret.
    #[arg(long, env = "SENTINEL_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    auth: AuthArgs,
}

/// Parses `90`, `90s`, `15m`, `12h`, `7d`.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}`: expected a number with s, m, h or d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Prints a token on stdout.
pub fn mint(args: TokenArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::from_file(path)?,
        None => NodeConfig::default(),
    };
    args.auth.apply(&mut config.auth)?;
    let token = config
        .auth
        .mint(&args.subject, args.role, args.ttl)
        .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("5w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
