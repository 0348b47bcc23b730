//! A throwaway tansu broker for topic-management tests: started from `$TANSU_BIN` on a free
//! 127.0.0.1 port with in-memory storage, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    child: Child,
    pub addr: SocketAddr,
}

impl Broker {
    pub fn start() -> Broker {
        let bin = std::env::var("TANSU_BIN").unwrap_or_else(|_| {
            panic!("TANSU_BIN is not set: run `source scripts/env` first (it points at the tansu broker binary)")
        });
        assert!(
            std::path::Path::new(&bin).exists(),
            "TANSU_BIN={bin} does not exist: run scripts/setup, then `source scripts/env`"
        );
        // Reserve a free port, release it, and hand it to the broker.
        let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
        let url = format!("tcp://{addr}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let broker = Broker { child, addr };
        broker.wait_until_listening();
        broker
    }

    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    fn wait_until_listening(&self) {
        // A startup bound, not a timing assertion: tansu listens within milliseconds.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {} within 30 s", self.addr);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
