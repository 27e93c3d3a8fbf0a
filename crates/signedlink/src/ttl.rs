//! Lifetimes of signed links: `10m`, `1h`, `7d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::LinkError;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// How long a signed link stays valid: at least [`Ttl::MIN`], at most [`Ttl::MAX`].
///
/// A signed link cannot be revoked except by rotating the key twice (which revokes every
/// link), so a leaked link is usable until it expires; the maximum keeps that window short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(Duration);

impl Ttl {
    /// The shortest lifetime: one minute (a shorter one may be gone before the link is used).
    pub const MIN: Ttl = Ttl(Duration::from_secs(MINUTE));
    /// The longest lifetime: 7 days.
    pub const MAX: Ttl = Ttl(Duration::from_secs(7 * DAY));

    /// A lifetime of `duration`, refused outside [`Ttl::MIN`]..=[`Ttl::MAX`].
    pub fn new(duration: Duration) -> Result<Ttl, LinkError> {
        let ttl = Ttl(duration);
        if ttl > Ttl::MAX {
            return Err(LinkError::InvalidRequest(format!(
                "a link lifetime of {ttl} is more than the maximum of {}: a signed link cannot \
                 be revoked before it expires, so links are kept short; sign a new one when \
                 this one runs out",
                Ttl::MAX
            )));
        }
        if ttl < Ttl::MIN {
            return Err(LinkError::InvalidRequest(format!(
                "a link lifetime of {ttl} is less than the minimum of {}",
                Ttl::MIN
            )));
        }
        Ok(ttl)
    }

    /// The lifetime.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// The expiry of a link signed at `now`: `now` cut to the whole second (links carry
    /// seconds, and cutting never lengthens the lifetime), plus the lifetime.
    pub fn expires_at(self, now: OffsetDateTime) -> Result<OffsetDateTime, LinkError> {
        // At most 7 days: the cast and the addition cannot overflow.
        let secs = now
            .unix_timestamp()
            .checked_add(self.0.as_secs() as i64)
            .ok_or_else(|| LinkError::InvalidRequest("the link expiry is out of range".into()))?;
        OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| LinkError::InvalidRequest("the link expiry is out of range".into()))
    }
}

impl FromStr for Ttl {
    type Err = LinkError;

    /// Parses a number followed by one unit: `s`, `m`, `h` or `d` (e.g. `10m`, `1h`, `7d`).
    fn from_str(text: &str) -> Result<Ttl, LinkError> {
        let unusable = || {
            LinkError::InvalidRequest(format!(
                "`{text}` is not a link lifetime: write a number and a unit, e.g. 10m, 1h or 7d"
            ))
        };
        Ttl::new(flinkguard_token::parse_lifetime(text).ok_or_else(unusable)?)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        flinkguard_token::format_lifetime(self.0, f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_print_back() {
        for (text, secs) in [
            ("10m", 10 * MINUTE),
            ("1h", HOUR),
            ("7d", 7 * DAY),
            ("168h", 7 * DAY),
            ("90s", 90),
        ] {
            let ttl: Ttl = text.parse().unwrap();
            assert_eq!(ttl.duration().as_secs(), secs, "{text}");
        }
        assert_eq!("168h".parse::<Ttl>().unwrap().to_string(), "7d");
        assert_eq!("90m".parse::<Ttl>().unwrap().to_string(), "90m");
        assert_eq!("90s".parse::<Ttl>().unwrap().to_string(), "90s");
    }

    #[test]
    fn bounds_and_garbage_are_clear_errors() {
        let err = "8d".parse::<Ttl>().unwrap_err().to_string();
        assert!(err.contains("8d") && err.contains("maximum of 7d"), "{err}");
        let err = "169h".parse::<Ttl>().unwrap_err().to_string();
        assert!(err.contains("maximum"), "{err}");
        let err = "30s".parse::<Ttl>().unwrap_err().to_string();
        assert!(err.contains("minimum of 1m"), "{err}");
        for bad in [
            "",
            "10",
            "m",
            "1.5h",
            "-1d",
            "+1d",
            "1 d",
            "1D",
            "1w",
            "1d2h",
            "0m",
            "99999999999d",
            "１d",
        ] {
            let err = bad.parse::<Ttl>().unwrap_err().to_string();
            assert!(
                err.contains("10m, 1h or 7d") || err.contains("minimum"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn expiry_is_whole_seconds_never_longer_than_asked() {
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_750_000_000_900_000_000).unwrap();
        let expires = "10m".parse::<Ttl>().unwrap().expires_at(now).unwrap();
        assert_eq!(expires.unix_timestamp(), 1_750_000_600);
        assert_eq!(expires.nanosecond(), 0);
    }
}
