//! In-process transport for `spikewatch run`: bounded tokio channels between stages.
//!
//! Bounded, so a slow stage slows its producer down (back-pressure) instead of growing memory,
//! the same behaviour the Kafka transport gives through consumer lag. A stage ends when its
//! input channel is closed and drained, so dropping the first sender shuts the whole chain down
//! in order.

use tokio::sync::mpsc;

/// Capacity of each link unless a stage asks for another.
pub const DEFAULT_CAPACITY: usize = 4096;

pub type LinkSender<T> = mpsc::Sender<T>;
pub type LinkReceiver<T> = mpsc::Receiver<T>;

/// A bounded channel carrying one stage's output to the next stage.
pub fn link<T>(capacity: usize) -> (LinkSender<T>, LinkReceiver<T>) {
    mpsc::channel(capacity.max(1))
}

/// Receives up to `max` values, waiting only for the first; empty when the link is closed and
/// drained (the upstream stage finished).
pub async fn recv_batch<T>(receiver: &mut LinkReceiver<T>, max: usize) -> Vec<T> {
    let mut batch = Vec::with_capacity(max.min(1024));
    receiver.recv_many(&mut batch, max.max(1)).await;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_drain_in_order_and_end_when_closed() {
        let (tx, mut rx) = link(8);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        assert_eq!(recv_batch(&mut rx, 3).await, vec![0, 1, 2]);
        assert_eq!(recv_batch(&mut rx, 3).await, vec![3, 4]);
        assert!(recv_batch(&mut rx, 3).await.is_empty());
    }

    #[tokio::test]
    async fn a_full_link_makes_the_sender_wait() {
        let (tx, mut rx) = link(1);
        tx.send(1).await.unwrap();
        assert!(tx.try_send(2).is_err(), "capacity 1 holds one value");
        assert_eq!(rx.recv().await, Some(1));
        assert!(tx.try_send(2).is_ok());
    }
}
