use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_pki::{ClientRequest, DnsName, GroupName, RenewRestRequest, UserName};
use time::OffsetDateTime;

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct IssueClientArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The user: the certificate's CN.
    #[arg(long, value_parser = crate::parsed::<UserName>)]
    user: UserName,
    /// A group: one O attribute each; repeatable.
    #[arg(long = "group", value_name = "GROUP", value_parser = crate::parsed::<GroupName>)]
    groups: Vec<GroupName>,
    /// Days of validity (default: pki.validity_days.client of flinkguard.yaml).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    days: Option<u32>,
    /// Replace an existing identity of this user.
    #[arg(long)]
    force: bool,
}

pub(crate) fn issue_client(args: &IssueClientArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let layout = loaded.pki();
    let files = flinkguard_pki::issue_client(
        &layout,
        &ClientRequest {
            user: args.user.clone(),
            groups: args.groups.clone(),
            days: args.days.unwrap_or(loaded.config.pki.validity_days.client),
            force: args.force,
        },
    )
    .with_context(|| format!("cannot issue a certificate for {}", args.user))?;
    println!(
        "Issued a client certificate for {} in {}/",
        args.user,
        files.dir.display()
    );
    println!("  certificate  {}", files.cert.display());
    println!("  private key  {}", files.key.display());
    println!(
        "  PKCS12       {}  (password in {})",
        files.keystore.display(),
        files.password.display()
    );
    println!("  SHA256       {}", files.sha256);
    println!(
        "curl:  curl --cert {} --key {} --cacert {} https://HOST:PORT/overview",
        files.cert.display(),
        files.key.display(),
        layout.ca_cert().display()
    );
    Ok(Outcome::Ok)
}

#[derive(Args, Debug)]
pub(crate) struct RenewRestArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Days of validity (default: pki.validity_days.rest of flinkguard.yaml).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    days: Option<u32>,
}

pub(crate) fn renew_rest(args: &RenewRestArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let pki = &loaded.config.pki;
    let hosts = pki
        .hosts
        .iter()
        .map(|h| h.parse())
        .collect::<Result<Vec<DnsName>, _>>()?;
    let info = flinkguard_pki::renew_rest(
        &loaded.pki(),
        &RenewRestRequest {
            cluster_name: loaded.config.cluster.name.clone(),
            hosts,
            ips: pki.ips.clone(),
            days: args.days.unwrap_or(pki.validity_days.rest),
        },
    )
    .context("cannot renew the REST certificate")?;
    println!(
        "Renewed the REST certificate {} (valid until {}, SHA256 {})",
        loaded.pki().rest_cert().display(),
        info.not_after,
        info.sha256
    );
    println!("A running gateway reloads it by itself; Flink's REST SSL (if used) needs a restart.");
    Ok(Outcome::Ok)
}

#[derive(Args, Debug)]
pub(crate) struct CreateUpstreamArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Days of validity (default: pki.validity_days.internal of flinkguard.yaml).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    days: Option<u32>,
    /// Replace an existing upstream identity (the old one is moved aside, not deleted).
    #[arg(long)]
    force: bool,
}

pub(crate) fn create_upstream(args: &CreateUpstreamArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let pki = &loaded.config.pki;
    let layout = loaded.pki();
    let created = flinkguard_pki::create_upstream(
        &layout,
        &loaded.config.cluster.name,
        pki.key,
        args.days.unwrap_or(pki.validity_days.internal),
        args.force,
    )
    .context("cannot create the gateway→Flink REST identity")?;
    println!(
        "Created the gateway→Flink REST identity in {}/ (self-signed, SHA1 {})",
        layout.upstream_dir().display(),
        created.sha1_fingerprint
    );
    if let Some(aside) = &created.replaced_to {
        println!("  the previous one was moved to {}", aside.display());
    }
    let gateway = &loaded.config.gateway;
    if gateway.upstream_mutual_tls() {
        println!(
            "A running gateway reloads it by itself; restart Flink so its REST endpoint uses it \
             (flinkguard down; flinkguard up), or rerun `flinkguard flink-config` for your own Flink."
        );
    } else {
        let dir = &pki.dir;
        println!(
            "{} does not use it yet: set these in its gateway: section, then rerun \
             `flinkguard flink-config` (or `flinkguard down; flinkguard up`):",
            loaded.path.display()
        );
        println!(
            "  upstream_server_cert_file: {}",
            dir.join("upstream/upstream.crt").display()
        );
        println!("  upstream_ca_file: null");
        println!(
            "  upstream_client_cert_file: {}",
            dir.join("upstream/upstream.crt").display()
        );
        println!(
            "  upstream_client_key_file: {}",
            dir.join("upstream/upstream.key").display()
        );
    }
    Ok(Outcome::Ok)
}

#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn show(args: &ShowArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let shown = flinkguard_pki::show(&loaded.pki())?;
    let now = OffsetDateTime::now_utc();
    let warnings = shown
        .iter()
        .filter(|c| c.certificate.validity_warning(now).is_some())
        .count();
    if args.json {
        let items: Vec<serde_json::Value> = shown
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["days_left"] = c.certificate.days_left(now).into();
                v["warning"] = c.certificate.validity_warning(now).into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        for c in &shown {
            let cert = &c.certificate;
            println!(
                "{} — {}{}",
                c.role,
                c.file.display(),
                c.alias
                    .as_ref()
                    .map(|a| format!(" (alias {a}, {})", c.entry))
                    .unwrap_or_default()
            );
            println!("  Subject:   {}", cert.subject);
            println!("  Issuer:    {}", cert.issuer);
            if !cert.alt_names.is_empty() {
                println!("  SANs:      {}", cert.alt_names.join(", "));
            }
            let warning = cert
                .validity_warning(now)
                .map(|w| format!("  WARNING: {w}"))
                .unwrap_or_default();
            println!(
                "  Valid:     {} to {} ({} days left){warning}",
                cert.not_before.date(),
                cert.not_after.date(),
                cert.days_left(now)
            );
            let usage = if cert.is_ca {
                "CA".to_owned()
            } else {
                cert.extended_key_usage.join(", ")
            };
            println!("  Key:       {}   Usage: {usage}", cert.key);
            println!("  SHA1:      {}", cert.sha1);
            println!("  SHA256:    {}", cert.sha256);
            println!();
        }
        if warnings > 0 {
            println!(
                "{warnings} certificate(s) expire within {} days or are not valid now.",
                flinkguard_pki::inspect::EXPIRY_WARNING_DAYS
            );
        }
    }
    Ok(if warnings > 0 {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}
