//! The rules against a whole crawl of a cluster's REST API, kept outside the repository:
//! `FLINKGUARD_REDACT_CRAWL=<dir> cargo test -p flinkguard-redact --test crawl -- --ignored`,
//! where `<dir>` holds one response body per file, from a cluster given the secrets below
//! (see `fixtures/README.md` for the set-up).

use flinkguard_redact::RedactionRules;

const SECRETS: &[&str] = &["hunter2", "AKIAEXAMPLE123", "tmsecret99"];

#[test]
#[ignore = "needs FLINKGUARD_REDACT_CRAWL, a directory of captured responses"]
fn no_secret_in_any_crawled_response() {
    let dir = std::env::var("FLINKGUARD_REDACT_CRAWL").expect("FLINKGUARD_REDACT_CRAWL");
    let rules = RedactionRules::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let body = std::fs::read(&path).unwrap();
        // Content types were not kept: sniffing is what `redact_response` does without one.
        let (out, count) = rules
            .redact_response(None, &body)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for secret in SECRETS {
            assert!(
                !out.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} still shows {secret}",
                path.display()
            );
        }
        println!("{count:5} {}", path.display());
    }
}
