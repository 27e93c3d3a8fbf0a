//! Authentication through the gateway against a real Flink 2.3, with real curl: an identity
//! provider's JWTs (keys from a JWKS file), a trusted proxy identified by its address,
//! anonymous access with its own role, required client certificates, and all of it changed
//! by hot reload of flinkguard.yaml without restarting the gateway.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{flinkguard_ok, set_policy};
use flinkguard_pki::PkiLayout;
use flinkguard_testkit::{ClusterBuilder, TestDist};
use flinkguard_token::{ServiceTokenRequest, SigningKey};
use gatewaykit::{GatewayProcess, StaticHttps, audit_lines, edit_config, point_at};
use time::OffsetDateTime;

const IDP: &str = "https://idp.example.test/realms/data";
const IDP2: &str = "https://login.example.test";

/// An identity provider's signing key, its public JWKS written to `dir/idp.jwks`.
fn identity_provider(dir: &Path) -> SigningKey {
    let idp_dir = dir.join("idp");
    fs::create_dir(&idp_dir).unwrap();
    let key = SigningKey::load_or_create(&PkiLayout::new(&idp_dir)).unwrap();
    fs::copy(idp_dir.join("token-signing.jwks"), dir.join("idp.jwks")).unwrap();
    key
}

fn idp_token(
    key: &SigningKey,
    audience: &str,
    user: &str,
    groups: &[&str],
    issued: OffsetDateTime,
) -> String {
    key.issue(
        &ServiceTokenRequest {
            issuer: IDP.into(),
            audience: audience.into(),
            user: user.parse().unwrap(),
            groups: groups.iter().map(|g| g.parse().unwrap()).collect(),
            ttl: "1h".parse().unwrap(),
        },
        issued,
    )
    .unwrap()
    .token()
    .to_owned()
}

#[test]
fn cluster_gateway_authenticates_by_jwt_trusted_proxy_anonymous_and_reloads() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    let idp = identity_provider(d);
    let stranger = SigningKey::generate().unwrap();
    // A second provider publishes its keys at a URL, over TLS with its own CA.
    let web = d.join("idp2-web");
    fs::create_dir(&web).unwrap();
    let idp2_tls = d.join("idp2-tls");
    fs::create_dir(&idp2_tls).unwrap();
    flinkguard_ok(&idp2_tls, &["init", "--quiet"]);
    let idp2_first = SigningKey::generate().unwrap();
    fs::write(web.join("jwks.json"), idp2_first.jwks_json()).unwrap();
    let jwks_server = StaticHttps::start(
        &web,
        &idp2_tls.join("pki/rest.crt"),
        &idp2_tls.join("pki/rest.key"),
    );
    point_at(
        d,
        cluster.ports().rest,
        &[
            (
                "  jwt: []\n",
                &format!(
                    "  jwt:\n  - issuers: ['{IDP}']\n    audiences: [flink]\n    jwks_file: idp.jwks\n  \
                     - issuers: ['{IDP2}']\n    audiences: [flink]\n    \
                     jwks_url: https://localhost:{}/jwks.json\n    \
                     jwks_ca_file: idp2-tls/pki/ca.crt\n    jwks_min_refetch_seconds: 1\n",
                    jwks_server.port
                ),
            ),
            ("    cidrs: []\n", "    cidrs: [127.0.0.2/32]\n"),
        ],
    );
    set_policy(
        d,
        "policy:\n  anonymous_role: viewer\n  bindings:\n  - role: viewer\n    groups: [analysts]\n  - role: developer\n    groups: [ci]\n  - role: admin\n    users: [root]\n",
    );
    flinkguard_ok(
        d,
        &[
            "pki",
            "issue-client",
            "--user",
            "alice",
            "--group",
            "analysts",
        ],
    );
    let gateway = GatewayProcess::start(d);
    let mut requests = 0;
    let mut get = |user: Option<&str>, extra: &[&str], path: &str| {
        requests += 1;
        gateway.curl(user, extra, path)
    };
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let now = OffsetDateTime::now_utc();

    // Anonymous: only the anonymous role, whatever identity headers say.
    assert_eq!(get(None, &[], "/jobs/overview").0, 200);
    let (code, body) = get(
        None,
        &["-H", "X-Forwarded-User: root"],
        "/jobmanager/config",
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("anonymous"), "{body}");
    // Credentials that do not verify are a 401, never a fall-back to anonymous.
    let (code, body) = get(None, &["-H", &bearer("not-a-token")], "/jobs/overview");
    assert_eq!(code, 401, "{body}");

    // The identity provider's tokens: user and groups from its claims, decided by the policy.
    let root = idp_token(&idp, "flink", "root", &[], now);
    let carol = idp_token(&idp, "flink", "carol", &["ci"], now);
    assert_eq!(
        get(None, &["-H", &bearer(&root)], "/jobmanager/config").0,
        200
    );
    assert_eq!(get(None, &["-H", &bearer(&carol)], "/jobs/overview").0, 200);
    let (code, body) = get(None, &["-H", &bearer(&carol)], "/jobmanager/config");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("developer"), "{body}");
    // Expired (beyond the 60 s leeway), minted for another audience, signed by a key the
    // provider does not publish, or unsigned: each a 401 that says why.
    let expired = idp_token(
        &idp,
        "flink",
        "root",
        &[],
        now - Duration::from_secs(2 * 3600),
    );
    let other_audience = idp_token(&idp, "kafka", "root", &[], now);
    let forged = idp_token(&stranger, "flink", "root", &[], now);
    let payload = root.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    for (token, why) in [
        (&expired, "expired"),
        (&other_audience, "wrong_audience"),
        (&forged, "unknown_key_id"),
        (&unsigned, "unsigned"),
    ] {
        let (code, body) = get(None, &["-H", &bearer(token)], "/jobmanager/config");
        assert_eq!(code, 401, "{why}: {body}");
        assert!(body.contains(why), "{why}: {body}");
    }

    // A certificate from the right CA but without clientAuth usage (the gateway's own server
    // certificate) is refused in the handshake.
    assert_eq!(
        gateway
            .curl(
                None,
                &["--cert", "pki/rest.crt", "--key", "pki/rest.key"],
                "/jobs/overview"
            )
            .0,
        0
    );

    // Keys from a URL: fetched at start; a rotated key is fetched once a token names it, and
    // forged key ids do not make the gateway hammer the provider.
    assert_eq!(jwks_server.requests_for("/jwks.json"), 1);
    let idp2 = |key: &SigningKey, user: &str| {
        key.issue(
            &ServiceTokenRequest {
                issuer: IDP2.into(),
                audience: "flink".into(),
                user: user.parse().unwrap(),
                groups: vec![],
                ttl: "1h".parse().unwrap(),
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap()
        .token()
        .to_owned()
    };
    assert_eq!(
        get(
            None,
            &["-H", &bearer(&idp2(&idp2_first, "root"))],
            "/jobmanager/config"
        )
        .0,
        200
    );
    let idp2_second = SigningKey::generate().unwrap();
    fs::write(web.join("jwks.json"), idp2_second.jwks_json()).unwrap();
    let rotated = idp2(&idp2_second, "root");
    let (code, body) = get(None, &["-H", &bearer(&rotated)], "/jobmanager/config");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("unknown_key_id"), "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(None, &["-H", &bearer(&rotated)], "/jobmanager/config").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated key never arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let fetched = jwks_server.requests_for("/jwks.json");
    assert_eq!(fetched, 2, "one refetch for the rotated key");
    for _ in 0..20 {
        let forged = idp2(&stranger, "root");
        assert_eq!(
            get(None, &["-H", &bearer(&forged)], "/jobs/overview").0,
            401
        );
    }
    assert!(
        jwks_server.requests_for("/jwks.json") <= fetched + 2,
        "20 forged key ids caused {} fetches",
        jwks_server.requests_for("/jwks.json") - fetched
    );

    // A trusted proxy (127.0.0.2): its headers are the caller, and only its headers.
    let proxy = ["--interface", "127.0.0.2"];
    let (code, body) = get(
        None,
        &[&proxy[..], &["-H", "X-Forwarded-User: root"]].concat(),
        "/jobmanager/config",
    );
    assert_eq!(code, 200, "{body}");
    let as_viewer = [
        &proxy[..],
        &[
            "-H",
            "X-Forwarded-User: dave",
            "-H",
            "X-Forwarded-Groups: other, analysts",
        ],
    ]
    .concat();
    assert_eq!(get(None, &as_viewer, "/jobs/overview").0, 200);
    assert_eq!(get(None, &as_viewer, "/jobmanager/config").0, 403);
    // From the proxy without a user header: 401 (even with anonymous access on, and even
    // with a valid client certificate); a duplicated header: 400.
    let (code, body) = get(None, &proxy, "/jobs/overview");
    assert_eq!(code, 401, "{body}");
    assert!(
        body.contains("X-Forwarded-User") || body.contains("x-forwarded-user"),
        "{body}"
    );
    assert_eq!(get(Some("alice"), &proxy, "/jobs/overview").0, 401);
    let twice = [
        &proxy[..],
        &[
            "-H",
            "X-Forwarded-User: root",
            "-H",
            "X-Forwarded-User: dave",
        ],
    ]
    .concat();
    assert_eq!(get(None, &twice, "/jobs/overview").0, 400);

    // Reload: anonymous access off and client certificates required, without a restart.
    // (One write, as a config-management tool would make it.)
    edit_config(
        d,
        &[
            ("  anonymous_role: viewer\n", ""),
            (
                "client_certificates: optional",
                "client_certificates: required",
            ),
        ],
    );
    gateway.wait_for_log("reloaded", Duration::from_secs(10));
    // No certificate: the handshake itself fails, so no HTTP answer and no audit line.
    assert_eq!(gateway.curl(None, &[], "/jobs/overview").0, 0);
    assert_eq!(
        gateway
            .curl(None, &["-H", &bearer(&root)], "/jobs/overview")
            .0,
        0
    );
    assert_eq!(get(Some("alice"), &[], "/jobs/overview").0, 200);

    // A broken edit is refused and the last good configuration keeps serving.
    edit_config(d, &[("max_connections: 1024", "max_connections: 0")]);
    let refused = gateway.wait_for_log("reload failed", Duration::from_secs(10));
    assert!(refused.contains("gateway.max_connections"), "{refused}");
    assert_eq!(get(Some("alice"), &[], "/jobs/overview").0, 200);
    assert_eq!(gateway.curl(None, &[], "/jobs/overview").0, 0);

    // Fixed, it is picked up; SIGHUP reloads on demand.
    let reloads = || {
        gateway
            .log()
            .iter()
            .filter(|l| l.contains("reloaded"))
            .count()
    };
    let wait_reloads = |n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while reloads() < n {
            assert!(std::time::Instant::now() < deadline, "{:?}", gateway.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    edit_config(d, &[("max_connections: 0", "max_connections: 1024")]);
    wait_reloads(2);
    gateway.signal("HUP");
    wait_reloads(3);

    // Metrics count refusals by reason.
    let (code, metrics) = gateway.admin("/metrics");
    assert_eq!(code, 200);
    for line in [
        "flinkguard_authentication_failures_total{reason=\"expired\"} 1",
        "flinkguard_authentication_failures_total{reason=\"unsigned\"} 1",
        "flinkguard_authentication_failures_total{reason=\"proxy_user_missing\"} 2",
        "flinkguard_reloads_total{result=\"failed\"} 1",
        "flinkguard_reloads_total{result=\"ok\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // Exactly one audit line per request that reached HTTP, with how each authenticated.
    let audit = audit_lines(d);
    assert_eq!(audit.len(), requests, "{audit:#?}");
    let methods: Vec<&str> = audit.iter().filter_map(|l| l["auth"].as_str()).collect();
    for method in ["anonymous", "jwt", "trusted-proxy", "mtls"] {
        assert!(methods.contains(&method), "{method} in {methods:?}");
    }
    let proxied = audit
        .iter()
        .find(|l| l["auth"] == "trusted-proxy" && l["user"] == "dave")
        .unwrap();
    assert_eq!(proxied["groups"], serde_json::json!(["other", "analysts"]));
    assert_eq!(
        proxied["peer"].as_str().unwrap().split(':').next(),
        Some("127.0.0.2")
    );
}
