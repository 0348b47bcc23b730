use spikewatch::cli::{Cli, errors::error_line};
use spikewatch::telemetry::logging::{self, LogFormat};

fn main() -> std::process::ExitCode {
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let format = logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            report(format, &format!("cannot start the async runtime: {err}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli.run());
    // A blocking Kafka request still waiting for an unreachable broker does not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            report(format, &error_line(&err));
            match err.downcast_ref::<spikewatch::cli::drift::DriftAboveLimit>() {
                Some(_) => std::process::ExitCode::from(spikewatch::cli::drift::DriftAboveLimit::EXIT_STATUS),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

/// The one line of a failure: a log event where the logs are JSON (collected and parsed),
/// `error: ...` on a terminal.
fn report(format: LogFormat, line: &str) {
    match format {
        LogFormat::Json => tracing::error!("{line}"),
        LogFormat::Text => eprintln!("error: {line}"),
    }
}
