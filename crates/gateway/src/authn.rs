//! Who is calling. Tried in this order, the first that applies decides:
//!
//! 1. **Trusted proxy**: the TCP peer is inside `gateway.trusted_proxies.cidrs`; its identity
//!    headers are the caller, and nothing else is looked at. A missing user header is a 401,
//!    a duplicated one a 400 — never anonymous. From any other peer these headers are never
//!    read (and are stripped before forwarding).
//! 2. **Client certificate**, verified by rustls during the handshake against the client CAs
//!    (chain, validity period, clientAuth usage): the single CN is the user, every O (and/or
//!    OU) attribute a group, read from the parsed certificate, never from a DN string.
//! 3. **Bearer token**: exactly one `Authorization: Bearer` header, a service token or an
//!    identity provider's JWT.
//! 4. **Anonymous**, only when `policy.anonymous_role` is set and no credentials at all were
//!    presented: invalid credentials are a 401, never a fallback to anonymous.

use std::net::SocketAddr;

use flinkguard_config::GroupAttribute;
use flinkguard_policy::{AuthMethod, Principal};
use http::HeaderMap;
use http::header;
use rustls_pki_types::CertificateDer;

use crate::error::Refusal;
use crate::settings::Snapshot;

/// The longest user or group name accepted from a header.
const MAX_NAME_LEN: usize = 256;

/// The user name anonymous callers are audited under.
const ANONYMOUS_USER: &str = "anonymous";

/// Reads the principal of a verified client certificate.
pub(crate) fn principal_from_certificate(
    cert: &CertificateDer<'_>,
    group_attributes: &[GroupAttribute],
    peer: SocketAddr,
) -> Result<Principal, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| "unparsable client certificate".to_owned())?;
    let subject = parsed.subject();
    let names: Vec<&str> = subject
        .iter_common_name()
        .map(|cn| {
            cn.as_str()
                .map_err(|_| "client certificate CN is not a string".to_owned())
        })
        .collect::<Result<_, _>>()?;
    let [user] = names.as_slice() else {
        return Err(format!(
            "client certificate must have exactly one CN, it has {}",
            names.len()
        ));
    };
    if user.is_empty() {
        return Err("client certificate CN is empty".to_owned());
    }
    let mut groups = Vec::new();
    for attribute in group_attributes {
        let values: Vec<_> = match attribute {
            GroupAttribute::O => subject.iter_organization().collect(),
            GroupAttribute::OU => subject.iter_organizational_unit().collect(),
        };
        for value in values {
            groups.push(
                value
                    .as_str()
                    .map(str::to_owned)
                    .map_err(|_| format!("client certificate {attribute:?} is not a string"))?,
            );
        }
    }
    Ok(Principal {
        user: (*user).to_owned(),
        groups,
        method: AuthMethod::Mtls,
        peer: Some(peer),
    })
}

/// What the TLS handshake established about a connection.
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    /// `None`: no client certificate; `Some(Err)`: a verified certificate without a usable identity.
    pub(crate) identity: Option<Result<Principal, String>>,
    /// The peer's address as the `X-Forwarded-For` Flink gets, made once per connection.
    pub(crate) forwarded_for: http::HeaderValue,
    /// The peer's address and port as audit lines show it, made once per connection.
    pub(crate) peer_text: String,
}

impl Connection {
    pub(crate) fn new(peer: SocketAddr, identity: Option<Result<Principal, String>>) -> Connection {
        Connection {
            peer,
            identity,
            forwarded_for: http::HeaderValue::from_str(&peer.ip().to_string())
                .unwrap_or_else(|_| http::HeaderValue::from_static("unknown")),
            peer_text: peer.to_string(),
        }
    }
}

pub(crate) fn authenticate(
    snapshot: &Snapshot,
    connection: &Connection,
    headers: &HeaderMap,
) -> Result<Principal, Refusal> {
    let peer = connection.peer;
    if snapshot.trusted_proxies.trusts(peer) {
        return from_proxy_headers(snapshot, peer, headers);
    }
    match &connection.identity {
        Some(Ok(principal)) => return Ok(principal.clone()),
        Some(Err(problem)) => {
            return Err(Refusal::unauthenticated("certificate_identity", problem));
        }
        None => {}
    }
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    match (authorizations.next(), authorizations.next()) {
        (Some(value), None) => from_bearer_token(snapshot, peer, value),
        (Some(_), Some(_)) => Err(Refusal::unauthenticated(
            "multiple_authorization",
            "send one Authorization header",
        )),
        (None, _) if snapshot.policy.anonymous_role().is_some() => Ok(Principal {
            user: ANONYMOUS_USER.into(),
            groups: Vec::new(),
            method: AuthMethod::Anonymous,
            peer: Some(peer),
        }),
        (None, _) => Err(Refusal::unauthenticated(
            "no_credentials",
            "present a client certificate or one bearer token",
        )),
    }
}

fn from_bearer_token(
    snapshot: &Snapshot,
    peer: SocketAddr,
    value: &http::HeaderValue,
) -> Result<Principal, Refusal> {
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Refusal::unauthenticated(
                "malformed_authorization",
                "the Authorization header is not `Bearer <token>`",
            )
        })?;
    let tokens = snapshot.tokens.as_ref().ok_or_else(|| {
        Refusal::unauthenticated("tokens_disabled", "bearer tokens are not accepted here")
    })?;
    let verified = tokens
        .verify(token.trim(), time::OffsetDateTime::now_utc())
        .map_err(|e| {
            Refusal::unauthenticated(e.code(), format!("invalid token ({}): {e}", e.code()))
        })?;
    let method = if verified.issuer == snapshot.service_issuer {
        AuthMethod::ServiceToken
    } else {
        AuthMethod::Jwt
    };
    Ok(Principal {
        user: verified.user,
        groups: verified.groups,
        method,
        peer: Some(peer),
    })
}

fn from_proxy_headers(
    snapshot: &Snapshot,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Principal, Refusal> {
    let proxies = &snapshot.trusted_proxies;
    let single = |name: &http::HeaderName| -> Result<Option<&str>, Refusal> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(Refusal::BadRequest(format!(
                "the trusted proxy sent {name} more than once"
            ))),
            (Some(value), None) => value.to_str().map(|v| Some(v.trim())).map_err(|_| {
                Refusal::BadRequest(format!("the trusted proxy sent a non-ASCII {name}"))
            }),
        }
    };
    let user = match single(&proxies.user_header)? {
        Some(user) if !user.is_empty() => user,
        _ => {
            return Err(Refusal::unauthenticated(
                "proxy_user_missing",
                format!(
                    "the trusted proxy at {} sent no {}",
                    peer.ip(),
                    proxies.user_header
                ),
            ));
        }
    };
    let groups: Vec<String> = single(&proxies.groups_header)?
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if user.len() > MAX_NAME_LEN || groups.iter().any(|g| g.len() > MAX_NAME_LEN) {
        return Err(Refusal::BadRequest(format!(
            "a user or group name from the trusted proxy is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(Principal {
        user: user.to_owned(),
        groups,
        method: AuthMethod::TrustedProxy,
        peer: Some(peer),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use flinkguard_pki::cert::{CertificateSpec, NameAttribute, Profile, issue};
    use flinkguard_pki::{KeyAlgorithm, KeyPair};

    fn certificate(subject: Vec<NameAttribute>) -> CertificateDer<'static> {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let spec = CertificateSpec {
            subject,
            alt_names: vec![],
            profile: Profile::Client,
            validity_days: 1,
        };
        CertificateDer::from(issue(&spec, &key, None).unwrap())
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn groups_come_from_the_configured_attributes_of_the_parsed_subject() {
        // A comma and an `O=` inside the CN must not become a group, as DN-string splitting
        // would make them.
        let cert = certificate(vec![
            NameAttribute::Organization("team-a".into()),
            NameAttribute::Organization("analysts".into()),
            NameAttribute::OrganizationalUnit("data".into()),
            NameAttribute::CommonName("alice, O=admins".into()),
        ]);
        let read = |attributes: &[GroupAttribute]| {
            principal_from_certificate(&cert, attributes, peer()).unwrap()
        };
        let by_o = read(&[GroupAttribute::O]);
        assert_eq!(by_o.user, "alice, O=admins");
        assert_eq!(by_o.groups, ["team-a", "analysts"]);
        assert_eq!(read(&[GroupAttribute::OU]).groups, ["data"]);
        assert_eq!(
            read(&[GroupAttribute::O, GroupAttribute::OU]).groups,
            ["team-a", "analysts", "data"]
        );
    }

    #[test]
    fn a_certificate_needs_exactly_one_non_empty_cn() {
        for attributes in [
            vec![NameAttribute::Organization("team-a".into())],
            vec![
                NameAttribute::CommonName("a".into()),
                NameAttribute::CommonName("b".into()),
            ],
            vec![NameAttribute::CommonName(String::new())],
        ] {
            let cert = certificate(attributes.clone());
            assert!(
                principal_from_certificate(&cert, &[GroupAttribute::O], peer()).is_err(),
                "{attributes:?}"
            );
        }
    }
}
