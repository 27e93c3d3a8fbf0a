//! `flinkguard token`: service tokens for CI jobs and service accounts, signed by the
//! gateway's own key (`pki/token-signing.key`, created on first use).

use std::io::Write as _;

use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_pki::{GroupName, UserName};
use flinkguard_token::{
    DEFAULT_SERVICE_AUDIENCE, KeyOrigin, ServiceTokenRequest, SigningKey, SigningKeyFiles, Ttl,
    service_issuer,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct IssueArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The user: the token's `sub`.
    #[arg(long, value_parser = crate::parsed::<UserName>)]
    user: UserName,
    /// A group: one entry of the token's `groups` claim; repeatable.
    #[arg(long = "group", value_name = "GROUP", value_parser = crate::parsed::<GroupName>)]
    groups: Vec<GroupName>,
    /// How long the token is valid: e.g. 30m, 12h, 7d; at most 90d. A service token cannot be
    /// revoked before it expires, so keep it short.
    #[arg(long, value_name = "DURATION", value_parser = crate::parsed::<Ttl>)]
    ttl: Ttl,
    /// The token's audience (`aud`): what the gateway expects service tokens to be minted for.
    #[arg(long, value_name = "AUDIENCE", default_value = DEFAULT_SERVICE_AUDIENCE)]
    audience: String,
}

/// Prints the token alone on stdout, so `TOKEN=$(flinkguard token issue ...)` works; all
/// other information goes to stderr.
pub(crate) fn issue(args: &IssueArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let layout = loaded.pki();
    let key = SigningKey::load_or_create(&layout).context("cannot load the token signing key")?;
    let files = SigningKeyFiles::in_pki(&layout);
    match key.origin() {
        KeyOrigin::Created => eprintln!(
            "Created the token signing key {} (ES256, kid {}) and its public key set {}; \
             a gateway that is already running must be restarted to accept tokens it signs.",
            files.key.display(),
            key.key_id(),
            files.jwks.display()
        ),
        KeyOrigin::JwksWritten => eprintln!(
            "Rewrote {} from {}: it did not hold the signing key's public key.",
            files.jwks.display(),
            files.key.display()
        ),
        _ => {}
    }
    let issuer = service_issuer(&loaded.config.cluster.name);
    let issued = key
        .issue(
            &ServiceTokenRequest {
                issuer: issuer.clone(),
                audience: args.audience.clone(),
                user: args.user.clone(),
                groups: args.groups.clone(),
                ttl: args.ttl,
            },
            OffsetDateTime::now_utc(),
        )
        .with_context(|| format!("cannot issue a token for {}", args.user))?;
    let groups = if args.groups.is_empty() {
        "no groups".to_owned()
    } else {
        let names: Vec<&str> = args.groups.iter().map(GroupName::as_str).collect();
        format!("groups {}", names.join(", "))
    };
    eprintln!(
        "Issued a service token for {} ({groups}), issuer {issuer}, audience {}, valid for {} until {} (jti {}).",
        args.user,
        args.audience,
        args.ttl,
        issued.expires_at.format(&Rfc3339).unwrap_or_default(),
        issued.token_id
    );
    // A closed stdout (`| head -c0`) is an error to report, not a panic.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", issued.token())
        .and_then(|()| stdout.flush())
        .context("cannot write the token to standard output")?;
    Ok(Outcome::Ok)
}
