use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;
use flinkguard_config::Config;
use flinkguard_gateway::GatewaySettings;

use crate::{ConfigArg, Outcome};

#[derive(Args, Debug)]
pub(crate) struct GatewayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address to listen on (default: gateway.listen of flinkguard.yaml, 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub(crate) fn run(args: &GatewayArgs) -> Result<Outcome> {
    let loaded = Config::load(&args.config.config)?;
    let listen = args.listen.unwrap_or(loaded.config.gateway.listen);
    let settings = GatewaySettings::from_config(&loaded, listen)?;
    let upstream = settings.upstream;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        flinkguard_gateway::run(
            settings,
            |addr| eprintln!("flinkguard gateway listening on https://{addr}/ in front of Flink at http://{upstream}/"),
            shutdown,
        )
        .await
    })?;
    eprintln!("flinkguard gateway stopped");
    Ok(Outcome::Ok)
}
