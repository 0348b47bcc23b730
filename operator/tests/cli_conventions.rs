//! The command-line conventions both binaries share, read from what they print: one flag name
//! per concept, one vocabulary of value names, `SPIKEWATCH_` environment variables, `--version`
//! with the commit and the build date, shell completions and a manual page.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::processes::spikewatch_bin;

fn operator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spikewatch-operator"))
}

fn output(bin: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("the binary runs");
    assert!(out.status.success(), "{} {args:?}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands listed under `Commands:` of a `--help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// `(binary, subcommand, help text)` of every subcommand of both binaries.
fn every_help() -> Vec<(String, String, String)> {
    let mut all = vec![];
    for bin in [spikewatch_bin(), operator_bin()] {
        let name = bin.file_name().unwrap().to_string_lossy().to_string();
        let top = output(&bin, &["--help"]);
        let commands = subcommands(&top);
        assert!(commands.len() >= 3, "{name}: {top}");
        for command in commands {
            let help = output(&bin, &[&command, "--help"]);
            all.push((name.clone(), command, help));
        }
    }
    all
}

/// The option lines of a help text: `(flags, value name)`.
fn options(help: &str) -> Vec<(String, Option<String>)> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-') || l.starts_with('<') || l.starts_with('['))
        .map(|l| {
            let head = l.split("  ").next().unwrap_or(l);
            let value =
                head.find('<').and_then(|s| head[s + 1..].find('>').map(|e| head[s + 1..s + 1 + e].to_string()));
            (head.to_string(), value)
        })
        .collect()
}

#[test]
fn value_names_come_from_one_vocabulary() {
    const VOCABULARY: [&str; 19] = [
        "ADDR",
        "FEED",
        "FILE",
        "FILE|URL",
        "FORMAT",
        "MILLISECONDS",
        "NAME",
        "NAMESPACE",
        "PORT",
        "PRODUCT",
        "PSI",
        "SECONDS",
        "SHELL",
        "SOURCE",
        "SPEED",
        "TAG",
        "URL",
        "VARIANT",
        "VERSION",
    ];
    let mut seen = BTreeSet::new();
    for (bin, command, help) in every_help() {
        for (line, value) in options(&help) {
            if let Some(value) = value {
                assert!(VOCABULARY.contains(&value.as_str()), "{bin} {command}: <{value}> in {line:?}");
                seen.insert(value);
            }
        }
    }
    for name in ["FILE", "ADDR", "PORT", "SOURCE", "SECONDS", "SHELL"] {
        assert!(seen.contains(name), "no option uses <{name}>: {seen:?}");
    }
}

#[test]
fn one_flag_name_per_concept_across_both_binaries() {
    let mut flags = BTreeSet::new();
    for (bin, command, help) in every_help() {
        for (line, _) in options(&help) {
            for flag in line.split([' ', ',', '=']).filter(|w| w.starts_with("--")) {
                flags.insert((flag.to_string(), format!("{bin} {command}")));
            }
        }
    }
    let names: BTreeSet<&str> = flags.iter().map(|(f, _)| f.as_str()).collect();
    // Listening address, input files, model source: the workloads' names in the operator too.
    for retired in ["--http-addr", "--filename", "--listen", "--addr", "--file", "--model-source"] {
        assert!(!names.contains(retired), "{retired} is shown: {flags:?}");
    }
    let users = |flag: &str| flags.iter().filter(|(f, _)| f == flag).map(|(_, c)| c.clone()).collect::<Vec<_>>();
    assert!(users("--bind").iter().any(|c| c.starts_with("spikewatch-operator run")), "{:?}", users("--bind"));
    assert!(users("--bind").iter().any(|c| c.starts_with("spikewatch serve")));
    assert!(users("--port").iter().any(|c| c.starts_with("spikewatch run")), "{:?}", users("--port"));
    assert!(users("--input").iter().any(|c| c.starts_with("spikewatch-operator render")));
    assert!(users("--input").iter().filter(|c| c.starts_with("spikewatch ")).count() >= 4);
}

#[test]
fn environment_variables_are_prefixed() {
    let mut variables = BTreeSet::new();
    for (bin, command, help) in every_help() {
        for part in help.split("[env: ").skip(1) {
            let name = part.split(['=', ']']).next().unwrap().to_string();
            assert!(name.starts_with("SPIKEWATCH_"), "{bin} {command}: {name}");
            variables.insert(name);
        }
    }
    for expected in ["SPIKEWATCH_CONFIG", "SPIKEWATCH_LOG_FORMAT", "SPIKEWATCH_BIND", "SPIKEWATCH_WORKLOAD_IMAGE_TAG"] {
        assert!(variables.contains(expected), "{variables:?}");
    }
}

#[test]
fn conflicting_listen_flags_are_refused() {
    for args in [
        &["serve", "--port", "8000", "--bind", "127.0.0.1:9000"][..],
        &["run", "--serve", "--port", "8000", "--bind", "127.0.0.1:9000"][..],
    ] {
        let out = Command::new(spikewatch_bin()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("'--port <PORT>' cannot be used with '--bind <ADDR>'"), "{args:?}: {stderr}");
    }
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    for bin in [spikewatch_bin(), operator_bin()] {
        let long = output(&bin, &["--version"]);
        let short = output(&bin, &["-V"]);
        let (head, rest) = long.trim().split_once(" (commit ").unwrap_or_else(|| panic!("{long}"));
        assert_eq!(head, short.trim(), "the same version first");
        let (commit, date) = rest.trim_end_matches(')').split_once(", built ").unwrap_or_else(|| panic!("{long}"));
        assert!(!commit.is_empty() && commit.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{long}");
        assert_eq!(date.len(), 10, "{long}");
        assert_eq!(date.matches('-').count(), 2, "{long}");
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for bin in [spikewatch_bin(), operator_bin()] {
        let name = bin.file_name().unwrap().to_string_lossy().to_string();
        let bash = output(&bin, &["completions", "bash"]);
        let registration =
            bash.lines().map(str::trim).rev().find(|l| l.starts_with("complete -F ")).unwrap_or_default();
        assert!(registration.ends_with(&format!(" {name}")), "{name}: {registration:?}");
        let zsh = output(&bin, &["completions", "zsh"]);
        assert!(zsh.starts_with(&format!("#compdef {name}")), "{}", &zsh[..zsh.len().min(200)]);
        // Every subcommand is completed.
        for command in subcommands(&output(&bin, &["--help"])) {
            assert!(bash.contains(&command), "{name}: {command} missing from the bash completion");
        }
        let fish = output(&bin, &["completions", "fish"]);
        assert!(fish.contains(&format!("complete -c {name}")), "{name}");
    }
}

#[test]
fn a_manual_page_lists_every_subcommand() {
    for bin in [spikewatch_bin(), operator_bin()] {
        let name = bin.file_name().unwrap().to_string_lossy().to_string();
        let page = output(&bin, &["man"]);
        assert!(page.lines().any(|l| l.starts_with(&format!(".TH {name} 1 "))), "{}", &page[..page.len().min(300)]);
        let name_section = page.lines().skip_while(|l| *l != ".SH NAME").nth(1).unwrap_or_default();
        assert!(name_section.starts_with(&format!("{} \\- ", name.replace('-', "\\-"))), "{name_section:?}");
        for command in subcommands(&output(&bin, &["--help"])) {
            assert!(page.contains(&command), "{name}: {command} missing from the manual page");
        }
    }
}
