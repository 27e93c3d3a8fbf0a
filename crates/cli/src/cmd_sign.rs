use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_signedlink::{LinkKeys, Ttl};

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The HTTP method the link is good for.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The exact request target (path and query), e.g. /jobs/ID/exceptions.
    #[arg(long)]
    path: String,
    /// How long the link works: 10m, 1h, 7d (at most 7 days).
    #[arg(long, value_parser = crate::parsed::<Ttl>)]
    ttl: Ttl,
    /// The gateway's base URL printed in front of the target (default:
    /// https://<first pki host>:<gateway.listen port>).
    #[arg(long, value_name = "URL")]
    base: Option<String>,
}

/// Prints a signed link: valid for exactly that method and target until it expires.
pub(crate) fn sign(args: &SignArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let keys = LinkKeys::load_or_create(&loaded.pki())?;
    let expires = args.ttl.expires_at(time::OffsetDateTime::now_utc())?;
    let link = keys
        .sign(&args.method, &args.path, expires)
        .with_context(|| format!("cannot sign {} {}", args.method, args.path))?;
    let base = match &args.base {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let pki = &loaded.config.pki;
            let host = pki
                .hosts
                .iter()
                .find(|h| !h.starts_with('*'))
                .cloned()
                .or_else(|| pki.ips.first().map(ToString::to_string))
                .unwrap_or_else(|| "localhost".into());
            format!("https://{host}:{}", loaded.config.gateway.listen.port())
        }
    };
    println!("{base}{}", link.as_str());
    eprintln!(
        "Valid for {} {} until {} (key {}).",
        args.method, args.path, expires, link.kid
    );
    Ok(Outcome::Ok)
}

#[derive(Args, Debug)]
pub(crate) struct RotateLinkKeyArgs {
    #[command(flatten)]
    config: ConfigArg,
}

/// A new signing key for links; links signed with the previous key keep working until they
/// expire, older ones stop working.
pub(crate) fn rotate_link_key(args: &RotateLinkKeyArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let keys = LinkKeys::rotate(&loaded.pki())?;
    println!(
        "Links are now signed with key {}; a running gateway reloads it by itself.",
        keys.current_kid()
    );
    Ok(Outcome::Ok)
}
