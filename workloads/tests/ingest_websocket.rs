//! The live client against a WebSocket server inside the test that speaks each Coinbase
//! protocol: subscribe handshake, tickers from the shared recordings, heartbeats, and
//! connections that drop mid-stream or go silent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prometheus::Registry;
use serde_json::{Value, json};
use spikewatch::domain::{Feed, Tick};
use spikewatch::sources::metrics::IngestMetrics;
use spikewatch::sources::websocket::{ClientConfig, FeedClient, subscribe_messages};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const EXCHANGE_FIXTURE: &str = include_str!("fixtures/exchange-ticker-btcusd-head40.ndjson");
const ADVANCED_TRADE_FIXTURE: &str = include_str!("fixtures/advanced-trade-ticker-btcusd-head40.ndjson");

/// Generous bound on a whole scenario: exceeding it fails the test (no timing is asserted).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// What identifies a ticker on the wire: Exchange `trade_id`, Advanced Trade (`sequence_num`, product).
type Key = (u64, String);

fn tick_key(feed: Feed, tick: &Tick) -> Key {
    match feed {
        Feed::Exchange => (tick.trade_id.expect("exchange ticks carry a trade id"), tick.product_id.clone()),
        Feed::AdvancedTrade => {
            (tick.sequence.expect("advanced trade ticks carry sequence_num"), tick.product_id.clone())
        }
    }
}

/// One frame the server sends, and the tickers it carries.
#[derive(Clone)]
struct Outgoing {
    text: String,
    keys: Vec<Key>,
}

/// How a connection ends once its frames are sent.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ending {
    /// Drop the TCP connection without a closing handshake.
    Drop,
    /// Keep the socket open and send nothing: the client's watchdog must notice.
    Silent,
    /// Keep sending heartbeats until the client goes away.
    StayUp,
}

#[derive(Default, Debug)]
struct ConnectionLog {
    subscribe: Vec<Value>,
    sent_keys: Vec<Key>,
}

/// Per-connection frame builder: numbers Advanced Trade messages from 0 on every connection.
struct Builder {
    feed: Feed,
    next_sequence_num: u64,
}

impl Builder {
    fn new(feed: Feed) -> Builder {
        Builder { feed, next_sequence_num: 0 }
    }

    fn envelope(&mut self, channel: &str, events: Value) -> (String, u64) {
        let seq = self.next_sequence_num;
        self.next_sequence_num += 1;
        let frame = json!({"channel": channel, "client_id": "", "timestamp": "2025-11-08T15:12:31.5Z",
                           "sequence_num": seq, "events": events});
        (frame.to_string(), seq)
    }

    fn ack(&mut self, products: &[String]) -> Outgoing {
        let text = match self.feed {
            Feed::Exchange => json!({"type": "subscriptions", "channels": [
                {"name": "ticker", "product_ids": products}, {"name": "heartbeat", "product_ids": products}]})
            .to_string(),
            Feed::AdvancedTrade => {
                self.envelope(
                    "subscriptions",
                    json!([{"subscriptions": {"ticker": products, "heartbeats": ["heartbeats"]}}]),
                )
                .0
            }
        };
        Outgoing { text, keys: vec![] }
    }

    fn heartbeat(&mut self) -> Outgoing {
        let text = match self.feed {
            Feed::Exchange => json!({"type": "heartbeat", "sequence": 1, "last_trade_id": 1, "product_id": "BTC-USD",
                                     "time": "2025-11-12T07:20:11.615272Z"})
            .to_string(),
            Feed::AdvancedTrade => {
                self.envelope("heartbeats", json!([{"current_time": "2025-11-08 15:12:31", "heartbeat_counter": 1}])).0
            }
        };
        Outgoing { text, keys: vec![] }
    }

    /// A ticker frame from fixture line `record`.
    fn ticker(&mut self, record: &Value) -> Outgoing {
        match self.feed {
            Feed::Exchange => {
                let text = record["raw"].as_str().unwrap().to_owned();
                let raw: Value = serde_json::from_str(&text).unwrap();
                let key = (raw["trade_id"].as_u64().unwrap(), raw["product_id"].as_str().unwrap().to_owned());
                Outgoing { text, keys: vec![key] }
            }
            Feed::AdvancedTrade => {
                let ticker = record["raw"].clone();
                let product = ticker["product_id"].as_str().unwrap().to_owned();
                let (text, seq) = self.envelope("ticker", json!([{"type": "update", "tickers": [ticker]}]));
                Outgoing { text, keys: vec![(seq, product)] }
            }
        }
    }

    /// Skips sequence numbers (Advanced Trade) — Exchange gaps are made by skipping a ticker.
    fn skip_sequence_nums(&mut self, n: u64) {
        self.next_sequence_num += n;
    }
}

fn fixture_tickers(feed: Feed) -> Vec<Value> {
    let text = match feed {
        Feed::Exchange => EXCHANGE_FIXTURE,
        Feed::AdvancedTrade => ADVANCED_TRADE_FIXTURE,
    };
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| match feed {
            Feed::Exchange => record["raw"].as_str().unwrap().contains("\"type\":\"ticker\""),
            Feed::AdvancedTrade => true,
        })
        .collect()
}

/// The fake Coinbase server: serves `script[i]` to the i-th connection, then keeps any extra
/// connection up with heartbeats only (so a spurious reconnect cannot invent tickers).
struct FakeCoinbase {
    url: String,
    log: Arc<Mutex<Vec<ConnectionLog>>>,
}

/// The frames and ending of one scripted connection.
type Script = Box<dyn FnOnce(&mut Builder) -> (Vec<Outgoing>, Ending) + Send>;

impl FakeCoinbase {
    async fn start(feed: Feed, products: Vec<String>, script: Vec<Script>) -> FakeCoinbase {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let server_log = log.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut builder = Builder::new(feed);
                let scripted = script.next();
                let log = server_log.clone();
                let products = products.clone();
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(ConnectionLog::default());
                    log.len() - 1
                };
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                    // The handshake: as many subscribe messages as the protocol needs, nothing sent before.
                    let expected = subscribe_messages(feed, &products).len();
                    while log.lock().unwrap()[index].subscribe.len() < expected {
                        let Some(Ok(Message::Text(text))) = ws.next().await else { return };
                        log.lock().unwrap()[index].subscribe.push(serde_json::from_str(&text).unwrap());
                    }
                    let ack = builder.ack(&products);
                    let (frames, ending) = match scripted {
                        Some(script) => script(&mut builder),
                        None => (vec![], Ending::StayUp),
                    };
                    for frame in std::iter::once(ack).chain(frames) {
                        if ws.send(Message::text(frame.text)).await.is_err() {
                            return;
                        }
                        log.lock().unwrap()[index].sent_keys.extend(frame.keys);
                    }
                    match ending {
                        Ending::Drop => drop(ws),
                        Ending::Silent => {
                            // Hold the socket, read (and ignore) whatever arrives, never write.
                            while let Some(Ok(_)) = ws.next().await {}
                        }
                        Ending::StayUp => loop {
                            tokio::select! {
                                incoming = ws.next() => if !matches!(incoming, Some(Ok(_))) { return },
                                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                                    if ws.send(Message::text(builder.heartbeat().text)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        },
                    }
                });
            }
        });
        FakeCoinbase { url, log }
    }

    fn connections(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn sent_keys(&self) -> Vec<Key> {
        self.log.lock().unwrap().iter().flat_map(|c| c.sent_keys.clone()).collect()
    }
}

struct Run {
    ticks: Vec<Tick>,
    metrics: IngestMetrics,
    registry: Registry,
}

/// Runs the client until it has delivered `expected` ticks, then cancels it and checks that
/// it returns.
async fn run_client(feed: Feed, url: &str, products: &[String], heartbeat: Duration, expected: usize) -> Run {
    let registry = Registry::new();
    let metrics = IngestMetrics::register(&registry).unwrap();
    let config = ClientConfig {
        feed,
        url: url.to_owned(),
        products: products.to_vec(),
        heartbeat_timeout: heartbeat,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        max_frame_bytes: 1024 * 1024,
    };
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(FeedClient::new(config, metrics.clone()).run(tx, shutdown.clone()));
    let mut ticks = Vec::new();
    let collect = async {
        while ticks.len() < expected {
            match rx.recv().await {
                Some(tick) => ticks.push(tick),
                None => break,
            }
        }
    };
    tokio::time::timeout(SCENARIO_TIMEOUT, collect)
        .await
        .unwrap_or_else(|_| panic!("only {} of {expected} ticks arrived in time", ticks.len()));
    // Nothing beyond what was sent arrives (the last connection keeps sending heartbeats).
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(tick) = rx.try_recv() {
        ticks.push(tick);
    }
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), client).await.expect("client stops on cancellation");
    result.unwrap().expect("client ends cleanly");
    Run { ticks, metrics, registry }
}

fn products() -> Vec<String> {
    vec!["BTC-USD".to_owned(), "ETH-USD".to_owned()]
}

fn assert_subscribed_every_time(server: &FakeCoinbase, feed: Feed) {
    let expected: Vec<Value> =
        subscribe_messages(feed, &products()).iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    for (i, conn) in server.log.lock().unwrap().iter().enumerate() {
        assert_eq!(conn.subscribe, expected, "subscribe messages of connection {i}");
    }
}

fn assert_exactly_once(feed: Feed, server: &FakeCoinbase, run: &Run) {
    let received: Vec<Key> = run.ticks.iter().map(|t| tick_key(feed, t)).collect();
    assert_eq!(received, server.sent_keys(), "every ticker sent after a subscription, once, in order");
    assert!(run.ticks.iter().all(|t| t.source == feed));
}

fn counter(vec: &prometheus::IntCounterVec, label: &str) -> u64 {
    vec.with_label_values(&[label]).get()
}

#[test]
fn subscribe_messages_follow_each_protocol() {
    let products = products();
    let at: Vec<Value> =
        subscribe_messages(Feed::AdvancedTrade, &products).iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    assert_eq!(
        at,
        vec![
            json!({"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "ticker"}),
            json!({"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "market_trades"}),
            json!({"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "heartbeats"}),
        ]
    );
    let ex: Vec<Value> =
        subscribe_messages(Feed::Exchange, &products).iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    assert_eq!(
        ex,
        vec![json!({"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channels": ["ticker", "heartbeat"]})]
    );
}

/// Exchange: connection 1 drops mid-stream; connection 2 skips one trade (a gap) and carries
/// malformed frames, a 10 MB one among them; connection 3 stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_reconnects_after_a_drop_and_counts_gaps_and_bad_frames() {
    let feed = Feed::Exchange;
    let tickers = fixture_tickers(feed);
    assert_eq!(tickers.len(), 40);
    let (t1, t2, t3) = (tickers[..12].to_vec(), tickers[12..25].to_vec(), tickers[25..].to_vec());
    let script: Vec<Script> = vec![
        Box::new(move |b: &mut Builder| {
            let mut frames = Vec::new();
            for (i, t) in t1.iter().enumerate() {
                frames.push(b.ticker(t));
                if i % 4 == 3 {
                    frames.push(b.heartbeat());
                }
            }
            (frames, Ending::Drop)
        }),
        Box::new(move |b: &mut Builder| {
            let bad = |text: String| Outgoing { text, keys: vec![] };
            let mut frames = vec![
                bad("{not json".into()),
                bad(r#"{"type":"ticker","product_id":"BTC-USD","price":"NaN","best_bid":"1","best_ask":"2","time":"2025-11-12T07:20:11Z"}"#.into()),
                bad(format!("{{\"type\":\"ticker\",\"pad\":\"{}\"}}", "x".repeat(10 * 1024 * 1024))),
                bad(r#"{"type":"mystery"}"#.into()),
            ];
            for (i, t) in t2.iter().enumerate() {
                if i == 5 {
                    continue; // the gap: one trade never sent
                }
                frames.push(b.ticker(t));
            }
            (frames, Ending::Drop)
        }),
        Box::new(move |b: &mut Builder| (t3.iter().map(|t| b.ticker(t)).collect(), Ending::StayUp)),
    ];
    let server = FakeCoinbase::start(feed, products(), script).await;
    let run = run_client(feed, &server.url, &products(), Duration::from_secs(30), 39).await;

    assert_exactly_once(feed, &server, &run);
    assert_eq!(run.ticks.len(), 39);
    assert!(server.connections() >= 3, "reconnected after each drop");
    assert_subscribed_every_time(&server, feed);
    let m = &run.metrics;
    assert_eq!(m.connections.get(), server.connections() as u64);
    assert!(m.reconnects.get() >= 2);
    assert_eq!(counter(&m.sequence_gaps, "BTC-USD"), 1);
    assert_eq!(counter(&m.missed_messages, "BTC-USD"), 1);
    for kind in ["invalid_json", "non_finite", "oversized", "unknown_type"] {
        assert_eq!(counter(&m.parse_errors, kind), 1, "{kind}");
    }
    assert_eq!(counter(&m.ticks_published, "BTC-USD"), 39);
    assert!(counter(&m.frames_skipped, "heartbeat") >= 3);
    let text = spikewatch::telemetry::server::render(&run.registry);
    assert!(text.contains("spikewatch_ingest_sequence_gaps_total{product=\"BTC-USD\"} 1"), "{text}");
    assert!(text.contains("spikewatch_ingest_parse_errors_total{kind=\"oversized\"} 1"));
}

/// Advanced Trade: connection 1 goes silent (the watchdog must fire), connection 2 drops after
/// a sequence_num gap, connection 3 stays up. sequence_num restarts on every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_trade_watchdog_reconnects_a_silent_feed_and_counts_gaps() {
    let feed = Feed::AdvancedTrade;
    let tickers = fixture_tickers(feed);
    assert_eq!(tickers.len(), 40);
    let (t1, t2, t3) = (tickers[..10].to_vec(), tickers[10..30].to_vec(), tickers[30..].to_vec());
    let script: Vec<Script> = vec![
        Box::new(move |b: &mut Builder| {
            let mut frames = vec![b.heartbeat()];
            frames.extend(t1.iter().map(|t| b.ticker(t)));
            (frames, Ending::Silent)
        }),
        Box::new(move |b: &mut Builder| {
            let mut frames = Vec::new();
            for (i, t) in t2.iter().enumerate() {
                if i == 7 {
                    b.skip_sequence_nums(3);
                }
                frames.push(b.ticker(t));
                if i % 5 == 4 {
                    frames.push(b.heartbeat());
                }
            }
            (frames, Ending::Drop)
        }),
        Box::new(move |b: &mut Builder| (t3.iter().map(|t| b.ticker(t)).collect(), Ending::StayUp)),
    ];
    let server = FakeCoinbase::start(feed, products(), script).await;
    let run = run_client(feed, &server.url, &products(), Duration::from_secs(1), 40).await;

    assert_exactly_once(feed, &server, &run);
    assert_eq!(run.ticks.len(), 40);
    assert!(server.connections() >= 3);
    assert_subscribed_every_time(&server, feed);
    let m = &run.metrics;
    assert!(m.watchdog_timeouts.get() >= 1, "the silent connection was detected");
    assert!(m.reconnects.get() >= 2);
    // One gap on connection 2; the restart of sequence_num on a new connection is not a gap.
    assert_eq!(counter(&m.sequence_gaps, "connection"), 1);
    assert_eq!(counter(&m.missed_messages, "connection"), 3);
    assert_eq!(m.parse_errors.with_label_values(&["invalid_json"]).get(), 0);
    // The message timestamp is the exchange time of Advanced Trade ticks.
    let ts = "2025-11-08T15:12:31.5Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert!(run.ticks.iter().all(|t| t.exchange_time == ts));
}

#[tokio::test]
async fn a_client_without_products_or_with_a_bad_url_refuses_to_start() {
    let metrics = IngestMetrics::new().unwrap();
    let config = ClientConfig {
        feed: Feed::Exchange,
        url: "http://example.invalid".into(),
        products: vec!["BTC-USD".into()],
        heartbeat_timeout: Duration::from_secs(1),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        max_frame_bytes: 1024,
    };
    let (tx, _rx) = mpsc::channel(1);
    let err = FeedClient::new(config.clone(), metrics.clone()).run(tx.clone(), CancellationToken::new()).await;
    assert!(err.unwrap_err().to_string().contains("scheme"));
    let config = ClientConfig { products: vec![], url: "ws://127.0.0.1:1".into(), ..config };
    let err = FeedClient::new(config, metrics).run(tx, CancellationToken::new()).await;
    assert!(err.unwrap_err().to_string().contains("no products"));
}
