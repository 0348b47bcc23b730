//! Several recordings replayed as one market: a k-way merge of their ticks by exchange time.
//!
//! One day's BTC-USD, ETH-USD and SOL-USD files are three views of the same hours; played one
//! after the other, the second would start in the first one's past and a consumer would see
//! time jump back. [`MergedTicks`] yields the next tick of whichever input has the earliest
//! one (ties: the earlier input first), so the output is ordered by exchange time whenever each
//! input is, and each input's own order is always kept. Memory: one pending tick per input.
//!
//! Items that are not ticks (a malformed line) have no time: they are yielded as soon as they
//! are read, tagged, like the ticks, with the index of their input.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use chrono::{DateTime, Utc};

use crate::domain::Tick;

/// The merged items of several inputs, each tagged with its input's index.
pub struct MergedTicks<I, E> {
    inputs: Vec<I>,
    /// The next tick of each input that has one.
    pending: Vec<Option<Tick>>,
    /// `(exchange time, input)` of the pending ticks, earliest first.
    order: BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
    /// Errors met while looking for an input's next tick, yielded before the next tick.
    errors: VecDeque<(usize, E)>,
}

impl<I, E> MergedTicks<I, E>
where
    I: Iterator<Item = Result<Tick, E>>,
{
    pub fn new(inputs: Vec<I>) -> Self {
        let n = inputs.len();
        let mut merged = MergedTicks {
            inputs,
            pending: vec![None; n],
            order: BinaryHeap::with_capacity(n),
            errors: VecDeque::new(),
        };
        for input in 0..n {
            merged.advance(input);
        }
        merged
    }

    /// The inputs, for what they counted while being read.
    pub fn inputs(&self) -> &[I] {
        &self.inputs
    }

    /// Reads `input` up to its next tick (queueing the errors on the way), if it has one.
    fn advance(&mut self, input: usize) {
        for item in self.inputs[input].by_ref() {
            match item {
                Ok(tick) => {
                    self.order.push(Reverse((tick.exchange_time, input)));
                    self.pending[input] = Some(tick);
                    return;
                }
                Err(err) => self.errors.push_back((input, err)),
            }
        }
    }
}

impl<I, E> Iterator for MergedTicks<I, E>
where
    I: Iterator<Item = Result<Tick, E>>,
{
    type Item = (usize, Result<Tick, E>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((input, err)) = self.errors.pop_front() {
            return Some((input, Err(err)));
        }
        let Reverse((_, input)) = self.order.pop()?;
        let tick = self.pending[input].take()?;
        self.advance(input);
        Some((input, Ok(tick)))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::Feed;

    fn tick(product: &str, second: i64) -> Tick {
        let time = Utc.timestamp_opt(1_764_000_000 + second, 0).unwrap();
        Tick {
            schema: 1,
            product_id: product.into(),
            exchange_time: time,
            receive_time: time,
            price: 100.0,
            best_bid: 99.0,
            best_ask: 101.0,
            best_bid_size: None,
            best_ask_size: None,
            last_size: None,
            side: None,
            trade_id: None,
            sequence: None,
            source: Feed::Exchange,
        }
    }

    fn input(product: &str, seconds: &[i64]) -> std::vec::IntoIter<Result<Tick, String>> {
        seconds.iter().map(|&s| Ok(tick(product, s))).collect::<Vec<_>>().into_iter()
    }

    fn labels(merged: MergedTicks<std::vec::IntoIter<Result<Tick, String>>, String>) -> Vec<String> {
        merged
            .map(|(i, item)| match item {
                Ok(t) => format!("{i}:{}@{}", t.product_id, t.exchange_time.timestamp() - 1_764_000_000),
                Err(e) => format!("{i}:error {e}"),
            })
            .collect()
    }

    #[test]
    fn inputs_interleave_by_exchange_time_ties_to_the_earlier_input() {
        let merged = MergedTicks::new(vec![
            input("BTC-USD", &[0, 2, 4, 4]),
            input("ETH-USD", &[1, 4, 5]),
            input("SOL-USD", &[]),
        ]);
        assert_eq!(
            labels(merged),
            ["0:BTC-USD@0", "1:ETH-USD@1", "0:BTC-USD@2", "0:BTC-USD@4", "0:BTC-USD@4", "1:ETH-USD@4", "1:ETH-USD@5"]
        );
    }

    #[test]
    fn errors_come_when_read_and_each_inputs_order_is_kept() {
        let first = vec![Ok(tick("A", 3)), Err("bad line".to_string()), Ok(tick("A", 1))].into_iter();
        let merged = MergedTicks::new(vec![first, input("B", &[2])]);
        // A@1 after A@3: an input out of order stays as recorded (the feature engine judges it).
        assert_eq!(labels(merged), ["1:B@2", "0:A@3", "0:error bad line", "0:A@1"]);
    }

    #[test]
    fn one_input_is_replayed_as_is() {
        assert_eq!(labels(MergedTicks::new(vec![input("A", &[5, 1, 3])])), ["0:A@5", "0:A@1", "0:A@3"]);
    }
}
