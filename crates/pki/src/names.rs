//! Host names, IP addresses and user/group names, checked once at the edge.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::PkiError;

/// A DNS name valid in a certificate's subject alternative names: RFC 1123 labels, at most
/// 253 characters, optionally a wildcard as the whole leftmost label (`*.flink.svc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsName(String);

impl DnsName {
    /// The name as text (lowercase).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DnsName {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            PkiError::InvalidInput(format!(
                "`{s}` is not a valid host name: {why} (use letters, digits and '-' in dot-separated labels, e.g. flink.example.org, or *.flink.example.org)"
            ))
        };
        if s.parse::<IpAddr>().is_ok() {
            return Err(bad("it is an IP address; pass it with --ip"));
        }
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 {
            return Err(bad("it must be 1 to 253 characters long"));
        }
        for (i, label) in name.split('.').enumerate() {
            if label == "*" {
                if i != 0 {
                    return Err(bad("a wildcard may only be the whole leftmost label"));
                }
                if name.split('.').count() < 3 {
                    return Err(bad("a wildcard needs at least two labels after it"));
                }
                continue;
            }
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each label must be 1 to 63 characters long"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad(
                    "it contains a character that is not a letter, digit or '-'",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label may not start or end with '-'"));
            }
        }
        Ok(DnsName(name))
    }
}

/// Parses an IP address for a certificate's SANs, with a message that names the value.
pub fn parse_ip(s: &str) -> Result<IpAddr, PkiError> {
    s.parse().map_err(|_| {
        PkiError::InvalidInput(format!(
            "`{s}` is not a valid IP address (for example 10.0.2.15 or ::1)"
        ))
    })
}

/// A user name that becomes a certificate's CN and a file name under `pki/clients/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserName {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
        if ok {
            Ok(UserName(s.to_owned()))
        } else {
            Err(PkiError::InvalidInput(format!(
                "`{s}` is not a valid user name: use 1 to 64 letters, digits, '.', '_', '@' or '-', not starting with '.'"
            )))
        }
    }
}

/// A group name that becomes one `O` attribute of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for GroupName {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Printable, no separators that DN-string parsers (the very thing FLIP-26's model
        // must not rely on) would misread.
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b));
        if ok {
            Ok(GroupName(s.to_owned()))
        } else {
            Err(PkiError::InvalidInput(format!(
                "`{s}` is not a valid group name: use 1 to 64 letters, digits, '.', '_', '@', ':' or '-'"
            )))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_wildcard_hosts() {
        for ok in [
            "localhost",
            "flink.example.org",
            "*.flink.svc.cluster.local",
            "a-1.b",
            "FLINK.Example.org.",
        ] {
            assert!(ok.parse::<DnsName>().is_ok(), "{ok}");
        }
        assert_eq!(
            "FLINK.Example.org.".parse::<DnsName>().unwrap().as_str(),
            "flink.example.org"
        );
    }

    #[test]
    fn rejects_bad_hosts_with_the_value_in_the_message() {
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a_b.c",
            "*.com",
            "a.*.b",
            "10.0.0.1",
            "x y",
            &"a".repeat(64),
        ] {
            let err = bad.parse::<DnsName>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn user_and_group_names() {
        assert!("alice@corp".parse::<UserName>().is_ok());
        assert!("../etc/passwd".parse::<UserName>().is_err());
        assert!("a/b".parse::<UserName>().is_err());
        assert!("system:masters".parse::<GroupName>().is_ok());
        assert!("a,O=admins".parse::<GroupName>().is_err());
        assert!(parse_ip("10.0.2.15").is_ok());
        assert!(
            parse_ip("10.0.2")
                .unwrap_err()
                .to_string()
                .contains("`10.0.2`")
        );
    }
}
