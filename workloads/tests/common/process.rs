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
        Spawned::start_with_env(dir, name, args, &[])
    }

    /// [`Spawned::start`] with environment variables `env` set on top of the test's.
    pub fn start_with_env(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(spikewatch_bin())
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("SPIKEWATCH_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", spikewatch_bin()));
        Spawned { child, stdout, stderr }
    }

    /// The address of the process's `/metrics` endpoint, from its `addr` log field (the config
    /// binds port 0). Waits for the log line; panics if the process exits first.
    pub fn metrics_addr(&mut self) -> std::net::SocketAddr {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let found = self.stderr().lines().find_map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).ok()?;
                event.get("addr")?.as_str()?.parse().ok()
            });
            if let Some(addr) = found {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("spikewatch exited ({status}) before serving metrics:\n{}", self.stderr());
            }
            assert!(std::time::Instant::now() < deadline, "no metrics address logged:\n{}", self.stderr());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
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

    /// SIGSTOP: the process is frozen (its sockets stay open) until [`Spawned::resume`].
    pub fn pause(&mut self) {
        self.send("-STOP");
    }

    /// SIGCONT after [`Spawned::pause`].
    pub fn resume(&mut self) {
        self.send("-CONT");
    }

    fn send(&mut self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, pid.as_str()]).status().expect("cannot run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// SIGTERM (a Kubernetes pod stop) and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM")
    }

    /// SIGINT (Ctrl-C) and wait for the exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.signal("-INT")
    }

    fn signal(&mut self, signal: &str) -> ExitStatus {
        self.send(signal);
        self.child.wait().expect("wait failed")
    }

    /// Polls the log (stderr) until a line contains `message` as a log message; panics if the
    /// process exits first.
    pub fn wait_for_stderr(&mut self, message: &str) {
        let quoted = format!("\"{message}\"");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !self.stderr().lines().any(|line| line.contains(&quoted)) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("spikewatch exited ({status}):\nstderr:\n{}", self.stderr());
            }
            assert!(std::time::Instant::now() < deadline, "{message:?} never logged:\n{}", self.stderr());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Polls stdout until a line satisfies `matches`; panics if the process exits first.
    pub fn wait_for_stdout_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(line) = self.stdout().lines().find(|line| matches(line)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("spikewatch exited ({status}):\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
            }
            assert!(std::time::Instant::now() < deadline, "expected line never printed:\n{}", self.stdout());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Never leave a process behind when a test fails half-way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over plain HTTP/1.1; returns (status code, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("cannot connect to the metrics endpoint");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("HTTP status line");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
