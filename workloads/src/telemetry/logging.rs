//! `tracing` setup. `--log-format` (`SPIKEWATCH_LOG_FORMAT`) picks `text` or `json`; unset, logs are text on
//! a terminal and one JSON object per line otherwise (a container's stderr, a file, a pipe).
//! Colour codes only ever go to a terminal. Level from `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The format in effect: the one asked for, else text on a terminal and JSON elsewhere.
pub fn resolve(asked: Option<LogFormat>, terminal: bool) -> LogFormat {
    asked.unwrap_or(if terminal { LogFormat::Text } else { LogFormat::Json })
}

/// Installs the subscriber; returns the format in effect.
pub fn init(asked: Option<LogFormat>) -> LogFormat {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(terminal);
    // try_init: a second call (tests) keeps the first subscriber.
    let format = resolve(asked, terminal);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    format
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_off_a_terminal_unless_asked_otherwise() {
        assert_eq!(resolve(None, true), LogFormat::Text);
        assert_eq!(resolve(None, false), LogFormat::Json);
        assert_eq!(resolve(Some(LogFormat::Text), false), LogFormat::Text);
        assert_eq!(resolve(Some(LogFormat::Json), true), LogFormat::Json);
    }
}
