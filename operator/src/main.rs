//! `spikewatch-operator`: `run` reconciles pipelines, `crdgen` prints the CRD.

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
            print!("{}", spikewatch_operator::crdgen::crd_yaml());
            std::process::ExitCode::SUCCESS
        }
        Command::Run(args) => spikewatch_operator::run::main(args),
    }
}
