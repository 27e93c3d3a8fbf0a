//! The gateway: a TLS side-car in front of Flink's REST API and Web UI.
//!
//! Data flows one way: request → parse the target once ([`flinkguard_policy::RequestTarget`])
//! → authenticate (trusted proxy, client certificate, bearer token, anonymous; see `authn`) →
//! classify by the route catalogue → decide by policy → audit → forward exactly that target to
//! Flink on loopback → stream the answer back. Denied requests never reach Flink.
//!
//! Everything that can change while the gateway runs (certificates, CAs, policy, token keys,
//! trusted proxies, limits) lives in one immutable snapshot that a reload swaps atomically.
#![forbid(unsafe_code)]

mod admin;
mod audit;
mod authn;
mod body;
mod conn;
mod error;
mod metrics;
mod pool;
mod proxy;
mod redaction;
mod reload;
mod settings;
mod teams;
mod tls;
mod upstream;
mod webhook;

pub use settings::{GatewayError, GatewayOptions};
pub use upstream::FlinkRestClient;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Where the gateway listens, once bound.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The TLS listener for clients.
    pub listen: SocketAddr,
    /// The admin listener, if on.
    pub admin: Option<SocketAddr>,
    /// Flink's REST endpoint the gateway forwards to.
    pub upstream: SocketAddr,
    /// Whether the gateway talks https to Flink.
    pub upstream_tls: bool,
    /// The audit file whose lines are not synced before their responses, if so configured.
    pub unsynced_audit_file: Option<PathBuf>,
}

/// Loads the configuration, serves until `shutdown` completes, then drains: no new
/// connections, requests in flight get `gateway.timeouts.shutdown_grace_seconds` to finish.
pub async fn run(
    options: GatewayOptions,
    bound: impl FnOnce(Bound),
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let snapshot = settings::Snapshot::load(&options).await?;
    let fixed = snapshot.fixed.clone();
    let listener = TcpListener::bind(fixed.listen)
        .await
        .map_err(|e| GatewayError::Listen(fixed.listen, e))?;
    let admin_listener = match fixed.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| GatewayError::Listen(addr, e))?,
        ),
        None => None,
    };
    let audit = audit::AuditSink::open(
        fixed.audit_stdout,
        fixed.audit_file.as_deref(),
        fixed.audit_durability,
    )
    .map_err(|source| GatewayError::Audit {
        path: fixed.audit_file.clone().unwrap_or_default(),
        source,
    })?;
    let local = |l: &TcpListener, addr| l.local_addr().map_err(|e| GatewayError::Listen(addr, e));
    bound(Bound {
        listen: local(&listener, fixed.listen)?,
        admin: match (&admin_listener, fixed.admin_listen) {
            (Some(l), Some(addr)) => Some(local(l, addr)?),
            _ => None,
        },
        upstream: snapshot.upstream.address,
        upstream_tls: snapshot.upstream.tls,
        unsynced_audit_file: audit.unsynced_file().map(Path::to_owned),
    });
    let grace = snapshot.timeouts.shutdown_grace;
    let owners = flinkguard_ownership::OwnershipStore::open(&fixed.ownership_file)
        .map_err(|e| GatewayError::Ownership(e.to_string()))?;
    let redaction =
        redaction::Redaction::new(&fixed.redact_patterns).map_err(GatewayError::Redaction)?;
    let state = Arc::new(proxy::State::new(
        snapshot,
        audit,
        Arc::new(owners),
        redaction,
    ));
    let admin_task = admin_listener.map(|l| tokio::spawn(admin::serve(l, state.clone())));
    let reload_task = tokio::spawn(reload::watch(state.clone(), options));

    let max = u32::try_from(fixed.max_connections).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(max as usize));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, further clients wait in the listen backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, peer)) = accepted else { continue };
        tokio::spawn(conn::serve(
            state.clone(),
            tcp,
            peer,
            stopped.clone(),
            permit,
        ));
    }
    // Drain: stop accepting, ask every connection to finish, wait for them (each holds a
    // permit) up to the grace period.
    drop(listener);
    reload_task.abort();
    let _ = stop.send(true);
    let _ = tokio::time::timeout(grace, permits.acquire_many(max)).await;
    if let Some(task) = admin_task {
        task.abort();
    }
    Ok(())
}
