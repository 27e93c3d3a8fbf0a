//! Which keys name secrets.

use crate::RulesError;

/// What a redacted value becomes: Flink's own `GlobalConfiguration.HIDDEN_CONTENT`, so a value
/// Flink hid and a value flinkguard hid look the same, and redacting twice changes nothing.
pub const REDACTED: &str = "******";

/// The default key patterns: case-insensitive substrings of a key, compared with every
/// character that is not an ASCII letter or digit removed from both sides (so `access-key`
/// also matches `fs.s3a.access.key`, `AWS_ACCESS_KEY_ID` and `accessKey`).
///
/// The first ten are Flink 2.3's own `GlobalConfiguration.SENSITIVE_KEYS` (checked against the
/// distribution's bytecode; its `api-key` is `apikey` once normalized): whatever Flink hides,
/// flinkguard hides too. The others cover
/// what Flink shows in clear but is a secret all the same: object-store access keys
/// (`s3.access-key`), private and signing keys, Kerberos keytabs, JAAS configurations, HTTP
/// authorization headers and cookies, connection strings.
pub const DEFAULT_KEY_PATTERNS: &[&str] = &[
    // Flink's GlobalConfiguration.SENSITIVE_KEYS.
    "password",
    "secret",
    "fs.azure.account.key",
    // Flink also lists `api-key`: the same pattern once normalized.
    "apikey",
    "auth-params",
    "service-key",
    "token",
    "basic-auth",
    "jaas.config",
    "http-headers",
    // flinkguard's additions.
    "passwd",
    "pwd",
    "passphrase",
    "credential",
    "access-key",
    "account-key",
    "private-key",
    "signing-key",
    "encryption-key",
    "master-key",
    "session-key",
    "keytab",
    "jaas",
    "authorization",
    "bearer",
    "cookie",
    "connection-string",
];

/// The rules: which keys are secret, and how long a log line may get before it is withheld
/// whole.
///
/// False positives are accepted, false negatives are not: a key matches when any pattern is a
/// substring of it, so `token.ttl`, `security.delegation.tokens.enabled` or
/// `taskmanager.credential-provider` are redacted too (Flink itself hides the first two, by
/// the same substring rule). There is deliberately no exemption list: narrow the patterns
/// instead ([`RedactionRules::new`]) if a deployment wants such a key visible.
#[derive(Debug, Clone)]
pub struct RedactionRules {
    patterns: Vec<String>,
    /// The patterns reduced to lowercase ASCII letters and digits.
    normalized: Vec<Vec<u8>>,
    /// For each byte, the normalized patterns that start with it: a key is only compared
    /// against patterns at positions where one can start, which keeps log scanning linear in
    /// practice.
    by_first_byte: Vec<Vec<usize>>,
    pub(crate) max_line: usize,
}

/// A log line longer than this is withheld whole by [`crate::TextRedactor`] (1 MiB).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

impl Default for RedactionRules {
    fn default() -> Self {
        match Self::new(DEFAULT_KEY_PATTERNS) {
            Ok(rules) => rules,
            // The defaults are non-empty constants, checked by a test.
            Err(_) => unreachable!("the default patterns are valid"),
        }
    }
}

impl RedactionRules {
    /// Rules with exactly these key patterns (they replace the defaults; extend
    /// [`DEFAULT_KEY_PATTERNS`] to add to them).
    ///
    /// A pattern is refused if it has no ASCII letter or digit, because it would match every
    /// key; an empty list is refused because it would redact no key at all.
    pub fn new<I, S>(patterns: I) -> Result<Self, RulesError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut kept = Vec::new();
        let mut normalized: Vec<Vec<u8>> = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let norm = normalize(pattern.as_bytes());
            if norm.is_empty() {
                return Err(RulesError::EmptyPattern(pattern.to_owned()));
            }
            if !normalized.contains(&norm) {
                normalized.push(norm);
                kept.push(pattern.to_owned());
            }
        }
        if normalized.is_empty() {
            return Err(RulesError::NoPatterns);
        }
        let mut by_first_byte = vec![Vec::new(); 256];
        for (i, pattern) in normalized.iter().enumerate() {
            // Patterns are non-empty (checked above).
            if let Some(&first) = pattern.first() {
                by_first_byte[usize::from(first)].push(i);
            }
        }
        Ok(RedactionRules {
            patterns: kept,
            normalized,
            by_first_byte,
            max_line: DEFAULT_MAX_LINE,
        })
    }

    /// The same rules with another longest log line (see [`crate::TextRedactor`]); at least
    /// 1 KiB.
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1024);
        self
    }

    /// The patterns, as given (duplicates after normalization dropped).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `key` names a secret: some pattern is a substring of it, both compared as
    /// lowercase ASCII letters and digits only.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let mut buf = Vec::with_capacity(key.len());
        self.matches(key.as_bytes(), &mut buf)
    }

    /// [`RedactionRules::is_secret_key`] on bytes, with a caller-owned buffer for the
    /// normalized key (the text scanner calls this for every word of a log).
    pub(crate) fn matches(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        buf.clear();
        buf.extend(
            key.iter()
                .filter(|b| b.is_ascii_alphanumeric())
                .map(u8::to_ascii_lowercase),
        );
        (0..buf.len()).any(|at| {
            self.by_first_byte[usize::from(buf[at])]
                .iter()
                .any(|&p| buf[at..].starts_with(&self.normalized[p]))
        })
    }
}

fn normalize(key: &[u8]) -> Vec<u8> {
    key.iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(u8::to_ascii_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_distinct() {
        let rules = RedactionRules::new(DEFAULT_KEY_PATTERNS).unwrap();
        // No two defaults are the same once normalized (`jaas.config` stays beside `jaas`: it
        // is a different pattern, only redundant as a match).
        assert_eq!(rules.patterns().len(), DEFAULT_KEY_PATTERNS.len());
    }

    #[test]
    fn flink_and_flinkguard_keys() {
        let rules = RedactionRules::default();
        for key in [
            "s3.access-key",
            "s3.secret-key",
            "fs.s3a.access.key",
            "AWS_SECRET_ACCESS_KEY",
            "fs.azure.account.key.acct.blob.core.windows.net",
            "security.ssl.rest.key-password",
            "security.ssl.internal.keystore-password",
            "properties.sasl.jaas.config",
            "security.kerberos.login.keytab",
            "-Dapp.db.password",
            "--db.password",
            "db.password=hunter2",
            "accessKey",
            "metrics.reporter.otel.http-headers",
            "gcs.credentials.json",
            "Authorization",
            // Over-redaction by design (Flink hides these too).
            "token.ttl",
            "security.delegation.tokens.enabled",
        ] {
            assert!(rules.is_secret_key(key), "{key}");
        }
        for key in [
            "rest.port",
            "env.java.opts.jobmanager",
            "s3.endpoint",
            "s3.path.style.access",
            "security.ssl.rest.keystore",
            "security.ssl.rest.truststore",
            "jobmanager.memory.process.size",
            "user-config",
            "key",
            "value",
            "monkey",
            "keyBy",
            "name",
        ] {
            assert!(!rules.is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn patterns_are_configurable() {
        let rules = RedactionRules::new(["db-pass", "Vault_Ref"]).unwrap();
        assert!(rules.is_secret_key("app.DB.pass"));
        assert!(rules.is_secret_key("vault.ref"));
        assert!(!rules.is_secret_key("password"));
        assert_eq!(
            RedactionRules::new(["ok", "-._"]).unwrap_err(),
            RulesError::EmptyPattern("-._".into())
        );
        assert_eq!(
            RedactionRules::new(Vec::<String>::new()).unwrap_err(),
            RulesError::NoPatterns
        );
        let extended =
            RedactionRules::new(DEFAULT_KEY_PATTERNS.iter().copied().chain(["vault"])).unwrap();
        assert!(extended.is_secret_key("my.vault.ref") && extended.is_secret_key("password"));
    }
}
