//! `flinkguard token issue`: a service token alone on stdout, bad input refused.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{expect_input_error, flinkguard, flinkguard_ok};

#[test]
fn service_tokens_are_minted_with_a_private_key_that_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    let token = flinkguard_ok(
        d,
        &[
            "token",
            "issue",
            "--user",
            "ci-deployer",
            "--group",
            "team-a",
            "--ttl",
            "30m",
        ],
    );
    assert_eq!(
        token.lines().count(),
        1,
        "stdout holds only the token: {token}"
    );
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
    let key = d.join("pki/token-signing.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&key).unwrap();
    let second = flinkguard_ok(
        d,
        &["token", "issue", "--user", "ci-deployer", "--ttl", "12h"],
    );
    assert_ne!(token, second);
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the signing key must be reused"
    );
    assert!(d.join("pki/token-signing.jwks").exists());

    expect_input_error(
        &flinkguard(d, &["token", "issue", "--user", "ci", "--ttl", "91d"]),
        &["91d"],
    );
    expect_input_error(
        &flinkguard(d, &["token", "issue", "--user", "../ci", "--ttl", "1h"]),
        &["../ci"],
    );
}
