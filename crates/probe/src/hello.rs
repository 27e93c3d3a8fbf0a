//! A raw ClientHello scanner, like sslscan or testssl: which TLS versions and cipher suites a
//! server accepts, including the old and weak ones no modern TLS library offers.
//!
//! Each probe sends one hand-built ClientHello and reads only the server's first flight up to
//! its ServerHello (or alert), then closes: no handshake is ever completed, so no key is
//! agreed and nothing reaches the application behind the TLS layer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::tls::{Timeouts, is_timeout, looks_like_tls};

/// A TLS protocol version the scanner can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.0 (RFC 2246), deprecated by RFC 8996.
    Tls10,
    /// TLS 1.1 (RFC 4346), deprecated by RFC 8996.
    Tls11,
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// Every version, oldest first.
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// The version's wire value.
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The version for a wire value.
    pub fn from_wire(value: u16) -> Option<TlsVersion> {
        TlsVersion::ALL.into_iter().find(|v| v.wire() == value)
    }

    /// `TLSv1.2` and so on, as Java and Flink's `security.ssl.protocol` spell it.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    /// TLS 1.0 and 1.1 are deprecated (RFC 8996).
    pub fn is_deprecated(self) -> bool {
        self < TlsVersion::Tls12
    }
}

/// A cipher suite the scanner knows: its IANA code and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Suite {
    /// The IANA code point.
    pub code: u16,
    /// The IANA name, which is also the name Java uses.
    pub name: &'static str,
}

impl Suite {
    /// A TLS 1.3 suite (`TLS_AES_*`, `TLS_CHACHA20_*`): usable only with TLS 1.3.
    pub fn is_tls13(&self) -> bool {
        self.code >> 8 == 0x13
    }

    /// Weak: not an AEAD cipher with forward secrecy. That covers CBC (Flink's default
    /// `TLS_RSA_WITH_AES_128_CBC_SHA`), 3DES, RC4, DES, NULL, EXPORT, anonymous key
    /// exchange, and static RSA or ECDH key exchange.
    pub fn is_weak(&self) -> bool {
        if self.is_tls13() {
            return false;
        }
        let aead = ["_GCM_", "CHACHA20_POLY1305", "_CCM"]
            .iter()
            .any(|m| self.name.contains(m));
        let forward_secret =
            self.name.starts_with("TLS_ECDHE_") || self.name.starts_with("TLS_DHE_");
        !(aead && forward_secret) || self.name.contains("anon") || self.name.contains("_CCM_8")
    }

    /// The suite with this code, if the scanner knows it.
    pub fn by_code(code: u16) -> Option<Suite> {
        SUITES.iter().copied().find(|s| s.code == code)
    }
}

macro_rules! suites {
    ($($code:literal $name:ident),* $(,)?) => {
        /// Every suite the scanner offers: what Java (SunJSSE) and OpenSSL know, strong and
        /// weak, with IANA names.
        pub const SUITES: &[Suite] = &[$(Suite { code: $code, name: stringify!($name) }),*];
    };
}

suites! {
    0x1301 TLS_AES_128_GCM_SHA256,
    0x1302 TLS_AES_256_GCM_SHA384,
    0x1303 TLS_CHACHA20_POLY1305_SHA256,
    0x1304 TLS_AES_128_CCM_SHA256,
    0x1305 TLS_AES_128_CCM_8_SHA256,
    0xC02B TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    0xC02C TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    0xC02F TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0xC030 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0xCCA9 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    0xCCA8 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0xCCAA TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0x009E TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
    0x009F TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
    0x00A2 TLS_DHE_DSS_WITH_AES_128_GCM_SHA256,
    0x00A3 TLS_DHE_DSS_WITH_AES_256_GCM_SHA384,
    0xC0AC TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
    0xC0AD TLS_ECDHE_ECDSA_WITH_AES_256_CCM,
    0xC09E TLS_DHE_RSA_WITH_AES_128_CCM,
    0xC09F TLS_DHE_RSA_WITH_AES_256_CCM,
    0x009C TLS_RSA_WITH_AES_128_GCM_SHA256,
    0x009D TLS_RSA_WITH_AES_256_GCM_SHA384,
    0xC02D TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256,
    0xC02E TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384,
    0xC031 TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256,
    0xC032 TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384,
    0xC023 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
    0xC024 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
    0xC027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    0xC028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
    0xC009 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
    0xC00A TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
    0xC013 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    0xC014 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
    0x0067 TLS_DHE_RSA_WITH_AES_128_CBC_SHA256,
    0x006B TLS_DHE_RSA_WITH_AES_256_CBC_SHA256,
    0x0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA,
    0x0039 TLS_DHE_RSA_WITH_AES_256_CBC_SHA,
    0x0040 TLS_DHE_DSS_WITH_AES_128_CBC_SHA256,
    0x006A TLS_DHE_DSS_WITH_AES_256_CBC_SHA256,
    0x0032 TLS_DHE_DSS_WITH_AES_128_CBC_SHA,
    0x0038 TLS_DHE_DSS_WITH_AES_256_CBC_SHA,
    0x003C TLS_RSA_WITH_AES_128_CBC_SHA256,
    0x003D TLS_RSA_WITH_AES_256_CBC_SHA256,
    0x002F TLS_RSA_WITH_AES_128_CBC_SHA,
    0x0035 TLS_RSA_WITH_AES_256_CBC_SHA,
    0xC025 TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256,
    0xC026 TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384,
    0xC029 TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256,
    0xC02A TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384,
    0xC004 TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA,
    0xC005 TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA,
    0xC00E TLS_ECDH_RSA_WITH_AES_128_CBC_SHA,
    0xC00F TLS_ECDH_RSA_WITH_AES_256_CBC_SHA,
    0x0041 TLS_RSA_WITH_CAMELLIA_128_CBC_SHA,
    0x0084 TLS_RSA_WITH_CAMELLIA_256_CBC_SHA,
    0x0096 TLS_RSA_WITH_SEED_CBC_SHA,
    0xC008 TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA,
    0xC012 TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
    0x0016 TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA,
    0x0013 TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA,
    0x000A TLS_RSA_WITH_3DES_EDE_CBC_SHA,
    0xC007 TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
    0xC011 TLS_ECDHE_RSA_WITH_RC4_128_SHA,
    0x0005 TLS_RSA_WITH_RC4_128_SHA,
    0x0004 TLS_RSA_WITH_RC4_128_MD5,
    0x0009 TLS_RSA_WITH_DES_CBC_SHA,
    0x0015 TLS_DHE_RSA_WITH_DES_CBC_SHA,
    0x0012 TLS_DHE_DSS_WITH_DES_CBC_SHA,
    0x0003 TLS_RSA_EXPORT_WITH_RC4_40_MD5,
    0x0006 TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5,
    0x0008 TLS_RSA_EXPORT_WITH_DES40_CBC_SHA,
    0x0011 TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA,
    0x0014 TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA,
    0x0001 TLS_RSA_WITH_NULL_MD5,
    0x0002 TLS_RSA_WITH_NULL_SHA,
    0x003B TLS_RSA_WITH_NULL_SHA256,
    0xC006 TLS_ECDHE_ECDSA_WITH_NULL_SHA,
    0xC010 TLS_ECDHE_RSA_WITH_NULL_SHA,
    0x0018 TLS_DH_anon_WITH_RC4_128_MD5,
    0x001B TLS_DH_anon_WITH_3DES_EDE_CBC_SHA,
    0x0034 TLS_DH_anon_WITH_AES_128_CBC_SHA,
    0x003A TLS_DH_anon_WITH_AES_256_CBC_SHA,
    0x006C TLS_DH_anon_WITH_AES_128_CBC_SHA256,
    0x006D TLS_DH_anon_WITH_AES_256_CBC_SHA256,
    0x00A6 TLS_DH_anon_WITH_AES_128_GCM_SHA256,
    0x00A7 TLS_DH_anon_WITH_AES_256_GCM_SHA384,
    0xC015 TLS_ECDH_anon_WITH_NULL_SHA,
    0xC016 TLS_ECDH_anon_WITH_RC4_128_SHA,
    0xC017 TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA,
    0xC018 TLS_ECDH_anon_WITH_AES_128_CBC_SHA,
    0xC019 TLS_ECDH_anon_WITH_AES_256_CBC_SHA,
}

/// The suites that make sense to offer with `version`.
pub fn suites_for(version: TlsVersion) -> Vec<Suite> {
    SUITES
        .iter()
        .copied()
        .filter(|s| match version {
            TlsVersion::Tls13 => s.is_tls13(),
            // SHA-256/384 and AEAD suites exist only from TLS 1.2 on.
            TlsVersion::Tls10 | TlsVersion::Tls11 => {
                !s.is_tls13()
                    && !s.name.ends_with("SHA256")
                    && !s.name.ends_with("SHA384")
                    && !s.name.contains("_CCM")
            }
            TlsVersion::Tls12 => !s.is_tls13(),
        })
        .collect()
}

/// A ClientHello to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The one version offered.
    pub version: TlsVersion,
    /// Suite codes, in preference order.
    pub suites: &'a [u16],
    /// SNI, only for DNS names.
    pub server_name: Option<&'a str>,
    /// The client random.
    pub random: [u8; 32],
    /// An X25519 public key for TLS 1.3's key_share (any 32 bytes do: the handshake never
    /// gets far enough to use it).
    pub key_share: [u8; 32],
}

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_EXTENDED_MASTER_SECRET: u16 = 0x0017;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
const EXT_PSK_MODES: u16 = 0x002d;
const EXT_KEY_SHARE: u16 = 0x0033;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;
const X25519: u16 = 0x001d;

/// The random of a HelloRetryRequest (RFC 8446 4.1.3): SHA-256 of "HelloRetryRequest".
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends `body` prefixed by its length in `width` bytes.
fn put_vec(out: &mut Vec<u8>, width: usize, body: &[u8]) {
    let len = body.len().to_be_bytes();
    out.extend_from_slice(&len[len.len() - width..]);
    out.extend_from_slice(body);
}

fn put_ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    put_u16(out, kind);
    put_vec(out, 2, body);
}

impl ClientHello<'_> {
    /// The whole TLS record carrying the ClientHello.
    pub fn encode(&self) -> Vec<u8> {
        let tls13 = self.version == TlsVersion::Tls13;
        let legacy_version = if tls13 { 0x0303 } else { self.version.wire() };

        let mut ext = Vec::new();
        if let Some(name) = self.server_name {
            let mut entry = vec![0u8];
            put_vec(&mut entry, 2, name.as_bytes());
            let mut list = Vec::new();
            put_vec(&mut list, 2, &entry);
            put_ext(&mut ext, EXT_SERVER_NAME, &list);
        }
        let mut groups = Vec::new();
        for g in [X25519, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101] {
            put_u16(&mut groups, g);
        }
        let mut list = Vec::new();
        put_vec(&mut list, 2, &groups);
        put_ext(&mut ext, EXT_SUPPORTED_GROUPS, &list);
        put_ext(&mut ext, EXT_EC_POINT_FORMATS, &[1, 0]);
        if self.version >= TlsVersion::Tls12 {
            let mut schemes = Vec::new();
            for s in [
                0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0401, 0x0501, 0x0601,
                0x0201, 0x0203,
            ] {
                put_u16(&mut schemes, s);
            }
            let mut list = Vec::new();
            put_vec(&mut list, 2, &schemes);
            put_ext(&mut ext, EXT_SIGNATURE_ALGORITHMS, &list);
        }
        put_ext(&mut ext, EXT_EXTENDED_MASTER_SECRET, &[]);
        put_ext(&mut ext, EXT_RENEGOTIATION_INFO, &[0]);
        if tls13 {
            put_ext(&mut ext, EXT_SUPPORTED_VERSIONS, &[2, 0x03, 0x04]);
            put_ext(&mut ext, EXT_PSK_MODES, &[1, 1]);
            let mut share = Vec::new();
            put_u16(&mut share, X25519);
            put_vec(&mut share, 2, &self.key_share);
            let mut shares = Vec::new();
            put_vec(&mut shares, 2, &share);
            put_ext(&mut ext, EXT_KEY_SHARE, &shares);
        }

        let mut body = Vec::new();
        put_u16(&mut body, legacy_version);
        body.extend_from_slice(&self.random);
        // A session id, as TLS 1.3 clients send for middlebox compatibility.
        put_vec(&mut body, 1, &self.random);
        let mut suites = Vec::new();
        for &s in self.suites {
            put_u16(&mut suites, s);
        }
        put_vec(&mut body, 2, &suites);
        put_vec(&mut body, 1, &[0]);
        put_vec(&mut body, 2, &ext);

        let mut handshake = vec![1u8];
        put_vec(&mut handshake, 3, &body);
        // The record version: TLS 1.0 for compatibility, as every client sends, except for an
        // explicit TLS 1.1 or 1.2 offer, where some servers want it to match.
        let record_version = if tls13 { 0x0301 } else { self.version.wire() };
        let mut record = vec![0x16];
        put_u16(&mut record, record_version);
        put_vec(&mut record, 2, &handshake);
        record
    }
}

/// The server's answer to a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HelloAnswer {
    /// A ServerHello (or a TLS 1.3 HelloRetryRequest, which also proves acceptance).
    ServerHello {
        /// The negotiated version (from supported_versions for TLS 1.3).
        version: u16,
        /// The chosen suite's code.
        suite: u16,
        /// It was a HelloRetryRequest.
        retry: bool,
    },
    /// A TLS alert.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description (40 handshake_failure, 70 protocol_version, ...).
        description: u8,
    },
    /// The server answered with bytes that are not TLS.
    NotTls {
        /// The start of the answer.
        first_bytes: Vec<u8>,
    },
    /// The server closed the connection without a word.
    Closed,
    /// The server neither answered nor closed in time.
    NoAnswer,
    /// No TCP connection.
    Unreachable {
        /// The connect error.
        reason: String,
    },
    /// TLS records that could not be parsed.
    Malformed {
        /// What was wrong.
        reason: String,
    },
}

impl HelloAnswer {
    /// Whether the answer is TLS (a ServerHello or an alert): the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            HelloAnswer::ServerHello { .. } | HelloAnswer::Alert { .. }
        )
    }
}

/// Parses the start of a server's answer. `None` means: need more bytes.
pub fn parse_answer(bytes: &[u8]) -> Option<HelloAnswer> {
    if bytes.is_empty() {
        return None;
    }
    if !looks_like_tls(bytes) {
        return Some(HelloAnswer::NotTls {
            first_bytes: bytes[..bytes.len().min(64)].to_vec(),
        });
    }
    let mut handshake = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.len() < 5 {
            return None;
        }
        let kind = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest.len() < 5 + len {
            return None;
        }
        let payload = &rest[5..5 + len];
        rest = &rest[5 + len..];
        match kind {
            0x15 if payload.len() >= 2 => {
                return Some(HelloAnswer::Alert {
                    level: payload[0],
                    description: payload[1],
                });
            }
            0x16 => {
                handshake.extend_from_slice(payload);
                if handshake.len() >= 4 {
                    let msg_len = usize::from(handshake[1]) << 16
                        | usize::from(handshake[2]) << 8
                        | usize::from(handshake[3]);
                    if handshake.len() >= 4 + msg_len {
                        if handshake[0] != 2 {
                            return Some(malformed(
                                "the first handshake message is no ServerHello",
                            ));
                        }
                        return Some(parse_server_hello(&handshake[4..4 + msg_len]));
                    }
                }
            }
            _ => return Some(malformed("an unexpected record before the ServerHello")),
        }
    }
}

fn malformed(reason: &str) -> HelloAnswer {
    HelloAnswer::Malformed {
        reason: reason.to_owned(),
    }
}

fn parse_server_hello(body: &[u8]) -> HelloAnswer {
    let short = || malformed("ServerHello too short");
    if body.len() < 35 {
        return short();
    }
    let mut version = u16::from_be_bytes([body[0], body[1]]);
    let retry = body[2..34] == HELLO_RETRY_RANDOM;
    let sid_len = usize::from(body[34]);
    let at = 35 + sid_len;
    let Some(tail) = body.get(at..at + 3) else {
        return short();
    };
    let suite = u16::from_be_bytes([tail[0], tail[1]]);
    let mut ext = body.get(at + 3..).unwrap_or_default();
    if ext.len() >= 2 {
        let total = usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        ext = ext.get(2..2 + total).unwrap_or_default();
        while ext.len() >= 4 {
            let kind = u16::from_be_bytes([ext[0], ext[1]]);
            let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let Some(data) = ext.get(4..4 + len) else {
                return malformed("ServerHello extension overruns");
            };
            if kind == EXT_SUPPORTED_VERSIONS && data.len() == 2 {
                version = u16::from_be_bytes([data[0], data[1]]);
            }
            ext = &ext[4 + len..];
        }
    }
    HelloAnswer::ServerHello {
        version,
        suite,
        retry,
    }
}

/// Sends one ClientHello and reads the answer.
pub fn send_hello(addr: SocketAddr, hello: &ClientHello<'_>, timeouts: &Timeouts) -> HelloAnswer {
    let mut sock = match TcpStream::connect_timeout(&addr, timeouts.connect) {
        Ok(sock) => sock,
        Err(e) => {
            return HelloAnswer::Unreachable {
                reason: e.to_string(),
            };
        }
    };
    let _ = sock.set_nodelay(true);
    let _ = sock.set_write_timeout(Some(timeouts.handshake));
    if sock.write_all(&hello.encode()).is_err() {
        return HelloAnswer::Closed;
    }
    let deadline = Instant::now() + timeouts.handshake;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return HelloAnswer::NoAnswer;
        }
        let _ = sock.set_read_timeout(Some(remaining));
        match sock.read(&mut buf) {
            Ok(0) => {
                return if got.is_empty() {
                    HelloAnswer::Closed
                } else {
                    parse_answer(&got).unwrap_or_else(|| malformed("truncated answer"))
                };
            }
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(answer) = parse_answer(&got) {
                    return answer;
                }
                // A ServerHello fits in a few records; a server that sends more before it
                // is not following the protocol.
                if got.len() > 64 * 1024 {
                    return malformed("no ServerHello in the first 64 KiB");
                }
            }
            Err(e) if is_timeout(&e) => {
                return if got.is_empty() {
                    HelloAnswer::NoAnswer
                } else {
                    parse_answer(&got).unwrap_or_else(|| malformed("truncated answer"))
                };
            }
            Err(_) => {
                return if got.is_empty() {
                    HelloAnswer::Closed
                } else {
                    parse_answer(&got).unwrap_or_else(|| malformed("connection reset"))
                };
            }
        }
    }
}

/// What a server accepts with one TLS version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionScan {
    /// The version offered.
    pub version: TlsVersion,
    /// The answer to the first offer (every known suite of that version).
    pub first_answer: HelloAnswer,
    /// The suites the server chose, in the order it chose them as the offer shrank
    /// (its preference order). Empty when the version is refused.
    pub accepted: Vec<Suite>,
}

impl VersionScan {
    /// Whether the server accepted the version at all.
    pub fn accepted_version(&self) -> bool {
        !self.accepted.is_empty()
    }
}

/// Offers `version` with every known suite, then again without each suite the server chose,
/// until it refuses: at most one ClientHello per known suite, plus one.
pub fn scan_version(
    addr: SocketAddr,
    server_name: Option<&str>,
    version: TlsVersion,
    timeouts: &Timeouts,
) -> VersionScan {
    let mut offer: Vec<u16> = suites_for(version).iter().map(|s| s.code).collect();
    let mut accepted = Vec::new();
    let mut first_answer = None;
    while !offer.is_empty() {
        let hello = ClientHello {
            version,
            suites: &offer,
            server_name,
            random: rand::random(),
            key_share: rand::random(),
        };
        let answer = send_hello(addr, &hello, timeouts);
        let chosen = match &answer {
            HelloAnswer::ServerHello {
                version: v, suite, ..
            } if *v == version.wire() => offer.iter().position(|c| c == suite),
            _ => None,
        };
        if first_answer.is_none() {
            first_answer = Some(answer);
        }
        let Some(index) = chosen else { break };
        let code = offer.remove(index);
        if let Some(suite) = Suite::by_code(code) {
            accepted.push(suite);
        }
    }
    VersionScan {
        version,
        first_answer: first_answer.unwrap_or(HelloAnswer::Closed),
        accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: TlsVersion, name: Option<&str>) -> Vec<u8> {
        ClientHello {
            version,
            suites: &[0xC02F, 0x002F],
            server_name: name,
            random: [7; 32],
            key_share: [9; 32],
        }
        .encode()
    }

    #[test]
    fn client_hello_layout() {
        let bytes = hello(TlsVersion::Tls12, None);
        // Record header: handshake, TLS 1.2, length of the rest.
        assert_eq!(&bytes[..3], &[0x16, 0x03, 0x03]);
        assert_eq!(
            usize::from(u16::from_be_bytes([bytes[3], bytes[4]])),
            bytes.len() - 5
        );
        // Handshake header: ClientHello, 24-bit length.
        assert_eq!(bytes[5], 1);
        let hs_len =
            usize::from(bytes[6]) << 16 | usize::from(bytes[7]) << 8 | usize::from(bytes[8]);
        assert_eq!(hs_len, bytes.len() - 9);
        // legacy_version, random, session id of 32 bytes, two suites, null compression.
        assert_eq!(&bytes[9..11], &[3, 3]);
        assert_eq!(&bytes[11..43], &[7; 32]);
        assert_eq!(bytes[43], 32);
        assert_eq!(&bytes[76..82], &[0, 4, 0xC0, 0x2F, 0x00, 0x2F]);
        assert_eq!(&bytes[82..84], &[1, 0]);
        // No supported_versions or key_share below TLS 1.3, no SNI without a name.
        let ext = &bytes[86..];
        assert!(!ext.windows(2).any(|w| w == [0x00, 0x2b]));
        assert!(!ext.windows(2).any(|w| w == [0x00, 0x33]));
        assert_ne!(&ext[..2], &[0, 0]);
    }

    #[test]
    fn client_hello_tls13_and_sni() {
        let bytes = hello(TlsVersion::Tls13, Some("flink.example.org"));
        assert_eq!(&bytes[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(&bytes[9..11], &[3, 3], "legacy_version stays 1.2");
        let ext = &bytes[86..];
        // SNI first: type 0, list len, host_name type 0, name.
        assert_eq!(&ext[..2], &[0, 0]);
        assert!(bytes.windows(17).any(|w| w == b"flink.example.org"));
        // supported_versions offering exactly TLS 1.3.
        assert!(
            bytes
                .windows(7)
                .any(|w| w == [0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04])
        );
        // key_share: X25519 with the 32 given bytes.
        let mut share = vec![0x00, 0x1d, 0x00, 0x20];
        share.extend_from_slice(&[9; 32]);
        assert!(bytes.windows(share.len()).any(|w| w == share.as_slice()));
    }

    #[test]
    fn client_hello_tls10_has_no_signature_algorithms() {
        let bytes = hello(TlsVersion::Tls10, None);
        assert_eq!(&bytes[1..3], &[3, 1]);
        assert_eq!(&bytes[9..11], &[3, 1]);
        assert!(!bytes[86..].windows(2).any(|w| w == [0x00, 0x0d]));
    }

    /// A ServerHello record: version, random, 32-byte session id, suite, extensions.
    fn server_hello(version: u16, random: [u8; 32], suite: u16, ext: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put_u16(&mut body, version);
        body.extend_from_slice(&random);
        put_vec(&mut body, 1, &[5; 32]);
        put_u16(&mut body, suite);
        body.push(0);
        if !ext.is_empty() {
            put_vec(&mut body, 2, ext);
        }
        let mut hs = vec![2];
        put_vec(&mut hs, 3, &body);
        let mut record = vec![0x16, 3, 3];
        put_vec(&mut record, 2, &hs);
        record
    }

    #[test]
    fn parses_tls12_server_hello() {
        let bytes = server_hello(0x0303, [1; 32], 0xC02F, &[0xff, 0x01, 0x00, 0x01, 0x00]);
        assert_eq!(
            parse_answer(&bytes),
            Some(HelloAnswer::ServerHello {
                version: 0x0303,
                suite: 0xC02F,
                retry: false
            })
        );
        // Incomplete: more bytes needed.
        assert_eq!(parse_answer(&bytes[..20]), None);
    }

    #[test]
    fn parses_tls13_server_hello_and_hello_retry() {
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
        assert_eq!(
            parse_answer(&server_hello(0x0303, [1; 32], 0x1301, &ext)),
            Some(HelloAnswer::ServerHello {
                version: 0x0304,
                suite: 0x1301,
                retry: false
            })
        );
        assert_eq!(
            parse_answer(&server_hello(0x0303, HELLO_RETRY_RANDOM, 0x1302, &ext)),
            Some(HelloAnswer::ServerHello {
                version: 0x0304,
                suite: 0x1302,
                retry: true
            })
        );
    }

    #[test]
    fn server_hello_split_over_records() {
        let whole = server_hello(0x0303, [1; 32], 0x009C, &[]);
        let hs = &whole[5..];
        let (a, b) = hs.split_at(10);
        let mut split = vec![0x16, 3, 3];
        put_vec(&mut split, 2, a);
        split.extend_from_slice(&[0x16, 3, 3]);
        put_vec(&mut split, 2, b);
        assert_eq!(
            parse_answer(&split),
            Some(HelloAnswer::ServerHello {
                version: 0x0303,
                suite: 0x009C,
                retry: false
            })
        );
    }

    #[test]
    fn parses_alerts_and_non_tls() {
        assert_eq!(
            parse_answer(&[0x15, 3, 3, 0, 2, 2, 70]),
            Some(HelloAnswer::Alert {
                level: 2,
                description: 70
            })
        );
        assert!(matches!(
            parse_answer(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(HelloAnswer::NotTls { .. })
        ));
        assert!(matches!(
            parse_answer(&[0x16, 3, 3, 0, 5, 11, 0, 0, 1, 0]),
            Some(HelloAnswer::Malformed { .. })
        ));
    }

    #[test]
    fn suite_catalogue() {
        let codes: std::collections::HashSet<u16> = SUITES.iter().map(|s| s.code).collect();
        assert_eq!(codes.len(), SUITES.len(), "no code twice");
        let weak = |name: &str| SUITES.iter().find(|s| s.name == name).unwrap().is_weak();
        assert!(!weak("TLS_AES_128_GCM_SHA256"));
        assert!(!weak("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        assert!(!weak("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"));
        for name in [
            "TLS_RSA_WITH_AES_128_CBC_SHA",
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS_DH_anon_WITH_AES_128_GCM_SHA256",
            "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
            "TLS_RSA_WITH_NULL_SHA",
        ] {
            assert!(weak(name), "{name}");
        }
        assert!(suites_for(TlsVersion::Tls13).iter().all(Suite::is_tls13));
        assert!(
            suites_for(TlsVersion::Tls10)
                .iter()
                .all(|s| !s.name.contains("GCM"))
        );
    }
}
