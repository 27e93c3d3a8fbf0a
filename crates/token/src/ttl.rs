//! Lifetimes of service tokens: `30m`, `12h`, `7d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::SetupError;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// How long a service token stays valid: at least [`Ttl::MIN`], at most [`Ttl::MAX`].
///
/// There is no revocation list yet, so a leaked service token is valid until it expires;
/// the maximum keeps that window bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(Duration);

impl Ttl {
    /// The shortest lifetime: one minute (shorter would be eaten by clock skew allowances).
    pub const MIN: Ttl = Ttl(Duration::from_secs(MINUTE));
    /// The longest lifetime: 90 days.
    pub const MAX: Ttl = Ttl(Duration::from_secs(90 * DAY));

    /// A lifetime of `duration`, refused outside [`Ttl::MIN`]..=[`Ttl::MAX`].
    pub fn new(duration: Duration) -> Result<Ttl, SetupError> {
        let ttl = Ttl(duration);
        if ttl > Ttl::MAX {
            return Err(SetupError::InvalidRequest(format!(
                "a lifetime of {ttl} is more than the maximum of {}: service tokens cannot be \
                 revoked before they expire, so they are kept short; issue a new one before \
                 this one runs out",
                Ttl::MAX
            )));
        }
        if ttl < Ttl::MIN {
            return Err(SetupError::InvalidRequest(format!(
                "a lifetime of {ttl} is less than the minimum of {}",
                Ttl::MIN
            )));
        }
        Ok(ttl)
    }

    /// The lifetime.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for Ttl {
    type Err = SetupError;

    /// Parses a number followed by one unit: `s`, `m`, `h` or `d` (e.g. `30m`, `12h`, `7d`).
    fn from_str(text: &str) -> Result<Ttl, SetupError> {
        let unusable = || {
            SetupError::InvalidRequest(format!(
                "`{text}` is not a lifetime: write a number and a unit, e.g. 30m, 12h or 7d"
            ))
        };
        Ttl::new(parse_lifetime(text).ok_or_else(unusable)?)
    }
}

/// Parses a number followed by one unit — `s`, `m`, `h` or `d` (`30m`, `12h`, `7d`) — as
/// every lifetime flinkguard takes on its command line is written.
pub fn parse_lifetime(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.len() > 9 {
        return None;
    }
    let number: u64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        _ => return None,
    };
    // At most 999,999,999 days: cannot overflow u64 seconds.
    Some(Duration::from_secs(number * unit))
}

/// Writes a lifetime in the largest unit that expresses it exactly: `7d`, `36h`, `90m`, `45s`.
pub fn format_lifetime(duration: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let secs = duration.as_secs();
    for (unit, size) in [("d", DAY), ("h", HOUR), ("m", MINUTE)] {
        if secs >= size && secs.is_multiple_of(size) {
            return write!(f, "{}{unit}", secs / size);
        }
    }
    write!(f, "{secs}s")
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_lifetime(self.0, f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_print_back() {
        for (text, secs) in [
            ("30m", 30 * MINUTE),
            ("12h", 12 * HOUR),
            ("7d", 7 * DAY),
            ("90d", 90 * DAY),
            ("60s", 60),
            ("1m", 60),
        ] {
            let ttl: Ttl = text.parse().unwrap();
            assert_eq!(ttl.duration().as_secs(), secs, "{text}");
            assert_eq!(ttl.to_string(), text.replace("60s", "1m"));
        }
        assert_eq!("36h".parse::<Ttl>().unwrap().to_string(), "36h");
        assert_eq!("90m".parse::<Ttl>().unwrap().to_string(), "90m");
    }

    #[test]
    fn bounds_and_garbage_are_clear_errors() {
        let err = "91d".parse::<Ttl>().unwrap_err().to_string();
        assert!(
            err.contains("91d") && err.contains("maximum of 90d"),
            "{err}"
        );
        let err = "2161h".parse::<Ttl>().unwrap_err().to_string();
        assert!(err.contains("maximum"), "{err}");
        let err = "30s".parse::<Ttl>().unwrap_err().to_string();
        assert!(err.contains("minimum of 1m"), "{err}");
        for bad in [
            "",
            "30",
            "m",
            "1.5h",
            "-1d",
            "+1d",
            "1 d",
            "1D",
            "1w",
            "1d2h",
            "0d",
            "99999999999d",
            "１d",
        ] {
            let err = bad.parse::<Ttl>().unwrap_err().to_string();
            assert!(
                err.contains("30m, 12h or 7d") || err.contains("minimum"),
                "{bad}: {err}"
            );
        }
    }
}
