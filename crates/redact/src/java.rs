//! Secrets inside Java-serialized values that Flink ships base64-encoded in JSON: the
//! `serialized-throwable` of a failed job's `/jobs/:jobid/execution-result` (the exception
//! whose message and stack trace the same response also shows in clear), and the values of
//! `accumulator-results`.
//!
//! Base64 hides the secret from a byte search but not from anyone who decodes it, so the value
//! is decoded and every Java string in it is masked in place: a secret value's bytes become
//! `*`, keeping every length, so the stream stays valid and Flink's client can still
//! deserialize the (redacted) exception. Strings are found by their framing
//! (`TC_STRING`, a length, then printable text that fits); the nested serialization inside a
//! `SerializedThrowable`'s byte array is covered because every offset is tried.
//!
//! If a secret is still visible afterwards outside a recognized string, or masking went wrong,
//! the whole value is replaced by `"******"`: Flink's client then cannot rebuild the exception,
//! which is the safe failure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::rules::{REDACTED, RedactionRules};
use crate::text::{Carry, Mode, Scanner};

/// How base64 of a Java serialization stream (`AC ED 00 05`) starts.
pub(crate) const MAGIC_BASE64: &str = "rO0AB";

const STREAM_MAGIC: [u8; 4] = [0xAC, 0xED, 0x00, 0x05];
const TC_STRING: u8 = 0x74;
const TC_LONGSTRING: u8 = 0x7C;

/// Redacts a base64 Java serialization; `None` if `text` is not one or holds no secret.
pub(crate) fn redact_base64(rules: &RedactionRules, text: &str) -> Option<(String, usize)> {
    let mut data = STANDARD.decode(text).ok()?;
    if !data.starts_with(&STREAM_MAGIC) {
        return None;
    }
    let mut scanner = Scanner::new(rules, Mode::Mask);
    let mut strings = Vec::new();
    let Some(found) = mask_strings(&mut scanner, &mut data, &mut strings) else {
        return Some((REDACTED.to_owned(), 1));
    };
    // The rest of the stream, strings blanked out (a string's last word would otherwise run
    // on into the bytes after it and look like an unmasked value), must hold no secret.
    let mut rest = data.clone();
    for &(start, end) in &strings {
        rest[start..end].fill(b' ');
    }
    let mut scratch = Vec::with_capacity(rest.len());
    let (left, _) = scanner.scan(&rest, Carry::Nothing, &mut scratch);
    if left > 0 {
        return Some((REDACTED.to_owned(), found + left));
    }
    (found > 0).then(|| (STANDARD.encode(&data), found))
}

/// Masks secret values in every framed string, in place, and notes where the strings are;
/// `None` if masking would have changed a length (a bug; the caller fails closed).
fn mask_strings(
    scanner: &mut Scanner<'_>,
    data: &mut [u8],
    strings: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    let mut count = 0;
    // A string ending in `--db.password` hands its value to the next string (a String[] of
    // program arguments).
    let mut carry = Carry::Nothing;
    let mut masked = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let Some((start, end)) = string_at(data, at) else {
            at += 1;
            continue;
        };
        masked.clear();
        let (found, next) = scanner.scan(&data[start..end], carry, &mut masked);
        if masked.len() != end - start {
            return None;
        }
        data[start..end].copy_from_slice(&masked);
        strings.push((start, end));
        count += found;
        carry = next;
        // Past the string: its content cannot hold another string's header.
        at = end;
    }
    Some(count)
}

/// The content of a `TC_STRING` or `TC_LONGSTRING` starting at `at`, if the bytes there frame
/// printable text.
fn string_at(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let (len, header) = match data[at] {
        TC_STRING => {
            let bytes: [u8; 2] = data.get(at + 1..at + 3)?.try_into().ok()?;
            (usize::from(u16::from_be_bytes(bytes)), 3)
        }
        TC_LONGSTRING => {
            let bytes: [u8; 8] = data.get(at + 1..at + 9)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 9)
        }
        _ => return None,
    };
    let start = at + header;
    let end = start.checked_add(len)?;
    let content = data.get(start..end)?;
    // Modified UTF-8 has no NUL byte; control characters other than line breaks and tabs
    // mean these bytes are not a string's content.
    let printable = content
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
    (len > 0 && printable).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Vec<u8> {
        let mut out = vec![TC_STRING];
        out.extend_from_slice(&u16::try_from(text.len()).unwrap().to_be_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    #[test]
    fn masks_strings_in_place() {
        let mut data = STREAM_MAGIC.to_vec();
        data.extend([0x73, 0x72, 0x00, 0x03]);
        data.extend(b"a.B");
        data.extend(string("cannot connect: password=hunter2 (retry)"));
        data.extend([0x71, 0x00, 0x7e, 0x00, 0x01]);
        data.extend(string("--db.password"));
        data.extend(string("hunter2"));
        data.extend(string("--name"));
        data.extend(string("job"));
        let encoded = STANDARD.encode(&data);
        assert!(encoded.starts_with(MAGIC_BASE64));
        let (out, n) = redact_base64(&RedactionRules::default(), &encoded).unwrap();
        assert_eq!(n, 2);
        let decoded = STANDARD.decode(out).unwrap();
        assert_eq!(decoded.len(), data.len());
        let text = String::from_utf8_lossy(&decoded);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("password=******* (retry)") && text.contains("--namet\0\u{3}job"));
        // Only string content changed.
        let changed: Vec<usize> = (0..data.len()).filter(|&i| data[i] != decoded[i]).collect();
        assert_eq!(changed.len(), 14);
    }

    #[test]
    fn no_secret_means_no_change() {
        let mut data = STREAM_MAGIC.to_vec();
        data.extend(string("all fine"));
        assert_eq!(
            redact_base64(&RedactionRules::default(), &STANDARD.encode(&data)),
            None
        );
        assert_eq!(redact_base64(&RedactionRules::default(), "rO0AB!!"), None);
        assert_eq!(
            redact_base64(&RedactionRules::default(), &STANDARD.encode(b"rO0AB")),
            None
        );
    }

    #[test]
    fn a_secret_outside_any_string_fails_closed() {
        let mut data = STREAM_MAGIC.to_vec();
        // Raw bytes in a byte array: not framed as a Java string.
        data.extend([0x75, 0x00, 0x01]);
        data.extend(b"\x01password=hunter2\x02");
        let (out, n) = redact_base64(&RedactionRules::default(), &STANDARD.encode(&data)).unwrap();
        assert_eq!((out.as_str(), n), (REDACTED, 1));
    }
}
