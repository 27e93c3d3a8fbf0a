use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use zeroize::Zeroizing;

use crate::PkiError;

/// Length of generated passwords: ~190 bits from an alphanumeric alphabet, and far above the
/// 6 characters without which Flink's JobManager dies at start.
pub const GENERATED_PASSWORD_LEN: usize = 32;

/// Java refuses (or Flink dies on) keystore passwords shorter than this.
pub const MIN_PASSWORD_LEN: usize = 6;

/// A keystore password. Zeroed on drop, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// A fresh random password of [`GENERATED_PASSWORD_LEN`] alphanumeric characters.
    /// Alphanumeric so it survives YAML, shell and Java properties without quoting.
    pub fn generate() -> Password {
        let text: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(GENERATED_PASSWORD_LEN)
            .map(char::from)
            .collect();
        Password(Zeroizing::new(text))
    }

    /// A password read from a file: surrounding whitespace (the trailing newline editors add)
    /// is dropped; an empty or too short password is refused.
    pub fn from_file_contents(text: &str) -> Result<Password, PkiError> {
        let trimmed = text.trim();
        if trimmed.len() < MIN_PASSWORD_LEN {
            return Err(PkiError::InvalidInput(format!(
                "password is {} characters long; Flink needs at least {MIN_PASSWORD_LEN}",
                trimmed.len()
            )));
        }
        Ok(Password(Zeroizing::new(trimmed.to_owned())))
    }

    /// The password text, for writing into a keystore or Flink's config.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_distinct_and_alphanumeric() {
        let a = Password::generate();
        let b = Password::generate();
        assert_ne!(a, b);
        assert!(a.expose().len() >= 24);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(format!("{a:?}"), "Password(***)");
    }

    #[test]
    fn short_passwords_from_files_are_refused() {
        assert!(Password::from_file_contents("abc\n").is_err());
        assert_eq!(
            Password::from_file_contents("abcdefgh\n").unwrap().expose(),
            "abcdefgh"
        );
    }
}
