//! Several teams on one real Flink 2.3 through the gateway: job ownership recorded at
//! submission, `:own`-scoped roles, filtered listings and counts, impersonation, caller-chosen
//! savepoint paths, and ownership that survives a SIGKILL of the gateway mid-submissions.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::path::Path;
use std::time::Duration;

use common::{flinkguard_ok, set_policy};
use flinkguard_testkit::{ClusterBuilder, JobJar, TestDist};
use gatewaykit::{GatewayProcess, audit_lines, point_at};
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Uploads the test job as `user` and runs it; returns (jar id, job id).
fn submit(gateway: &GatewayProcess, user: &str, jar: &Path, name: &str) -> (String, String) {
    let (code, body) = gateway.curl(
        Some(user),
        &["-F", &format!("jarfile=@{}", jar.display())],
        "/jars/upload",
    );
    assert_eq!(code, 200, "{body}");
    let jar_id = json(&body)["filename"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let job = run(gateway, user, &jar_id, name);
    (jar_id, job)
}

fn run(gateway: &GatewayProcess, user: &str, jar_id: &str, name: &str) -> String {
    let request = serde_json::json!({
        "entryClass": JobJar::ENTRY_CLASS,
        "parallelism": 1,
        "programArgsList": [name],
    })
    .to_string();
    let (code, body) = gateway.curl(
        Some(user),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &request,
        ],
        &format!("/jars/{jar_id}/run"),
    );
    assert_eq!(code, 200, "{body}");
    json(&body)["jobid"].as_str().unwrap().to_owned()
}

fn listed_jobs(gateway: &GatewayProcess, user: &str, extra: &[&str]) -> Vec<String> {
    let (code, body) = gateway.curl(Some(user), extra, "/jobs/overview");
    assert_eq!(code, 200, "{body}");
    let mut ids: Vec<String> = json(&body)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jid"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn cluster_teams_see_and_cancel_only_their_own_jobs() {
    let dist = TestDist::default_version();
    let jar = JobJar::build(&dist);
    let cluster = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .slots_per_taskmanager(4)
        .config("web.submit.enable", "true")
        .start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    point_at(d, cluster.ports().rest, &[]);
    set_policy(
        d,
        "policy:\n  roles:\n    team-dev:\n    - cluster.read\n    - jars.upload\n    - jars.read:own\n    - jars.run:own\n    - jobs.read:own\n    - jobs.cancel:own\n    - jobs.savepoint:own\n  bindings:\n  - role: team-dev\n    users: [alice, bob]\n  - role: admin\n    users: [root]\n",
    );
    for user in ["alice", "bob", "root"] {
        flinkguard_ok(d, &["pki", "issue-client", "--user", user]);
    }
    let mut gateway = GatewayProcess::start(d);

    let (alice_jar, alice_job) = submit(&gateway, "alice", &jar.path, "alice-job");
    let (_, bob_job) = submit(&gateway, "bob", &jar.path, "bob-job");
    cluster.wait_job_running(&alice_job, Duration::from_secs(60));
    cluster.wait_job_running(&bob_job, Duration::from_secs(60));

    // Each sees only their own job and jar; the admin sees both jobs.
    assert_eq!(
        listed_jobs(&gateway, "alice", &[]),
        std::slice::from_ref(&alice_job)
    );
    assert_eq!(
        listed_jobs(&gateway, "bob", &[]),
        std::slice::from_ref(&bob_job)
    );
    let mut both = vec![alice_job.clone(), bob_job.clone()];
    both.sort();
    assert_eq!(listed_jobs(&gateway, "root", &[]), both);
    let (_, jars) = gateway.curl(Some("alice"), &[], "/jars");
    let jars: Vec<String> = json(&jars)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jars, std::slice::from_ref(&alice_jar));
    // Cluster-wide counts do not give bob's job away.
    let (_, overview) = gateway.curl(Some("alice"), &[], "/overview");
    assert_eq!(json(&overview)["jobs-running"], 1, "{overview}");
    let (_, overview) = gateway.curl(Some("root"), &[], "/overview");
    assert_eq!(json(&overview)["jobs-running"], 2, "{overview}");
    // Nor do bob's job's details, or running alice's jar.
    assert_eq!(
        gateway
            .curl(Some("alice"), &[], &format!("/jobs/{bob_job}"))
            .0,
        403
    );
    let (code, body) = gateway.curl(
        Some("bob"),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
        ],
        &format!("/jars/{alice_jar}/run"),
    );
    assert_eq!(code, 403, "{body}");

    // alice cannot cancel bob's job, which keeps running; she cancels her own.
    let cancel = |user: &str, job: &str| {
        gateway.curl(
            Some(user),
            &["-X", "PATCH"],
            &format!("/jobs/{job}?mode=cancel"),
        )
    };
    let (code, body) = cancel("alice", &bob_job);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("belongs to bob"), "{body}");
    assert!(cluster.rest().job_state(&bob_job).unwrap().fully_running());
    assert_eq!(cancel("alice", &alice_job).0, 202);

    // A savepoint somewhere the policy does not list: refused before Flink sees it.
    let (code, body) = gateway.curl(
        Some("bob"),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"target-directory": "/tmp/anywhere", "cancel-job": false}"#,
        ],
        &format!("/jobs/{bob_job}/savepoints"),
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("policy.paths"), "{body}");

    // Impersonation: the admin may act as alice (and then sees what alice sees); alice may
    // not act as bob. Both names go into the audit line.
    assert_eq!(
        listed_jobs(&gateway, "root", &["-H", "Impersonate-User: bob"]),
        std::slice::from_ref(&bob_job)
    );
    let (code, body) = gateway.curl(
        Some("alice"),
        &["-H", "Impersonate-User: bob"],
        "/jobs/overview",
    );
    assert_eq!(code, 403, "{body}");
    let audit = audit_lines(d);
    let acted = audit
        .iter()
        .filter(|l| l["impersonated_by"].is_string())
        .map(|l| {
            (
                l["user"].as_str().unwrap().to_owned(),
                l["impersonated_by"].as_str().unwrap().to_owned(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(acted, [("bob".to_owned(), "root".to_owned(), 200)]);
    let refused = audit.last().unwrap();
    assert_eq!(
        (refused["user"].as_str(), refused["status"].as_u64()),
        (Some("alice"), Some(403))
    );
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("alice may not impersonate bob"),
        "{refused}"
    );

    // The admin cancels bob's job.
    assert_eq!(cancel("root", &bob_job).0, 202);

    // SIGKILL in the middle of a stream of submissions loses no acknowledged owner.
    let (tx, rx) = std::sync::mpsc::channel();
    let submitter = {
        let dir = d.to_owned();
        let url = gateway.url(&format!("/jars/{alice_jar}/run"));
        std::thread::spawn(move || {
            let body = serde_json::json!({
                "entryClass": JobJar::ENTRY_CLASS,
                "parallelism": 1,
                "programArgsList": ["burst"],
            })
            .to_string();
            loop {
                let (code, answer) = gatewaykit::curl(
                    &dir,
                    Some("alice"),
                    &[
                        "-X",
                        "POST",
                        "-H",
                        "Content-Type: application/json",
                        "-d",
                        &body,
                    ],
                    &url,
                );
                if code != 200 {
                    break;
                }
                let job = serde_json::from_str::<Value>(&answer).unwrap()["jobid"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if tx.send(job).is_err() {
                    break;
                }
            }
        })
    };
    let acknowledged: Vec<String> = rx.iter().take(6).collect();
    gateway.signal("KILL");
    gateway.wait_exit(Duration::from_secs(10));
    drop(rx);
    submitter.join().unwrap();
    let owners = json(&flinkguard_ok(d, &["jobs", "owners", "--json"]));
    for job in &acknowledged {
        let row = owners
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == job.as_str())
            .unwrap_or_else(|| panic!("job {job} lost its owner: {owners}"));
        assert_eq!(row["owner"], "alice");
    }
    // A restarted gateway still knows: bob may not touch alice's burst jobs.
    let gateway = GatewayProcess::start(d);
    let (code, _) = gateway.curl(Some("bob"), &[], &format!("/jobs/{}", acknowledged[0]));
    assert_eq!(code, 403);
    assert_eq!(
        gateway
            .curl(Some("alice"), &[], &format!("/jobs/{}", acknowledged[0]))
            .0,
        200
    );
}
