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
    // The admin cancels alice's jobs as it cancelled bob's.
    let (code, body) = gateway.curl(
        Some("root"),
        &["-X", "PATCH"],
        &format!("/jobs/{}?mode=cancel", acknowledged[0]),
    );
    assert_eq!(code, 202, "{body}");
}

/// A decision service for `gateway.authorization_webhook`: denies `dev` cancelling, answers
/// `slow` too late, allows everything else.
const DECISION_SERVICE: &str = r#"
import http.server, json, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        question = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user, operation = question["principal"]["user"], question["operation"]
        if user == "slow":
            time.sleep(3)
        allow = not (user == "dev" and operation == "jobs.cancel")
        body = json.dumps({"allow": allow, "reason": "dev may not cancel today"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
"#;

#[test]
fn cluster_secrets_stay_hidden_links_sign_one_request_and_webhooks_decide() {
    use flinkguard_policy::Method;
    use flinkguard_policy::routes::{ROUTES, UI_STATIC_TEMPLATE};
    use std::io::BufRead;

    let dist = TestDist::default_version();
    let jar = JobJar::build(&dist);
    let cluster = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .config("web.submit.enable", "true")
        .config("env.java.opts.jobmanager", "-Dapp.db.password=hunter2")
        .config("s3.access-key", "AKIAEXAMPLE123")
        .start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    point_at(d, cluster.ports().rest, &[]);
    set_policy(
        d,
        "policy:\n  bindings:\n  - role: developer\n    users: [dev, slow]\n  - role: viewer\n    users: [ann]\n  - role: admin\n    users: [root]\n",
    );
    for user in ["dev", "slow", "ann", "root"] {
        flinkguard_ok(d, &["pki", "issue-client", "--user", user]);
    }
    let gateway = GatewayProcess::start(d);
    let (jar_id, job) = submit(&gateway, "dev", &jar.path, "--db.password=hunter2");
    cluster.wait_job_running(&job, Duration::from_secs(60));

    // The secrets are there: an admin (secrets.read) sees them.
    let (_, config) = gateway.curl(Some("root"), &[], "/jobmanager/config");
    assert!(config.contains("AKIAEXAMPLE123"), "{config}");
    // Every GET route, with real ids, as a developer and as a viewer: no secret anywhere.
    let (_, vertices) = gateway.curl(Some("root"), &[], &format!("/jobs/{job}"));
    let vertex = json(&vertices)["vertices"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, tms) = gateway.curl(Some("root"), &[], "/taskmanagers");
    let tm = json(&tms)["taskmanagers"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, logs) = gateway.curl(Some("root"), &[], "/jobmanager/logs");
    let log_file = json(&logs)["logs"][0]["name"].as_str().unwrap().to_owned();
    let fill = |template: &str| {
        template
            .split('/')
            .map(|segment| match segment {
                ":jobid" => job.clone(),
                ":jarid" => jar_id.clone(),
                ":vertexid" => vertex.clone(),
                ":taskmanagerid" => tm.clone(),
                ":filename" => log_file.clone(),
                ":subtaskindex" | ":attempt" | ":checkpointid" => "0".to_owned(),
                s if s.starts_with(':') => "00000000000000000000000000000000".to_owned(),
                s => s.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut crawled = 0;
    // Reads only: a GET that cancels (yarn-cancel) or runs a jar's main() (plan) is no read.
    for route in ROUTES.iter().filter(|r| {
        r.method == Method::Get && r.template != UI_STATIC_TEMPLATE && !r.operation.is_write()
    }) {
        let path = fill(route.template);
        for user in ["dev", "ann"] {
            let (code, body) = gateway.curl(Some(user), &[], &path);
            crawled += usize::from(code == 200);
            for secret in ["hunter2", "AKIAEXAMPLE123"] {
                assert!(
                    !body.contains(secret),
                    "{user} saw {secret} in GET {path} ({code}):\n{body}"
                );
            }
        }
    }
    assert!(
        crawled > 60,
        "only {crawled} answers were 200: the crawl saw too little"
    );
    // The plan of the jar with the secret as an argument, too.
    let (code, plan) = gateway.curl(
        Some("dev"),
        &[],
        &format!("/jars/{jar_id}/plan?programArg=--db.password%3Dhunter2"),
    );
    assert!(!plan.contains("hunter2"), "{code}: {plan}");
    // Nor does the audit file keep it from the query string.
    let audit = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    assert!(
        !audit.contains("hunter2"),
        "the audit file holds the secret"
    );

    // The Web UI's files reach a non-admin byte for byte (its JavaScript is not "redacted").
    let direct = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", &format!("{}{path}", cluster.rest_url())])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (code, index) = gateway.curl(Some("ann"), &[], "/");
    assert_eq!((code, &index), (200, &direct("/")));
    let scripts: Vec<&str> = index
        .split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().filter(|s| s.ends_with(".js")))
        .collect();
    let mut total = 0;
    for script in &scripts {
        let (code, js) = gateway.curl(Some("ann"), &[], &format!("/{script}"));
        assert_eq!(code, 200);
        assert!(js == direct(&format!("/{script}")), "{script} differs");
        total += js.len();
    }
    assert!(
        total > 100_000,
        "the Web UI's scripts {scripts:?} are only {total} bytes"
    );

    // Signed links: exactly one method and target, until they expire.
    let link = flinkguard_ok(
        d,
        &[
            "sign",
            "--method",
            "GET",
            "--path",
            &format!("/jobs/{job}"),
            "--ttl",
            "10m",
        ],
    );
    let link = link.trim();
    let target = &link[link.find("/jobs/").unwrap()..];
    let (code, body) = gateway.curl(None, &[], target);
    assert_eq!(code, 200, "{body}");
    let other = target.replace(&format!("/jobs/{job}"), "/jobmanager/config");
    assert_eq!(gateway.curl(None, &[], &other).0, 401);
    assert_eq!(gateway.curl(None, &["-X", "PATCH"], target).0, 401);
    let keys =
        flinkguard_signedlink::LinkKeys::load(&flinkguard_pki::PkiLayout::new(d.join("pki")))
            .unwrap();
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let expired = keys.sign("GET", &format!("/jobs/{job}"), past).unwrap();
    let (code, body) = gateway.curl(None, &[], expired.as_str());
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("expired"), "{body}");
    // Through the endpoint: only for principals granted links.sign, and only for what they
    // may do themselves.
    let ask = |user: &str, path: &str| {
        gateway.curl(
            Some(user),
            &[
                "-X",
                "POST",
                "-d",
                &serde_json::json!({"method": "GET", "path": path, "ttl": "5m"}).to_string(),
            ],
            "/flinkguard/v1/sign",
        )
    };
    assert_eq!(ask("dev", &format!("/jobs/{job}")).0, 403);
    let (code, body) = ask("root", &format!("/jobs/{job}/exceptions"));
    assert_eq!(code, 200, "{body}");
    let signed = json(&body)["link"].as_str().unwrap().to_owned();
    assert_eq!(gateway.curl(None, &[], &signed).0, 200);

    // External authorization: allow, deny, and no answer in time (deny).
    let port = flinkguard_testkit::free_port().unwrap();
    /// Stops the decision service by PID, also when the test fails.
    struct Service(std::process::Child);
    impl Drop for Service {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut service = Service(
        std::process::Command::new("python3")
            .args(["-c", DECISION_SERVICE, &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    std::io::BufReader::new(service.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    gatewaykit::edit_config(
        d,
        &[(
            "authorization_webhook: null",
            &format!(
                "authorization_webhook:\n    url: http://127.0.0.1:{port}/decide\n    timeout_ms: 1000\n    cache_seconds: 0"
            ),
        )],
    );
    gateway.wait_for_log("reloaded", Duration::from_secs(10));
    assert_eq!(gateway.curl(Some("dev"), &[], "/jobs/overview").0, 200);
    let (code, body) = gateway.curl(
        Some("dev"),
        &["-X", "PATCH"],
        &format!("/jobs/{job}?mode=cancel"),
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("dev may not cancel today"), "{body}");
    assert!(cluster.rest().job_state(&job).unwrap().fully_running());
    let (code, body) = gateway.curl(Some("slow"), &[], "/jobs/overview");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("did not answer"), "{body}");
    // The service gone: closed, not open.
    drop(service);
    let (code, body) = gateway.curl(Some("dev"), &[], "/jobs/overview");
    assert_eq!(code, 403, "{body}");
}
