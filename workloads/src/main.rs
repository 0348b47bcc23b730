use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = spikewatch::cli::Cli::parse();
    spikewatch::telemetry::logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            match err.downcast_ref::<spikewatch::cli::drift::DriftAboveLimit>() {
                Some(_) => std::process::ExitCode::from(spikewatch::cli::drift::DriftAboveLimit::EXIT_STATUS),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
