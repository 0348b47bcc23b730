//! Environment variables of the command line, shell completions and the manual page.
//!
//! Every variable is prefixed `SPIKEWATCH_`: the flags' (`SPIKEWATCH_CONFIG`,
//! `SPIKEWATCH_LOG_FORMAT`) and the config overrides' ([`crate::config::ENV_VARS`]). The names
//! they had before (`CONFIG_PATH`, `LOG_FORMAT`, `PORT`, `KAFKA_BOOTSTRAP_SERVERS`, ...) are still
//! read for one release, when the prefixed one is unset, with a warning at start.

use std::io::Write;

/// The flags' variables and their deprecated names.
pub const FLAG_ENV_VARS: &[(&str, &str)] =
    &[("SPIKEWATCH_CONFIG", "CONFIG_PATH"), ("SPIKEWATCH_LOG_FORMAT", "LOG_FORMAT")];

/// The value of `new`'s deprecated name when `new` is unset (clap has already read `new`).
pub fn deprecated(new: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    let (_, old) = FLAG_ENV_VARS.iter().find(|(name, _)| *name == new)?;
    lookup(new).is_none().then(|| lookup(old)).flatten()
}

/// `(deprecated name, name to use)` of every variable set under its deprecated name only.
pub fn deprecated_in_use(lookup: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, &'static str)> {
    let flags = FLAG_ENV_VARS
        .iter()
        .map(|&(new, old)| (old, new))
        .filter(|(old, new)| lookup(new).is_none() && lookup(old).is_some());
    flags.chain(crate::config::deprecated_env_vars(&lookup)).collect()
}

/// One warning per deprecated name in use.
pub fn warn_deprecated(lookup: impl Fn(&str) -> Option<String>) {
    for (old, new) in deprecated_in_use(lookup) {
        tracing::warn!("environment variable {old} is deprecated: set {new}");
    }
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

impl CompletionsArgs {
    /// Writes the completion script of `command` to standard output.
    pub fn print(&self, command: &mut clap::Command, name: &str) -> anyhow::Result<()> {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, command, name, &mut script);
        std::io::stdout().write_all(&script)?;
        Ok(())
    }
}

/// Writes the manual page of `command` (roff) to standard output.
pub fn print_man(command: clap::Command) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    std::io::stdout().write_all(&page)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_deprecated_name_applies_only_when_the_prefixed_one_is_unset() {
        let env: HashMap<&str, &str> =
            [("CONFIG_PATH", "/old.yaml"), ("LOG_FORMAT", "json"), ("SPIKEWATCH_LOG_FORMAT", "text")].into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        assert_eq!(deprecated("SPIKEWATCH_CONFIG", lookup).as_deref(), Some("/old.yaml"));
        assert_eq!(deprecated("SPIKEWATCH_LOG_FORMAT", lookup), None, "the prefixed one is set");
        assert_eq!(deprecated_in_use(lookup), [("CONFIG_PATH", "SPIKEWATCH_CONFIG")]);
    }

    #[test]
    fn config_overrides_are_reported_too() {
        let env: HashMap<&str, &str> = [("PORT", "9000"), ("KAFKA_BOOTSTRAP_SERVERS", "k:9092")].into();
        let used = deprecated_in_use(|k: &str| env.get(k).map(|v| v.to_string()));
        assert!(used.contains(&("PORT", "SPIKEWATCH_PORT")), "{used:?}");
        assert!(used.contains(&("KAFKA_BOOTSTRAP_SERVERS", "SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS")), "{used:?}");
    }
}
