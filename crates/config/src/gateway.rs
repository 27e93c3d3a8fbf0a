//! `gateway:` — how the side-car in front of Flink's REST API listens, authenticates,
//! forwards and audits.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// `gateway:`
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Where clients connect (TLS). Loopback by default; `0.0.0.0:8443` exposes it.
    pub listen: SocketAddr,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`), plain HTTP. Loopback by
    /// default; `null` turns it off.
    pub admin_listen: Option<SocketAddr>,
    /// `optional`: a client certificate is requested and, when sent, verified; callers
    /// without one may use a bearer token. `required`: the TLS handshake fails without one.
    pub client_certificates: ClientCertificates,
    /// CA bundles (PEM) client certificates may chain to, besides the PKI's own `ca.crt`:
    /// e.g. the Kubernetes CA.
    pub client_ca_files: Vec<PathBuf>,
    /// Which subject attributes of a client certificate are the caller's groups.
    pub group_attributes: Vec<GroupAttribute>,
    /// Accept bearer tokens minted by `flinkguard token issue` (issuer `flinkguard:<cluster>`,
    /// audience `flinkguard`), verified with `pki/token-signing.jwks`.
    pub service_tokens: bool,
    /// Identity providers whose bearer JWTs are accepted.
    pub jwt: Vec<JwtIssuer>,
    /// Proxies (by address) whose identity headers are believed. Empty by default.
    pub trusted_proxies: TrustedProxies,
    /// The one certificate (PEM) Flink's REST endpoint must present, compared byte for byte:
    /// the gateway then connects with https and trusts nothing else. `init` points it at the
    /// PKI's self-signed upstream identity (`pki/upstream/upstream.crt`). Exclusive with
    /// `upstream_ca_file`. With neither set the gateway speaks plain http to Flink, which any
    /// local user can also reach: only for setups that secure loopback otherwise.
    pub upstream_server_cert_file: Option<PathBuf>,
    /// When Flink's REST endpoint has a CA-signed certificate instead: the CA (PEM) it must
    /// chain to; the gateway then connects with https and trusts nothing else.
    pub upstream_ca_file: Option<PathBuf>,
    /// The client certificate (PEM) the gateway presents to Flink's REST endpoint, which
    /// requires it (`security.ssl.rest.authentication-enabled`). `init`: the upstream identity.
    pub upstream_client_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `upstream_client_cert_file`.
    pub upstream_client_key_file: Option<PathBuf>,
    /// Time limits that keep slow or stuck clients from holding resources.
    pub timeouts: Timeouts,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Append one JSON audit line per request to this file (relative to flinkguard.yaml);
    /// with the default `audit_durability`, each line is on disk before its response is sent.
    pub audit_file: Option<PathBuf>,
    /// How far a request's line in `audit_file` has gone when its response is sent.
    pub audit_durability: AuditDurability,
    /// Also write audit lines to stdout.
    pub audit_stdout: bool,
    /// Who owns which job, jar and application (relative to flinkguard.yaml): a durable
    /// database the gateway writes before answering a submission. One process at a time.
    pub ownership_file: PathBuf,
    /// Extra key patterns (case-insensitive substrings) whose values are redacted from answers
    /// for principals without `secrets.read`, on top of the built-in ones (password, secret,
    /// token, credential, access-key, jaas, keytab, ...).
    pub redact_patterns: Vec<String>,
    /// An external decision service asked after the local policy allowed a request; both must
    /// allow. Off unless set.
    pub authorization_webhook: Option<AuthorizationWebhook>,
    /// Largest request body (a jar upload) forwarded to Flink; a larger declared body gets
    /// 413 before it is read. Flink's own `rest.server.max-content-length` defaults to the same.
    pub max_body_bytes: u64,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8444))),
            client_certificates: ClientCertificates::Optional,
            client_ca_files: Vec::new(),
            group_attributes: vec![GroupAttribute::O],
            service_tokens: true,
            jwt: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            upstream_server_cert_file: None,
            upstream_ca_file: None,
            upstream_client_cert_file: None,
            upstream_client_key_file: None,
            timeouts: Timeouts::default(),
            max_connections: 1024,
            ownership_file: PathBuf::from("ownership.redb"),
            redact_patterns: Vec::new(),
            authorization_webhook: None,
            audit_file: Some(PathBuf::from("audit.jsonl")),
            audit_durability: AuditDurability::Synced,
            audit_stdout: true,
            max_body_bytes: 104_857_600,
        }
    }
}

/// `gateway.authorization_webhook`: `POST url` with `{"principal": {...}, "operation": ...,
/// "resource": {...}, "owner": {...}}`, answered by `{"allow": true|false, "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationWebhook {
    /// `https://...` (with `ca_file`), or `http://` on loopback only.
    pub url: String,
    /// CA bundle (PEM) the webhook's certificate must chain to (required for https).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// No answer within this is a deny.
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
    /// Answers are reused this long for the same question (0: never).
    #[serde(default = "default_webhook_cache_seconds")]
    pub cache_seconds: u64,
}

fn default_webhook_timeout_ms() -> u64 {
    500
}

fn default_webhook_cache_seconds() -> u64 {
    10
}

/// `gateway.audit_durability`: what a response a client saw promises about its audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDurability {
    /// Written and `fdatasync`ed before the response: the line survives a crash of the gateway
    /// and of the machine (power loss included).
    Synced,
    /// Written to the kernel before the response, never synced by the gateway: the line
    /// survives a crash of the gateway, but a crash of the machine or a power loss can lose the
    /// lines of the last seconds, as it can lose nginx's access log. Cheaper per request: no
    /// wait for the disk.
    UnsyncedLostOnMachineCrash,
}

/// Whether the TLS handshake demands a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificates {
    /// Requested and verified when sent; other credentials may be used instead.
    Optional,
    /// The handshake fails without a certificate from a configured CA.
    Required,
}

/// A subject attribute read as a group from a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupAttribute {
    /// organizationName (what Kubernetes uses for groups).
    O,
    /// organizationalUnitName.
    OU,
}

/// One identity provider: `gateway.jwt[N]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// Accepted `iss` values, compared exactly.
    pub issuers: Vec<String>,
    /// Accepted audiences; a token must name one of them in `aud`.
    pub audiences: Vec<String>,
    /// The provider's keys as a JWKS file (relative to flinkguard.yaml). Exactly one of
    /// `jwks_file` and `jwks_url`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// The provider's `jwks_uri` (https; http only on loopback), fetched at start and
    /// refreshed in the background.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// CA bundle (PEM) for `jwks_url`: when set, only these CAs are trusted for it (a private
    /// identity provider is then not also trusted under every public CA); unset, the public
    /// web PKI roots are.
    #[serde(default)]
    pub jwks_ca_file: Option<PathBuf>,
    /// `jwks_url` only: refetched this often (keys the provider rotates in appear by then).
    #[serde(default = "default_jwks_refresh_seconds")]
    pub jwks_refresh_seconds: u64,
    /// `jwks_url` only: a token with an unknown key id triggers an early refetch, at most once
    /// per this many seconds (no refetch storm from forged key ids).
    #[serde(default = "default_jwks_min_refetch_seconds")]
    pub jwks_min_refetch_seconds: u64,
    /// The claim holding the user name; `/a/b` is a JSON pointer.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim holding the groups (an array of strings); `/a/b` is a JSON pointer.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Allowed clock skew for `exp` and `nbf`.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
}

fn default_jwks_refresh_seconds() -> u64 {
    300
}

fn default_jwks_min_refetch_seconds() -> u64 {
    30
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_leeway_seconds() -> u64 {
    60
}

/// `gateway.trusted_proxies`: an authenticating proxy in front of the gateway (an
/// oauth2-proxy, YARN's RM proxy, DC/OS's admin router) identified by its address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustedProxies {
    /// Peer addresses (CIDR) whose identity headers are believed. From any other peer the
    /// headers are dropped unread.
    pub cidrs: Vec<Cidr>,
    /// The header holding the user; exactly one must be present on a proxied request.
    pub user_header: String,
    /// The header holding the groups, comma-separated; at most one.
    pub groups_header: String,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        TrustedProxies {
            cidrs: Vec::new(),
            user_header: "X-Forwarded-User".into(),
            groups_header: "X-Forwarded-Groups".into(),
        }
    }
}

/// An address range such as `10.0.0.0/8`; a single address is its own /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr(pub IpNet);

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(text: String) -> Result<Cidr, String> {
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
        parsed.map(Cidr).map_err(|_| {
            format!("`{text}` is not an address range like 10.0.0.0/8, 2001:db8::/32 or 10.0.0.7")
        })
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> String {
        cidr.0.to_string()
    }
}

/// `gateway.timeouts`, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TLS handshake and HTTP/1 request headers must complete within this (slowloris).
    pub header_read_seconds: u64,
    /// A connection with no request in flight and no bytes moving is closed after this.
    /// (On HTTP/1.1, header_read_seconds also bounds the wait for the next request.)
    pub idle_seconds: u64,
    /// From the request's arrival until Flink's response headers: covers the upload of the
    /// body. Response bodies (logs, large listings) stream without a limit.
    pub request_seconds: u64,
    /// On shutdown, requests in flight get this long to finish.
    pub shutdown_grace_seconds: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read_seconds: 10,
            idle_seconds: 120,
            request_seconds: 600,
            shutdown_grace_seconds: 30,
        }
    }
}

impl GatewaySection {
    /// The settings `init` writes: the gateway reaches Flink's REST endpoint over mutual TLS
    /// with the PKI's upstream identity (`pki_dir` relative to flinkguard.yaml).
    pub fn with_upstream_identity(pki_dir: &std::path::Path) -> GatewaySection {
        let upstream = pki_dir.join("upstream");
        GatewaySection {
            upstream_server_cert_file: Some(upstream.join("upstream.crt")),
            upstream_client_cert_file: Some(upstream.join("upstream.crt")),
            upstream_client_key_file: Some(upstream.join("upstream.key")),
            ..GatewaySection::default()
        }
    }

    /// Whether the gateway speaks TLS to Flink's REST endpoint.
    pub fn upstream_tls(&self) -> bool {
        self.upstream_server_cert_file.is_some() || self.upstream_ca_file.is_some()
    }

    /// Whether Flink's REST endpoint is to require the gateway's upstream client certificate.
    pub fn upstream_mutual_tls(&self) -> bool {
        self.upstream_tls() && self.upstream_client_cert_file.is_some()
    }

    /// Checks what types alone cannot; the error names the field.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self
            .admin_listen
            .is_some_and(|a| a.port() == self.listen.port() && a.port() != 0)
        {
            return Err((
                "gateway.admin_listen",
                "must not share gateway.listen's port".into(),
            ));
        }
        if self.audit_file.is_none() && !self.audit_stdout {
            // The gateway never runs unaudited.
            return Err((
                "gateway.audit_file",
                "is null and gateway.audit_stdout is false: the gateway would keep no audit; \
                 name a file or set audit_stdout: true"
                    .into(),
            ));
        }
        if self.group_attributes.is_empty() {
            return Err((
                "gateway.group_attributes",
                "list O, OU or both (an empty list would drop every certificate's groups)".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(("gateway.max_connections", "must be at least 1".into()));
        }
        let t = &self.timeouts;
        for (field, seconds) in [
            (
                "gateway.timeouts.header_read_seconds",
                t.header_read_seconds,
            ),
            ("gateway.timeouts.idle_seconds", t.idle_seconds),
            ("gateway.timeouts.request_seconds", t.request_seconds),
        ] {
            if seconds == 0 || seconds > 86_400 {
                return Err((
                    field,
                    format!("{seconds} is not between 1 and 86400 seconds"),
                ));
            }
        }
        if t.shutdown_grace_seconds > 3_600 {
            return Err((
                "gateway.timeouts.shutdown_grace_seconds",
                "at most 3600 seconds".into(),
            ));
        }
        let p = &self.trusted_proxies;
        for (field, name) in [
            ("gateway.trusted_proxies.user_header", &p.user_header),
            ("gateway.trusted_proxies.groups_header", &p.groups_header),
        ] {
            if http_header_name_invalid(name) {
                return Err((field, format!("`{name}` is not an HTTP header name")));
            }
        }
        if p.user_header.eq_ignore_ascii_case(&p.groups_header) {
            return Err((
                "gateway.trusted_proxies.groups_header",
                "must differ from user_header".into(),
            ));
        }
        for issuer in &self.jwt {
            if issuer.jwks_file.is_some() == issuer.jwks_url.is_some() {
                return Err((
                    "gateway.jwt",
                    "each entry needs exactly one of jwks_file and jwks_url".into(),
                ));
            }
            if issuer.issuers.is_empty() || issuer.audiences.is_empty() {
                return Err((
                    "gateway.jwt",
                    "each entry needs issuers and audiences (a token for another audience of \
                     the same provider must not be accepted)"
                        .into(),
                ));
            }
            if issuer.jwks_min_refetch_seconds == 0
                || issuer.jwks_refresh_seconds < issuer.jwks_min_refetch_seconds
            {
                return Err((
                    "gateway.jwt",
                    "jwks_min_refetch_seconds must be at least 1 and at most jwks_refresh_seconds"
                        .into(),
                ));
            }
            if issuer.jwks_ca_file.is_some() && issuer.jwks_url.is_none() {
                return Err((
                    "gateway.jwt",
                    "jwks_ca_file only applies to jwks_url".into(),
                ));
            }
        }
        if self.upstream_server_cert_file.is_some() && self.upstream_ca_file.is_some() {
            return Err((
                "gateway.upstream_ca_file",
                "set either upstream_server_cert_file (pin Flink's exact certificate) or \
                 upstream_ca_file (trust a CA), not both"
                    .into(),
            ));
        }
        match (
            &self.upstream_client_cert_file,
            &self.upstream_client_key_file,
        ) {
            (Some(_), None) => {
                return Err((
                    "gateway.upstream_client_key_file",
                    "upstream_client_cert_file needs its key: set upstream_client_key_file \
                     (pki/upstream/upstream.key)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "gateway.upstream_client_cert_file",
                    "upstream_client_key_file needs its certificate: set \
                     upstream_client_cert_file (pki/upstream/upstream.crt)"
                        .into(),
                ));
            }
            (Some(_), Some(_)) if !self.upstream_tls() => {
                return Err((
                    "gateway.upstream_client_cert_file",
                    "a client certificate needs TLS to Flink: set upstream_server_cert_file \
                     (pki/upstream/upstream.crt) or upstream_ca_file"
                        .into(),
                ));
            }
            _ => {}
        }
        if let Some(hook) = &self.authorization_webhook {
            let field = "gateway.authorization_webhook";
            let loopback_http = [
                "http://127.",
                "http://localhost:",
                "http://localhost/",
                "http://[::1]",
            ]
            .iter()
            .any(|p| hook.url.starts_with(p));
            if !(loopback_http || (hook.url.starts_with("https://") && hook.ca_file.is_some())) {
                return Err((
                    field,
                    format!(
                        "`{}`: use https:// with ca_file, or http:// on loopback only",
                        hook.url
                    ),
                ));
            }
            if hook.timeout_ms == 0 || hook.timeout_ms > 30_000 {
                return Err((field, "timeout_ms must be between 1 and 30000".into()));
            }
        }
        Ok(())
    }
}

fn http_header_name_invalid(name: &str) -> bool {
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
