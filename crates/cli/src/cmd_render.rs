//! `flinkguard render k8s` and `render operator`: Kubernetes manifests for a hardened Flink
//! cluster with the gateway side-car, plain or as a FlinkDeployment for the Flink Kubernetes
//! Operator.

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
    write(args, flinkguard_k8s::render)
}

/// `render operator`: the same --out/--force semantics as `render k8s`.
pub(crate) fn operator(args: &K8sArgs) -> Result<Outcome> {
    let outcome = write(args, flinkguard_k8s::render_operator)?;
    eprintln!(
        "The operator needs the REST identity: install it with --set tls.create=true --set tls.secretName={secret} --set tls.secretKeyRef.name={secret} --set tls.secretKeyRef.key=password (docs/kubernetes.md)",
        secret = flinkguard_k8s::OPERATOR_REST_TLS
    );
    Ok(outcome)
}

fn write(
    args: &K8sArgs,
    render: fn(
        &flinkguard_config::LoadedConfig,
    ) -> Result<flinkguard_k8s::Manifests, flinkguard_k8s::K8sError>,
) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    // Before rendering: rendering may create the gateway's token and link keys in the PKI.
    flinkguard_k8s::check_out_dir(&args.out, args.force)?;
    let manifests = render(&loaded)?;
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
