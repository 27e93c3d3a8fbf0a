use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;
use flinkguard_gateway::GatewayOptions;

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct GatewayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address to listen on (default: gateway.listen of flinkguard.yaml, 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address of the admin listener (/healthz, /readyz, /metrics), or `off`
    /// (default: gateway.admin_listen, 127.0.0.1:8444).
    #[arg(long, value_name = "ADDR|off", value_parser = admin_address)]
    admin_listen: Option<AdminListen>,
}

#[derive(Debug, Clone, Copy)]
struct AdminListen(Option<SocketAddr>);

fn admin_address(text: &str) -> Result<AdminListen, String> {
    if text == "off" {
        return Ok(AdminListen(None));
    }
    text.parse()
        .map(|a| AdminListen(Some(a)))
        .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8444, nor `off`"))
}

pub(crate) fn run(args: &GatewayArgs) -> Result<Outcome> {
    let options = GatewayOptions {
        config_path: args.config.config.clone(),
        listen: args.listen,
        admin_listen: args.admin_listen.map(|a| a.0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending().await,
                    }
                } => {}
            }
            eprintln!("flinkguard gateway: stopping; draining requests in flight");
        };
        flinkguard_gateway::run(
            options,
            |bound| {
                let admin = bound
                    .admin
                    .map_or_else(|| "off".to_owned(), |a| format!("http://{a}/"));
                let scheme = if bound.upstream_tls { "https" } else { "http" };
                eprintln!(
                    "flinkguard gateway listening on https://{}/ (admin {admin}) in front of Flink at {scheme}://{}/",
                    bound.listen, bound.upstream
                );
                if !bound.upstream_tls {
                    eprintln!(
                        "flinkguard gateway: WARNING: plain http to Flink's REST endpoint: anyone who can reach {} goes around the gateway; `flinkguard pki create-upstream` makes the identity for mutual TLS (docs/gateway.md)",
                        bound.upstream
                    );
                }
                if let Some(file) = &bound.unsynced_audit_file {
                    eprintln!(
                        "flinkguard gateway: WARNING: audit_durability is unsynced_lost_on_machine_crash: lines in {} are written before their responses but not synced; a crash of the machine or a power loss can lose the last seconds of them (docs/gateway.md)",
                        file.display()
                    );
                }
            },
            shutdown,
        )
        .await
    })?;
    eprintln!("flinkguard gateway stopped");
    Ok(Outcome::Ok)
}
