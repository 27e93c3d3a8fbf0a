//! Secrets in free text: `key=value`, `key: value`, `key, value` (Flink's "Loading
//! configuration property" log line), `-Dkey=value`, `--key value`, quoted values, HTTP
//! authorization values and passwords in URLs.

use crate::rules::{REDACTED, RedactionRules};

/// How a secret value is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Replaced by [`REDACTED`] (text, JSON strings).
    Replace,
    /// Every byte replaced by `*`, so the length stays: inside Java-serialized data, where
    /// lengths are part of the format.
    Mask,
}

/// What the scan of one piece of text leaves for the next piece (the next log line, the next
/// string of a JSON array): whether a secret key at its end still waits for its value, as in
/// `--db.password` followed by `hunter2` on the next line or in the next array element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Carry {
    #[default]
    Nothing,
    Value,
}

/// Words that introduce the credential in an HTTP authorization value (`Bearer abc`): the word
/// after them is redacted too.
const AUTH_SCHEMES: &[&[u8]] = &[b"bearer", b"basic", b"token", b"negotiate", b"digest"];

/// Endings of source file names: in a stack frame `(TokenCache.java:42)` the key is a file
/// name and `42` is a line number, not a secret.
const SOURCE_FILE_ENDINGS: &[&[u8]] = &[b".java", b".scala", b".kt", b".groovy"];

/// Characters of a key: Flink options, JVM properties, environment variables, program
/// arguments.
fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn skip_spaces(input: &[u8], mut at: usize) -> usize {
    while at < input.len() && is_space(input[at]) {
        at += 1;
    }
    at
}

fn skip_blanks(input: &[u8], mut at: usize) -> usize {
    while at < input.len() && matches!(input[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

/// The length of the separator between a key and its value at the start of `rest`: `=`,
/// `:`, `,`, or one of them percent-encoded (`--db.password%3Dhunter2` in a query string).
fn separator_len(rest: &[u8]) -> usize {
    match rest {
        [b'=' | b':' | b',', ..] => 1,
        [b'%', b'3', b'D' | b'd' | b'A' | b'a', ..] | [b'%', b'2', b'C' | b'c', ..] => 3,
        _ => 0,
    }
}

/// The length of an encoded space at the start of `rest` (`%20` or `+` in a query string).
fn encoded_space_len(rest: &[u8]) -> usize {
    if rest.starts_with(b"%20") {
        3
    } else if rest.starts_with(b"+") {
        1
    } else {
        0
    }
}

fn word_end(input: &[u8], mut at: usize) -> usize {
    while at < input.len() && !is_space(input[at]) {
        at += 1;
    }
    at
}

/// The text scanner, with its scratch buffer.
#[derive(Debug)]
pub(crate) struct Scanner<'r> {
    rules: &'r RedactionRules,
    mode: Mode,
    buf: Vec<u8>,
}

impl<'r> Scanner<'r> {
    pub(crate) fn new(rules: &'r RedactionRules, mode: Mode) -> Self {
        Scanner {
            rules,
            mode,
            buf: Vec::new(),
        }
    }

    /// Whether a word of text is a secret key.
    fn is_secret_word(&mut self, word: &[u8]) -> bool {
        // `-Dkey` and `--key`: the dashes and the `D` are syntax, not part of the key.
        let key = if let Some(rest) = word.strip_prefix(b"-D") {
            rest
        } else {
            let dashes = word.iter().take_while(|&&b| b == b'-').count();
            &word[dashes..]
        };
        let lower_ends_with = |ending: &[u8]| {
            key.len() >= ending.len()
                && key[key.len() - ending.len()..].eq_ignore_ascii_case(ending)
        };
        if SOURCE_FILE_ENDINGS.iter().any(|e| lower_ends_with(e)) {
            return false;
        }
        self.rules.matches(key, &mut self.buf)
    }

    /// Copies `input` to `out` with secret values hidden; returns how many values were hidden
    /// and what the end of `input` leaves for the next piece.
    pub(crate) fn scan(&mut self, input: &[u8], carry: Carry, out: &mut Vec<u8>) -> (usize, Carry) {
        let n = input.len();
        let mut count = 0;
        let mut i = 0;
        if carry == Carry::Value {
            let v = skip_spaces(input, 0);
            out.extend_from_slice(&input[..v]);
            if v == n {
                return (0, Carry::Value);
            }
            i = self.value(input, v, out, &mut count);
        }
        while i < n {
            let b = input[i];
            if !is_key_char(b) {
                if b == b':' && input[i + 1..].starts_with(b"//") {
                    i = self.url_authority(input, i, out, &mut count);
                } else {
                    out.push(b);
                    i += 1;
                }
                continue;
            }
            let start = i;
            while i < n && is_key_char(input[i]) {
                i += 1;
            }
            let word = &input[start..i];
            out.extend_from_slice(word);
            if !self.is_secret_word(word) {
                continue;
            }
            // A secret key. Its value follows a separator, possibly after the closing quote of
            // a quoted key (`"password": "x"`) and blanks.
            let mut j = i;
            if j < n && matches!(input[j], b'"' | b'\'') {
                j += 1;
            }
            let sep = skip_blanks(input, j);
            let sep_len = separator_len(&input[sep..]);
            if sep_len > 0 {
                let mut k = sep + sep_len;
                if input[sep] == b'=' && k < n && input[k] == b'>' {
                    k += 1;
                }
                let mut v = skip_spaces(input, k);
                // JSON written into a log: `"key":"s3.access-key","value":"AKIA..."`.
                if input[v..].starts_with(b"\"value\"") {
                    let colon = skip_blanks(input, v + 7);
                    if colon < n && input[colon] == b':' {
                        v = skip_spaces(input, colon + 1);
                    }
                }
                out.extend_from_slice(&input[i..v]);
                if v == n {
                    return (count, Carry::Value);
                }
                i = self.value(input, v, out, &mut count);
                continue;
            }
            // `--key value`, `-key value`: a flag whose value is the next word, possibly on the
            // next line or in the next array element. A JVM property `-Dkey` never takes the
            // next word, but a single-dash flag may start with `D` too: the next word goes
            // either way (over-redaction, never a leak).
            if word.starts_with(b"-") {
                if i == n {
                    return (count, Carry::Value);
                }
                let space = encoded_space_len(&input[i..]);
                if space > 0 || is_space(input[i]) {
                    let v = skip_spaces(input, i + space);
                    out.extend_from_slice(&input[i..v]);
                    if v == n {
                        return (count, Carry::Value);
                    }
                    i = self.value(input, v, out, &mut count);
                }
            }
        }
        (count, Carry::Nothing)
    }

    /// Hides the value that starts at `at`; returns where scanning goes on.
    fn value(&mut self, input: &[u8], at: usize, out: &mut Vec<u8>, count: &mut usize) -> usize {
        let n = input.len();
        let quote = input[at];
        if quote == b'"' || quote == b'\'' {
            // Up to the closing quote, skipping backslash escapes; a quote left open hides the
            // rest of the line (not of the whole text, so a whole body and the same body
            // streamed line by line come out the same).
            let mut end = at + 1;
            while end < n && input[end] != quote && input[end] != b'\n' {
                end += if input[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(n);
            out.push(quote);
            self.hide(&input[at + 1..end], out, count);
            if end < n && input[end] == quote {
                out.push(quote);
                return end + 1;
            }
            return end;
        }
        let end = word_end(input, at);
        let word = &input[at..end];
        if AUTH_SCHEMES.iter().any(|s| word.eq_ignore_ascii_case(s)) {
            let cred = skip_blanks(input, end);
            if cred < n && !is_space(input[cred]) {
                let cred_end = word_end(input, cred);
                out.extend_from_slice(&input[at..cred]);
                self.hide(&input[cred..cred_end], out, count);
                return cred_end;
            }
        }
        self.hide(word, out, count);
        end
    }

    /// `scheme://user:password@host`: hides the password. `at` is the `:` of `://`.
    ///
    /// The user information ends at the last `@` before a space or quote, not at the first
    /// `/`: a password may hold `/` (AWS secret keys do). Where a path holds an `@`, more than
    /// the password is hidden.
    fn url_authority(
        &mut self,
        input: &[u8],
        at: usize,
        out: &mut Vec<u8>,
        count: &mut usize,
    ) -> usize {
        let start = at + 3;
        let end = input[start..]
            .iter()
            .position(|&b| is_space(b) || matches!(b, b'"' | b'\''))
            .map_or(input.len(), |p| start + p);
        let authority = &input[start..end];
        let Some(at_sign) = authority.iter().rposition(|&b| b == b'@') else {
            out.extend_from_slice(&input[at..start]);
            return start;
        };
        let Some(colon) = authority[..at_sign].iter().position(|&b| b == b':') else {
            out.extend_from_slice(&input[at..start]);
            return start;
        };
        out.extend_from_slice(&input[at..start + colon + 1]);
        self.hide(&authority[colon + 1..at_sign], out, count);
        start + at_sign
    }

    fn hide(&mut self, value: &[u8], out: &mut Vec<u8>, count: &mut usize) {
        // Empty, or hidden already (by Flink, or by an earlier pass): nothing to do.
        if value.is_empty() || value.iter().all(|&b| b == b'*') {
            out.extend_from_slice(value);
            return;
        }
        match self.mode {
            Mode::Replace => out.extend_from_slice(REDACTED.as_bytes()),
            Mode::Mask => out.extend(std::iter::repeat_n(b'*', value.len())),
        }
        *count += 1;
    }
}

/// Redacts a log or any other text response as it streams through the gateway, line by line.
///
/// Secrets never span lines except where a key ends one line and its value starts the next
/// (Flink logs its program arguments one per line: `--db.password`, then `hunter2`); that case
/// is carried over. A line longer than the rules' maximum ([`crate::DEFAULT_MAX_LINE`] unless
/// changed with [`RedactionRules::with_max_line`]) is withheld whole and replaced by
/// [`REDACTED`]: cutting it could split a key from its value.
#[derive(Debug)]
pub struct TextRedactor<'r> {
    scanner: Scanner<'r>,
    line: Vec<u8>,
    carry: Carry,
    count: usize,
    max_line: usize,
    /// In a line that was too long: everything up to its end is dropped.
    discarding: bool,
}

impl<'r> TextRedactor<'r> {
    pub(crate) fn new(rules: &'r RedactionRules) -> Self {
        TextRedactor {
            scanner: Scanner::new(rules, Mode::Replace),
            line: Vec::new(),
            carry: Carry::Nothing,
            count: 0,
            max_line: rules.max_line,
            discarding: false,
        }
    }

    /// Takes the next chunk of the body; returns what can be sent on (complete lines,
    /// redacted). Bytes need not be UTF-8.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let (part, rest) = match newline {
                Some(p) => chunk.split_at(p + 1),
                None => (chunk, &[][..]),
            };
            chunk = rest;
            if self.discarding {
                if newline.is_some() {
                    out.push(b'\n');
                    self.discarding = false;
                }
                continue;
            }
            self.line.extend_from_slice(part);
            if newline.is_some() {
                self.flush_line(&mut out);
            } else if self.line.len() > self.max_line {
                out.extend_from_slice(REDACTED.as_bytes());
                self.count += 1;
                self.line.clear();
                self.carry = Carry::Nothing;
                self.discarding = true;
            }
        }
        out
    }

    /// Ends the body: redacts the last, unterminated line. Returns it and the number of values
    /// redacted in the whole body.
    pub fn finish(mut self) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.flush_line(&mut out);
        }
        (out, self.count)
    }

    /// Values redacted so far.
    pub fn count(&self) -> usize {
        self.count
    }

    fn flush_line(&mut self, out: &mut Vec<u8>) {
        let (count, carry) = self.scanner.scan(&self.line, self.carry, out);
        self.count += count;
        self.carry = carry;
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> (String, usize) {
        RedactionRules::default().redact_text(text)
    }

    #[test]
    fn forms() {
        let cases = [
            (
                "-Dapp.db.password=hunter2 -Xmx1g",
                "-Dapp.db.password=****** -Xmx1g",
                1,
            ),
            ("--db.password=hunter2", "--db.password=******", 1),
            (
                "--db.password hunter2 --name job",
                "--db.password ****** --name job",
                1,
            ),
            (
                "--db.password\n    hunter2\n",
                "--db.password\n    ******\n",
                1,
            ),
            (
                "Loading configuration property: s3.access-key, AKIAEXAMPLE123",
                "Loading configuration property: s3.access-key, ******",
                1,
            ),
            (
                "Loading configuration property: env.java.opts.jobmanager, -Dapp.db.password=hunter2",
                "Loading configuration property: env.java.opts.jobmanager, -Dapp.db.password=******",
                1,
            ),
            (
                "password: \"two words\" next",
                "password: \"******\" next",
                1,
            ),
            (
                "{\"password\":\"p\\\"q\",\"x\":1}",
                "{\"password\":\"******\",\"x\":1}",
                1,
            ),
            (
                "{\"key\":\"s3.access-key\",\"value\":\"AKIA\"}",
                "{\"key\":\"s3.access-key\",\"value\":\"******\"}",
                1,
            ),
            (
                "Authorization: Bearer abc.def",
                "Authorization: Bearer ******",
                1,
            ),
            (
                "DB_PASSWORD=x API_TOKEN=y",
                "DB_PASSWORD=****** API_TOKEN=******",
                2,
            ),
            (
                "jdbc:mysql://db:3306/app?user=app&password=hunter2 (db.password=hunter2)",
                "jdbc:mysql://db:3306/app?user=app&password=****** (db.password=******",
                2,
            ),
            (
                "s3://AKIA:sEcReT@bucket/path",
                "s3://AKIA:******@bucket/path",
                1,
            ),
            (
                "pekko.tcp://flink@127.0.0.1:43471/user",
                "pekko.tcp://flink@127.0.0.1:43471/user",
                0,
            ),
            (
                "Loading configuration property: x.password, ******",
                "Loading configuration property: x.password, ******",
                0,
            ),
            // A stack frame of a class named after a secret is not a key/value pair.
            (
                "at a.TokenCache.get(TokenCache.java:42)",
                "at a.TokenCache.get(TokenCache.java:42)",
                0,
            ),
            // Prose: a key word without a separator is not followed by a value.
            (
                "Delegation token manager started",
                "Delegation token manager started",
                0,
            ),
            ("-Dsecret.enabled -Xmx1g", "-Dsecret.enabled ******", 1),
            ("-Database.password hunter2", "-Database.password ******", 1),
            // Over-redaction we accept: the flag's next word goes even if it is another flag.
            ("--token --name x", "--token ****** x", 1),
            // Query strings, as the jar plan and run routes take program arguments.
            (
                "/jars/x.jar/plan?programArg=--db.password%20hunter2&entry-class=A",
                "/jars/x.jar/plan?programArg=--db.password%20******",
                1,
            ),
            (
                "?programArg=--db.password%3Dhunter2",
                "?programArg=--db.password%3D******",
                1,
            ),
            (
                "?programArg=--db.password+hunter2",
                "?programArg=--db.password+******",
                1,
            ),
            (
                "s3a://AKIA:wJal/rXUt+nFE@bucket/x y",
                "s3a://AKIA:******@bucket/x y",
                1,
            ),
        ];
        for (input, expected, count) in cases {
            assert_eq!(redact(input), (expected.to_owned(), count), "{input}");
        }
    }

    #[test]
    fn carry_at_end() {
        let rules = RedactionRules::default();
        let mut scanner = Scanner::new(&rules, Mode::Replace);
        let mut out = Vec::new();
        assert_eq!(
            scanner.scan(b"--db.password", Carry::Nothing, &mut out),
            (0, Carry::Value)
        );
        assert_eq!(
            scanner.scan(b"password = ", Carry::Nothing, &mut out),
            (0, Carry::Value)
        );
        out.clear();
        assert_eq!(
            scanner.scan(b"  hunter2 rest", Carry::Value, &mut out),
            (1, Carry::Nothing)
        );
        assert_eq!(out, b"  ****** rest");
    }

    #[test]
    fn mask_keeps_length() {
        let rules = RedactionRules::default();
        let mut scanner = Scanner::new(&rules, Mode::Mask);
        let input = b"cannot connect to jdbc:x://u:pw@h/app?password=hunter2 (token: 'abc')";
        let mut out = Vec::new();
        let (count, _) = scanner.scan(input, Carry::Nothing, &mut out);
        assert_eq!(count, 3);
        assert_eq!(out.len(), input.len());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cannot connect to jdbc:x://u:**@h/app?password=******* (token: '***')"
        );
    }

    #[test]
    fn streaming_matches_whole_text_and_carries_across_lines() {
        let rules = RedactionRules::default();
        let text = "a=1\n    --db.password\n    hunter2\nLoading configuration property: s3.access-key, AKIA\nlast password=x";
        let (whole, count) = rules.redact_text(text);
        for size in [1, 2, 3, 7, 64] {
            let mut redactor = rules.text_redactor();
            let mut out = Vec::new();
            for chunk in text.as_bytes().chunks(size) {
                out.extend(redactor.push(chunk));
            }
            let (tail, n) = redactor.finish();
            out.extend(tail);
            assert_eq!((String::from_utf8(out).unwrap(), n), (whole.clone(), count));
        }
        assert_eq!(count, 3);
        assert!(!whole.contains("hunter2") && !whole.contains("AKIA"));
    }

    #[test]
    fn overlong_line_is_withheld() {
        let rules = RedactionRules::default().with_max_line(1024);
        let mut redactor = rules.text_redactor();
        let mut out = redactor.push(b"ok\n");
        out.extend(redactor.push(&[b'x'; 800]));
        out.extend(redactor.push(b" password"));
        out.extend(redactor.push(&[b'y'; 800]));
        out.extend(redactor.push(b"=hunter2 more\nnext password=z\n"));
        let (tail, count) = redactor.finish();
        out.extend(tail);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok\n******\nnext password=******\n"
        );
        assert_eq!(count, 2);
    }
}
