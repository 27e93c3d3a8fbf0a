//! The PKI a Flink deployment needs, generated in memory and installed in one step.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flinkguard_files::{self as files, FileError, Mode};

use crate::cert::{self, AltName, CertificateSpec, NameAttribute, Profile, Signer};
use crate::inspect::CertificateInfo;
use crate::store::{self, StoreEntry};
use crate::{DnsName, GroupName, KeyAlgorithm, KeyPair, Password, PkiError, UserName};

/// Aliases inside the PKCS#12 files; Flink picks the single key entry whatever its alias.
pub const INTERNAL_ALIAS: &str = "flink.internal";
/// Alias of the REST server key entry.
pub const REST_ALIAS: &str = "flink.rest";
/// Alias of the CA in truststores.
pub const CA_ALIAS: &str = "flinkguard.ca";
/// Alias of the gateway→Flink REST identity's key entry.
pub const UPSTREAM_ALIAS: &str = "flink.upstream";
/// The PKI's subdirectory holding the gateway→Flink REST identity.
pub const UPSTREAM_DIR: &str = "upstream";
/// The command that creates the upstream identity in a PKI made before it existed.
pub const CREATE_UPSTREAM_COMMAND: &str = "flinkguard pki create-upstream";

/// Where every file of the PKI lives, relative to its directory (`pki/` by default).
#[derive(Debug, Clone)]
pub struct PkiLayout {
    root: PathBuf,
}

impl PkiLayout {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> PkiLayout {
        PkiLayout { root: root.into() }
    }
    /// The PKI directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Cluster identity: Flink's internal keystore *and* truststore.
    pub fn internal_keystore(&self) -> PathBuf {
        self.root.join("internal.p12")
    }
    /// Password of the internal keystore (also its key password).
    pub fn internal_password(&self) -> PathBuf {
        self.root.join("internal.password")
    }
    /// The cluster identity's certificate, PEM (public).
    pub fn internal_cert(&self) -> PathBuf {
        self.root.join("internal.crt")
    }
    /// The CA certificate, PEM: the bundle curl and browsers trust (`curl --cacert`).
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.crt")
    }
    /// The CA private key, PKCS#8 PEM.
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }
    /// REST server certificate chain, PEM (server certificate, then the CA).
    pub fn rest_cert(&self) -> PathBuf {
        self.root.join("rest.crt")
    }
    /// REST server private key, PKCS#8 PEM.
    pub fn rest_key(&self) -> PathBuf {
        self.root.join("rest.key")
    }
    /// REST server keystore for Java (`security.ssl.rest.keystore`).
    pub fn rest_keystore(&self) -> PathBuf {
        self.root.join("rest.p12")
    }
    /// Password of the REST keystore.
    pub fn rest_password(&self) -> PathBuf {
        self.root.join("rest.password")
    }
    /// REST truststore: the CA as a `trustedCertEntry` (Flink's CLI, Java clients).
    pub fn rest_truststore(&self) -> PathBuf {
        self.root.join("rest-truststore.p12")
    }
    /// Password of the REST truststore.
    pub fn rest_truststore_password(&self) -> PathBuf {
        self.root.join("rest-truststore.password")
    }
    /// The gateway→Flink REST identity's directory: one self-signed certificate, *not* signed
    /// by the CA, so no user's client certificate opens Flink's REST endpoint directly.
    pub fn upstream_dir(&self) -> PathBuf {
        self.root.join(UPSTREAM_DIR)
    }
    /// The upstream identity for Flink: REST keystore *and* truststore (PKCS#12).
    pub fn upstream_keystore(&self) -> PathBuf {
        self.upstream_dir().join(UpstreamFiles::KEYSTORE)
    }
    /// Password of the upstream keystore (also its key password).
    pub fn upstream_password(&self) -> PathBuf {
        self.upstream_dir().join(UpstreamFiles::PASSWORD)
    }
    /// The upstream certificate, PEM: the gateway's client certificate and the one server
    /// certificate it accepts from Flink.
    pub fn upstream_cert(&self) -> PathBuf {
        self.upstream_dir().join(UpstreamFiles::CERT)
    }
    /// The upstream private key, PKCS#8 PEM (the gateway's client key).
    pub fn upstream_key(&self) -> PathBuf {
        self.upstream_dir().join(UpstreamFiles::KEY)
    }
    /// The upstream keystore, or an error naming the missing file and the command that
    /// creates it (PKIs made before flinkguard secured the gateway→Flink hop lack it).
    pub fn require_upstream(&self) -> Result<(), PkiError> {
        for path in [
            self.upstream_keystore(),
            self.upstream_password(),
            self.upstream_cert(),
            self.upstream_key(),
        ] {
            if !path.is_file() {
                return Err(PkiError::InvalidFile {
                    path,
                    problem: format!(
                        "missing: the gateway→Flink REST identity is not there (PKIs created before it existed lack it); run `{CREATE_UPSTREAM_COMMAND}` to create it"
                    ),
                });
            }
        }
        Ok(())
    }
    /// Directory of issued client identities.
    pub fn clients_dir(&self) -> PathBuf {
        self.root.join("clients")
    }
    /// One client's directory.
    pub fn client_dir(&self, user: &UserName) -> PathBuf {
        self.clients_dir().join(user.as_str())
    }

    /// Reads a password file, naming the file when it is missing or unusable.
    pub fn read_password(&self, path: &Path) -> Result<Password, PkiError> {
        let text = fs::read_to_string(path).map_err(|e| PkiError::file("read", path, e))?;
        Password::from_file_contents(&text).map_err(|e| PkiError::in_file(path, e))
    }

    /// Reads a keystore and its password file, naming both on failure.
    pub fn read_store(
        &self,
        store_path: &Path,
        password_path: &Path,
    ) -> Result<Vec<StoreEntry>, PkiError> {
        let password = self.read_password(password_path)?;
        let bytes = fs::read(store_path).map_err(|e| PkiError::file("read", store_path, e))?;
        store::read_store(&bytes, &password).map_err(|e| {
            PkiError::InvalidFile {
                path: store_path.to_owned(),
                problem: format!(
                    "{e}; the file is corrupt or {} does not hold its password (rerun `flinkguard init --force` to regenerate)",
                    password_path.display()
                ),
            }
        })
    }

    /// Whether any PKI material already exists here.
    pub fn exists(&self) -> bool {
        fs::read_dir(&self.root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }
}

/// Validity of each kind of certificate, in days. Always explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidityDays {
    /// Cluster identity (internal mTLS).
    pub internal: u32,
    /// REST server certificate.
    pub rest: u32,
    /// CA.
    pub ca: u32,
    /// Client certificates.
    pub client: u32,
}

impl Default for ValidityDays {
    fn default() -> Self {
        ValidityDays {
            internal: 365,
            rest: 90,
            ca: 3650,
            client: 90,
        }
    }
}

/// What `flinkguard init` creates the PKI for.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// Cluster name, used in subjects.
    pub cluster_name: String,
    /// DNS names the REST endpoint (the gateway) is reached by.
    pub hosts: Vec<DnsName>,
    /// IP addresses the REST endpoint is reached by.
    pub ips: Vec<IpAddr>,
    /// Key algorithm for every key.
    pub key: KeyAlgorithm,
    /// Validity of each certificate kind.
    pub validity: ValidityDays,
}

/// A complete PKI in memory, not yet on disk.
#[derive(Debug)]
pub struct GeneratedPki {
    files: Vec<(PathBuf, Vec<u8>, Mode)>,
    internal_fingerprint: String,
    upstream_fingerprint: String,
}

impl GeneratedPki {
    /// SHA-1 fingerprint of the cluster identity, keytool notation.
    pub fn internal_fingerprint(&self) -> &str {
        &self.internal_fingerprint
    }
    /// SHA-1 fingerprint of the gateway→Flink REST identity, keytool notation.
    pub fn upstream_fingerprint(&self) -> &str {
        &self.upstream_fingerprint
    }
}

/// Generates every key, certificate, keystore and password of a new PKI.
pub fn generate(request: &InitRequest) -> Result<GeneratedPki, PkiError> {
    if request.hosts.is_empty() && request.ips.is_empty() {
        return Err(PkiError::InvalidInput(
            "the REST certificate needs at least one --host or --ip".into(),
        ));
    }
    let v = &request.validity;
    let name = &request.cluster_name;

    // Cluster identity: self-signed, used as keystore and truststore (Flink's documented
    // setup), so it trusts exactly itself and nothing a CA might also have signed.
    let [internal_key, ca_key, rest_key, upstream_key] = generate_keys(request.key);
    let (internal_key, ca_key, rest_key, upstream_key) =
        (internal_key?, ca_key?, rest_key?, upstream_key?);
    let internal = SelfSignedIdentity::issue(
        name,
        "flink.internal",
        vec![],
        v.internal,
        internal_key,
        INTERNAL_ALIAS,
    )?;
    // The gateway→Flink REST identity: the same kind of self-signed pair, for another hop.
    let upstream = SelfSignedIdentity::upstream(name, v.internal, upstream_key)?;

    let ca_cert = cert::issue(
        &CertificateSpec {
            subject: vec![
                NameAttribute::Organization(format!("flinkguard {name}")),
                NameAttribute::CommonName(format!("{name} REST and user CA")),
            ],
            alt_names: vec![],
            profile: Profile::Ca,
            validity_days: v.ca,
        },
        &ca_key,
        None,
    )?;
    let ca = Signer {
        cert_der: &ca_cert,
        key: &ca_key,
    };

    let rest_cert = issue_rest_cert(name, &request.hosts, &request.ips, v.rest, &rest_key, ca)?;
    let rest_password = Password::generate();
    let rest_store = store::keystore(
        REST_ALIAS,
        &rest_key,
        &[&rest_cert, &ca_cert],
        &rest_password,
    )?;
    let truststore_password = Password::generate();
    let truststore = store::truststore(&[(CA_ALIAS, &ca_cert)], &truststore_password)?;

    // A layout rooted at "" yields the paths relative to the PKI directory.
    let rel = PkiLayout::new("");
    let secret = |text: &Password| text.expose().as_bytes().to_vec();
    let mut files = vec![
        (rel.internal_keystore(), internal.keystore, Mode::Secret),
        (
            rel.internal_password(),
            secret(&internal.password),
            Mode::Secret,
        ),
        (
            rel.internal_cert(),
            cert::to_pem(&internal.cert_der).into_bytes(),
            Mode::Public,
        ),
        (
            rel.ca_cert(),
            cert::to_pem(&ca_cert).into_bytes(),
            Mode::Public,
        ),
        (
            rel.ca_key(),
            ca_key.pkcs8_pem().as_bytes().to_vec(),
            Mode::Secret,
        ),
        (
            rel.rest_cert(),
            format!("{}{}", cert::to_pem(&rest_cert), cert::to_pem(&ca_cert)).into_bytes(),
            Mode::Public,
        ),
        (
            rel.rest_key(),
            rest_key.pkcs8_pem().as_bytes().to_vec(),
            Mode::Secret,
        ),
        (rel.rest_keystore(), rest_store, Mode::Secret),
        (rel.rest_password(), secret(&rest_password), Mode::Secret),
        (rel.rest_truststore(), truststore, Mode::Public),
        (
            rel.rest_truststore_password(),
            secret(&truststore_password),
            Mode::Secret,
        ),
    ];
    let upstream_fingerprint = upstream.sha1_fingerprint();
    files.extend(
        upstream
            .into_files()
            .into_iter()
            .map(|(name, bytes, mode)| (rel.upstream_dir().join(name), bytes, mode)),
    );
    Ok(GeneratedPki {
        files,
        internal_fingerprint: crate::inspect::sha1_fingerprint(&internal.cert_der),
        upstream_fingerprint,
    })
}

/// A self-signed key pair with serverAuth and clientAuth, in one PKCS#12 file used as keystore
/// *and* truststore: it trusts exactly itself. The cluster identity and the gateway→Flink REST
/// identity are both made (and written) this way.
struct SelfSignedIdentity {
    cert_der: Vec<u8>,
    key: KeyPair,
    keystore: Vec<u8>,
    password: Password,
}

impl SelfSignedIdentity {
    fn issue(
        cluster_name: &str,
        common_name: &str,
        alt_names: Vec<AltName>,
        days: u32,
        key: KeyPair,
        alias: &str,
    ) -> Result<SelfSignedIdentity, PkiError> {
        let cert_der = cert::issue(
            &CertificateSpec {
                subject: vec![
                    NameAttribute::Organization(format!("flinkguard {cluster_name}")),
                    NameAttribute::CommonName(common_name.into()),
                ],
                alt_names,
                profile: Profile::ClusterIdentity,
                validity_days: days,
            },
            &key,
            None,
        )?;
        let password = Password::generate();
        let keystore = store::keystore(alias, &key, &[&cert_der], &password)?;
        Ok(SelfSignedIdentity {
            cert_der,
            key,
            keystore,
            password,
        })
    }

    /// The gateway→Flink REST identity: Flink's REST endpoint binds loopback, so the names it
    /// is reached by are fixed.
    fn upstream(
        cluster_name: &str,
        days: u32,
        key: KeyPair,
    ) -> Result<SelfSignedIdentity, PkiError> {
        Self::issue(
            cluster_name,
            "flink.upstream",
            vec![
                AltName::Dns("localhost".into()),
                AltName::Ip(IpAddr::from([127, 0, 0, 1])),
                AltName::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
            days,
            key,
            UPSTREAM_ALIAS,
        )
    }

    fn sha1_fingerprint(&self) -> String {
        crate::inspect::sha1_fingerprint(&self.cert_der)
    }

    /// The upstream directory's files, by name: keystore, password, certificate, key.
    fn into_files(self) -> Vec<(&'static str, Vec<u8>, Mode)> {
        vec![
            (UpstreamFiles::KEYSTORE, self.keystore, Mode::Secret),
            (
                UpstreamFiles::PASSWORD,
                self.password.expose().as_bytes().to_vec(),
                Mode::Secret,
            ),
            (
                UpstreamFiles::CERT,
                cert::to_pem(&self.cert_der).into_bytes(),
                Mode::Public,
            ),
            (
                UpstreamFiles::KEY,
                self.key.pkcs8_pem().as_bytes().to_vec(),
                Mode::Secret,
            ),
        ]
    }
}

/// File names inside `pki/upstream/`.
struct UpstreamFiles;

impl UpstreamFiles {
    const KEYSTORE: &'static str = "upstream.p12";
    const PASSWORD: &'static str = "upstream.password";
    const CERT: &'static str = "upstream.crt";
    const KEY: &'static str = "upstream.key";
}

/// What `pki create-upstream` made.
#[derive(Debug, Clone)]
pub struct CreatedUpstream {
    /// SHA-1 fingerprint of the new certificate, keytool notation (Flink pins it).
    pub sha1_fingerprint: String,
    /// Where the previous upstream identity was moved when `force` replaced one.
    pub replaced_to: Option<PathBuf>,
}

/// Creates (or with `force` replaces) the gateway→Flink REST identity of an existing PKI, in
/// one step: written to a staging directory, renamed into place; a replaced one is moved aside.
/// A running gateway reloads it; Flink reads its REST keystore at start, so restart Flink.
pub fn create_upstream(
    layout: &PkiLayout,
    cluster_name: &str,
    key: KeyAlgorithm,
    days: u32,
    force: bool,
) -> Result<CreatedUpstream, PkiError> {
    if !layout.root().is_dir() {
        return Err(PkiError::InvalidFile {
            path: layout.root().to_owned(),
            problem: "no PKI here; run `flinkguard init` first".into(),
        });
    }
    let identity = SelfSignedIdentity::upstream(cluster_name, days, KeyPair::generate(key)?)?;
    let sha1_fingerprint = identity.sha1_fingerprint();
    let files: Vec<(PathBuf, Vec<u8>, Mode)> = identity
        .into_files()
        .into_iter()
        .map(|(name, bytes, mode)| (PathBuf::from(name), bytes, mode))
        .collect();
    let replaced_to = install_dir(&files, &layout.upstream_dir(), force)?;
    Ok(CreatedUpstream {
        sha1_fingerprint,
        replaced_to,
    })
}

/// The REST (gateway) server certificate: every host and IP as a SAN, the first as CN.
fn issue_rest_cert(
    cluster_name: &str,
    hosts: &[DnsName],
    ips: &[IpAddr],
    days: u32,
    key: &KeyPair,
    ca: Signer<'_>,
) -> Result<Vec<u8>, PkiError> {
    if hosts.is_empty() && ips.is_empty() {
        return Err(PkiError::InvalidInput(
            "the REST certificate needs at least one --host or --ip".into(),
        ));
    }
    let common_name = hosts
        .iter()
        .map(|h| h.to_string())
        .chain(ips.iter().map(|ip| ip.to_string()))
        .next()
        .unwrap_or_else(|| cluster_name.to_owned());
    let alt_names = hosts
        .iter()
        .map(|h| AltName::Dns(h.to_string()))
        .chain(ips.iter().map(|ip| AltName::Ip(*ip)))
        .collect();
    cert::issue(
        &CertificateSpec {
            subject: vec![
                NameAttribute::Organization(format!("flinkguard {cluster_name}")),
                NameAttribute::CommonName(common_name),
            ],
            alt_names,
            profile: Profile::Server,
            validity_days: days,
        },
        key,
        Some(ca),
    )
}

/// What `pki renew-rest` issues the new REST certificate for.
#[derive(Debug, Clone)]
pub struct RenewRestRequest {
    /// Cluster name, used in the subject.
    pub cluster_name: String,
    /// DNS names the gateway is reached by.
    pub hosts: Vec<DnsName>,
    /// IP addresses the gateway is reached by.
    pub ips: Vec<IpAddr>,
    /// Days of validity.
    pub days: u32,
}

/// Replaces the REST (gateway) certificate and key with new ones from the same CA, so clients
/// keep trusting it. The keystore keeps its password (Flink configs refer to it). Each file is
/// replaced atomically, the key last but one and the certificate last: a reader that sees a
/// new certificate sees its key. Returns the new certificate's details.
pub fn renew_rest(
    layout: &PkiLayout,
    request: &RenewRestRequest,
) -> Result<CertificateInfo, PkiError> {
    let (ca_cert, ca_key) = read_ca(layout)?;
    let key = KeyPair::generate(ca_key.algorithm())?;
    let der = issue_rest_cert(
        &request.cluster_name,
        &request.hosts,
        &request.ips,
        request.days,
        &key,
        Signer {
            cert_der: &ca_cert,
            key: &ca_key,
        },
    )?;
    let password = layout.read_password(&layout.rest_password())?;
    let p12 = store::keystore(REST_ALIAS, &key, &[&der, &ca_cert], &password)?;
    files::write_atomic(&layout.rest_keystore(), &p12, Mode::Secret)?;
    files::write_atomic(&layout.rest_key(), key.pkcs8_pem().as_bytes(), Mode::Secret)?;
    files::write_atomic(
        &layout.rest_cert(),
        format!("{}{}", cert::to_pem(&der), cert::to_pem(&ca_cert)).as_bytes(),
        Mode::Public,
    )?;
    CertificateInfo::from_der(&der)
}

/// The CA's certificate (DER) and key.
fn read_ca(layout: &PkiLayout) -> Result<(Vec<u8>, KeyPair), PkiError> {
    let ca_pem = fs::read_to_string(layout.ca_cert())
        .map_err(|e| PkiError::file("read", layout.ca_cert(), e))?;
    let ca_cert = cert::parse_pem_certificates(&ca_pem)
        .map_err(|e| PkiError::in_file(&layout.ca_cert(), e))?
        .remove(0);
    let ca_key_pem = fs::read_to_string(layout.ca_key())
        .map_err(|e| PkiError::file("read", layout.ca_key(), e))?;
    let ca_key =
        KeyPair::from_pem(&ca_key_pem).map_err(|e| PkiError::in_file(&layout.ca_key(), e))?;
    Ok((ca_cert, ca_key))
}

/// Four independent key pairs. RSA generation dominates `init` (hundreds of milliseconds per
/// key), so those are made side by side; for EC keys a thread costs more than the key (each new
/// thread seeds aws-lc's random generator from CPU jitter, measured with perf).
fn generate_keys(algorithm: KeyAlgorithm) -> [Result<KeyPair, PkiError>; 4] {
    if algorithm.is_ec() {
        return [(); 4].map(|()| KeyPair::generate(algorithm));
    }
    std::thread::scope(|scope| {
        let handles = [(); 4].map(|()| scope.spawn(|| KeyPair::generate(algorithm)));
        handles.map(|h| {
            h.join()
                .unwrap_or(Err(PkiError::Crypto("key generation panicked")))
        })
    })
}

/// The result of installing a PKI.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Where the previous PKI was moved when `--force` replaced one.
    pub replaced_to: Option<PathBuf>,
}

/// Writes a generated PKI to `layout.root()` in one step.
///
/// Every file is written into a private staging directory next to the target, flushed, and
/// the directory is renamed into place: a failure at any point leaves the previous state.
/// An existing PKI is never overwritten unless `force`; then it is moved aside (to
/// `<dir>.replaced-<timestamp>`), not deleted, because it holds the only copy of the old keys.
pub fn install(
    generated: &GeneratedPki,
    layout: &PkiLayout,
    force: bool,
) -> Result<Installed, PkiError> {
    if layout.exists() && !force {
        return Err(PkiError::AlreadyExists(layout.root().to_owned()));
    }
    let replaced_to = install_dir(&generated.files, layout.root(), true)?;
    Ok(Installed { replaced_to })
}

/// Writes `files` (paths relative to `target`) into a private staging directory next to
/// `target`, flushes them, and renames the directory into place. An existing non-empty
/// `target` is refused unless `force`; then it is moved aside (`<dir>.replaced-<timestamp>`).
/// A failure at any point leaves the previous state. Returns where the old one went.
fn install_dir(
    files: &[(PathBuf, Vec<u8>, Mode)],
    target: &Path,
    force: bool,
) -> Result<Option<PathBuf>, PkiError> {
    let occupied = fs::read_dir(target)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if occupied && !force {
        return Err(PkiError::AlreadyExists(target.to_owned()));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let staging = files::temp_sibling(target);
    let staged = (|| {
        files::create_private_dir(&staging)?;
        for (rel, bytes, mode) in files {
            let path = staging.join(rel);
            if let Some(dir) = path.parent()
                && dir != staging
            {
                files::create_private_dir(dir)?;
            }
            files::write_atomic(&path, bytes, *mode)?;
        }
        files::sync_dir(&staging)
    })();
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&staging);
        return Err(e.into());
    }

    let mut replaced_to = None;
    if target.exists() {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let aside = parent.join(format!(
            "{}.replaced-{stamp}",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        if let Err(e) = fs::rename(target, &aside) {
            let _ = fs::remove_dir_all(&staging);
            return Err(PkiError::file("move aside", target, e));
        }
        replaced_to = Some(aside);
    }
    if let Err(e) = fs::rename(&staging, target) {
        if let Some(aside) = &replaced_to {
            let _ = fs::rename(aside, target);
        }
        let _ = fs::remove_dir_all(&staging);
        return Err(PkiError::file("install", target, e));
    }
    files::sync_dir(&parent)?;
    Ok(replaced_to)
}

/// What `flinkguard pki issue-client` creates.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The user: the certificate's CN.
    pub user: UserName,
    /// The groups: one `O` each.
    pub groups: Vec<GroupName>,
    /// Days of validity.
    pub days: u32,
    /// Replace an existing identity for this user.
    pub force: bool,
}

/// Files of one client identity.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    /// The directory holding them.
    pub dir: PathBuf,
    /// Certificate, PEM (curl `--cert`).
    pub cert: PathBuf,
    /// Private key, PKCS#8 PEM (curl `--key`).
    pub key: PathBuf,
    /// PKCS#12 with key and chain (Java, Flink's CLI `security.ssl.rest.keystore`).
    pub keystore: PathBuf,
    /// Password of the PKCS#12 (also the key password).
    pub password: PathBuf,
    /// SHA-256 fingerprint of the certificate.
    pub sha256: String,
}

impl ClientFiles {
    /// The files of the identity in `dir` (`pki/clients/<user>`).
    pub fn in_dir(dir: PathBuf) -> ClientFiles {
        ClientFiles {
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
            keystore: dir.join("client.p12"),
            password: dir.join("client.password"),
            dir,
            sha256: String::new(),
        }
    }
}

/// Issues a client certificate signed by the PKI's CA.
pub fn issue_client(layout: &PkiLayout, request: &ClientRequest) -> Result<ClientFiles, PkiError> {
    let (ca_cert, ca_key) = read_ca(layout)?;
    let dir = layout.client_dir(&request.user);
    if dir.exists() && !request.force {
        return Err(PkiError::AlreadyExists(dir));
    }
    let key = KeyPair::generate(ca_key.algorithm())?;
    let mut subject: Vec<NameAttribute> = request
        .groups
        .iter()
        .map(|g| NameAttribute::Organization(g.as_str().to_owned()))
        .collect();
    subject.push(NameAttribute::CommonName(request.user.as_str().to_owned()));
    let der = cert::issue(
        &CertificateSpec {
            subject,
            alt_names: vec![],
            profile: Profile::Client,
            validity_days: request.days,
        },
        &key,
        Some(Signer {
            cert_der: &ca_cert,
            key: &ca_key,
        }),
    )?;
    let password = Password::generate();
    let p12 = store::keystore(request.user.as_str(), &key, &[&der, &ca_cert], &password)?;

    files::create_private_dir(&layout.clients_dir())?;
    let staging = files::temp_sibling(&dir);
    let staged_files = ClientFiles::in_dir(staging.clone());
    let staged = (|| -> Result<(), FileError> {
        files::create_private_dir(&staging)?;
        files::write_atomic(
            &staged_files.cert,
            cert::to_pem(&der).as_bytes(),
            Mode::Public,
        )?;
        files::write_atomic(&staged_files.key, key.pkcs8_pem().as_bytes(), Mode::Secret)?;
        files::write_atomic(&staged_files.keystore, &p12, Mode::Secret)?;
        files::write_atomic(
            &staged_files.password,
            password.expose().as_bytes(),
            Mode::Secret,
        )
    })();
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&staging);
        return Err(e.into());
    }
    if dir.exists() {
        // --force: the old identity is replaced; its certificate stays valid until it expires,
        // which the operator is told about by the CLI.
        fs::remove_dir_all(&dir).map_err(|e| PkiError::file("replace", &dir, e))?;
    }
    fs::rename(&staging, &dir).map_err(|e| {
        let _ = fs::remove_dir_all(&staging);
        PkiError::file("install", &dir, e)
    })?;
    let mut out = ClientFiles::in_dir(dir);
    out.sha256 = CertificateInfo::from_der(&der)?.sha256;
    Ok(out)
}

/// One certificate found in the PKI directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShownCertificate {
    /// What it is (`cluster identity`, `CA`, `REST server`, `client alice`, ...).
    pub role: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// The keystore alias, or `None` for PEM files.
    pub alias: Option<String>,
    /// `PrivateKeyEntry`, `trustedCertEntry` or `PEM`, as keytool would call it.
    pub entry: &'static str,
    /// The certificate's details.
    pub certificate: CertificateInfo,
}

/// Reads every certificate of the PKI: each keystore opened with its password (as Flink will),
/// plus the CA's PEM.
pub fn show(layout: &PkiLayout) -> Result<Vec<ShownCertificate>, PkiError> {
    if !layout.root().is_dir() {
        return Err(PkiError::InvalidFile {
            path: layout.root().to_owned(),
            problem: "no PKI here; run `flinkguard init` first".into(),
        });
    }
    let mut out = Vec::new();
    let mut push_store =
        |role: String, store: PathBuf, password: PathBuf| -> Result<(), PkiError> {
            for entry in layout.read_store(&store, &password)? {
                let (kind, der) = match &entry {
                    StoreEntry::PrivateKey { chain, .. } => (
                        "PrivateKeyEntry",
                        chain.first().cloned().unwrap_or_default(),
                    ),
                    StoreEntry::TrustedCertificate { der, .. } => ("trustedCertEntry", der.clone()),
                };
                out.push(ShownCertificate {
                    role: role.clone(),
                    file: store.clone(),
                    alias: Some(entry.alias().to_owned()),
                    entry: kind,
                    certificate: CertificateInfo::from_der(&der)
                        .map_err(|e| PkiError::in_file(&store, e))?,
                });
            }
            Ok(())
        };
    push_store(
        "cluster identity".into(),
        layout.internal_keystore(),
        layout.internal_password(),
    )?;
    push_store(
        "REST server".into(),
        layout.rest_keystore(),
        layout.rest_password(),
    )?;
    if layout.upstream_keystore().exists() {
        push_store(
            "gateway→Flink REST identity".into(),
            layout.upstream_keystore(),
            layout.upstream_password(),
        )?;
    }
    push_store(
        "REST truststore".into(),
        layout.rest_truststore(),
        layout.rest_truststore_password(),
    )?;

    let mut clients: Vec<PathBuf> = match fs::read_dir(layout.clients_dir()) {
        Ok(dir) => dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(PkiError::file("list", layout.clients_dir(), e)),
    };
    clients.sort();
    for dir in clients {
        let files = ClientFiles::in_dir(dir.clone());
        let user = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        push_store(format!("client {user}"), files.keystore, files.password)?;
    }

    let ca_path = layout.ca_cert();
    let ca_pem = fs::read_to_string(&ca_path).map_err(|e| PkiError::file("read", &ca_path, e))?;
    for der in cert::parse_pem_certificates(&ca_pem).map_err(|e| PkiError::in_file(&ca_path, e))? {
        out.push(ShownCertificate {
            role: "CA".into(),
            file: ca_path.clone(),
            alias: None,
            entry: "PEM",
            certificate: CertificateInfo::from_der(&der)
                .map_err(|e| PkiError::in_file(&ca_path, e))?,
        });
    }
    Ok(out)
}
