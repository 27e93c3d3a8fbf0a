//! `flinkguard render k8s`: plain Kubernetes manifests for a hardened Flink cluster with the
//! gateway side-car.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use flinkguard_config::Config;

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct K8sArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Directory to write the manifests and kustomization.yaml into (created; replaced as a
    /// whole, never half-written). Holds Secrets: mode 0700, files 0600 where they hold keys.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace --out even when it is not empty.
    #[arg(long)]
    force: bool,
}

pub(crate) fn k8s(args: &K8sArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    // Before rendering: rendering may create the gateway's token and link keys in the PKI.
    flinkguard_k8s::check_out_dir(&args.out, args.force)?;
    let manifests = flinkguard_k8s::render(&loaded)?;
    manifests.write_dir(&args.out, args.force)?;
    let count = manifests.objects().count();
    eprintln!(
        "Wrote {count} objects in {} files and {} to {}; apply with `kubectl apply -k {}`",
        manifests.files.len(),
        flinkguard_k8s::KUSTOMIZATION,
        args.out.display(),
        args.out.display()
    );
    Ok(Outcome::Ok)
}
