//! `spikewatch-operator`: `run` reconciles pipelines, `crdgen` prints the CRD.

use std::io::Write;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "spikewatch-operator",
    version,
    about = "Kubernetes operator for spikewatch pipelines"
)]
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
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Crdgen => {
            // `write_all` rather than `print!`: a closed pipe (`crdgen | head`) is an error, not a panic.
            let yaml = spikewatch_operator::crdgen::crd_yaml();
            match std::io::stdout().write_all(yaml.as_bytes()) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("spikewatch-operator crdgen: cannot write the CRD: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => spikewatch_operator::run::main(args),
    }
}
