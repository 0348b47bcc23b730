//! `spikewatch run --live` against a WebSocket server inside the test that speaks the Coinbase
//! Exchange protocol with frames from the shared recording; Ctrl-C ends the run with totals.

mod common;

use futures::{SinkExt, StreamExt};
use spikewatch::config::Config;
use spikewatch::domain::Feed;
use spikewatch::features::offline::build_rows;
use spikewatch::sources::recording::RecordingReader;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// The first `lines` lines of the Exchange recording: their raw frames and the same lines as a
/// recording (for the offline count).
fn recorded_frames(lines: usize) -> (Vec<String>, String) {
    let text = std::fs::read_to_string(common::recording(common::EXCHANGE_RECORDING)).unwrap();
    let head: Vec<&str> = text.lines().take(lines).collect();
    let frames = head
        .iter()
        .map(|line| {
            let wrapper: serde_json::Value = serde_json::from_str(line).unwrap();
            wrapper["raw"].as_str().unwrap().to_string()
        })
        .collect();
    (frames, head.join("\n") + "\n")
}

/// Accepts one connection, waits for the subscribe message, sends `frames`, then stays open
/// until the client leaves.
async fn serve_exchange_feed(listener: TcpListener, frames: Vec<String>) {
    let (stream, _) = listener.accept().await.unwrap();
    let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
    let subscribe = socket.next().await.expect("subscribe message").unwrap();
    let subscribe: serde_json::Value = serde_json::from_str(subscribe.to_text().unwrap()).unwrap();
    assert_eq!(subscribe["type"], "subscribe", "{subscribe}");
    for frame in frames {
        socket.send(Message::text(frame)).await.unwrap();
    }
    while let Some(Ok(_)) = socket.next().await {}
}

#[tokio::test(flavor = "multi_thread")]
async fn run_live_featurizes_the_feed_until_ctrl_c() {
    let (frames, recording) = recorded_frames(400);
    let ticks: Vec<_> = RecordingReader::new(recording.as_bytes()).filter_map(Result::ok).collect();
    let offline = build_rows(&ticks, &Config::default().features);
    assert!(ticks.len() > 300);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(serve_exchange_feed(listener, frames));

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.feed.kind = Feed::Exchange;
    config.feed.url = Some(url);
    config.feed.products = vec!["BTC-USD".into()];
    let config_path = common::process::write_config(dir.path(), &config);
    let mut run = common::process::Spawned::start(
        dir.path(),
        "run-live",
        &["--config", config_path.to_str().unwrap(), "run", "--live", "--summary-interval", "0.2"],
    );

    let expected_ticks = format!("ticks={} ", ticks.len());
    let progress = tokio::task::spawn_blocking(move || {
        let line = run.wait_for_stdout_line(|line| line.contains(&expected_ticks));
        (run, line)
    })
    .await
    .unwrap();
    let (mut run, line) = progress;
    assert!(line.contains("BTC-USD price="), "live values per product: {line}");

    let status = run.interrupt();
    assert!(status.success(), "Ctrl-C is a clean stop: {status}\n{}", run.stderr());
    let stdout = run.stdout();
    let totals = stdout.lines().rev().find(|l| l.starts_with("totals:")).expect("totals line");
    assert!(totals.contains(&format!("ticks={} ", ticks.len())), "{totals}");
    assert!(totals.contains(&format!("features={} ", offline.len())), "{totals}");
    server.abort();
}
