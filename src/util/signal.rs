//! Signal names and numbers as users type them (`SIGTERM`, `TERM`, `15`).

use nix::sys::signal::Signal;

/// A signal name or number that names no signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("invalid signal number {0}")]
    Number(i32),
    #[error("invalid signal {0:?}")]
    Name(String),
}

pub fn parse_signal(s: &str) -> Result<Signal, SignalError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| SignalError::Number(n));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| SignalError::Name(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("2").unwrap(), Signal::SIGINT);
        assert!(parse_signal("SIGNOPE").is_err());
        assert_eq!(
            parse_signal("99").unwrap_err().to_string(),
            "invalid signal number 99"
        );
        assert_eq!(
            parse_signal("nope").unwrap_err().to_string(),
            "invalid signal \"nope\""
        );
    }
}
