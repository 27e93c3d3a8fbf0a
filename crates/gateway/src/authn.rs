//! Who is calling: the principal from a verified client certificate.
//!
//! rustls has already verified the chain against the client CAs, the validity period and the
//! clientAuth key usage; this reads the identity from the parsed certificate: the single CN is
//! the user, every O attribute a group. Never from a DN string.

use std::net::SocketAddr;

use flinkguard_policy::{AuthMethod, Principal};
use rustls_pki_types::CertificateDer;

/// Reads the principal of a verified client certificate.
pub(crate) fn principal_from_certificate(
    cert: &CertificateDer<'_>,
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
    let groups = subject
        .iter_organization()
        .map(|o| {
            o.as_str()
                .map(str::to_owned)
                .map_err(|_| "client certificate O is not a string".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Principal {
        user: (*user).to_owned(),
        groups,
        method: AuthMethod::Mtls,
        peer: Some(peer),
    })
}
