//! Free loopback ports for Flink's listeners.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

use crate::error::FlinkError;

/// Ports this process handed out already: the kernel may offer a port again once its probe
/// listener closed, and two clusters in one process must not get the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Another process can still take it before Flink binds it; the window is small because the
/// kernel picks ephemeral ports at random.
pub fn free_port() -> Result<u16, FlinkError> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct free ports on 127.0.0.1. All probe listeners are held until every port is
/// chosen, so the ports differ from each other.
pub fn free_ports(n: usize) -> Result<Vec<u16>, FlinkError> {
    let mut guard = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed_out = guard.get_or_insert_with(HashSet::new);
    let mut listeners = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut attempts = 0;
    while ports.len() < n {
        attempts += 1;
        if attempts > n * 20 + 100 {
            return Err(FlinkError::io(
                "cannot find free ports on 127.0.0.1",
                std::io::Error::other("too many attempts"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| FlinkError::io("cannot bind a probe socket on 127.0.0.1:0", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| FlinkError::io("cannot read the probe socket's port", e))?
            .port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports = free_ports(8).unwrap();
        let unique: HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), 8);
        for &port in &ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        }
        let again = free_port().unwrap();
        assert!(!unique.contains(&again));
    }
}
