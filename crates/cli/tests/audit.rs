//! `flinkguard audit` against the configuration Flink 2.3 ships, the one flinkguard renders,
//! stores made by Java's keytool, and a live cluster's REST API.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{expect_input_error, flinkguard, flinkguard_ok, keytool};
use flinkguard_testkit::{ClusterBuilder, TestDist};
use serde_json::Value;

/// `audit --format json` of `conf` in `dir`: the exit code and the findings.
fn audit_json(dir: &Path, conf: &str) -> (Option<i32>, Vec<Value>) {
    let out = flinkguard(dir, &["audit", "--flink-conf", conf, "--format", "json"]);
    let findings: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.status.code(), findings.as_array().unwrap().clone())
}

fn rules(findings: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn flinks_shipped_config_is_critical_and_flinkguards_is_clean() {
    let dist = TestDist::default_version();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = dist.conf_dir().join("config.yaml");
    let out = flinkguard(
        d,
        &[
            "audit",
            "--flink-conf",
            shipped.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let critical: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "critical")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        critical.contains(&"FG-TLS-001") && critical.contains(&"FG-REST-003"),
        "{findings:#}"
    );

    // What `flinkguard flink-config` writes has nothing above LOW (plain passwords in the
    // file are LOW: Flink reads them from there).
    flinkguard_ok(d, &["init", "--quiet"]);
    flinkguard_ok(d, &["flink-config", "--out", "config.yaml"]);
    let table = flinkguard_ok(
        d,
        &[
            "audit",
            "--flink-conf",
            "config.yaml",
            "--fail-on",
            "medium",
        ],
    );
    assert!(
        !table.contains("CRITICAL") && !table.contains("HIGH"),
        "{table}"
    );

    expect_input_error(
        &flinkguard(d, &["audit", "--flink-conf", "missing.yaml"]),
        &["missing.yaml"],
    );
    expect_input_error(
        &flinkguard(
            d,
            &[
                "audit",
                "--flink-conf",
                "config.yaml",
                "--fail-on",
                "severe",
            ],
        ),
        &["severe"],
    );
}

#[test]
fn flinkguards_own_stores_pass_the_file_checks_until_someone_loosens_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    flinkguard_ok(d, &["flink-config", "--out", "config.yaml"]);
    let (code, findings) = audit_json(d, "config.yaml");
    assert_eq!(code, Some(0));
    assert!(
        rules(&findings).iter().all(|r| !r.starts_with("FG-KS")),
        "{findings:#?}"
    );

    // A keystore others can read hands them the cluster identity.
    let keystore = d.join("pki/internal.p12");
    chmod(&keystore, 0o644);
    let (code, findings) = audit_json(d, "config.yaml");
    assert_eq!(code, Some(1));
    let exposed: Vec<&Value> = findings
        .iter()
        .filter(|f| f["rule"] == "FG-KS-002")
        .collect();
    assert_eq!(exposed.len(), 1, "{findings:#?}");
    assert_eq!(exposed[0]["severity"], "high");
    assert!(
        exposed[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("mode 0644")
    );
    assert!(exposed[0]["fix"].as_str().unwrap().starts_with("chmod 600"));
    chmod(&keystore, 0o600);

    // The config file holds the passwords: open to others, it is a finding of its own.
    chmod(&d.join("config.yaml"), 0o640);
    let (code, findings) = audit_json(d, "config.yaml");
    assert_eq!(code, Some(0), "medium is below the default --fail-on high");
    assert!(
        findings.iter().any(|f| f["rule"] == "FG-SEC-001"
            && f["severity"] == "medium"
            && f["evidence"].as_str().unwrap().contains("mode 0640")),
        "{findings:#?}"
    );
    chmod(&d.join("config.yaml"), 0o600);

    // A wrong password and a missing file are both "cannot be read", naming the key.
    let config = std::fs::read_to_string(d.join("config.yaml")).unwrap();
    let password = common::password(&d.join("pki/internal.password"));
    std::fs::write(
        d.join("broken.yaml"),
        config
            .replace(&password, "not-the-password")
            .replace("internal.p12", "missing.p12"),
    )
    .unwrap();
    let (_, findings) = audit_json(d, "broken.yaml");
    let unreadable: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "FG-KS-001")
        .map(|f| f["evidence"].as_str().unwrap())
        .collect();
    assert!(
        unreadable.iter().any(|e| e.contains("does not exist")),
        "{unreadable:#?}"
    );
    std::fs::write(
        d.join("wrong-password.yaml"),
        config.replace(&password, "not-the-password"),
    )
    .unwrap();
    let (_, findings) = audit_json(d, "wrong-password.yaml");
    assert!(
        findings.iter().any(|f| f["rule"] == "FG-KS-001"
            && f["evidence"]
                .as_str()
                .unwrap()
                .contains("password does not open")),
        "{findings:#?}"
    );
}

#[test]
fn keytool_made_weak_stores_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let pass = "store-secret";
    // A CA, and a leaf with a 1024-bit RSA key it signs with SHA-1 for 10 days, in a JKS
    // keystore: the setup Flink's older docs and many blog posts lead to.
    keytool(&[
        "-genkeypair",
        "-alias",
        "ca",
        "-keystore",
        &p("ca.p12"),
        "-storepass",
        pass,
        "-dname",
        "CN=weak-ca",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-ext",
        "bc:c",
        "-validity",
        "365",
    ]);
    keytool(&[
        "-genkeypair",
        "-alias",
        "leaf",
        "-keystore",
        &p("weak.jks"),
        "-storetype",
        "JKS",
        "-storepass",
        pass,
        "-keypass",
        pass,
        "-dname",
        "CN=flink.internal",
        "-keyalg",
        "RSA",
        "-keysize",
        "1024",
    ]);
    keytool(&[
        "-certreq",
        "-alias",
        "leaf",
        "-keystore",
        &p("weak.jks"),
        "-storepass",
        pass,
        "-file",
        &p("leaf.csr"),
    ]);
    keytool(&[
        "-gencert",
        "-alias",
        "ca",
        "-keystore",
        &p("ca.p12"),
        "-storepass",
        pass,
        "-sigalg",
        "SHA1withRSA",
        "-validity",
        "10",
        "-infile",
        &p("leaf.csr"),
        "-outfile",
        &p("leaf.crt"),
    ]);
    keytool(&[
        "-exportcert",
        "-alias",
        "ca",
        "-keystore",
        &p("ca.p12"),
        "-storepass",
        pass,
        "-file",
        &p("ca.crt"),
    ]);
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "ca",
        "-keystore",
        &p("weak.jks"),
        "-storepass",
        pass,
        "-file",
        &p("ca.crt"),
    ]);
    keytool(&[
        "-importcert",
        "-alias",
        "leaf",
        "-keystore",
        &p("weak.jks"),
        "-storepass",
        pass,
        "-keypass",
        pass,
        "-file",
        &p("leaf.crt"),
    ]);
    chmod(&d.join("weak.jks"), 0o600);
    // The JDK's own CA bundle (a JKS file on Debian), under a name that gives nothing away.
    std::fs::copy("/etc/ssl/certs/java/cacerts", d.join("trust.store")).unwrap();
    std::fs::write(d.join("krb5.keytab"), b"not inspected, only its mode").unwrap();
    chmod(&d.join("krb5.keytab"), 0o644);
    std::fs::write(
        d.join("flink-conf.yaml"),
        format!(
            "security.ssl.internal.enabled: true\n\
             security.ssl.internal.keystore: weak.jks\n\
             security.ssl.internal.keystore-password: {pass}\n\
             security.ssl.internal.key-password: {pass}\n\
             security.ssl.internal.truststore: trust.store\n\
             security.ssl.internal.truststore-password: changeit\n\
             security.kerberos.login.keytab: krb5.keytab\n"
        ),
    )
    .unwrap();
    let (code, findings) = audit_json(d, "flink-conf.yaml");
    assert_eq!(code, Some(1));
    let found = rules(&findings);
    for rule in [
        "FG-KS-003",
        "FG-KS-004",
        "FG-KS-005",
        "FG-TLS-005",
        "FG-KRB-001",
    ] {
        assert!(found.contains(&rule), "{rule} missing: {findings:#?}");
    }
    assert!(!found.contains(&"FG-KS-002"), "{findings:#?}");
    let of = |rule: &str| {
        findings.iter().find(|f| f["rule"] == rule).unwrap()["evidence"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(of("FG-KS-004").contains("RSA 1024"), "{}", of("FG-KS-004"));
    assert!(
        of("FG-KS-005").to_lowercase().contains("sha1"),
        "{}",
        of("FG-KS-005")
    );
    assert!(
        of("FG-KS-003").contains("expires in"),
        "{}",
        of("FG-KS-003")
    );
    assert!(
        of("FG-TLS-005").contains("trusted certificates"),
        "{}",
        of("FG-TLS-005")
    );
    // The CA's own self-signed certificate is SHA-256 and 2048 bits: only the leaf is flagged.
    assert_eq!(
        findings.iter().filter(|f| f["rule"] == "FG-KS-004").count(),
        1,
        "{findings:#?}"
    );

    // Without the password in the file the certificates cannot be read: said, not skipped.
    chmod(&d.join("krb5.keytab"), 0o600);
    std::fs::write(
        d.join("flink-conf.yaml"),
        "security.ssl.internal.enabled: true\nsecurity.ssl.internal.keystore: ca.p12\n\
         security.kerberos.login.keytab: krb5.keytab\n",
    )
    .unwrap();
    let out = flinkguard(d, &["audit", "--flink-conf", "flink-conf.yaml"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("not checked:") && table.contains("needs its password"),
        "{table}"
    );
    assert!(!table.contains("FG-KRB-001"), "{table}");
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0_and_points_at_lines() {
    // The schema as published with SARIF 2.1.0 (rtm.5), verbatim in tests/data. Its two
    // language-tag patterns (`run.language`, `toolComponent.language`: flinkguard writes
    // neither) have a stray `]` that a strict validator refuses as a regex; they are corrected
    // here, in memory only, so that every other assertion, formats (URIs) included, is checked.
    const BROKEN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    const INTENDED: &str = r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#;
    let text = include_str!("data/sarif-schema-2.1.0.json");
    assert_eq!(text.matches(BROKEN).count(), 2);
    let schema: Value = serde_json::from_str(&text.replace(BROKEN, INTENDED)).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("config.yaml"),
        "# a comment\nrest:\n  bind-address: 0.0.0.0\nweb.submit.enable: true\n",
    )
    .unwrap();
    let shipped = TestDist::default_version().conf_dir().join("config.yaml");
    for conf in [d.join("config.yaml"), shipped] {
        let out = flinkguard(
            d,
            &[
                "audit",
                "--flink-conf",
                conf.to_str().unwrap(),
                "--format",
                "sarif",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let log: Value = serde_json::from_slice(&out.stdout).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{log:#}");
        // And the validator does reject what SARIF forbids.
        let mut broken = log.clone();
        broken["runs"][0]["results"][0]["level"] = "fatal".into();
        assert!(!validator.is_valid(&broken));
        let (_, findings) = audit_json(d, conf.to_str().unwrap());
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), findings.len());
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        for result in results {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
        }
    }
    let out = flinkguard(
        d,
        &["audit", "--flink-conf", "config.yaml", "--format", "sarif"],
    );
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let exposed = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "FG-REST-002")
        .unwrap();
    let location = &exposed["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "config.yaml");
    assert_eq!(location["region"]["startLine"], 3);
}

#[test]
fn table_is_coloured_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("config.yaml"), "rest.bind-address: 0.0.0.0\n").unwrap();
    // `script` runs the command on a pseudo-terminal, as a user's shell would.
    let on_terminal = |no_color: &str| {
        let command = format!(
            "{} audit --flink-conf config.yaml",
            env!("CARGO_BIN_EXE_flinkguard")
        );
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("NO_COLOR", no_color)
            .current_dir(d)
            .output()
            .expect("run script (util-linux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        on_terminal("").contains("\x1b[1;31mCRITICAL"),
        "{:?}",
        on_terminal("")
    );
    assert!(!on_terminal("1").contains('\x1b'), "{:?}", on_terminal("1"));
    let piped = flinkguard(d, &["audit", "--flink-conf", "config.yaml"]);
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'));
    assert!(String::from_utf8_lossy(&piped.stdout).contains("CRITICAL"));
}

#[test]
fn a_live_clusters_config_is_audited_through_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Flink's defaults, as shipped: nothing secured.
    let cluster = ClusterBuilder::new(&TestDist::default_version()).start();
    let url = format!("http://127.0.0.1:{}", cluster.ports().rest);
    let out = flinkguard(d, &["audit", "--rest", &url, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = rules(findings.as_array().unwrap());
    assert!(
        found.contains(&"FG-TLS-001") && found.contains(&"FG-REST-003"),
        "{findings:#}"
    );
    let table = flinkguard(d, &["audit", "--rest", &url]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("/jobmanager/config"), "{table}");
    assert!(table.contains("not checked: keystores"), "{table}");

    // Not Flink, no server, a file path instead of a URL: one message each, exit 2.
    expect_input_error(
        &flinkguard(d, &["audit", "--rest", &format!("{url}/does-not-exist")]),
        &["/does-not-exist/jobmanager/config"],
    );
    expect_input_error(
        &flinkguard(d, &["audit", "--rest", "config.yaml"]),
        &["--rest"],
    );
    expect_input_error(
        &flinkguard(d, &["audit", "--rest", &url, "--ca", "missing-ca.pem"]),
        &["--ca", "missing-ca.pem"],
    );
}
