//! The JWKS URL, checked once when the configuration is read.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hyper::Uri;

use crate::SetupError;

/// Where an identity provider publishes its keys (its `jwks_uri`): an `https` URL, or `http`
/// to a loopback host (`127.0.0.0/8`, `::1`, `localhost`) only.
///
/// The key set decides whose tokens are accepted, so fetching it over plain http across a
/// network would let anyone on the path log in as anyone. Credentials in the URL are refused
/// too: they would end up in log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl {
    uri: Uri,
    tls: bool,
    /// The host without IPv6 brackets, as a DNS name or an IP address.
    host: String,
    port: u16,
}

impl JwksUrl {
    /// Whether the keys are fetched over TLS (`https`).
    pub fn is_https(&self) -> bool {
        self.tls
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]` as it goes into the `Host` header.
    pub(crate) fn authority(&self) -> &str {
        self.uri.authority().map_or("", |a| a.as_str())
    }

    /// The request target: path and query.
    pub(crate) fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

impl fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.uri.fmt(f)
    }
}

impl FromStr for JwksUrl {
    type Err = SetupError;

    /// Parses an absolute `https://` URL, or `http://` to a loopback host.
    fn from_str(text: &str) -> Result<JwksUrl, SetupError> {
        let invalid = |problem: &str| {
            Err(SetupError::InvalidConfig(format!(
                "JWKS URL `{text}`: {problem}"
            )))
        };
        let example = "write the identity provider's jwks_uri, \
                       e.g. https://idp.example.org/realms/flink/protocol/openid-connect/certs";
        let Ok(uri) = text.parse::<Uri>() else {
            return invalid(&format!("not a URL; {example}"));
        };
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => {
                return invalid(&format!("scheme `{other}` is not supported; use https"));
            }
            None => return invalid(&format!("not an absolute URL; {example}")),
        };
        let Some(authority) = uri.authority() else {
            return invalid(&format!("no host; {example}"));
        };
        if let Some((_, host_port)) = authority.as_str().rsplit_once('@') {
            // Not echoed: the message is for logs, the credentials are not.
            return Err(SetupError::InvalidConfig(format!(
                "JWKS URL for {host_port}: credentials in the URL are not supported (they \
                 would end up in logs); publish the JWKS without authentication"
            )));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return invalid(&format!("no host; {example}"));
        }
        if !tls && !is_loopback(host) {
            return invalid(
                "plain http is accepted only for a loopback host (127.0.0.0/8, ::1 or \
                 localhost); the key set decides who can log in, so fetch it with https",
            );
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(JwksUrl {
            host: host.to_owned(),
            uri,
            tls,
            port,
        })
    }
}

/// `localhost`, or an IP address in 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_on_loopback_only() {
        let url: JwksUrl = "https://idp.example.org/realms/x/certs?a=1"
            .parse()
            .unwrap();
        assert!(url.is_https());
        assert_eq!(
            (
                url.host(),
                url.port(),
                url.authority(),
                url.path_and_query()
            ),
            (
                "idp.example.org",
                443,
                "idp.example.org",
                "/realms/x/certs?a=1"
            )
        );
        for (text, host, port) in [
            ("http://127.0.0.1:8080/jwks", "127.0.0.1", 8080),
            ("http://127.3.2.1/jwks", "127.3.2.1", 80),
            ("http://[::1]:9/jwks", "::1", 9),
            ("http://localhost:1/", "localhost", 1),
            ("http://LocalHost:1/", "LocalHost", 1),
        ] {
            let url: JwksUrl = text.parse().unwrap();
            assert!(!url.is_https(), "{text}");
            assert_eq!((url.host(), url.port()), (host, port), "{text}");
        }
        let v6: JwksUrl = "https://[2001:db8::1]:8443/k".parse().unwrap();
        assert_eq!((v6.host(), v6.port()), ("2001:db8::1", 8443));
        assert_eq!(
            "http://127.0.0.1:1"
                .parse::<JwksUrl>()
                .unwrap()
                .path_and_query(),
            "/"
        );
    }

    #[test]
    fn unusable_urls_are_refused_with_the_reason() {
        for (text, expected) in [
            (
                "http://idp.example.org/certs",
                "plain http is accepted only for a loopback host",
            ),
            (
                "http://10.0.0.1/certs",
                "only for a loopback host (127.0.0.0/8, ::1 or localhost)",
            ),
            ("http://127.0.0.1.nip.io/certs", "loopback"),
            ("http://localhost.example.org/certs", "loopback"),
            ("http://[::ffff:10.0.0.1]/certs", "loopback"),
            (
                "ftp://idp.example.org/certs",
                "scheme `ftp` is not supported; use https",
            ),
            ("/realms/flink/certs", "not an absolute URL"),
            ("idp.example.org", "not an absolute URL"),
            ("https://idp example/certs", "not a URL"),
            ("", "not a URL"),
        ] {
            let err = text.parse::<JwksUrl>().unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(&format!("`{text}`")), "names the URL: {err}");
        }
        let err = "https://user:secret@idp.example.org/certs"
            .parse::<JwksUrl>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("for idp.example.org: credentials in the URL are not supported"),
            "{err}"
        );
        assert!(!err.contains("secret"), "does not echo the password: {err}");
    }
}
