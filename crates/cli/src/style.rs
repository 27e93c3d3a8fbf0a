//! Colour for the reports people read: only when stdout is a terminal, and never when
//! `NO_COLOR` is set (no-color.org), so pipes, files and CI logs get plain text.

use std::io::IsTerminal;

/// Whether to colour, decided once per report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    enabled: bool,
}

/// The few colours the reports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colour {
    Bold,
    BoldRed,
    Red,
    Yellow,
    BoldYellow,
    Cyan,
    Green,
    Dim,
}

impl Colour {
    fn sgr(self) -> &'static str {
        match self {
            Colour::Bold => "1",
            Colour::BoldRed => "1;31",
            Colour::Red => "31",
            Colour::Yellow => "33",
            Colour::BoldYellow => "1;33",
            Colour::Cyan => "36",
            Colour::Green => "32",
            Colour::Dim => "2",
        }
    }
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub(crate) fn for_stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            enabled: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// `text` in `colour`, or unchanged when colour is off.
    pub(crate) fn paint(self, colour: Colour, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{}m{text}\x1b[0m", colour.sgr())
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_only_when_enabled() {
        let on = Style { enabled: true };
        let off = Style { enabled: false };
        assert_eq!(on.paint(Colour::Red, "HIGH"), "\x1b[31mHIGH\x1b[0m");
        assert_eq!(off.paint(Colour::Red, "HIGH"), "HIGH");
    }
}
