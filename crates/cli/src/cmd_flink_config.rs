use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_files::Mode;
use flinkguard_flink::FlinkVersion;

use crate::{ConfigArg, Outcome};

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
    let settings = flinkguard_render::security_settings(&loaded, version)?;
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
