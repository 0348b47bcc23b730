//! `spikewatch-operator`: `run` reconciles pipelines, `crdgen` prints the CRD, `render` prints
//! what the operator would apply for a pipeline.

use std::io::Write;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "spikewatch-operator", version, about = "Kubernetes operator for spikewatch pipelines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the VolatilityPipeline CustomResourceDefinition as YAML.
    Crdgen,
    /// Run the operator against the cluster of the current kubeconfig or service account.
    Run(spikewatch_operator::run::RunArgs),
    /// Print, as YAML, every object the operator would apply for a pipeline (no cluster needed).
    Render(spikewatch_operator::render::RenderArgs),
}

/// Writes to stdout; a closed pipe (`... | head`) is an error, not a panic.
fn print(what: &str, text: &str) -> std::process::ExitCode {
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spikewatch-operator {what}: cannot write the output: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Crdgen => print("crdgen", &spikewatch_operator::crdgen::crd_yaml()),
        Command::Run(args) => spikewatch_operator::run::main(args),
        Command::Render(args) => match spikewatch_operator::render::render(&args) {
            Ok(yaml) => print("render", &yaml),
            Err(e) => {
                eprintln!("spikewatch-operator render: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
