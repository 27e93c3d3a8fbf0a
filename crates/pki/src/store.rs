//! PKCS#12 keystores and truststores that Java (and so Flink) reads.
//!
//! Java trusts a certificate in a PKCS#12 *truststore* only when its bag carries Oracle's
//! trusted-key-usage attribute (keytool lists it as `trustedCertEntry`); p12-keystore writes
//! that attribute for certificate entries, OpenSSL does not.

use p12_keystore::{
    Certificate, KeyStore, KeyStoreEntry, Pkcs12ImportPolicy, PrivateKey, PrivateKeyChain,
};
use sha1::{Digest, Sha1};

use crate::{KeyPair, Password, PkiError};

/// A keystore with one private key entry: the key and its chain (leaf first).
pub fn keystore(
    alias: &str,
    key: &KeyPair,
    chain_der: &[&[u8]],
    password: &Password,
) -> Result<Vec<u8>, PkiError> {
    let certs = chain_der
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = chain_der
        .first()
        .ok_or(PkiError::Crypto("empty certificate chain"))?;
    // Java matches keys to certificates through the local key id; a digest of the leaf is
    // stable and unique.
    let local_key_id = Sha1::digest(leaf).to_vec();
    let chain = PrivateKeyChain::new(local_key_id, PrivateKey::from_der(key.pkcs8_der())?, certs);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    Ok(store.writer(password.expose()).write()?)
}

/// A truststore: only `trustedCertEntry`s, no private key.
pub fn truststore(entries: &[(&str, &[u8])], password: &Password) -> Result<Vec<u8>, PkiError> {
    let mut store = KeyStore::new();
    for (alias, der) in entries {
        store.add_entry(
            alias,
            KeyStoreEntry::Certificate(Certificate::from_der(der)?),
        );
    }
    Ok(store.writer(password.expose()).write()?)
}

/// What a PKCS#12 file holds, as Java's keytool would list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEntry {
    /// A private key with its certificate chain (DER, leaf first).
    PrivateKey {
        /// The entry's alias.
        alias: String,
        /// The certificate chain, leaf first.
        chain: Vec<Vec<u8>>,
    },
    /// A trusted certificate (DER).
    TrustedCertificate {
        /// The entry's alias.
        alias: String,
        /// The certificate.
        der: Vec<u8>,
    },
}

impl StoreEntry {
    /// The entry's alias.
    pub fn alias(&self) -> &str {
        match self {
            StoreEntry::PrivateKey { alias, .. } | StoreEntry::TrustedCertificate { alias, .. } => {
                alias
            }
        }
    }
}

/// Opens a PKCS#12 file with its password; a wrong password or a corrupt file is an error.
pub fn read_store(bytes: &[u8], password: &Password) -> Result<Vec<StoreEntry>, PkiError> {
    let store = KeyStore::from_pkcs12(bytes, password.expose(), Pkcs12ImportPolicy::Strict)
        .map_err(|e| PkiError::Keystore(e.to_string()))?;
    Ok(entries(&store))
}

/// The key and certificate entries of an opened store. Secret-key entries carry no
/// certificate; flinkguard never writes them and lists none.
pub(crate) fn entries(store: &KeyStore) -> Vec<StoreEntry> {
    store
        .entries()
        .filter_map(|(alias, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => Some(StoreEntry::PrivateKey {
                alias: alias.clone(),
                chain: chain.certs().iter().map(|c| c.as_der().to_vec()).collect(),
            }),
            KeyStoreEntry::Certificate(cert) => Some(StoreEntry::TrustedCertificate {
                alias: alias.clone(),
                der: cert.as_der().to_vec(),
            }),
            KeyStoreEntry::Secret(_) => None,
        })
        .collect()
}

/// Reads the private key of a single-key keystore (to use a client identity from PEM-less
/// tools, or to sign with a stored key).
pub fn read_private_key(
    bytes: &[u8],
    password: &Password,
) -> Result<(KeyPair, Vec<Vec<u8>>), PkiError> {
    let store = KeyStore::from_pkcs12(bytes, password.expose(), Pkcs12ImportPolicy::Strict)
        .map_err(|e| PkiError::Keystore(e.to_string()))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| PkiError::Keystore("the keystore holds no private key".into()))?;
    let key = KeyPair::from_pkcs8(chain.key().as_der())?;
    Ok((
        key,
        chain.certs().iter().map(|c| c.as_der().to_vec()).collect(),
    ))
}
