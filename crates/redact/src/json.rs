//! Secrets in JSON bodies, found by walking any document rather than by knowing each route's
//! schema.
//!
//! The walk is a rewriting tokenizer, not a parse into a tree and back: everything it does not
//! redact is copied byte for byte (member order, number spelling, escapes), and it keeps its
//! own stack, so Flink's deeply nested flame graphs cannot overflow the gateway's.
//!
//! Rules, applied everywhere in the document:
//! * a member whose name is a secret key: its value (unless `null`) becomes `"******"`;
//! * Flink's key/value entries (`{"key": "s3.access-key", "value": "..."}`, the shape of
//!   `/jobmanager/config`): `value` becomes `"******"` when `key` is a secret key, whatever
//!   the member order;
//! * every string, member names included, goes through the text scanner (`-Dkey=value`,
//!   `--key=value`, `key: value`...), and a flag at the end of one string of an array takes the
//!   next string as its value (`["--db.password", "hunter2"]`);
//! * strings holding base64 Java serialization (`serialized-throwable`, accumulator values)
//!   are decoded, redacted inside and re-encoded (see [`crate::java`]).

use std::borrow::Cow;

use crate::RedactError;
use crate::java;
use crate::rules::{REDACTED, RedactionRules};
use crate::text::{Carry, Mode, Scanner};

/// Redacts a JSON document; returns the new document and how many values were redacted.
pub(crate) fn redact(
    rules: &RedactionRules,
    input: &[u8],
) -> Result<(Vec<u8>, usize), RedactError> {
    if let Err(e) = std::str::from_utf8(input) {
        return Err(invalid(e.valid_up_to(), "not UTF-8"));
    }
    let mut rewriter = Rewriter {
        rules,
        scanner: Scanner::new(rules, Mode::Replace),
        input,
        pos: 0,
        out: Vec::with_capacity(input.len() + 64),
        count: 0,
        stack: Vec::new(),
    };
    rewriter.run()?;
    Ok((rewriter.out, rewriter.count))
}

fn invalid(offset: usize, reason: &'static str) -> RedactError {
    RedactError::InvalidJson { offset, reason }
}

/// What a member's name makes of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    /// The name is a secret key: the value goes.
    Secret,
    /// `key` of a key/value entry.
    EntryKey,
    /// `value` of a key/value entry.
    EntryValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// After `{` or `[`: a member or element, or the end.
    FirstOrEnd,
    /// After `,`: a member or element.
    Next,
    /// After a member or element: `,` or the end.
    CommaOrEnd,
}

/// Where a `value` member's value lies in the output, to be replaced if the entry's `key` turns
/// out to be a secret.
#[derive(Debug)]
struct Span {
    start: usize,
    end: usize,
    /// Values the text scanner redacted inside it (replaced by one when the span goes).
    counted: usize,
    /// `null` or already hidden: nothing to replace.
    keep: bool,
}

#[derive(Debug)]
struct ObjectFrame {
    expect: Expect,
    role: Role,
    /// Where the current member's value starts in the output, and the count there.
    value_start: usize,
    count_at_value: usize,
    /// A `key` member named a secret key.
    entry_is_secret: bool,
    entry_values: Vec<Span>,
}

#[derive(Debug)]
struct ArrayFrame {
    expect: Expect,
    carry: Carry,
}

#[derive(Debug)]
enum Frame {
    Object(ObjectFrame),
    Array(ArrayFrame),
}

/// What a finished value was, for its parent's rules.
#[derive(Debug)]
enum Done {
    Null,
    /// A string: whether it is already hidden, whether it names a secret key (for entry keys),
    /// and what it leaves for the next array element.
    String {
        hidden: bool,
        secret_key: bool,
        carry: Carry,
    },
    Other,
}

#[derive(Debug)]
struct Rewriter<'r, 'a> {
    rules: &'r RedactionRules,
    scanner: Scanner<'r>,
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    count: usize,
    stack: Vec<Frame>,
}

impl<'a> Rewriter<'_, 'a> {
    fn run(&mut self) -> Result<(), RedactError> {
        self.whitespace();
        if self.pos == self.input.len() {
            return Err(invalid(self.pos, "empty document"));
        }
        self.begin_value()?;
        while let Some(frame) = self.stack.last_mut() {
            match frame {
                Frame::Object(object) => {
                    let expect = object.expect;
                    self.whitespace();
                    match (expect, self.peek()) {
                        (Expect::FirstOrEnd, Some(b'}')) | (Expect::CommaOrEnd, Some(b'}')) => {
                            self.end_object()?;
                        }
                        (Expect::FirstOrEnd | Expect::Next, Some(b'"')) => self.member()?,
                        (Expect::CommaOrEnd, Some(b',')) => {
                            self.copy_byte();
                            self.set_expect(Expect::Next);
                        }
                        _ => return Err(invalid(self.pos, "expected a member, `,` or `}`")),
                    }
                }
                Frame::Array(array) => {
                    let expect = array.expect;
                    self.whitespace();
                    match (expect, self.peek()) {
                        (Expect::FirstOrEnd | Expect::CommaOrEnd, Some(b']')) => {
                            self.copy_byte();
                            self.stack.pop();
                            self.value_done(Done::Other);
                        }
                        (Expect::CommaOrEnd, Some(b',')) => {
                            self.copy_byte();
                            self.set_expect(Expect::Next);
                        }
                        (Expect::FirstOrEnd | Expect::Next, Some(_)) => {
                            self.set_expect(Expect::CommaOrEnd);
                            self.begin_value()?;
                        }
                        _ => return Err(invalid(self.pos, "expected a value, `,` or `]`")),
                    }
                }
            }
        }
        self.whitespace();
        if self.pos != self.input.len() {
            return Err(invalid(self.pos, "data after the document"));
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn copy_byte(&mut self) {
        if let Some(b) = self.peek() {
            self.out.push(b);
            self.pos += 1;
        }
    }

    fn whitespace(&mut self) {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
        self.out.extend_from_slice(&self.input[start..self.pos]);
    }

    fn set_expect(&mut self, expect: Expect) {
        match self.stack.last_mut() {
            Some(Frame::Object(o)) => o.expect = expect,
            Some(Frame::Array(a)) => a.expect = expect,
            None => {}
        }
    }

    /// A member: name, colon, and the start of its value.
    fn member(&mut self) -> Result<(), RedactError> {
        let (raw_start, name) = self.string()?;
        let role = if self.rules.is_secret_key(&name) {
            Role::Secret
        } else if name == "key" {
            Role::EntryKey
        } else if name == "value" {
            Role::EntryValue
        } else {
            Role::Plain
        };
        // Names are text too: Flink shows the job parameter `--db.password=hunter2` as the
        // user-config key `db.password=hunter2` (with its value hidden).
        let mut scanned = Vec::new();
        let (found, _) = self
            .scanner
            .scan(name.as_bytes(), Carry::Nothing, &mut scanned);
        if found > 0 {
            self.count += found;
            self.write_string(&scanned)?;
        } else {
            self.out.extend_from_slice(&self.input[raw_start..self.pos]);
        }
        self.whitespace();
        if self.peek() != Some(b':') {
            return Err(invalid(self.pos, "expected `:`"));
        }
        self.copy_byte();
        self.whitespace();
        let (value_start, count) = (self.out.len(), self.count);
        if let Some(Frame::Object(object)) = self.stack.last_mut() {
            object.role = role;
            object.value_start = value_start;
            object.count_at_value = count;
            object.expect = Expect::CommaOrEnd;
        }
        self.begin_value()
    }

    /// A scalar value whole, or the opening of an object or array.
    fn begin_value(&mut self) -> Result<(), RedactError> {
        match self.peek() {
            Some(b'{') => {
                self.copy_byte();
                self.stack.push(Frame::Object(ObjectFrame {
                    expect: Expect::FirstOrEnd,
                    role: Role::Plain,
                    value_start: 0,
                    count_at_value: 0,
                    entry_is_secret: false,
                    entry_values: Vec::new(),
                }));
            }
            Some(b'[') => {
                self.copy_byte();
                self.stack.push(Frame::Array(ArrayFrame {
                    expect: Expect::FirstOrEnd,
                    carry: Carry::Nothing,
                }));
            }
            Some(b'"') => {
                let carry = match self.stack.last() {
                    Some(Frame::Array(a)) => a.carry,
                    _ => Carry::Nothing,
                };
                let done = self.string_value(carry)?;
                self.value_done(done);
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                self.value_done(Done::Other);
            }
            _ => return Err(invalid(self.pos, "expected a value")),
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), RedactError> {
        if !self.input[self.pos..].starts_with(word) {
            return Err(invalid(self.pos, "invalid literal"));
        }
        self.out.extend_from_slice(word);
        self.pos += word.len();
        self.value_done(if word == b"null".as_slice() {
            Done::Null
        } else {
            Done::Other
        });
        Ok(())
    }

    fn number(&mut self) -> Result<(), RedactError> {
        let input = self.input;
        let start = self.pos;
        let mut at = start;
        let digits = |at: &mut usize| {
            let from = *at;
            while *at < input.len() && input[*at].is_ascii_digit() {
                *at += 1;
            }
            *at - from
        };
        if input.get(at) == Some(&b'-') {
            at += 1;
        }
        match input.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => return Err(invalid(at, "invalid number")),
        }
        if input.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return Err(invalid(at, "invalid number"));
            }
        }
        if matches!(input.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(input.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return Err(invalid(at, "invalid number"));
            }
        }
        self.out.extend_from_slice(&input[start..at]);
        self.pos = at;
        Ok(())
    }

    /// A string in value position: redacted as text (or as Java serialization), written out.
    fn string_value(&mut self, carry: Carry) -> Result<Done, RedactError> {
        let (raw_start, text) = self.string()?;
        let hidden = !text.is_empty() && text.bytes().all(|b| b == b'*');
        let secret_key = self.rules.is_secret_key(&text);
        if text.starts_with(java::MAGIC_BASE64) {
            if let Some((replacement, found)) = java::redact_base64(self.rules, &text) {
                self.count += found;
                self.write_string(replacement.as_bytes())?;
            } else {
                self.out.extend_from_slice(&self.input[raw_start..self.pos]);
            }
            return Ok(Done::String {
                hidden,
                secret_key,
                carry: Carry::Nothing,
            });
        }
        let mut scanned = Vec::new();
        let (found, carry) = self.scanner.scan(text.as_bytes(), carry, &mut scanned);
        if found > 0 {
            self.count += found;
            self.write_string(&scanned)?;
        } else {
            self.out.extend_from_slice(&self.input[raw_start..self.pos]);
        }
        Ok(Done::String {
            hidden,
            secret_key,
            carry,
        })
    }

    /// Applies the parent's rules to the value just written.
    fn value_done(&mut self, done: Done) {
        match self.stack.last_mut() {
            Some(Frame::Object(object)) => {
                let is_null = matches!(done, Done::Null);
                let hidden = matches!(done, Done::String { hidden: true, .. });
                match object.role {
                    Role::Secret if !is_null && !hidden => {
                        self.out.truncate(object.value_start);
                        self.out.push(b'"');
                        self.out.extend_from_slice(REDACTED.as_bytes());
                        self.out.push(b'"');
                        // What the scanner found inside is gone with the value.
                        self.count = object.count_at_value + 1;
                    }
                    Role::EntryKey => {
                        if matches!(
                            done,
                            Done::String {
                                secret_key: true,
                                ..
                            }
                        ) {
                            object.entry_is_secret = true;
                        }
                    }
                    Role::EntryValue => object.entry_values.push(Span {
                        start: object.value_start,
                        end: self.out.len(),
                        counted: self.count - object.count_at_value,
                        keep: is_null || hidden,
                    }),
                    Role::Secret | Role::Plain => {}
                }
            }
            Some(Frame::Array(array)) => {
                array.carry = match done {
                    Done::String { carry, .. } => carry,
                    _ => Carry::Nothing,
                };
            }
            None => {}
        }
    }

    fn end_object(&mut self) -> Result<(), RedactError> {
        let Some(Frame::Object(object)) = self.stack.pop() else {
            return Err(invalid(self.pos, "unbalanced `}`"));
        };
        if object.entry_is_secret {
            // Last first: replacing a span moves everything after it.
            for span in object.entry_values.iter().rev().filter(|s| !s.keep) {
                let marker = format!("\"{REDACTED}\"");
                self.out.splice(span.start..span.end, marker.bytes());
                self.count = self.count - span.counted + 1;
            }
        }
        self.copy_byte();
        self.value_done(Done::Other);
        Ok(())
    }

    /// Reads a string token; returns where it starts and its decoded text. Leaves `pos` after
    /// the closing quote and writes nothing.
    fn string(&mut self) -> Result<(usize, Cow<'a, str>), RedactError> {
        let input = self.input;
        let start = self.pos;
        let mut at = start + 1;
        let mut decoded: Option<String> = None;
        let mut plain_from = at;
        loop {
            let Some(&b) = input.get(at) else {
                return Err(invalid(start, "unterminated string"));
            };
            match b {
                b'"' => break,
                b'\\' => {
                    let text = decoded.get_or_insert_with(String::new);
                    text.push_str(utf8(&input[plain_from..at]));
                    let (c, len) = escape(input, at)?;
                    text.push(c);
                    at += len;
                    plain_from = at;
                }
                0x00..=0x1f => return Err(invalid(at, "control character in a string")),
                _ => at += 1,
            }
        }
        let text = match decoded {
            Some(mut text) => {
                text.push_str(utf8(&input[plain_from..at]));
                Cow::Owned(text)
            }
            None => Cow::Borrowed(utf8(&input[start + 1..at])),
        };
        self.pos = at + 1;
        Ok((start, text))
    }

    fn write_string(&mut self, text: &[u8]) -> Result<(), RedactError> {
        // The scanner replaces whole runs between ASCII delimiters, so its output of UTF-8
        // input is UTF-8; lossy conversion only guards against a bug turning into a panic.
        let text = String::from_utf8_lossy(text);
        serde_json::to_writer(&mut self.out, text.as_ref())
            .map_err(|_| invalid(self.pos, "cannot write a string"))
    }
}

/// A slice of the input between ASCII delimiters; the whole input was checked to be UTF-8.
fn utf8(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Decodes the escape at `at` (a backslash); returns the character and the escape's length.
/// A lone surrogate decodes to U+FFFD: the text is only scanned, and an unchanged string is
/// copied as it was.
fn escape(input: &[u8], at: usize) -> Result<(char, usize), RedactError> {
    let simple = match input.get(at + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let high = hex4(input, at + 2)?;
            if (0xD800..0xDC00).contains(&high)
                && input.get(at + 6) == Some(&b'\\')
                && input.get(at + 7) == Some(&b'u')
            {
                let low = hex4(input, at + 8)?;
                if (0xDC00..0xE000).contains(&low) {
                    let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    return Ok((char::from_u32(c).unwrap_or('\u{FFFD}'), 12));
                }
            }
            return Ok((char::from_u32(high).unwrap_or('\u{FFFD}'), 6));
        }
        _ => return Err(invalid(at, "invalid escape")),
    };
    Ok((simple, 2))
}

fn hex4(input: &[u8], at: usize) -> Result<u32, RedactError> {
    let digits = input
        .get(at..at + 4)
        .ok_or_else(|| invalid(at, "invalid \\u escape"))?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d)
            .to_digit(16)
            .ok_or_else(|| invalid(at, "invalid \\u escape"))?;
        Ok(acc * 16 + v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact_str(json: &str) -> (String, usize) {
        let (out, n) = redact(&RedactionRules::default(), json.as_bytes()).unwrap();
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn secret_members_entries_strings_and_arrays() {
        let cases = [
            (
                r#"{"password":"x","a":1}"#,
                r#"{"password":"******","a":1}"#,
                1,
            ),
            (
                r#"{"token":{"a":[1,"--x=y"]},"b":null}"#,
                r#"{"token":"******","b":null}"#,
                1,
            ),
            (
                r#"{"token":null,"secret":"******"}"#,
                r#"{"token":null,"secret":"******"}"#,
                0,
            ),
            (r#"{"secret-count":3}"#, r#"{"secret-count":"******"}"#, 1),
            (
                r#"[{"key":"s3.access-key","value":"AKIA"},{"key":"rest.port","value":"8081"}]"#,
                r#"[{"key":"s3.access-key","value":"******"},{"key":"rest.port","value":"8081"}]"#,
                1,
            ),
            (
                r#"{"value":"-Dx.password=a b","key":"my.secret"}"#,
                r#"{"value":"******","key":"my.secret"}"#,
                1,
            ),
            (
                r#"{"jvm":["-Xmx1g","-Dp.password=a"]}"#,
                r#"{"jvm":["-Xmx1g","-Dp.password=******"]}"#,
                1,
            ),
            (
                r#"["--db.password","hunter2","--n","x"]"#,
                r#"["--db.password","******","--n","x"]"#,
                1,
            ),
            (
                r#"["--db.password",1,"hunter2"]"#,
                r#"["--db.password",1,"hunter2"]"#,
                0,
            ),
            (
                r#"{"db.password=hunter2":"******"}"#,
                r#"{"db.password=******":"******"}"#,
                1,
            ),
            (
                "{\"stack\":\"x: cannot connect (password=p\\u00e9\\\"q)\\n\\tat A\"}",
                "{\"stack\":\"x: cannot connect (password=******\\n\\tat A\"}",
                1,
            ),
            (
                " [1.5e-3, -0, true, false, null, {}, []] ",
                " [1.5e-3, -0, true, false, null, {}, []] ",
                0,
            ),
        ];
        for (input, expected, count) in cases {
            assert_eq!(redact_str(input), (expected.to_owned(), count), "{input}");
            // Redacting the result again changes nothing.
            assert_eq!(redact_str(expected), (expected.to_owned(), 0), "{expected}");
        }
    }

    #[test]
    fn untouched_documents_are_byte_identical() {
        let doc = "{ \"b\" : [ 1 , 2.50 ], \"a\":\"\\u00e9\\/x\", \"z\" : {\"k\":\"v\"} }\n";
        assert_eq!(redact_str(doc), (doc.to_owned(), 0));
    }

    #[test]
    fn invalid_documents_are_errors() {
        for doc in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "tru",
            "01",
            "1.",
            "-",
            "\"\\x\"",
            "\"a\nb\"",
            "\"abc",
            "{}{}",
            "[}",
            "{]",
            "\"\\u12\"",
        ] {
            assert!(
                matches!(
                    redact(&RedactionRules::default(), doc.as_bytes()),
                    Err(RedactError::InvalidJson { .. })
                ),
                "{doc:?}"
            );
        }
        assert!(redact(&RedactionRules::default(), b"\"\xff\"").is_err());
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 200_000;
        let doc = format!(
            "{}\"--token=x\"{}",
            "{\"c\":[".repeat(depth),
            "]}".repeat(depth)
        );
        let (out, n) = redact(&RedactionRules::default(), doc.as_bytes()).unwrap();
        assert_eq!(n, 1);
        assert_eq!(out.len(), doc.len() - 1 + REDACTED.len());
    }
}
