use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_pki::{DnsName, InitRequest, KeyAlgorithm, PkiLayout, ValidityDays};

use crate::Outcome;

#[derive(Args, Debug, Clone)]
pub(crate) struct InitArgs {
    /// Folder to create flinkguard.yaml and pki/ in.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Cluster name (lowercase letters, digits, '-').
    #[arg(long, default_value = "flink")]
    pub(crate) name: String,
    /// DNS name the REST endpoint is reached by; repeatable; a leftmost wildcard is allowed.
    /// Default (with no --ip either): localhost.
    #[arg(long = "host", value_name = "HOST", value_parser = crate::parsed::<DnsName>)]
    pub(crate) hosts: Vec<DnsName>,
    /// IP address the REST endpoint is reached by; repeatable. Default (with no --host): 127.0.0.1.
    #[arg(long = "ip", value_name = "ADDR", value_parser = parse_ip)]
    pub(crate) ips: Vec<IpAddr>,
    /// Key algorithm for every key.
    #[arg(long, default_value = "ecdsa-p256", value_parser = crate::parsed::<KeyAlgorithm>)]
    pub(crate) key: KeyAlgorithm,
    /// Validity of the cluster identity (internal mTLS), in days.
    #[arg(long, default_value_t = ValidityDays::default().internal, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) internal_days: u32,
    /// Validity of the REST server certificate, in days.
    #[arg(long, default_value_t = ValidityDays::default().rest, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) rest_days: u32,
    /// Validity of the CA, in days.
    #[arg(long, default_value_t = ValidityDays::default().ca, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) ca_days: u32,
    /// Default validity of client certificates, in days.
    #[arg(long, default_value_t = ValidityDays::default().client, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) client_days: u32,
    /// Replace existing flinkguard.yaml and PKI (the old pki/ is moved aside, not deleted).
    #[arg(long)]
    pub(crate) force: bool,
    /// Print nothing on success.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    flinkguard_pki::parse_ip(s).map_err(|e| e.to_string())
}

impl InitArgs {
    /// `init` with every default, in `dir` (what `up` runs in an empty folder).
    pub(crate) fn defaults_in(dir: &Path) -> InitArgs {
        let validity = ValidityDays::default();
        InitArgs {
            dir: dir.to_owned(),
            name: "flink".into(),
            hosts: vec![],
            ips: vec![],
            key: KeyAlgorithm::default(),
            internal_days: validity.internal,
            rest_days: validity.rest,
            ca_days: validity.ca,
            client_days: validity.client,
            force: false,
            quiet: false,
        }
    }
}

pub(crate) fn run(args: &InitArgs) -> Result<Outcome> {
    let config_path = args.dir.join(flinkguard_config::FILE_NAME);
    let (mut hosts, mut ips) = (args.hosts.clone(), args.ips.clone());
    if hosts.is_empty() && ips.is_empty() {
        hosts.push("localhost".parse()?);
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    let validity = ValidityDays {
        internal: args.internal_days,
        rest: args.rest_days,
        ca: args.ca_days,
        client: args.client_days,
    };
    let config = Config::new(&args.name, &hosts, &ips, args.key, validity);
    // Validate the name and everything else before generating a single key.
    Config::parse(&config.to_yaml(), &config_path).context("invalid --name or host")?;

    if !args.dir.is_dir() {
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("cannot create {}", args.dir.display()))?;
    }
    let layout = PkiLayout::new(args.dir.join(&config.pki.dir));
    if !args.force {
        // A PKI from before the gateway→Flink REST identity existed needs only that added.
        let only_upstream_missing = if layout.exists() && !layout.upstream_dir().exists() {
            format!(
                "; to add only the gateway→Flink REST identity this PKI lacks ({}), run `{}`",
                layout.upstream_dir().display(),
                flinkguard_pki::CREATE_UPSTREAM_COMMAND
            )
        } else {
            String::new()
        };
        if config_path.exists() {
            bail!(
                "{} already exists; refusing to overwrite it. Pass --force to replace it and the PKI{only_upstream_missing}",
                config_path.display()
            );
        }
        if layout.exists() {
            bail!(
                "{}{only_upstream_missing}",
                flinkguard_pki::PkiError::AlreadyExists(layout.root().to_owned())
            );
        }
    }
    // Fail early on an unwritable folder, before the (slow for RSA) key generation.
    let probe = flinkguard_files::temp_sibling(&config_path);
    flinkguard_files::create_new(&probe, flinkguard_files::Mode::Secret)
        .with_context(|| format!("{} is not writable", args.dir.display()))?;
    let _ = std::fs::remove_file(&probe);

    let generated = flinkguard_pki::generate(&InitRequest {
        cluster_name: args.name.clone(),
        hosts: hosts.clone(),
        ips: ips.clone(),
        key: args.key,
        validity,
    })?;
    let installed = flinkguard_pki::install(&generated, &layout, args.force)?;
    config.write(&config_path)?;

    if !args.quiet {
        println!(
            "Wrote {} and {}/",
            config_path.display(),
            layout.root().display()
        );
        println!(
            "  cluster identity  {}  (keystore and truststore for Flink's internal mTLS)",
            layout.internal_keystore().display()
        );
        println!("    SHA1 fingerprint {}", generated.internal_fingerprint());
        println!(
            "  CA                {}  (give it to curl: --cacert)",
            layout.ca_cert().display()
        );
        println!(
            "  REST server       {}  for {}",
            layout.rest_cert().display(),
            names(&hosts, &ips)
        );
        println!("  REST truststore   {}", layout.rest_truststore().display());
        println!(
            "  gateway→Flink     {}  (self-signed, not from the CA: Flink's REST endpoint accepts only the gateway)",
            layout.upstream_keystore().display()
        );
        println!("    SHA1 fingerprint {}", generated.upstream_fingerprint());
        println!("  key {}, passwords in *.password (mode 0600)", args.key);
        if let Some(aside) = installed.replaced_to {
            println!("  the previous PKI was moved to {}", aside.display());
        }
        println!("Next: flinkguard flink-config, or flinkguard up");
    }
    Ok(Outcome::Ok)
}

fn names(hosts: &[DnsName], ips: &[IpAddr]) -> String {
    hosts
        .iter()
        .map(ToString::to_string)
        .chain(ips.iter().map(ToString::to_string))
        .collect::<Vec<_>>()
        .join(", ")
}
