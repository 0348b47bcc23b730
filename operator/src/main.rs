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
    Run,
}

fn main() {
    match Cli::parse().command {
        Command::Crdgen => print!("{}", spikewatch_operator::crdgen::crd_yaml()),
        Command::Run => {
            eprintln!("spikewatch-operator run: not implemented yet");
            std::process::exit(1);
        }
    }
}
