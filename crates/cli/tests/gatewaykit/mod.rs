//! A `flinkguard gateway` process for tests, and curl against it.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flinkguard_testkit::free_ports;

/// The gateway process, stopped by PID when the test ends, also on panic.
pub(crate) struct GatewayProcess {
    child: Child,
    pub(crate) port: u16,
    pub(crate) admin_port: u16,
    dir: PathBuf,
    /// Everything the gateway wrote to stderr after its first line.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl GatewayProcess {
    /// Starts `flinkguard gateway` in `dir` on free ports, with audit lines going only to
    /// gateway.audit_file; returns once it listens.
    pub(crate) fn start(dir: &Path) -> GatewayProcess {
        Self::spawn(dir, &[], Stdio::null())
    }

    /// Like [`GatewayProcess::start`], reading `--config CONFIG` instead of dir/flinkguard.yaml.
    pub(crate) fn start_with_config(dir: &Path, config: &Path) -> GatewayProcess {
        let config = config.to_str().unwrap();
        Self::spawn(dir, &["--config", config], Stdio::null())
    }

    /// Like [`GatewayProcess::start`], also returning the gateway's stdout (audit lines).
    pub(crate) fn start_with_stdout(dir: &Path) -> (GatewayProcess, std::process::ChildStdout) {
        let mut gateway = Self::spawn(dir, &[], Stdio::piped());
        let stdout = gateway.child.stdout.take().unwrap();
        (gateway, stdout)
    }

    fn spawn(dir: &Path, args: &[&str], stdout: Stdio) -> GatewayProcess {
        let ports = free_ports(2).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_flinkguard"))
            .arg("gateway")
            .args(args)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", ports[0]))
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", ports[1]))
            .current_dir(dir)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("listening"), "{first}");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        GatewayProcess {
            child,
            port: ports[0],
            admin_port: ports[1],
            dir: dir.to_owned(),
            stderr,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `https://localhost:PORT` + path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// curl as `user` (a client certificate from pki/clients), or without one.
    pub(crate) fn curl(&self, user: Option<&str>, extra: &[&str], path: &str) -> (u16, String) {
        curl(&self.dir, user, extra, &self.url(path))
    }

    /// GET on the admin listener: (status, body).
    pub(crate) fn admin(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{}{path}", self.admin_port))
            .output()
            .unwrap();
        split_status(&String::from_utf8_lossy(&out.stdout))
    }

    /// Sends a signal to the gateway (by its PID).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until the gateway wrote a stderr line containing `needle`; returns it.
    pub(crate) fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not log `{needle}` within {timeout:?}; it logged: {:?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines the gateway wrote to stderr after starting.
    pub(crate) fn log(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit (after a signal); its exit status.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn split_status(text: &str) -> (u16, String) {
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_owned())
}

/// curl with the PKI's CA, `--path-as-is`, as `user` if given: (status, body); 0 when no
/// HTTP answer came (a refused handshake).
pub(crate) fn curl(dir: &Path, user: Option<&str>, extra: &[&str], url: &str) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.current_dir(dir).args([
        "-s",
        "--cacert",
        "pki/ca.crt",
        "-w",
        "\n%{http_code}",
        "--path-as-is",
    ]);
    if let Some(user) = user {
        cmd.args([
            "--cert",
            &format!("pki/clients/{user}/client.crt"),
            "--key",
            &format!("pki/clients/{user}/client.key"),
        ]);
    }
    let out = cmd.args(extra).arg(url).output().expect("curl");
    split_status(&String::from_utf8_lossy(&out.stdout))
}

/// Replaces each `from` with `to` in dir/flinkguard.yaml; every `from` must be there.
pub(crate) fn edit_config(dir: &Path, edits: &[(&str, &str)]) {
    let path = dir.join("flinkguard.yaml");
    let mut text = fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "`{from}` is not in flinkguard.yaml:\n{text}"
        );
        text = text.replacen(from, to, 1);
    }
    // Written whole and renamed, as an editor or a config-management tool would.
    let staged = dir.join(".flinkguard.yaml.new");
    fs::write(&staged, text).unwrap();
    fs::rename(&staged, &path).unwrap();
}

pub(crate) use flinkguard_testkit::PLAINTEXT_UPSTREAM;

/// Points dir/flinkguard.yaml at a testkit Flink (plain http REST on loopback) whose REST port
/// is `rest_port`, with `edits`.
pub(crate) fn point_at(dir: &Path, rest_port: u16, edits: &[(&str, &str)]) {
    let rest = format!("rest_port: {rest_port}");
    edit_config(
        dir,
        &[
            &[("rest_port: 8081", rest.as_str())],
            &PLAINTEXT_UPSTREAM[..],
            edits,
        ]
        .concat(),
    );
}

/// The audit lines written so far.
pub(crate) fn audit_lines(dir: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A TLS connection to the gateway that sends exactly the bytes a test writes (HTTP/1.1
/// only), as `user` if given.
pub(crate) type RawTls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

pub(crate) fn raw_tls(dir: &Path, port: u16, user: Option<&str>) -> RawTls {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("pki/ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match user {
        Some(user) => {
            let client = dir.join("pki/clients").join(user);
            let chain = CertificateDer::pem_file_iter(client.join("client.crt"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(client.join("client.key")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connection =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A test that waits for the gateway to close a connection must not hang if it never does.
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    stream
}

/// Reads until the peer closes the connection (or fails it); returns what arrived.
pub(crate) fn read_to_close(stream: &mut impl std::io::Read) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// Python's http.server over TLS, serving a directory: a real HTTPS server for files such as
/// an identity provider's JWKS. Stopped by PID when dropped.
pub(crate) struct StaticHttps {
    child: Child,
    pub(crate) port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

const STATIC_HTTPS: &str = r#"
import functools, http.server, ssl, sys
port, directory, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#;

impl StaticHttps {
    pub(crate) fn start(directory: &Path, cert: &Path, key: &Path) -> StaticHttps {
        let port = free_ports(1).unwrap()[0];
        let mut child = Command::new("python3")
            .args(["-c", STATIC_HTTPS, &port.to_string()])
            .args([directory, cert, key])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        // http.server logs one line per request to stderr.
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = requests.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        StaticHttps {
            child,
            port,
            requests,
        }
    }

    /// How many requests for `path` the server logged.
    pub(crate) fn requests_for(&self, path: &str) -> usize {
        let needle = format!("\"GET {path} ");
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&needle))
            .count()
    }
}

impl Drop for StaticHttps {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
