//! Running the real `spikewatch` binary from tests, with its output kept for failure messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The `spikewatch` binary built for this test run.
pub fn spikewatch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_spikewatch")
}

/// Writes `config` as YAML into `dir` and returns the file's path.
pub fn write_config(dir: &Path, config: &spikewatch::config::Config) -> PathBuf {
    let path = dir.join("spikewatch.yaml");
    std::fs::write(&path, serde_yaml::to_string(config).expect("config serializes")).expect("cannot write config file");
    path
}

/// A running `spikewatch` process whose stdout and stderr go to files in `dir`.
pub struct Spawned {
    pub child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Spawned {
    /// `spikewatch <args>`; `name` distinguishes the log files of several runs in one `dir`.
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Spawned {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(spikewatch_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", spikewatch_bin()));
        Spawned { child, stdout, stderr }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the exit and fails the test (with the process output) unless it succeeded.
    pub fn wait_success(&mut self) -> String {
        let status = self.child.wait().expect("wait failed");
        assert!(
            status.success(),
            "spikewatch exited with {status}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// SIGKILL: no shutdown handler runs, nothing is flushed or committed.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("cannot kill");
        let _ = self.child.wait();
    }

    /// SIGTERM (a Kubernetes pod stop) and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("cannot run kill");
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().expect("wait failed")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Never leave a process behind when a test fails half-way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
