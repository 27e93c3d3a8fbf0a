//! The PKI as Java sees it: `flinkguard init`, `pki issue-client` and `pki show` checked with
//! the JDK's keytool, plus every bad-input case of the foundation issue.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{expect_input_error, flinkguard, flinkguard_ok, keytool, password};

fn init(dir: &Path, key: &str) {
    flinkguard_ok(
        dir,
        &[
            "init",
            "--key",
            key,
            "--host",
            "flink.example.org",
            "--host",
            "*.flink.svc.cluster.local",
            "--ip",
            "10.0.2.15",
            "--ip",
            "127.0.0.1",
        ],
    );
}

fn keytool_list(store: &Path, password_file: &Path) -> String {
    keytool(&[
        "-list",
        "-v",
        "-keystore",
        store.to_str().unwrap(),
        "-storetype",
        "PKCS12",
        "-storepass",
        &password(password_file),
    ])
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn show_json(dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&flinkguard_ok(dir, &["pki", "show", "--json"])).expect("pki show --json")
}

fn keytool_sha1(listing: &str) -> String {
    listing
        .lines()
        .find_map(|l| l.trim().strip_prefix("SHA1: "))
        .expect("keytool prints a SHA1 fingerprint")
        .to_owned()
}

fn check_pki_with_keytool(key: &str, keytool_key_line: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, key);
    let pki = d.join("pki");

    // Cluster identity: exactly one PrivateKeyEntry, self-signed, usable as truststore.
    let internal = keytool_list(&pki.join("internal.p12"), &pki.join("internal.password"));
    assert_eq!(
        count(&internal, "Entry type: PrivateKeyEntry"),
        1,
        "{internal}"
    );
    assert_eq!(count(&internal, "Alias name:"), 1, "{internal}");
    assert!(internal.contains(keytool_key_line), "{internal}");
    let shown = show_json(d);
    let identity = shown
        .iter()
        .find(|c| c["role"] == "cluster identity")
        .expect("identity shown");
    assert_eq!(
        identity["certificate"]["sha1"].as_str().unwrap(),
        keytool_sha1(&internal)
    );
    assert_eq!(identity["entry"], "PrivateKeyEntry");

    // REST truststore: trustedCertEntry only, holding the CA.
    let trust = keytool_list(
        &pki.join("rest-truststore.p12"),
        &pki.join("rest-truststore.password"),
    );
    assert!(
        count(&trust, "Entry type: trustedCertEntry") >= 1,
        "{trust}"
    );
    assert_eq!(count(&trust, "PrivateKeyEntry"), 0, "{trust}");
    let ca = shown.iter().find(|c| c["role"] == "CA").unwrap();
    assert_eq!(
        keytool_sha1(&trust),
        ca["certificate"]["sha1"].as_str().unwrap()
    );

    // REST server keystore: key + chain to the CA, SANs for every host and IP.
    let rest = keytool_list(&pki.join("rest.p12"), &pki.join("rest.password"));
    assert_eq!(count(&rest, "Entry type: PrivateKeyEntry"), 1);
    assert!(rest.contains("Certificate chain length: 2"), "{rest}");
    for san in [
        "DNSName: flink.example.org",
        "DNSName: *.flink.svc.cluster.local",
        "IPAddress: 10.0.2.15",
        "IPAddress: 127.0.0.1",
    ] {
        assert!(rest.contains(san), "REST cert lacks {san}:\n{rest}");
    }
    assert!(
        rest.contains("serverAuth") && !rest.contains("clientAuth"),
        "{rest}"
    );

    // Validity: explicit defaults, never a far-future "forever".
    let days: BTreeMap<String, i64> = shown
        .iter()
        .map(|c| {
            (
                c["role"].as_str().unwrap().to_owned(),
                c["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!((364..=365).contains(&days["cluster identity"]), "{days:?}");
    assert!((89..=90).contains(&days["REST server"]), "{days:?}");
    assert!((3649..=3650).contains(&days["CA"]), "{days:?}");

    // Secrets are 0600 and passwords long.
    for name in [
        "internal.p12",
        "internal.password",
        "ca.key",
        "rest.key",
        "rest.p12",
        "rest.password",
        "rest-truststore.password",
    ] {
        let mode = fs::metadata(pki.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
    for name in [
        "internal.password",
        "rest.password",
        "rest-truststore.password",
    ] {
        assert!(password(&pki.join(name)).len() >= 24, "{name} too short");
    }

    // A client identity: CN = user, one O per group, clientAuth only, readable by keytool.
    flinkguard_ok(
        d,
        &[
            "pki",
            "issue-client",
            "--user",
            "alice",
            "--group",
            "team-a",
            "--group",
            "analysts",
            "--days",
            "7",
        ],
    );
    let alice = pki.join("clients/alice");
    let client = keytool_list(&alice.join("client.p12"), &alice.join("client.password"));
    assert_eq!(count(&client, "Entry type: PrivateKeyEntry"), 1);
    assert!(client.contains("Certificate chain length: 2"), "{client}");
    assert!(
        client.contains("Owner: CN=alice, O=analysts, O=team-a"),
        "{client}"
    );
    assert!(
        client.contains("clientAuth") && !client.contains("serverAuth"),
        "{client}"
    );
    let pem = fs::read_to_string(alice.join("client.crt")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        fs::metadata(alice.join("client.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // A 7-day certificate is flagged by `pki show`, which then exits 1 (a finding).
    let out = flinkguard(d, &["pki", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("WARNING: expires in 6 days"));
}

#[test]
fn ecdsa_p256_pki_is_what_keytool_expects() {
    check_pki_with_keytool("ecdsa-p256", "256-bit EC (secp256r1) key");
}

#[test]
fn rsa_3072_pki_is_what_keytool_expects() {
    check_pki_with_keytool("rsa-3072", "3072-bit RSA key");
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn existing_pki_is_never_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    let before = snapshot(d);
    expect_input_error(&flinkguard(d, &["init"]), &["flinkguard.yaml", "--force"]);
    // Also when only pki/ is left from an earlier run.
    fs::remove_file(d.join("flinkguard.yaml")).unwrap();
    expect_input_error(&flinkguard(d, &["init"]), &["pki", "--force"]);
    fs::write(d.join("flinkguard.yaml"), &before["flinkguard.yaml"]).unwrap();
    assert_eq!(snapshot(d), before, "a refused init changed files");

    // --force replaces, and keeps the old keys aside instead of destroying them.
    let out = flinkguard_ok(d, &["init", "--force"]);
    assert!(out.contains("moved to"), "{out}");
    let aside: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("pki.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        fs::read(d.join(&aside[0]).join("ca.key")).unwrap(),
        before["pki/ca.key"]
    );
    assert_ne!(
        fs::read(d.join("pki/ca.key")).unwrap(),
        before["pki/ca.key"]
    );
}

#[test]
fn invalid_hosts_ips_and_keys_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    expect_input_error(
        &flinkguard(d, &["init", "--host", "bad..host"]),
        &["bad..host", "host name"],
    );
    expect_input_error(
        &flinkguard(d, &["init", "--ip", "10.0.0.300"]),
        &["10.0.0.300", "IP address"],
    );
    expect_input_error(
        &flinkguard(d, &["init", "--key", "rsa-1024"]),
        &["rsa-1024", "ecdsa-p256"],
    );
    expect_input_error(
        &flinkguard(d, &["init", "--name", "Prod_1"]),
        &["Prod_1", "cluster.name"],
    );
    assert_eq!(
        fs::read_dir(d).unwrap().count(),
        0,
        "nothing may be written"
    );
}

#[test]
fn unwritable_folder_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A regular file where a folder is expected: unwritable even for root.
    fs::write(d.join("file"), "x").unwrap();
    expect_input_error(
        &flinkguard(d, &["init", "--dir", "file/sub"]),
        &["file/sub"],
    );
    assert_eq!(fs::read_dir(d).unwrap().count(), 1);
}

#[test]
fn corrupt_or_wrong_password_keystores_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    let pki = d.join("pki");

    fs::write(pki.join("internal.password"), "wrong-password-123456").unwrap();
    expect_input_error(
        &flinkguard(d, &["pki", "show"]),
        &["internal.p12", "internal.password"],
    );
    expect_input_error(&flinkguard(d, &["flink-config"]), &["internal.p12"]);

    init_fresh(d);
    fs::write(pki.join("rest.p12"), b"not a keystore").unwrap();
    expect_input_error(&flinkguard(d, &["pki", "show"]), &["rest.p12", "corrupt"]);

    init_fresh(d);
    fs::remove_file(pki.join("internal.p12")).unwrap();
    expect_input_error(&flinkguard(d, &["flink-config"]), &["internal.p12"]);

    init_fresh(d);
    fs::write(pki.join("ca.key"), "garbage").unwrap();
    expect_input_error(
        &flinkguard(d, &["pki", "issue-client", "--user", "bob"]),
        &["ca.key"],
    );
    assert!(!pki.join("clients/bob").exists(), "no half-issued identity");
    fs::write(pki.join("internal.password"), "abc").unwrap();
    expect_input_error(
        &flinkguard(d, &["pki", "show"]),
        &["internal.password", "at least 6"],
    );
}

fn init_fresh(d: &Path) {
    flinkguard_ok(d, &["init", "--force", "--quiet"]);
    for entry in fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("pki.replaced-")
        {
            fs::remove_dir_all(path).unwrap();
        }
    }
}

#[test]
fn client_identities_are_not_overwritten_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    flinkguard_ok(d, &["pki", "issue-client", "--user", "alice"]);
    let key = fs::read(d.join("pki/clients/alice/client.key")).unwrap();
    expect_input_error(
        &flinkguard(d, &["pki", "issue-client", "--user", "alice"]),
        &["alice", "--force"],
    );
    assert_eq!(
        fs::read(d.join("pki/clients/alice/client.key")).unwrap(),
        key
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "alice", "--force"]);
    assert_ne!(
        fs::read(d.join("pki/clients/alice/client.key")).unwrap(),
        key
    );
    expect_input_error(
        &flinkguard(d, &["pki", "issue-client", "--user", "../evil"]),
        &["../evil"],
    );
    expect_input_error(
        &flinkguard(
            d,
            &[
                "pki",
                "issue-client",
                "--user",
                "x",
                "--group",
                "a,O=admins",
            ],
        ),
        &["a,O=admins"],
    );
}

#[test]
fn malformed_config_names_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    let path = d.join("flinkguard.yaml");
    let good = fs::read_to_string(&path).unwrap();
    fs::write(&path, good.replace("rest_port: 8081", "rest_port: eighty")).unwrap();
    let line = good.lines().position(|l| l.contains("rest_port")).unwrap() + 1;
    expect_input_error(
        &flinkguard(d, &["flink-config"]),
        &[&format!("flinkguard.yaml:{line}:"), "flink.rest_port"],
    );
    fs::write(
        &path,
        good.replace("version: 1\n", "version: 1\nsurprise: true\n"),
    )
    .unwrap();
    expect_input_error(
        &flinkguard(d, &["pki", "show"]),
        &["flinkguard.yaml", "surprise"],
    );
    fs::write(&path, "cluster: [").unwrap();
    expect_input_error(&flinkguard(d, &["pki", "show"]), &["flinkguard.yaml:"]);
    fs::remove_file(&path).unwrap();
    expect_input_error(
        &flinkguard(d, &["pki", "show"]),
        &["flinkguard.yaml", "flinkguard init"],
    );
}

#[test]
fn flink_config_output_follows_version_and_merges_user_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "rsa-3072");
    let nested = flinkguard_ok(d, &["flink-config"]);
    assert!(
        nested.contains("security:\n  ssl:\n    internal:\n      enabled: true"),
        "{nested}"
    );
    assert!(
        nested.contains("ECDHE_RSA") && !nested.contains("ECDHE_ECDSA"),
        "{nested}"
    );
    let flat = flinkguard_ok(d, &["flink-config", "--flink-version", "1.20.3"]);
    assert!(
        flat.contains("\nsecurity.ssl.internal.enabled: true\n"),
        "{flat}"
    );
    assert!(flat.contains("\nrest.bind-address: 127.0.0.1\n"), "{flat}");
    assert!(flat.contains("\npekko.ssl.enabled: true\n"), "{flat}");
    let old = flinkguard_ok(d, &["flink-config", "--flink-version", "1.17.2"]);
    assert!(old.contains("\nakka.ssl.enabled: true\n"), "{old}");

    fs::write(
        d.join("flink-conf.yaml"),
        "jobmanager.rpc.port: 7000\nrest.bind-address: 0.0.0.0\n",
    )
    .unwrap();
    let out = flinkguard(
        d,
        &[
            "flink-config",
            "--merge",
            "flink-conf.yaml",
            "--out",
            "flink-conf.yaml",
        ],
    );
    assert!(out.status.success());
    let merged = fs::read_to_string(d.join("flink-conf.yaml")).unwrap();
    assert!(
        merged.starts_with("jobmanager.rpc.port: 7000\n"),
        "{merged}"
    );
    assert_eq!(merged.matches("rest.bind-address").count(), 1);
    assert_eq!(
        fs::metadata(d.join("flink-conf.yaml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    expect_input_error(
        &flinkguard(
            d,
            &[
                "flink-config",
                "--flink-version",
                "2.3.0",
                "--merge",
                "flink-conf.yaml",
            ],
        ),
        &["flink-conf.yaml"],
    );
    expect_input_error(
        &flinkguard(d, &["flink-config", "--flink-version", "3.0"]),
        &["3.0"],
    );
}

#[test]
fn renew_rest_replaces_only_the_gateway_certificate_and_keeps_its_trust() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    let before = snapshot(d);
    let out = flinkguard_ok(d, &["pki", "renew-rest", "--days", "45"]);
    assert!(out.contains("Renewed the REST certificate"), "{out}");
    let after = snapshot(d);
    let changed: Vec<&String> = after
        .keys()
        .filter(|name| before.get(*name) != after.get(*name))
        .collect();
    assert_eq!(
        changed,
        ["pki/rest.crt", "pki/rest.key", "pki/rest.p12"],
        "only the REST certificate, key and keystore change"
    );
    // Same CA, same SANs, new key; the keystore opens with the password it always had.
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", "pki/ca.crt", "pki/rest.crt"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    let listing = keytool_list(&d.join("pki/rest.p12"), &d.join("pki/rest.password"));
    assert_eq!(count(&listing, "PrivateKeyEntry"), 1, "{listing}");
    assert!(
        listing.contains("DNSName: *.flink.svc.cluster.local"),
        "{listing}"
    );
    let rest = show_json(d)
        .into_iter()
        .find(|c| c["role"] == "REST server")
        .unwrap();
    let days = rest["days_left"].as_i64().unwrap();
    assert!((44..=45).contains(&days), "{rest}");
}

#[test]
fn flink_config_for_clients_points_flink_at_the_gateway_with_the_users_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    expect_input_error(
        &flinkguard(d, &["flink-config", "--client", "bob"]),
        &["bob", "pki issue-client --user bob"],
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "bob"]);
    let out = flinkguard_ok(d, &["flink-config", "--client", "bob"]);
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
    let ssl = &yaml["security"]["ssl"];
    // The first non-wildcard host and gateway.listen's port.
    assert_eq!(yaml["rest"]["address"], "flink.example.org", "{out}");
    assert_eq!(yaml["rest"]["port"], 8443, "{out}");
    assert_eq!(ssl["rest"]["enabled"], true);
    assert_eq!(ssl["rest"]["authentication-enabled"], true);
    let keystore = ssl["rest"]["keystore"].as_str().unwrap();
    assert!(keystore.ends_with("pki/clients/bob/client.p12"), "{out}");
    assert_eq!(
        ssl["rest"]["keystore-password"].as_str().unwrap(),
        password(&d.join("pki/clients/bob/client.password"))
    );
    assert!(
        ssl["rest"]["truststore"]
            .as_str()
            .unwrap()
            .ends_with("pki/rest-truststore.p12")
    );
    assert!(
        ssl["algorithms"]
            .as_str()
            .unwrap()
            .contains("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        "{out}"
    );
    // Nothing of the cluster's own secrets.
    assert!(!out.contains("internal"), "{out}");
    let out = flinkguard_ok(
        d,
        &[
            "flink-config",
            "--client",
            "bob",
            "--gateway",
            "gw.example.org:443",
        ],
    );
    assert!(
        out.contains("address: gw.example.org") && out.contains("port: 443"),
        "{out}"
    );
    expect_input_error(
        &flinkguard(
            d,
            &[
                "flink-config",
                "--client",
                "bob",
                "--gateway",
                "gw.example.org",
            ],
        ),
        &["--gateway", "HOST:PORT"],
    );
}

#[test]
fn a_reader_that_stops_early_gets_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    // `flinkguard pki show | true`: the reader is gone before the table is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_flinkguard"))
        .args(["pki", "show"])
        .current_dir(d)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // What a shell reports for a process ended by SIGPIPE.
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn upstream_identity_is_self_signed_and_a_pki_without_it_is_told_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d, "ecdsa-p256");
    let upstream = d.join("pki/upstream");

    // One PrivateKeyEntry, self-signed (not from the CA), serverAuth and clientAuth, for the
    // loopback names; Java reads it as Flink will.
    let listing = keytool_list(
        &upstream.join("upstream.p12"),
        &upstream.join("upstream.password"),
    );
    assert_eq!(
        count(&listing, "Entry type: PrivateKeyEntry"),
        1,
        "{listing}"
    );
    assert!(listing.contains("Certificate chain length: 1"), "{listing}");
    for needle in [
        "DNSName: localhost",
        "IPAddress: 127.0.0.1",
        "IPAddress: 0:0:0:0:0:0:0:1",
        "serverAuth",
        "clientAuth",
    ] {
        assert!(listing.contains(needle), "{needle} not in\n{listing}");
    }
    let shown = show_json(d);
    let identity = shown
        .iter()
        .find(|c| c["role"] == "gateway→Flink REST identity")
        .expect("shown");
    assert_eq!(
        identity["certificate"]["subject"],
        identity["certificate"]["issuer"]
    );
    let ca = shown.iter().find(|c| c["role"] == "CA").unwrap();
    assert_ne!(
        identity["certificate"]["issuer"],
        ca["certificate"]["subject"]
    );
    assert_eq!(
        identity["certificate"]["sha1"].as_str().unwrap(),
        keytool_sha1(&listing)
    );
    for name in ["upstream.p12", "upstream.password", "upstream.key"] {
        let mode = fs::metadata(upstream.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }

    // A PKI from before the upstream identity existed.
    fs::remove_dir_all(&upstream).unwrap();
    expect_input_error(
        &flinkguard(d, &["flink-config"]),
        &["upstream/upstream.p12", "flinkguard pki create-upstream"],
    );
    expect_input_error(
        &flinkguard(d, &["init"]),
        &["--force", "flinkguard pki create-upstream"],
    );
    let out = flinkguard_ok(d, &["pki", "create-upstream"]);
    assert!(out.contains("SHA1"), "{out}");
    let first = fs::read(upstream.join("upstream.crt")).unwrap();
    let rendered = flinkguard_ok(d, &["flink-config"]);
    assert!(rendered.contains("upstream.p12"), "{rendered}");
    // Never replaced without --force; with it, the old one is moved aside.
    expect_input_error(&flinkguard(d, &["pki", "create-upstream"]), &["--force"]);
    assert_eq!(fs::read(upstream.join("upstream.crt")).unwrap(), first);
    let out = flinkguard_ok(d, &["pki", "create-upstream", "--force"]);
    assert!(out.contains("moved to"), "{out}");
    assert_ne!(fs::read(upstream.join("upstream.crt")).unwrap(), first);
    let aside: Vec<_> = fs::read_dir(d.join("pki"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("upstream.replaced-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    // No staging directory left behind.
    assert!(
        fs::read_dir(d.join("pki"))
            .unwrap()
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().contains(".tmp-")),
    );
}
