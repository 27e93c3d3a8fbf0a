//! The rules that read the files a configuration points at: keystores, truststores and the
//! Kerberos keytab. They need the files to be on this machine, so they run only when the
//! configuration was read from a file here (not from a live cluster's REST API).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flinkguard_pki::CertificateInfo;
use flinkguard_pki::inspect::EXPIRY_WARNING_DAYS;
use flinkguard_pki::java_store::{self, StoreReadError};
use flinkguard_pki::store::StoreEntry;
use time::OffsetDateTime;

use crate::rules::{SECRET_PLAIN, TLS_PUBLIC_TRUSTSTORE, literal_passwords, report};
use crate::{Finding, FlinkConfig, RuleInfo, Severity, Threat};

pub(crate) const STORE_UNREADABLE: RuleInfo = RuleInfo {
    id: "FG-KS-001",
    title: "Keystore or truststore is missing or cannot be read",
    severity: Severity::Medium,
    threat: Threat::Impersonation,
};
pub(crate) const STORE_EXPOSED: RuleInfo = RuleInfo {
    id: "FG-KS-002",
    title: "Keystore with private keys is readable by other users",
    severity: Severity::High,
    threat: Threat::Impersonation,
};
pub(crate) const CERT_EXPIRING: RuleInfo = RuleInfo {
    id: "FG-KS-003",
    title: "Certificate expired or expiring within 30 days",
    severity: Severity::Medium,
    threat: Threat::Impersonation,
};
pub(crate) const CERT_SHORT_RSA: RuleInfo = RuleInfo {
    id: "FG-KS-004",
    title: "RSA key shorter than 2048 bits",
    severity: Severity::High,
    threat: Threat::Impersonation,
};
pub(crate) const CERT_WEAK_SIGNATURE: RuleInfo = RuleInfo {
    id: "FG-KS-005",
    title: "Certificate signed with SHA-1 or MD5",
    severity: Severity::Medium,
    threat: Threat::Impersonation,
};
pub(crate) const KEYTAB_EXPOSED: RuleInfo = RuleInfo {
    id: "FG-KRB-001",
    title: "Kerberos keytab is missing or readable by other users",
    severity: Severity::High,
    threat: Threat::SecretExposure,
};

/// RSA keys below this are factorable by well-funded attackers (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;
/// A "truststore" with more trusted certificates than this is a public CA bundle (the JDK's
/// cacerts holds about 140), whatever its file name.
const PUBLIC_BUNDLE_MIN_CERTS: usize = 20;

/// Where relative paths in the configuration are resolved, and the time certificates are
/// judged at.
#[derive(Debug, Clone)]
pub struct FileContext {
    /// Flink resolves relative store paths against its working directory; so does the audit,
    /// against this one.
    pub base_dir: PathBuf,
    /// The time certificate validity is judged at.
    pub now: OffsetDateTime,
    /// The configuration file itself, when it was read from one: it holds passwords.
    pub config_file: Option<PathBuf>,
}

/// What the file rules found, and what they could not look at (and why), so that nothing
/// is skipped silently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAudit {
    /// Problems found.
    pub findings: Vec<Finding>,
    /// Checks that could not run, each naming the file and the reason.
    pub not_checked: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Keystore,
    Truststore,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Keystore => "keystore",
            StoreKind::Truststore => "truststore",
        }
    }
}

/// A store the configuration names: the key it was found under, its path and its password.
struct ConfiguredStore<'a> {
    scope: &'static str,
    kind: StoreKind,
    key: &'static str,
    path: &'a str,
    password: Option<&'a str>,
}

/// Internal and REST stores, each with Flink's fallback to the unscoped `security.ssl.*`
/// keys; a file named twice is listed once.
fn configured_stores(config: &FlinkConfig) -> Vec<ConfiguredStore<'_>> {
    const KEYS: &[(&str, StoreKind, [&str; 2], [&str; 2])] = &[
        (
            "internal",
            StoreKind::Keystore,
            ["security.ssl.internal.keystore", "security.ssl.keystore"],
            [
                "security.ssl.internal.keystore-password",
                "security.ssl.keystore-password",
            ],
        ),
        (
            "internal",
            StoreKind::Truststore,
            [
                "security.ssl.internal.truststore",
                "security.ssl.truststore",
            ],
            [
                "security.ssl.internal.truststore-password",
                "security.ssl.truststore-password",
            ],
        ),
        (
            "rest",
            StoreKind::Keystore,
            ["security.ssl.rest.keystore", "security.ssl.keystore"],
            [
                "security.ssl.rest.keystore-password",
                "security.ssl.keystore-password",
            ],
        ),
        (
            "rest",
            StoreKind::Truststore,
            ["security.ssl.rest.truststore", "security.ssl.truststore"],
            [
                "security.ssl.rest.truststore-password",
                "security.ssl.truststore-password",
            ],
        ),
    ];
    let mut seen = BTreeSet::new();
    let mut stores = Vec::new();
    for (scope, kind, path_keys, password_keys) in KEYS {
        let Some((key, path)) = path_keys
            .iter()
            .find_map(|k| config.get(k).map(|v| (*k, v.trim())))
        else {
            continue;
        };
        if path.is_empty() || !seen.insert(path) {
            continue;
        }
        let password = password_keys.iter().find_map(|k| config.get(k));
        stores.push(ConfiguredStore {
            scope,
            kind: *kind,
            key,
            path,
            password,
        });
    }
    stores
}

/// Runs the file rules.
pub fn audit_files(config: &FlinkConfig, context: &FileContext) -> FileAudit {
    let mut audit = FileAudit::default();
    for store in configured_stores(config) {
        check_store(&store, context, &mut audit);
    }
    check_keytab(config, context, &mut audit.findings);
    if let Some(file) = &context.config_file {
        check_config_file(config, file, &mut audit.findings);
    }
    audit
}

/// A configuration file with passwords in it is as secret as the passwords.
fn check_config_file(config: &FlinkConfig, file: &Path, out: &mut Vec<Finding>) {
    let Some((first, _)) = literal_passwords(config).next() else {
        return;
    };
    let count = literal_passwords(config).count();
    if let Ok(meta) = fs::metadata(file)
        && open_to_others(&meta)
    {
        report(
            out,
            &SECRET_PLAIN,
            Severity::Medium,
            first,
            format!(
                "{} holds {count} password(s) and is {}",
                file.display(),
                mode_evidence(&meta)
            ),
            format!(
                "chmod 600 {}  # and chown it to the Flink user",
                file.display()
            ),
        );
    }
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let path = Path::new(path.strip_prefix("file://").unwrap_or(path));
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// `0644 (owner uid 1000)`: what a `ls -l` reader needs to see.
fn mode_evidence(meta: &fs::Metadata) -> String {
    format!(
        "mode {:04o} (owner uid {})",
        meta.permissions().mode() & 0o7777,
        meta.uid()
    )
}

/// Group or others may read it (and take the key) or write it (and swap the key).
fn open_to_others(meta: &fs::Metadata) -> bool {
    meta.permissions().mode() & 0o066 != 0
}

fn check_store(store: &ConfiguredStore<'_>, context: &FileContext, audit: &mut FileAudit) {
    let path = resolve(&context.base_dir, store.path);
    let shown = path.display();
    let what = format!("{} {}", store.scope, store.kind.name());
    let unreadable = |audit: &mut FileAudit, problem: String| {
        report(
            &mut audit.findings,
            &STORE_UNREADABLE,
            Severity::Medium,
            store.key,
            format!("{}={}: {problem}", store.key, store.path),
            format!(
                "point {} at the {what} (absolute path), readable by the Flink user; \
                 `flinkguard init` and `flinkguard flink-config` write both",
                store.key
            ),
        );
    };
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return unreadable(audit, format!("{shown} does not exist"));
        }
        Err(e) => return unreadable(audit, format!("cannot read {shown}: {e}")),
    };
    if let Ok(meta) = fs::metadata(&path)
        && store.kind == StoreKind::Keystore
        && open_to_others(&meta)
    {
        report(
            &mut audit.findings,
            &STORE_EXPOSED,
            Severity::High,
            store.key,
            format!("{}={}: {}", store.key, store.path, mode_evidence(&meta)),
            format!("chmod 600 {shown}  # and chown it to the Flink user"),
        );
    }
    let entries = match java_store::read_certificates(&bytes, store.password) {
        Ok((_, entries)) => entries,
        Err(e @ StoreReadError::PasswordNeeded(_)) => {
            audit.not_checked.push(format!(
                "certificates in {shown} ({}): {e}, and the configuration has none \
                 (it may come from the environment)",
                store.key
            ));
            return;
        }
        Err(e) => return unreadable(audit, format!("{shown}: {e}")),
    };
    let trusted = entries
        .iter()
        .filter(|e| matches!(e, StoreEntry::TrustedCertificate { .. }))
        .count();
    if store.scope == "internal"
        && store.kind == StoreKind::Truststore
        && trusted > PUBLIC_BUNDLE_MIN_CERTS
    {
        report(
            &mut audit.findings,
            &TLS_PUBLIC_TRUSTSTORE,
            Severity::Critical,
            store.key,
            format!(
                "{}={}: {trusted} trusted certificates (a public CA bundle)",
                store.key, store.path
            ),
            "security.ssl.internal.truststore: <a store holding only the cluster's own \
             certificate or private CA>",
        );
        // A public bundle's own roots are not the cluster's certificates: judging their
        // expiry or signatures would only bury the finding that matters.
        return;
    }
    for entry in &entries {
        let (alias, ders) = match entry {
            StoreEntry::PrivateKey { alias, chain } => (alias, chain.as_slice()),
            StoreEntry::TrustedCertificate { alias, der } => (alias, std::slice::from_ref(der)),
        };
        for der in ders {
            match CertificateInfo::from_der(der) {
                Ok(info) => check_certificate(store, &path, alias, &info, context, audit),
                Err(e) => audit
                    .not_checked
                    .push(format!("a certificate of entry `{alias}` in {shown}: {e}")),
            }
        }
    }
}

fn check_certificate(
    store: &ConfiguredStore<'_>,
    path: &Path,
    alias: &str,
    info: &CertificateInfo,
    context: &FileContext,
    audit: &mut FileAudit,
) {
    let located = format!(
        "{}={} entry `{alias}`, subject {}",
        store.key, store.path, info.subject
    );
    let renew = "renew it: `flinkguard pki renew-rest` for the REST certificate, \
                 `flinkguard init --force` for the cluster identity";
    if let Some(warning) = info.validity_warning(context.now) {
        report(
            &mut audit.findings,
            &CERT_EXPIRING,
            Severity::Medium,
            store.key,
            format!(
                "{located}: not after {} ({warning}; warning at {EXPIRY_WARNING_DAYS} days)",
                info.not_after.date()
            ),
            renew,
        );
    }
    if info.key.starts_with("RSA") && info.key_bits.is_some_and(|bits| bits < MIN_RSA_BITS) {
        report(
            &mut audit.findings,
            &CERT_SHORT_RSA,
            Severity::High,
            store.key,
            format!("{located}: {}", info.key),
            format!(
                "replace the key in {}: `flinkguard init --key-algorithm ecdsa-p256` \
                 (or rsa-3072)",
                path.display()
            ),
        );
    }
    // A self-signed certificate's own signature proves nothing (it is trusted by being
    // pinned or installed), so only signatures by an issuer count.
    let weak_signature = {
        let alg = info.signature_algorithm.to_ascii_lowercase();
        alg.contains("sha1") || alg.contains("md5") || alg.contains("md2")
    };
    if weak_signature && !info.self_signed {
        report(
            &mut audit.findings,
            &CERT_WEAK_SIGNATURE,
            Severity::Medium,
            store.key,
            format!("{located}: signed with {}", info.signature_algorithm),
            format!("re-issue it with SHA-256; {renew}"),
        );
    }
}

fn check_keytab(config: &FlinkConfig, context: &FileContext, out: &mut Vec<Finding>) {
    let key = "security.kerberos.login.keytab";
    let Some(value) = config.get(key).map(str::trim).filter(|v| !v.is_empty()) else {
        return;
    };
    let path = resolve(&context.base_dir, value);
    let shown = path.display();
    match fs::metadata(&path) {
        Ok(meta) if open_to_others(&meta) => report(
            out,
            &KEYTAB_EXPOSED,
            Severity::High,
            key,
            format!("{key}={value}: {}", mode_evidence(&meta)),
            format!(
                "chmod 600 {shown}  # a keytab is a password: whoever reads it is that principal"
            ),
        ),
        Ok(_) => {}
        Err(e) => report(
            out,
            &KEYTAB_EXPOSED,
            Severity::Medium,
            key,
            format!("{key}={value}: cannot read {shown}: {e}"),
            format!(
                "point {key} at the keytab (absolute path), mode 0600, owned by the Flink user"
            ),
        ),
    }
}
