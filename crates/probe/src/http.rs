//! A minimal HTTP/1.1 client over plain TCP or rustls: one request per connection, bounded in
//! time and size. Hand-written so that a probe controls every byte it sends (no retries, no
//! redirects, no added headers) and can use the probe's own TLS settings.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::tls::{Timeouts, server_name_for};

/// Bodies above this are cut: a probe needs the start of an answer, not all of it.
const MAX_BODY: usize = 1024 * 1024;

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET`, `POST`, `PATCH`.
    pub method: &'a str,
    /// Path and query, sent as is.
    pub path: &'a str,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'a str>,
    /// The body (may be empty).
    pub body: &'a [u8],
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, at most 1 MiB.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first message of Flink's error shape `{"errors": ["..."]}`, first line only.
    pub fn flink_error(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let first = value.get("errors")?.as_array()?.first()?.as_str()?;
        Some(first.lines().next().unwrap_or_default().to_owned())
    }
}

/// Sends `request` to `addr` (over TLS with `tls`), with `host` as the Host header and SNI.
pub fn send(
    addr: SocketAddr,
    host: &str,
    tls: Option<Arc<ClientConfig>>,
    request: &Request<'_>,
    timeouts: &Timeouts,
) -> io::Result<Response> {
    let sock = TcpStream::connect_timeout(&addr, timeouts.connect)?;
    let _ = sock.set_nodelay(true);
    sock.set_write_timeout(Some(timeouts.handshake))?;
    sock.set_read_timeout(Some(timeouts.handshake))?;
    let deadline = Instant::now() + timeouts.handshake + timeouts.handshake;
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: flinkguard-probe\r\nAccept: */*\r\nConnection: close\r\n{}Content-Length: {}\r\n\r\n",
        request.method,
        request.path,
        host_header(host, addr.port()),
        request
            .content_type
            .map(|t| format!("Content-Type: {t}\r\n"))
            .unwrap_or_default(),
        request.body.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(request.body);
    let raw = match tls {
        None => exchange(sock, &message, deadline)?,
        Some(config) => {
            let conn = ClientConnection::new(config, server_name_for(addr, Some(host)))
                .map_err(io::Error::other)?;
            exchange(StreamOwned::new(conn, sock), &message, deadline)?
        }
    };
    parse_response(&raw)
}

fn host_header(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Writes `message` and reads until the server closes, the deadline passes or the answer is
/// complete by its Content-Length.
fn exchange(
    mut stream: impl Read + Write,
    message: &[u8],
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    stream.write_all(message)?;
    stream.flush()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline && raw.len() < MAX_BODY + 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if complete(&raw) {
                    break;
                }
            }
            // A TLS peer that closes without close_notify; the answer is what arrived.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) if crate::tls::is_timeout(&e) && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    if raw.is_empty() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "no HTTP answer"));
    }
    Ok(raw)
}

fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&raw[..end], &raw[end + 4..]))
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

fn complete(raw: &[u8]) -> bool {
    match split_head(raw) {
        Some((head, body)) => match content_length(head) {
            Some(len) => body.len() >= len,
            None => body.ends_with(b"0\r\n\r\n"),
        },
        None => false,
    }
}

/// Parses a raw HTTP/1.x response.
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    if !raw.starts_with(b"HTTP/1.") {
        return Err(bad("not an HTTP response"));
    }
    let (head, body) = split_head(raw).ok_or_else(|| bad("incomplete HTTP head"))?;
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    if let Some(len) = content_length(head.as_bytes()) {
        body.truncate(len);
    }
    body.truncate(MAX_BODY);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = parse_response(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 25\r\n\r\n{\"errors\":[\"bad\\nstack\"]}xx",
        )
        .unwrap();
        assert_eq!(plain.status, 400);
        assert_eq!(plain.flink_error().as_deref(), Some("bad"));
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nroot\r\n3\r\n:x:\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.text(), "root:x:");
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"));
        assert!(parse_response(b"\x15\x03\x03").is_err());
    }
}
