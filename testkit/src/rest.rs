//! A small client for Flink's REST API over plain HTTP on loopback.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Per-request timeout for ordinary calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Per-request timeout for jar uploads and runs (`run` executes the job's `main()`).
const SLOW_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A REST call that failed: no answer, a non-2xx status, or an unexpected body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// `GET /jobs/...`.
    pub request: String,
    /// The HTTP status, if there was an answer.
    pub status: Option<u16>,
    /// What went wrong, with the body where there was one.
    pub detail: String,
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} → HTTP {status}: {}", self.request, self.detail),
            None => write!(f, "{} failed: {}", self.request, self.detail),
        }
    }
}

impl std::error::Error for RestError {}

/// The state of a job as `GET /jobs/:jobid` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// `RUNNING`, `FAILED`, `CANCELED`...
    pub state: String,
    /// Each vertex's name and status.
    pub vertices: Vec<(String, String)>,
}

impl JobState {
    /// The job and every one of its vertices are running (only then can checkpoints complete).
    pub fn fully_running(&self) -> bool {
        self.state == "RUNNING" && self.vertices.iter().all(|(_, s)| s == "RUNNING")
    }

    /// A state the job does not leave.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "FAILED" | "CANCELED" | "FINISHED")
    }
}

/// Flink's REST API at `base` (`http://127.0.0.1:PORT`), every request with a timeout.
#[derive(Debug, Clone)]
pub struct RestClient {
    base: String,
    agent: ureq::Agent,
    slow_agent: ureq::Agent,
    /// Set when REST requires mutual TLS: requests then go through curl with these files.
    mtls: Option<MutualTls>,
}

/// PEM files for REST over mutual TLS: the trusted certificate, the client certificate and key.
#[derive(Debug, Clone)]
pub struct MutualTls {
    /// The CA (or the self-signed server certificate) the server must present.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// What a curl request sends.
enum CurlBody<'a> {
    None,
    Json(&'a Value),
    Jar(&'a Path),
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // Loopback never goes through an HTTP proxy from the environment.
        .proxy(None)
        .build()
        .into()
}

impl RestClient {
    /// A client for the REST API at `base`.
    pub fn new(base: impl Into<String>) -> Self {
        RestClient {
            base: base.into().trim_end_matches('/').to_owned(),
            agent: agent(REQUEST_TIMEOUT),
            slow_agent: agent(SLOW_REQUEST_TIMEOUT),
            mtls: None,
        }
    }

    /// A client for a REST API that requires mutual TLS (`https://...`), by curl.
    pub fn with_mutual_tls(base: impl Into<String>, mtls: MutualTls) -> Self {
        let mut client = RestClient::new(base);
        client.mtls = Some(mtls);
        client
    }

    /// `METHOD {base}{path}` by curl with the client certificate → JSON.
    fn curl(
        &self,
        mtls: &MutualTls,
        method: &str,
        path: &str,
        body: CurlBody<'_>,
        timeout: Duration,
    ) -> Result<Value, RestError> {
        let request = format!("{method} {path}");
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            &timeout.as_secs().to_string(),
            "-X",
            method,
        ])
        .arg("--cacert")
        .arg(&mtls.ca)
        .arg("--cert")
        .arg(&mtls.cert)
        .arg("--key")
        .arg(&mtls.key)
        .args(["-w", "\n%{http_code}"]);
        match body {
            CurlBody::None => {}
            CurlBody::Json(json) => {
                cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                    .arg(json.to_string());
            }
            CurlBody::Jar(jar) => {
                cmd.arg("-F").arg(format!(
                    "jarfile=@{};type=application/x-java-archive",
                    jar.display()
                ));
            }
        }
        let out = cmd
            .arg(format!("{}{path}", self.base))
            .output()
            .map_err(|e| RestError {
                request: request.clone(),
                status: None,
                detail: format!("cannot run curl: {e}"),
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
        let status: u16 = code.trim().parse().unwrap_or(0);
        if !out.status.success() || status == 0 {
            return Err(RestError {
                request,
                status: None,
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        answer_json(request, status, body.to_owned())
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET {base}{path}` → JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, RestError> {
        if let Some(mtls) = &self.mtls {
            return self.curl(mtls, "GET", path, CurlBody::None, REQUEST_TIMEOUT);
        }
        let request = format!("GET {path}");
        let response = self.agent.get(format!("{}{path}", self.base)).call();
        read_json(request, response)
    }

    /// `POST {base}{path}` with a JSON body → JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        if let Some(mtls) = &self.mtls {
            return self.curl(
                mtls,
                "POST",
                path,
                CurlBody::Json(body),
                SLOW_REQUEST_TIMEOUT,
            );
        }
        let request = format!("POST {path}");
        let response = self
            .slow_agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes());
        read_json(request, response)
    }

    /// `POST /jars/upload` (multipart, field `jarfile`) → the jar id for `/jars/:jarid/run`.
    pub fn upload_jar(&self, jar: &Path) -> Result<String, RestError> {
        let request = "POST /jars/upload".to_owned();
        let err = |detail: String| RestError {
            request: request.clone(),
            status: None,
            detail,
        };
        if let Some(mtls) = &self.mtls {
            let answer = self.curl(
                mtls,
                "POST",
                "/jars/upload",
                CurlBody::Jar(jar),
                SLOW_REQUEST_TIMEOUT,
            )?;
            return answer["filename"]
                .as_str()
                .and_then(|f| f.rsplit('/').next())
                .map(str::to_owned)
                .ok_or_else(|| err(format!("no filename in the answer: {answer}")));
        }
        let bytes =
            std::fs::read(jar).map_err(|e| err(format!("cannot read {}: {e}", jar.display())))?;
        let file_name = jar
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "job.jar".to_owned());
        let boundary = format!("flinkguard-{:016x}", rand_u64());
        let mut body = Vec::with_capacity(bytes.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; \
                 filename=\"{file_name}\"\r\nContent-Type: application/x-java-archive\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .slow_agent
            .post(format!("{}/jars/upload", self.base))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..]);
        let answer = read_json(request.clone(), response)?;
        // `filename` is the stored path; its last segment is the jar id.
        answer["filename"]
            .as_str()
            .and_then(|f| f.rsplit('/').next())
            .map(str::to_owned)
            .ok_or_else(|| err(format!("no filename in the answer: {answer}")))
    }

    /// `POST /jars/:jarid/run` → the job id.
    pub fn run_jar(
        &self,
        jar_id: &str,
        entry_class: &str,
        parallelism: u32,
        args: &[&str],
    ) -> Result<String, RestError> {
        let path = format!("/jars/{jar_id}/run");
        let body = json!({
            "entryClass": entry_class,
            "parallelism": parallelism,
            "programArgsList": args,
        });
        let answer = self.post_json(&path, &body)?;
        answer["jobid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RestError {
                request: format!("POST {path}"),
                status: None,
                detail: format!("no jobid in the answer: {answer}"),
            })
    }

    /// `GET /jobs/:jobid` → state and vertex states.
    pub fn job_state(&self, job_id: &str) -> Result<JobState, RestError> {
        let job = self.get_json(&format!("/jobs/{job_id}"))?;
        let vertices = job["vertices"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap_or("?").to_owned(),
                            v["status"].as_str().unwrap_or("?").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(JobState {
            state: job["state"].as_str().unwrap_or("?").to_owned(),
            vertices,
        })
    }

    /// The root exception of a job (`GET /jobs/:jobid/exceptions`), for error messages.
    pub fn job_exception(&self, job_id: &str) -> String {
        match self.get_json(&format!("/jobs/{job_id}/exceptions")) {
            Ok(v) => v["root-exception"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    v["exceptionHistory"]["entries"][0]["stacktrace"]
                        .as_str()
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "(no exception recorded)".to_owned()),
            Err(e) => format!("(cannot read the exceptions: {e})"),
        }
    }

    /// `GET /jobs/:jobid/checkpoints` → `counts.completed`.
    pub fn completed_checkpoints(&self, job_id: &str) -> Result<u64, RestError> {
        let path = format!("/jobs/{job_id}/checkpoints");
        let answer = self.get_json(&path)?;
        answer["counts"]["completed"]
            .as_u64()
            .ok_or_else(|| RestError {
                request: format!("GET {path}"),
                status: None,
                detail: format!("no counts.completed in {answer}"),
            })
    }

    /// The TaskManager ids that run at least one subtask of the job.
    pub fn job_taskmanagers(&self, job_id: &str) -> Result<Vec<String>, RestError> {
        let job = self.get_json(&format!("/jobs/{job_id}"))?;
        let mut ids = Vec::new();
        for vertex in job["vertices"].as_array().into_iter().flatten() {
            let Some(vid) = vertex["id"].as_str() else {
                continue;
            };
            let tms = self.get_json(&format!("/jobs/{job_id}/vertices/{vid}/taskmanagers"))?;
            for tm in tms["taskmanagers"].as_array().into_iter().flatten() {
                let id = tm["taskmanager-id"]
                    .as_str()
                    .or_else(|| tm["resource-id"].as_str())
                    .or_else(|| tm["host"].as_str())
                    .unwrap_or("?")
                    .to_owned();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// `PATCH /jobs/:jobid?mode=cancel`.
    pub fn cancel_job(&self, job_id: &str) -> Result<(), RestError> {
        let path = format!("/jobs/{job_id}?mode=cancel");
        if let Some(mtls) = &self.mtls {
            return self
                .curl(mtls, "PATCH", &path, CurlBody::None, REQUEST_TIMEOUT)
                .map(|_| ());
        }
        let response = self
            .agent
            .patch(format!("{}{path}", self.base))
            .send_empty();
        read_json(format!("PATCH {path}"), response).map(|_| ())
    }

    /// Polls until the job and all its vertices run. Fails at once if the job fails.
    pub fn wait_job_running(&self, job_id: &str, timeout: Duration) -> Result<JobState, RestError> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.job_state(job_id);
            if let Ok(state) = &state {
                if state.fully_running() {
                    return Ok(state.clone());
                }
                if state.is_terminal() {
                    return Err(RestError {
                        request: format!("GET /jobs/{job_id}"),
                        status: None,
                        detail: format!(
                            "job is {} instead of RUNNING; root exception: {}",
                            state.state,
                            self.job_exception(job_id)
                        ),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(RestError {
                    request: format!("GET /jobs/{job_id}"),
                    status: None,
                    detail: format!("job not fully RUNNING after {timeout:?}: last {state:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until at least `n` checkpoints completed; returns the count.
    pub fn wait_checkpoints(
        &self,
        job_id: &str,
        n: u64,
        timeout: Duration,
    ) -> Result<u64, RestError> {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.completed_checkpoints(job_id);
            if let Ok(count) = count
                && count >= n
            {
                return Ok(count);
            }
            let state = self.job_state(job_id);
            if let Ok(state) = &state
                && state.is_terminal()
            {
                return Err(RestError {
                    request: format!("GET /jobs/{job_id}/checkpoints"),
                    status: None,
                    detail: format!(
                        "job is {} while waiting for checkpoints; root exception: {}",
                        state.state,
                        self.job_exception(job_id)
                    ),
                });
            }
            if Instant::now() >= deadline {
                let latest = self
                    .get_json(&format!("/jobs/{job_id}/checkpoints"))
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| e.to_string());
                return Err(RestError {
                    request: format!("GET /jobs/{job_id}/checkpoints"),
                    status: None,
                    detail: format!(
                        "fewer than {n} completed checkpoints after {timeout:?} ({count:?}); \
                         checkpoint stats: {latest}; job state: {state:?}"
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn read_json(
    request: String,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Value, RestError> {
    let mut response = response.map_err(|e| RestError {
        request: request.clone(),
        status: None,
        detail: e.to_string(),
    })?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| RestError {
            request: request.clone(),
            status: Some(status),
            detail: format!("cannot read the body: {e}"),
        })?;
    answer_json(request, status, body)
}

/// A REST answer: an error unless 2xx, else its JSON (`null` when empty).
fn answer_json(request: String, status: u16, body: String) -> Result<Value, RestError> {
    if !(200..300).contains(&status) {
        return Err(RestError {
            request,
            status: Some(status),
            detail: body,
        });
    }
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&body).map_err(|e| RestError {
        request,
        status: Some(status),
        detail: format!("not JSON ({e}): {body}"),
    })
}

/// A multipart boundary only has to be unlikely to appear in the jar.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}
