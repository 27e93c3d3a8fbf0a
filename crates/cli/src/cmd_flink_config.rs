use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::{Config, LoadedConfig};
use flinkguard_files::Mode;
use flinkguard_flink::FlinkVersion;
use flinkguard_pki::UserName;

use crate::{ConfigArg, Outcome};

/// Where Flink's clients reach the gateway: `--gateway HOST:PORT`, or the first name the
/// gateway's certificate carries and the port it listens on.
fn gateway_address(loaded: &LoadedConfig, given: Option<&str>) -> Result<(String, u16)> {
    if let Some(text) = given {
        let (host, port) = text
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .filter(|(h, p)| !h.is_empty() && *p != 0)
            .ok_or_else(|| {
                anyhow::anyhow!("--gateway {text}: expected HOST:PORT, e.g. flink.example.org:8443")
            })?;
        return Ok((host.to_owned(), port));
    }
    let pki = &loaded.config.pki;
    let host = pki
        .hosts
        .iter()
        .find(|h| !h.starts_with('*'))
        .cloned()
        .or_else(|| pki.ips.first().map(ToString::to_string))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "pki.hosts has only wildcard names; say where clients reach the gateway with --gateway HOST:PORT"
            )
        })?;
    Ok((host, loaded.config.gateway.listen.port()))
}

#[derive(Args, Debug)]
pub(crate) struct FlinkConfigArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Flink version to render for (default: flink.version of flinkguard.yaml, or 1.x when
    /// merging a flink-conf.yaml). 2.x writes nested config.yaml, 1.x flat flink-conf.yaml.
    #[arg(long, value_name = "VERSION", value_parser = crate::parsed::<FlinkVersion>)]
    flink_version: Option<FlinkVersion>,
    /// Existing Flink config file to merge into; every other key is kept. Its name decides
    /// the format: config.yaml (nested YAML) or flink-conf.yaml (flat).
    #[arg(long, value_name = "FILE")]
    merge: Option<PathBuf>,
    /// Render the settings for Flink's own clients (`bin/flink`, the SQL client) to reach the
    /// cluster through the gateway as this user (their client certificate from `pki
    /// issue-client`), instead of the cluster's settings.
    #[arg(long, value_name = "USER", value_parser = crate::parsed::<UserName>)]
    client: Option<UserName>,
    /// With --client: the gateway's address as clients reach it (default: the first of
    /// pki.hosts / pki.ips, and the port of gateway.listen).
    #[arg(long, value_name = "HOST:PORT", requires = "client")]
    gateway: Option<String>,
    /// Write here (atomically, mode 0600: it holds keystore passwords) instead of stdout.
    /// May be the --merge file itself.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: &FlinkConfigArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let (format, version) = flinkguard_render::choose_format(
        args.flink_version,
        loaded.config.flink.version,
        args.merge.as_deref(),
    )?;
    let settings = match &args.client {
        None => flinkguard_render::security_settings(&loaded, version)?,
        Some(user) => {
            let (host, port) = gateway_address(&loaded, args.gateway.as_deref())?;
            flinkguard_render::client_settings(&loaded, user, &host, port)?
        }
    };
    let text = match &args.merge {
        Some(path) => {
            let existing = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            flinkguard_render::merge(format, &existing, path, &settings)?
        }
        None => flinkguard_render::render(format, &settings)?,
    };
    match &args.out {
        Some(out) => {
            flinkguard_files::write_atomic(out, text.as_bytes(), Mode::Secret)?;
            eprintln!(
                "Wrote {} ({} for Flink {version}, mode 0600)",
                out.display(),
                format.file_name()
            );
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Ok)
}
