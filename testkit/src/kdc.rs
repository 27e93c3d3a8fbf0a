//! A real MIT Kerberos realm for tests (Debian `krb5-kdc`, `krb5-admin-server`, `krb5-user`,
//! installed by `cargo xtask prepare`): its database and configuration in a temporary
//! directory, its KDC on a free loopback port, stopped by its own PID on drop.
//!
//! ```no_run
//! use flinkguard_testkit::kdc::Realm;
//!
//! let mut realm = Realm::create("EXAMPLE.ORG");
//! realm.add_principal("flink/flink-prod");
//! let keytab = realm.export_keytab("flink/flink-prod", "flink.keytab");
//! realm.start_kdc();
//! let out = realm.kinit(&keytab, "flink/flink-prod@EXAMPLE.ORG", &realm.krb5_conf());
//! assert!(out.status.success());
//! ```

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A realm whose database lives in a temporary directory.
#[derive(Debug)]
pub struct Realm {
    name: String,
    dir: tempfile::TempDir,
    port: u16,
    kdc: Option<Child>,
}

/// The MIT tool `name`: on PATH, or in /usr/sbin (where Debian installs the admin tools,
/// which a non-root PATH often lacks).
pub fn tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    let found = on_path.or_else(|| {
        let sbin = Path::new("/usr/sbin").join(name);
        sbin.is_file().then_some(sbin)
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is missing: run `cargo xtask prepare` (Debian packages krb5-kdc, krb5-admin-server, krb5-user)"
        )
    })
}

fn run(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Realm {
    /// Creates the realm's database (`kdb5_util create -s`) with a krb5.conf and kdc.conf of
    /// its own; the KDC is not started yet.
    pub fn create(name: &str) -> Realm {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::free_port().expect("a free loopback port for the KDC");
        let d = dir.path().display();
        fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n {name} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  \
                 acl_file = {d}/kadm5.acl\n  max_life = 1h\n }}\n\
                 [logging]\n kdc = FILE:{d}/kdc.log\n default = FILE:{d}/krb5.log\n"
            ),
        )
        .unwrap();
        fs::write(dir.path().join("kadm5.acl"), "").unwrap();
        let realm = Realm {
            name: name.to_owned(),
            dir,
            port,
            kdc: None,
        };
        fs::write(realm.krb5_conf(), realm.krb5_conf_text()).unwrap();
        // The master key of a throw-away realm; it protects nothing outside this test.
        run(realm.command("kdb5_util").args([
            "-r",
            name,
            "create",
            "-s",
            "-P",
            "throwaway-master-key",
        ]));
        realm
    }

    /// A krb5.conf that reaches this realm's KDC on loopback, TCP first (`udp_preference_limit`;
    /// MIT's `kdc = tcp/...` is not understood by every release), with every DNS lookup off
    /// (the sandbox has no DNS for the realm).
    pub fn krb5_conf_text(&self) -> String {
        format!(
            "[libdefaults]\n default_realm = {name}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n \
             rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n\
             [realms]\n {name} = {{\n  kdc = 127.0.0.1:{port}\n }}\n",
            name = self.name,
            port = self.port
        )
    }

    /// The KDC's port on 127.0.0.1 (TCP and UDP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The realm's own krb5.conf file.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The realm's directory (database, logs, exported keytabs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, tool_name: &str) -> Command {
        let mut c = Command::new(tool(tool_name));
        c.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"));
        c
    }

    fn kadmin(&self, query: &str) -> Output {
        run(self
            .command("kadmin.local")
            .args(["-r", &self.name, "-q", query]))
    }

    /// Adds `principal` (without realm) with a random key.
    pub fn add_principal(&self, principal: &str) {
        self.kadmin(&format!("addprinc -randkey {principal}@{}", self.name));
    }

    /// Writes the principal's keys into a new keytab under the realm's directory
    /// (`ktadd`, which also gives the principal new keys: earlier keytabs go stale).
    pub fn export_keytab(&self, principal: &str, file: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        self.kadmin(&format!(
            "ktadd -k {} {principal}@{}",
            path.display(),
            self.name
        ));
        path
    }

    /// Starts `krb5kdc` in the foreground as a child and waits until it accepts TCP.
    pub fn start_kdc(&mut self) {
        let log = fs::File::create(self.dir.path().join("krb5kdc.out")).unwrap();
        let child = self
            .command("krb5kdc")
            .args(["-n", "-r", &self.name])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start krb5kdc");
        self.kdc = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.kdc.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "krb5kdc exited with {status}:\n{}",
                    fs::read_to_string(self.dir.path().join("krb5kdc.out")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "krb5kdc did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kinit -k -t keytab principal` against this KDC with the given krb5.conf, into a
    /// credential cache of its own; the output, whatever the outcome.
    pub fn kinit(&self, keytab: &Path, principal: &str, krb5_conf: &Path) -> Output {
        static CACHES: AtomicUsize = AtomicUsize::new(0);
        let n = CACHES.fetch_add(1, Ordering::Relaxed);
        let cache = self.dir.path().join(format!("cc-{n}"));
        let mut c = Command::new(tool("kinit"));
        c.env("KRB5_CONFIG", krb5_conf)
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .arg("-k")
            .arg("-t")
            .arg(keytab)
            .arg(principal);
        let out = c.output().expect("run kinit");
        if out.status.success() {
            // The ticket is there: klist names the principal and the realm's TGT.
            let list = run(Command::new(tool("klist"))
                .env("KRB5_CONFIG", krb5_conf)
                .arg("-c")
                .arg(format!("FILE:{}", cache.display())));
            let text = String::from_utf8_lossy(&list.stdout);
            assert!(text.contains(principal), "{text}");
            assert!(
                text.contains(&format!("krbtgt/{}@{}", self.name, self.name)),
                "{text}"
            );
        }
        out
    }

    /// Logs in from `keytab` in a real JVM through JAAS's Krb5LoginModule, as Flink's
    /// KafkaClient context does (`java/KeytabLogin.java`, run as a single source file), with
    /// `jvm_options` (e.g. `-Djava.security.krb5.conf=...`) as the pods pass them; the
    /// output, whatever the outcome.
    pub fn java_login(&self, jvm_options: &[&str], keytab: &Path, principal: &str) -> Output {
        let java = flinkguard_flink::require_java().expect("java 17 (cargo xtask prepare)");
        let source = self.dir.path().join("KeytabLogin.java");
        fs::write(&source, include_str!("../java/KeytabLogin.java")).unwrap();
        Command::new(&java.java)
            .args(jvm_options)
            .arg(&source)
            .arg(keytab)
            .arg(principal)
            // Nothing from the machine: no ticket cache, no other krb5.conf by environment.
            .env_remove("KRB5_CONFIG")
            .env_remove("KRB5CCNAME")
            .output()
            .expect("run java")
    }
}

impl Drop for Realm {
    fn drop(&mut self) {
        // Only the KDC this realm started, by its PID.
        if let Some(mut child) = self.kdc.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
