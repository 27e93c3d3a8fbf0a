//! A 1 GiB jar upload through the gateway to a real Flink 2.3: the body is streamed, never
//! held, so the gateway's peak RSS stays far below the upload's size, and Flink receives
//! every byte (it reads the jar's central directory, written after the 1 GiB entry).
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::flinkguard_ok;
use flinkguard_testkit::{ClusterBuilder, TestDist};
use gatewaykit::{GatewayProcess, curl, point_at};

/// The big entry's size: 1 GiB, written as 1024 copies of one 1 MiB block.
const BLOCK: usize = 1 << 20;
const BLOCKS: u32 = 1024;
/// Flink's `rest.server.max-content-length`: the upload plus headroom.
const FLINK_MAX_CONTENT: u64 = (1 << 30) + (64 << 20);
/// `gateway.max_body_bytes`: above Flink's limit.
const GATEWAY_MAX_BODY: u64 = (1 << 30) + (128 << 20);
/// The gateway's peak RSS must stay below this while it forwards 1 GiB.
const MAX_GATEWAY_HWM_KIB: u64 = 64 * 1024;
/// The jar's main class, named in its manifest; Flink lists it once it has read the jar.
const MAIN_CLASS: &str = "flinkguard.bigjar.Main";

// --- A stored (uncompressed) zip written by hand, streamed to disk. ---

fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, slot) in (0u32..).zip(table.iter_mut()) {
        let mut c = i;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    table
}

fn crc32(data: &[u8]) -> u32 {
    let table = crc32_table();
    !data.iter().fold(!0u32, |crc, &b| {
        table[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

/// `vec` times the GF(2) matrix `mat` (zlib's `crc32_combine`).
fn gf2_times(mat: &[u32; 32], mut vec: u32) -> u32 {
    let mut sum = 0;
    let mut row = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[row];
        }
        vec >>= 1;
        row += 1;
    }
    sum
}

fn gf2_square(mat: &[u32; 32]) -> [u32; 32] {
    std::array::from_fn(|n| gf2_times(mat, mat[n]))
}

/// The CRC-32 of `a ‖ b` from the CRC-32s of `a` and `b` and the length of `b`: the test
/// computes one 1 MiB block's CRC and doubles it up to 1 GiB, instead of hashing 1 GiB in an
/// unoptimized build.
fn crc32_combine(mut crc_a: u32, crc_b: u32, mut len_b: u64) -> u32 {
    // The operator for one zero bit, then squared to two and four.
    let mut odd = [0u32; 32];
    odd[0] = 0xEDB8_8320;
    for (n, slot) in odd.iter_mut().enumerate().skip(1) {
        *slot = 1 << (n - 1);
    }
    let mut even = gf2_square(&odd);
    odd = gf2_square(&even);
    // Apply len_b zero bytes to crc_a, one bit of len_b at a time.
    while len_b != 0 {
        even = gf2_square(&odd);
        if len_b & 1 != 0 {
            crc_a = gf2_times(&even, crc_a);
        }
        len_b >>= 1;
        if len_b == 0 {
            break;
        }
        odd = gf2_square(&even);
        if len_b & 1 != 0 {
            crc_a = gf2_times(&odd, crc_a);
        }
        len_b >>= 1;
    }
    crc_a ^ crc_b
}

/// A zip entry's fixed header fields: stored, no data descriptor, 1980-01-01 00:00.
fn entry_fields(crc: u32, size: u32, name: &str) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&10u16.to_le_bytes()); // version needed: 1.0
    f.extend_from_slice(&0u16.to_le_bytes()); // flags
    f.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    f.extend_from_slice(&0u16.to_le_bytes()); // time
    f.extend_from_slice(&0x21u16.to_le_bytes()); // date
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(&size.to_le_bytes()); // compressed
    f.extend_from_slice(&size.to_le_bytes()); // uncompressed
    f.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes()); // extra length
    f
}

/// What a zip entry holds: bytes, or one block written `times` times.
enum Content<'a> {
    Bytes(&'a [u8]),
    Repeated { block: &'a [u8], times: u32 },
}

impl Content<'_> {
    /// Size and CRC-32; a repeated block's CRC is doubled up from the block's, so `times` must
    /// be a power of two.
    fn size_and_crc(&self) -> (u64, u32) {
        match self {
            Content::Bytes(bytes) => (bytes.len() as u64, crc32(bytes)),
            Content::Repeated { block, times } => {
                assert!(times.is_power_of_two());
                let (mut len, mut crc) = (block.len() as u64, crc32(block));
                for _ in 0..times.trailing_zeros() {
                    crc = crc32_combine(crc, crc, len);
                    len *= 2;
                }
                (len, crc)
            }
        }
    }
}

/// Writes a stored zip of `entries` to `path`, streamed (a repeated block is written block by
/// block, never assembled). Returns the file's size.
fn write_stored_zip(path: &Path, entries: &[(&str, Content<'_>)]) -> u64 {
    let mut file = File::create(path).unwrap();
    let mut offset: u64 = 0;
    let mut central = Vec::new();
    for (name, content) in entries {
        let (size, crc) = content.size_and_crc();
        let fields = entry_fields(crc, u32::try_from(size).unwrap(), name);
        let mut local = 0x0403_4b50u32.to_le_bytes().to_vec();
        local.extend_from_slice(&fields);
        local.extend_from_slice(name.as_bytes());
        file.write_all(&local).unwrap();
        match content {
            Content::Bytes(bytes) => file.write_all(bytes).unwrap(),
            Content::Repeated { block, times } => {
                for _ in 0..*times {
                    file.write_all(block).unwrap();
                }
            }
        }
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by: 2.0
        central.extend_from_slice(&fields);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&u32::try_from(offset).unwrap().to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        offset += local.len() as u64 + size;
    }
    let count = u16::try_from(entries.len()).unwrap();
    let mut end = 0x0605_4b50u32.to_le_bytes().to_vec();
    end.extend_from_slice(&0u16.to_le_bytes()); // this disk
    end.extend_from_slice(&0u16.to_le_bytes()); // disk of the central directory
    end.extend_from_slice(&count.to_le_bytes()); // entries on this disk
    end.extend_from_slice(&count.to_le_bytes()); // entries
    end.extend_from_slice(&u32::try_from(central.len()).unwrap().to_le_bytes());
    end.extend_from_slice(&u32::try_from(offset).unwrap().to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes()); // comment length
    file.write_all(&central).unwrap();
    file.write_all(&end).unwrap();
    file.sync_all().unwrap();
    offset + central.len() as u64 + end.len() as u64
}

/// Compiles [`MAIN_CLASS`] (an empty `main`) in `dir`; returns the class file.
fn compile_main_class(dir: &Path) -> Vec<u8> {
    let jdk = flinkguard_flink::require_javac().unwrap();
    let (package, class) = MAIN_CLASS.rsplit_once('.').unwrap();
    let source = dir.join(format!("{class}.java"));
    fs::write(
        &source,
        format!("package {package};\npublic class {class} {{ public static void main(String[] args) {{}} }}\n"),
    )
    .unwrap();
    let classes = dir.join("classes");
    let out = Command::new(&jdk.javac)
        .args(["--release", "11", "-d"])
        .arg(&classes)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let class_file = classes.join(format!("{}.class", MAIN_CLASS.replace('.', "/")));
    let bytes = fs::read(&class_file).unwrap();
    fs::remove_dir_all(&classes).unwrap();
    fs::remove_file(&source).unwrap();
    bytes
}

/// Writes `path`: a jar with a manifest naming [`MAIN_CLASS`], a 1 GiB stored entry, and the
/// class after it, so Flink lists the entry class only if it read past the 1 GiB. The test
/// holds 1 MiB of it at a time. Returns its size.
fn write_big_jar(path: &Path) -> u64 {
    let manifest = format!("Manifest-Version: 1.0\r\nMain-Class: {MAIN_CLASS}\r\n\r\n");
    let class = compile_main_class(path.parent().unwrap());
    let block: Vec<u8> = (0..BLOCK)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let class_path = format!("{}.class", MAIN_CLASS.replace('.', "/"));
    write_stored_zip(
        path,
        &[
            ("META-INF/MANIFEST.MF", Content::Bytes(manifest.as_bytes())),
            (
                "payload.bin",
                Content::Repeated {
                    block: &block,
                    times: BLOCKS,
                },
            ),
            (&class_path, Content::Bytes(&class)),
        ],
    )
}

/// `VmHWM` (peak resident set size) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap()
}

/// Every file under `dir` named `name`.
fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(find_files(&path, name));
        } else if entry.file_name() == name {
            found.push(path);
        }
    }
    found
}

/// Files of at least 1 GiB under `dir`.
fn huge_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            found.extend(huge_files(&path));
        } else if meta.len() >= 1 << 30 {
            found.push(path);
        }
    }
    found
}

#[test]
fn cluster_gateway_streams_a_1_gib_jar_upload_in_bounded_memory() {
    let dist = TestDist::default_version();
    // Flink's upload dir in a temp dir of the test's own: removed also when the test fails,
    // when the cluster's dir (logs) is kept.
    let uploads = tempfile::tempdir().unwrap();
    let cluster = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .config("web.submit.enable", "true")
        .config("web.upload.dir", uploads.path().display())
        .config("rest.server.max-content-length", FLINK_MAX_CONTENT)
        .start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    point_at(
        d,
        cluster.ports().rest,
        &[(
            "max_body_bytes: 104857600",
            &format!("max_body_bytes: {GATEWAY_MAX_BODY}"),
        )],
    );
    // `init` binds the user `admin` to the admin role.
    flinkguard_ok(d, &["pki", "issue-client", "--user", "admin"]);

    let written = Instant::now();
    let big = d.join("big.jar");
    let size = write_big_jar(&big);
    assert_eq!(fs::metadata(&big).unwrap().len(), size);
    assert!(size > 1 << 30);
    eprintln!(
        "wrote {size} bytes in {:.1} s",
        written.elapsed().as_secs_f64()
    );

    let gateway = GatewayProcess::start(d);
    let port = gateway.port;
    let base = format!("https://localhost:{port}");
    let admin =
        |extra: &[&str], path: &str| curl(d, Some("admin"), extra, &format!("{base}{path}"));
    assert_eq!(admin(&[], "/jars").0, 200);
    let before = peak_rss_kib(gateway.pid());

    let uploading = Instant::now();
    let (code, body) = admin(
        &["--http2", "--max-time", "240", "-F", "jarfile=@big.jar"],
        "/jars/upload",
    );
    let upload_secs = uploading.elapsed().as_secs_f64();
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["status"], "success", "{body}");
    let stored = PathBuf::from(answer["filename"].as_str().unwrap());
    let jar_id = stored.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(jar_id.ends_with("_big.jar"), "{jar_id}");

    // The gateway held a bounded window of the body, never the body.
    let peak = peak_rss_kib(gateway.pid());
    eprintln!(
        "uploaded {size} bytes in {upload_secs:.1} s ({:.0} MB/s); gateway VmHWM {before} KiB \
         before, {peak} KiB after",
        size as f64 / upload_secs / 1e6
    );
    assert!(
        peak < MAX_GATEWAY_HWM_KIB,
        "the gateway's peak RSS was {peak} KiB for a {size}-byte upload"
    );

    // Flink has all of it: the same size on its disk, and it lists the jar's entry class, which
    // it finds through the central directory and loads from the class entry, both after the
    // 1 GiB entry.
    let on_disk = find_files(uploads.path(), &jar_id);
    assert_eq!(on_disk.len(), 1, "{on_disk:?}");
    assert_eq!(fs::metadata(&on_disk[0]).unwrap().len(), size);
    let (code, body) = admin(&[], "/jars");
    assert_eq!(code, 200, "{body}");
    let jars: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed = jars["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == jar_id.as_str())
        .unwrap_or_else(|| panic!("{jar_id} not in {body}"));
    assert_eq!(listed["name"], "big.jar");
    assert_eq!(listed["entry"][0]["name"], MAIN_CLASS, "{listed}");

    // Deleted through the gateway: gone from the list and from Flink's disk, and no copy of the
    // upload (a temp file of the multipart decoder) is left in the cluster's directory.
    let (code, body) = admin(&["-X", "DELETE"], &format!("/jars/{jar_id}"));
    assert_eq!(code, 200, "{body}");
    let (_, body) = admin(&[], "/jars");
    assert!(!body.contains(&jar_id), "{body}");
    assert!(find_files(uploads.path(), &jar_id).is_empty());
    for dir in [uploads.path(), cluster.dir()] {
        assert_eq!(huge_files(dir), Vec::<PathBuf>::new());
    }

    // The audit line of the upload: allowed for admin, 200.
    drop(gateway);
    let audit = fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let upload: serde_json::Value = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["path"] == "/jars/upload")
        .unwrap();
    assert_eq!(
        (
            upload["user"].as_str(),
            upload["operation"].as_str(),
            upload["status"].as_u64()
        ),
        (Some("admin"), Some("jars.upload"), Some(200)),
        "{upload}"
    );

    // The 1 GiB file and both temp dirs go (also on a failure: they are temp dirs).
    fs::remove_file(&big).unwrap();
    work.close().unwrap();
    drop(cluster);
    uploads.close().unwrap();
}
