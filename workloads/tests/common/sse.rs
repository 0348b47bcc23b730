//! Reading Server-Sent Events (`/predictions/stream`) from a response body in tests.

use std::time::Duration;

use futures::StreamExt;

/// Upper bound on waiting for an event that must come; reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One SSE message: its `event:` name (None for a comment) and its `data:` or comment text.
#[derive(Debug, PartialEq)]
pub struct Message {
    pub event: Option<String>,
    pub text: String,
}

impl Message {
    /// The `data:` as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON: {self:?}: {e}"))
    }
}

/// Splits a byte stream into SSE messages.
pub struct Reader<S> {
    body: S,
    buffer: String,
}

impl<S, E> Reader<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    pub fn new(body: S) -> Self {
        Reader { body, buffer: String::new() }
    }

    /// The next message (a keep-alive comment too), or None when the stream ended.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message { event: None, text: String::new() };
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        message.event = Some(name.trim().to_string());
                    } else if let Some(data) = line.strip_prefix("data:") {
                        message.text.push_str(data.trim());
                    } else if let Some(comment) = line.strip_prefix(':') {
                        message.text.push_str(comment.trim());
                    }
                }
                return Some(message);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next()).await.expect("an SSE message in time")?;
            self.buffer.push_str(std::str::from_utf8(&chunk.expect("body chunk")).expect("UTF-8"));
        }
    }

    /// The next message that is not a keep-alive comment, or None when the stream ended
    /// (keep-alives do not extend the wait).
    pub async fn next_event(&mut self) -> Option<Message> {
        let wait = async {
            loop {
                let message = self.next().await?;
                if message.event.is_some() {
                    return Some(message);
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait).await.expect("an SSE event (or the end of the stream) in time")
    }
}
