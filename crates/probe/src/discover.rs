//! Finding a cluster's endpoints through its REST API: `GET /jobmanager/config` for the
//! JobManager's RPC, blob and REST ports, `GET /taskmanagers` for each TaskManager's RPC and
//! data port. Both are reads.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rustls::ClientConfig;

use crate::http::{self, Request};
use crate::tls::Timeouts;
use crate::{ClusterUrl, Endpoint, Role};

/// What discovery found, and what it could not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovery {
    /// Endpoints found (the cluster URL itself not included).
    pub endpoints: Vec<Endpoint>,
    /// What could not be discovered, and why.
    pub notes: Vec<String>,
}

/// Reads the cluster's config and TaskManagers through `url` (with `tls` for https).
pub fn discover(
    url: &ClusterUrl,
    tls: Option<Arc<ClientConfig>>,
    timeouts: &Timeouts,
) -> Discovery {
    let mut found = Discovery::default();
    let get = |path: &str| -> Result<serde_json::Value, String> {
        let full = format!("{}{path}", url.base_path);
        let request = Request {
            method: "GET",
            path: &full,
            content_type: None,
            body: b"",
        };
        let response = http::send(url.addr, &url.host, tls.clone(), &request, timeouts)
            .map_err(|e| format!("GET {path}: {e}"))?;
        if response.status != 200 {
            let detail = response.flink_error().unwrap_or_default();
            return Err(format!("GET {path} answered {} {detail}", response.status));
        }
        serde_json::from_slice(&response.body).map_err(|e| format!("GET {path}: not JSON: {e}"))
    };
    let fix =
        "pass --cert/--key (and --ca) of a user who may read it, or list the ports with --target";

    match get("/jobmanager/config") {
        Ok(config) => from_config(url, &config, &mut found),
        Err(e) => found
            .notes
            .push(format!("cannot discover JobManager ports: {e}; {fix}")),
    }
    match get("/taskmanagers") {
        Ok(list) => from_taskmanagers(url, &list, &mut found),
        Err(e) => found
            .notes
            .push(format!("cannot discover TaskManager ports: {e}; {fix}")),
    }
    found
}

fn from_config(url: &ClusterUrl, config: &serde_json::Value, found: &mut Discovery) {
    let entries = config.as_array().cloned().unwrap_or_default();
    let value = |key: &str| -> Option<String> {
        entries.iter().find_map(|e| {
            (e.get("key")?.as_str()? == key).then(|| e.get("value")?.as_str().map(str::to_owned))?
        })
    };
    let rpc_host = value("jobmanager.rpc.address").unwrap_or_else(|| url.host.clone());
    add_port(
        found,
        url,
        &rpc_host,
        value("jobmanager.rpc.port"),
        Role::JobManagerRpc,
        "jobmanager.rpc.port",
    );
    add_port(
        found,
        url,
        &rpc_host,
        value("blob.server.port"),
        Role::Blob,
        "blob.server.port",
    );
    // Flink's own REST listener: behind a gateway it is another endpoint of the cluster.
    let rest_host = value("rest.bind-address")
        .or_else(|| value("rest.address"))
        .unwrap_or_else(|| url.host.clone());
    let rest_port = value("rest.port").or_else(|| value("rest.bind-port"));
    add_port(found, url, &rest_host, rest_port, Role::Rest, "rest.port");
}

fn add_port(
    found: &mut Discovery,
    url: &ClusterUrl,
    host: &str,
    port: Option<String>,
    role: Role,
    key: &str,
) {
    match port.as_deref().map(str::trim).map(str::parse::<u16>) {
        Some(Ok(port)) if port != 0 => add(found, url, host, port, role),
        Some(Ok(_)) | None => found.notes.push(format!(
            "{role}: {key} is unset or 0, so the port is random and cannot be discovered; probe it with --target HOST:PORT"
        )),
        Some(Err(_)) => found.notes.push(format!(
            "{role}: {key} is a range ({}), the port in use cannot be discovered; probe it with --target HOST:PORT",
            port.unwrap_or_default()
        )),
    }
}

fn from_taskmanagers(url: &ClusterUrl, list: &serde_json::Value, found: &mut Discovery) {
    let tms = list
        .get("taskmanagers")
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default();
    if tms.is_empty() {
        found
            .notes
            .push("no TaskManager is registered, so none was probed".to_owned());
    }
    for tm in &tms {
        let id = tm.get("id").and_then(|v| v.as_str()).unwrap_or("?");
        let Some((host, rpc_port)) = tm
            .get("path")
            .and_then(|p| p.as_str())
            .and_then(rpc_host_port)
        else {
            found
                .notes
                .push(format!("TaskManager {id}: no RPC address in its path"));
            continue;
        };
        add(found, url, &host, rpc_port, Role::TaskManagerRpc);
        match tm.get("dataPort").and_then(|p| p.as_u64()) {
            Some(port) if port > 0 && port <= u64::from(u16::MAX) => {
                add(found, url, &host, port as u16, Role::TaskManagerData)
            }
            _ => found
                .notes
                .push(format!("TaskManager {id}: no data port reported")),
        }
    }
}

/// `pekko.ssl.tcp://flink@127.0.0.1:40321/user/rpc/taskmanager_0` → (`127.0.0.1`, 40321).
pub fn rpc_host_port(path: &str) -> Option<(String, u16)> {
    let after = path.split_once('@')?.1;
    let authority = after.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

fn add(found: &mut Discovery, url: &ClusterUrl, host: &str, port: u16, role: Role) {
    // A wildcard bind address means "every interface": reach it the way the URL does.
    let host = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => url.host.clone(),
        _ if host.is_empty() => url.host.clone(),
        _ => host.to_owned(),
    };
    let addr = match (host.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(addr)) => addr,
        _ => {
            found.notes.push(format!(
                "{role} at {host}:{port}: the host name does not resolve"
            ));
            return;
        }
    };
    let same = |a: &SocketAddr| *a == addr || (a.port() == addr.port() && a.ip() == addr.ip());
    if same(&url.addr) || found.endpoints.iter().any(|e| same(&e.addr)) {
        return;
    }
    found.endpoints.push(Endpoint { host, addr, role });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rpc_paths() {
        assert_eq!(
            rpc_host_port("pekko.tcp://flink@127.0.0.1:38347/user/rpc/taskmanager_0"),
            Some(("127.0.0.1".to_owned(), 38347))
        );
        assert_eq!(
            rpc_host_port("pekko.ssl.tcp://flink@tm-1.flink.svc:6122/user/rpc/taskmanager_0"),
            Some(("tm-1.flink.svc".to_owned(), 6122))
        );
        assert_eq!(rpc_host_port("no-address"), None);
    }

    #[test]
    fn discovers_from_flink_answers() {
        let url: ClusterUrl = "http://127.0.0.1:45009".parse().unwrap();
        // As Flink 2.3.0 answered (abridged).
        let config = serde_json::json!([
            {"key":"blob.server.port","value":"39131"},
            {"key":"jobmanager.rpc.address","value":"127.0.0.1"},
            {"key":"jobmanager.rpc.port","value":"46771"},
            {"key":"rest.bind-address","value":"127.0.0.1"},
            {"key":"rest.port","value":"45009"},
        ]);
        let tms = serde_json::json!({"taskmanagers":[
            {"id":"tm-0","path":"pekko.tcp://flink@127.0.0.1:38347/user/rpc/taskmanager_0","dataPort":46297}
        ]});
        let mut found = Discovery::default();
        from_config(&url, &config, &mut found);
        from_taskmanagers(&url, &tms, &mut found);
        let roles: Vec<(Role, u16)> = found
            .endpoints
            .iter()
            .map(|e| (e.role, e.addr.port()))
            .collect();
        assert_eq!(
            roles,
            vec![
                (Role::JobManagerRpc, 46771),
                (Role::Blob, 39131),
                (Role::TaskManagerRpc, 38347),
                (Role::TaskManagerData, 46297)
            ],
            "REST is the URL itself, not added twice"
        );
        assert!(found.notes.is_empty(), "{:?}", found.notes);

        let mut random = Discovery::default();
        from_config(
            &url,
            &serde_json::json!([{"key":"blob.server.port","value":"0"},{"key":"rest.port","value":"8081-8090"}]),
            &mut random,
        );
        assert_eq!(random.notes.len(), 3, "{:?}", random.notes);
        assert!(random.notes.iter().all(|n| n.contains("--target")));
    }
}
