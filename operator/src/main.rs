//! `spikewatch-operator`: `run` reconciles pipelines, `crdgen` prints the CRD, `render` prints
//! what the operator would apply for a pipeline.

use std::io::Write;
use std::sync::LazyLock;

use clap::{CommandFactory, Parser, Subcommand};

/// `--version`: the version, the commit and the build date.
static LONG_VERSION: LazyLock<String> =
    LazyLock::new(|| spikewatch_types::build_info::long_version(env!("CARGO_PKG_VERSION")));

#[derive(Parser)]
#[command(
    name = "spikewatch-operator",
    version,
    long_version = LONG_VERSION.as_str(),
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
    /// Print, as YAML, every object the operator would apply for a pipeline (no cluster needed),
    /// after checking it as the API server would (the CRD's schema and validation rules).
    Render(spikewatch_operator::render::RenderArgs),
    /// Print a shell completion script (e.g. `spikewatch-operator completions zsh > _spikewatch-operator`).
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `spikewatch-operator man > spikewatch-operator.1`).
    Man,
}

/// Writes to stdout; a closed pipe (`... | head`) is an error, not a panic.
fn print(what: &str, text: &[u8]) -> std::process::ExitCode {
    match std::io::stdout().write_all(text) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spikewatch-operator {what}: cannot write the output: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Crdgen => print("crdgen", spikewatch_operator::crdgen::crd_yaml().as_bytes()),
        Command::Run(args) => spikewatch_operator::run::main(args),
        Command::Render(args) => match spikewatch_operator::render::render(&args) {
            Ok(yaml) => print("render", yaml.as_bytes()),
            Err(e) => {
                eprintln!("spikewatch-operator render: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "spikewatch-operator", &mut script);
            print("completions", &script)
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => print("man", &page),
                Err(e) => {
                    eprintln!("spikewatch-operator man: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
