//! Probing what a listening socket accepts, for tests: the product's probes
//! ([`flinkguard_probe::tls`]) with generous timeouts and panics instead of errors, and which
//! local addresses listen on a port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

pub use flinkguard_probe::tls::{ClientIdentity, ForeignKey, PlaintextOutcome, TlsOutcome};
use flinkguard_probe::tls::{LoadedIdentity, Timeouts, handshake};

/// Longer than the product's: a JVM's first handshake on a busy test machine can take a while.
const TEST_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    handshake: Duration::from_secs(10),
    verdict: Duration::from_secs(2),
};

/// Connects to `addr` and tries a TLS handshake presenting `client`, offering TLS 1.3 and 1.2
/// (then TLS 1.2 alone if the server refuses outright). Panics on an unusable identity.
pub fn probe_tls(addr: SocketAddr, client: ClientIdentity) -> TlsOutcome {
    let identity = LoadedIdentity::load(&client)
        .unwrap_or_else(|e| panic!("client identity {client:?} unusable: {e}"));
    handshake(addr, None, &identity, &TEST_TIMEOUTS)
        .unwrap_or_else(|e| panic!("TLS client for {addr}: {e}"))
        .outcome
}

/// Connects to `addr`, sends an HTTP request line and some binary bytes in plaintext, and
/// reports whether the server answered in plaintext.
pub fn probe_plaintext(addr: SocketAddr) -> PlaintextOutcome {
    flinkguard_probe::tls::probe_plaintext(addr, &TEST_TIMEOUTS)
}

/// The local addresses with a TCP socket listening on `port`, from `/proc/net/tcp` and
/// `/proc/net/tcp6` (this network namespace). `0.0.0.0` / `::` mean all interfaces.
/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, how a JVM's dual-stack socket bound to
/// 127.0.0.1 appears) are reported as IPv4.
pub fn listening_addresses(port: u16) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            for addr in parse_proc_net_tcp(&text, port) {
                if !found.contains(&addr) {
                    found.push(addr);
                }
            }
        }
    }
    found
}

fn parse_proc_net_tcp(text: &str, port: u16) -> Vec<IpAddr> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let (addr, port_hex) = local.split_once(':')?;
            if u16::from_str_radix(port_hex, 16).ok()? != port {
                return None;
            }
            parse_proc_addr(addr)
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address in host byte order (little-endian here).
fn parse_proc_addr(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            let v6 = Ipv6Addr::from(octets);
            // Java listens on dual-stack sockets: 127.0.0.1 shows as ::ffff:127.0.0.1.
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_proc_net_tcp() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
           1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n\
           2: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n";
        assert_eq!(
            parse_proc_net_tcp(v4, 8081),
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            ]
        );
        assert!(parse_proc_net_tcp(v4, 8080).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st\n\
           0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_proc_net_tcp(v6, 8081),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        let mapped = "  sl  local_address                         remote_address                        st\n\
           0: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_proc_net_tcp(mapped, 8081),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
    }

    #[test]
    fn listening_addresses_sees_a_real_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            listening_addresses(port),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        drop(listener);
        assert!(listening_addresses(port).is_empty());
    }
}
