//! Optional NDJSON mirror of the raw WebSocket frames, for replay and forensics.
//!
//! One JSON object per line, read back by [`crate::sources::recording`]:
//! `{"received_at": "<RFC 3339>", "feed": "exchange"|"advanced_trade", "frame": "<raw frame text>"}`.
//! Files rotate when the next line would exceed `max_bytes` or the file is `max_age_secs` old
//! (by receive time). Writing happens on a blocking thread behind a bounded queue: a slow disk
//! drops mirror lines (counted) instead of stalling the feed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::MirrorConfig;
use crate::domain::Feed;
use crate::sources::metrics::IngestMetrics;

/// Frames waiting for the writer; beyond this the mirror drops.
const QUEUE: usize = 16 * 1024;

#[derive(Serialize)]
struct MirrorLine<'a> {
    received_at: String,
    feed: Feed,
    frame: &'a str,
}

/// The NDJSON line for one frame.
pub fn mirror_line(received_at: DateTime<Utc>, feed: Feed, frame: &str) -> String {
    let line = MirrorLine { received_at: received_at.to_rfc3339_opts(SecondsFormat::Micros, true), feed, frame };
    // Serializing a struct of strings cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

struct OpenFile {
    writer: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
    opened_at: DateTime<Utc>,
}

/// Synchronous, rotating writer (the clock is the frames' receive time, so it is testable).
pub struct MirrorWriter {
    dir: PathBuf,
    feed: Feed,
    max_bytes: u64,
    max_age: Duration,
    current: Option<OpenFile>,
    files_started: u64,
}

impl MirrorWriter {
    pub fn new(config: &MirrorConfig, feed: Feed) -> io::Result<MirrorWriter> {
        std::fs::create_dir_all(&config.dir)?;
        Ok(MirrorWriter {
            dir: PathBuf::from(&config.dir),
            feed,
            max_bytes: config.max_bytes.max(1),
            max_age: Duration::from_secs(config.max_age_secs.max(1)),
            current: None,
            files_started: 0,
        })
    }

    /// Appends one frame; returns whether a new file was started for it.
    pub fn write(&mut self, received_at: DateTime<Utc>, frame: &str) -> io::Result<bool> {
        let mut line = mirror_line(received_at, self.feed, frame);
        line.push('\n');
        let len = line.len() as u64;
        let rotate = match &self.current {
            None => true,
            Some(file) => {
                let age = (received_at - file.opened_at).to_std().unwrap_or_default();
                (file.bytes > 0 && file.bytes + len > self.max_bytes) || age >= self.max_age
            }
        };
        if rotate {
            self.rotate(received_at)?;
        }
        let file = self.current.as_mut().expect("rotate opened a file");
        if let Err(err) = file.writer.write_all(line.as_bytes()) {
            // Start afresh on the next frame rather than appending to a half-written line.
            self.current = None;
            return Err(err);
        }
        file.bytes += len;
        Ok(rotate)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(file) => file.writer.flush(),
            None => Ok(()),
        }
    }

    /// The file being written, if any.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|f| f.path.as_path())
    }

    fn rotate(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        if let Some(mut old) = self.current.take() {
            old.writer.flush()?;
        }
        self.files_started += 1;
        let feed = match self.feed {
            Feed::Exchange => "exchange",
            Feed::AdvancedTrade => "advanced_trade",
        };
        // Sortable names; the counter keeps names unique within one process and second.
        let name = format!("frames-{feed}-{}-{:04}.ndjson", now.format("%Y%m%dT%H%M%S%.3fZ"), self.files_started);
        let path = self.dir.join(name);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        tracing::info!(path = %path.display(), "mirror file started");
        self.current =
            Some(OpenFile { writer: BufWriter::with_capacity(64 * 1024, file), path, bytes: 0, opened_at: now });
        Ok(())
    }
}

/// Cheap, cloneable handle the feed client records frames through.
#[derive(Clone)]
pub struct MirrorHandle {
    tx: mpsc::Sender<(DateTime<Utc>, String)>,
    metrics: IngestMetrics,
}

impl MirrorHandle {
    /// Queues a frame; drops it (counted) when the writer is behind.
    pub fn record(&self, received_at: DateTime<Utc>, frame: &str) {
        if self.tx.try_send((received_at, frame.to_owned())).is_err() {
            self.metrics.mirror_frames_dropped.inc();
        }
    }
}

/// Starts the writer thread. It drains the queue and flushes when every handle is dropped:
/// await the returned task on shutdown.
pub fn spawn(
    config: &MirrorConfig,
    feed: Feed,
    metrics: IngestMetrics,
) -> io::Result<(MirrorHandle, tokio::task::JoinHandle<()>)> {
    let mut writer = MirrorWriter::new(config, feed)?;
    let (tx, mut rx) = mpsc::channel::<(DateTime<Utc>, String)>(QUEUE);
    let handle = MirrorHandle { tx, metrics: metrics.clone() };
    let task = tokio::task::spawn_blocking(move || {
        while let Some((received_at, frame)) = rx.blocking_recv() {
            match writer.write(received_at, &frame) {
                Ok(rotated) => {
                    metrics.mirror_frames_written.inc();
                    if rotated {
                        metrics.mirror_rotations.inc();
                    }
                }
                Err(err) => {
                    metrics.mirror_frames_dropped.inc();
                    tracing::warn!(%err, "mirror write failed");
                }
            }
            if rx.is_empty()
                && let Err(err) = writer.flush()
            {
                tracing::warn!(%err, "mirror flush failed");
            }
        }
        if let Err(err) = writer.flush() {
            tracing::warn!(%err, "mirror flush failed");
        }
    });
    Ok((handle, task))
}
