//! What a Flink resource id looks like, checked before it is stored.
//!
//! Ids reach the store from Flink's responses and from request paths; checking their shape here
//! keeps garbage (a whole response body, a path with `/`, control characters) out of the
//! database and out of audit lines that print it.

use crate::{OwnershipError, ResourceKind};

/// The longest jar id accepted: Flink stores the jar under its id as a file name, and file
/// names are at most 255 bytes on Linux.
pub const MAX_JAR_ID_LEN: usize = 255;

/// The length of a Flink `JobID` or `ApplicationID` in hexadecimal (16 bytes).
const HEX_ID_LEN: usize = 32;

/// The length of a `java.util.UUID` as Flink prints it (`8-4-4-4-12` lowercase hex).
const UUID_LEN: usize = 36;

/// Checks that `id` has the shape Flink gives ids of `kind`.
pub(crate) fn check(kind: ResourceKind, id: &str) -> Result<(), OwnershipError> {
    let expected = match kind {
        ResourceKind::Job | ResourceKind::Application => {
            if is_hex_id(id) {
                return Ok(());
            }
            "32 lowercase hexadecimal characters, as Flink prints it"
        }
        ResourceKind::Jar => {
            if is_jar_id(id) {
                return Ok(());
            }
            "`<uuid>_<file name>.jar` in printable ASCII without `/`, at most 255 bytes, \
             as Flink's jar upload returns it"
        }
    };
    Err(OwnershipError::InvalidId {
        kind,
        id: id.to_owned(),
        expected,
    })
}

fn is_hex_id(id: &str) -> bool {
    id.len() == HEX_ID_LEN && id.bytes().all(is_lower_hex)
}

/// Flink names an uploaded jar `UUID.randomUUID() + "_" + <uploaded file name>` and refuses
/// uploads whose name does not end in `.jar`.
fn is_jar_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() <= MAX_JAR_ID_LEN
        && bytes.len() > UUID_LEN
        && is_uuid(&bytes[..UUID_LEN])
        && bytes[UUID_LEN] == b'_'
        && id.ends_with(".jar")
        // Space is printable and legal in an uploaded file name; `/` would make the id a path.
        && bytes.iter().all(|&b| (b' '..=b'~').contains(&b) && b != b'/')
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => is_lower_hex(b),
    })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "0123456789abcdef0123456789abcdef";
    const JAR: &str = "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_WordCount.jar";

    #[test]
    fn job_and_application_ids_are_32_lowercase_hex() {
        for kind in [ResourceKind::Job, ResourceKind::Application] {
            assert!(check(kind, JOB).is_ok());
            for bad in [
                "",
                "0123456789ABCDEF0123456789ABCDEF",
                "0123456789abcdef0123456789abcde",
                "0123456789abcdef0123456789abcdef0",
                "0123456789abcdef0123456789abcdeg",
                "0123456789abcdef/123456789abcdef",
                JAR,
            ] {
                assert!(
                    matches!(check(kind, bad), Err(OwnershipError::InvalidId { .. })),
                    "{kind} id {bad:?} was accepted"
                );
            }
        }
    }

    #[test]
    fn jar_ids_are_uuid_underscore_name_dot_jar() {
        assert!(check(ResourceKind::Jar, JAR).is_ok());
        // Flink keeps the uploaded file name as it was, spaces and all.
        let spaced = "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_my job (v2).jar";
        assert!(check(ResourceKind::Jar, spaced).is_ok());
        let longest = format!("{}{}.jar", &JAR[..37], "x".repeat(MAX_JAR_ID_LEN - 41));
        assert_eq!(longest.len(), MAX_JAR_ID_LEN);
        assert!(check(ResourceKind::Jar, &longest).is_ok());

        let too_long = format!("{}{}.jar", &JAR[..37], "x".repeat(MAX_JAR_ID_LEN - 40));
        for bad in [
            "",
            "WordCount.jar",
            JOB,
            "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_WordCount.zip",
            "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b-WordCount.jar",
            "8F1E2D3C-4B5A-4697-8A9B-0C1D2E3F4A5B_WordCount.jar",
            "8f1e2d3c04b5a-4697-8a9b-0c1d2e3f4a5b_WordCount.jar",
            "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_../x.jar",
            "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_tab\there.jar",
            "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_wörd.jar",
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    check(ResourceKind::Jar, bad),
                    Err(OwnershipError::InvalidId { .. })
                ),
                "jar id {bad:?} was accepted"
            );
        }
    }

    #[test]
    fn the_error_names_the_id_and_the_expected_shape() {
        let err = check(ResourceKind::Job, "nope\n")
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("\"nope\\n\""), "{err}");
        assert!(err.contains("32 lowercase hexadecimal"), "{err}");
    }
}
