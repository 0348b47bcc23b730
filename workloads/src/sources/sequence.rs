//! Sequence-gap detection, a pure state machine fed by the WebSocket client.
//!
//! - Exchange: the ticker channel's `sequence` is the product's full-feed sequence, which
//!   advances on every order-book event, so consecutive tickers are never adjacent in it. What
//!   IS contiguous on the ticker channel is `trade_id` (one ticker per match), so a jump in
//!   `trade_id` is a gap, and a `sequence` that does not increase is a duplicate or reordering.
//!   State survives reconnects: tickers missed while disconnected show up as a gap.
//! - Advanced Trade: `sequence_num` numbers every message on a connection (heartbeats too);
//!   the tracker is reset on each new connection.

use std::collections::HashMap;

use crate::domain::Tick;

/// What one observation means for the stream's continuity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// First message seen (for this product / connection).
    First,
    InOrder,
    /// `missed` messages were skipped before this one.
    Gap {
        missed: u64,
    },
    /// The sequence did not advance: a duplicate or a reordered message.
    OutOfOrder,
}

#[derive(Debug, Default)]
pub struct ExchangeSequences {
    last: HashMap<String, (Option<u64>, Option<u64>)>,
}

impl ExchangeSequences {
    pub fn observe(&mut self, tick: &Tick) -> Continuity {
        let entry = self.last.get(tick.product_id.as_str()).copied();
        let Some((last_trade, last_seq)) = entry else {
            self.last.insert(tick.product_id.clone(), (tick.trade_id, tick.sequence));
            return Continuity::First;
        };
        if let (Some(prev), Some(seq)) = (last_seq, tick.sequence)
            && seq <= prev
        {
            return Continuity::OutOfOrder;
        }
        let continuity = match (last_trade, tick.trade_id) {
            (Some(prev), Some(id)) if id <= prev => return Continuity::OutOfOrder,
            (Some(prev), Some(id)) if id > prev + 1 => Continuity::Gap { missed: id - prev - 1 },
            _ => Continuity::InOrder,
        };
        self.last.insert(tick.product_id.clone(), (tick.trade_id.or(last_trade), tick.sequence.or(last_seq)));
        continuity
    }
}

#[derive(Debug, Default)]
pub struct ConnectionSequence {
    last: Option<u64>,
}

impl ConnectionSequence {
    pub fn reset(&mut self) {
        self.last = None;
    }

    pub fn observe(&mut self, sequence_num: u64) -> Continuity {
        let continuity = match self.last {
            None => Continuity::First,
            Some(prev) if sequence_num <= prev => return Continuity::OutOfOrder,
            Some(prev) if sequence_num == prev + 1 => Continuity::InOrder,
            Some(prev) => Continuity::Gap { missed: sequence_num - prev - 1 },
        };
        self.last = Some(sequence_num);
        continuity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Feed, TICK_SCHEMA};

    fn tick(product: &str, trade_id: u64, sequence: u64) -> Tick {
        Tick {
            schema: TICK_SCHEMA,
            product_id: product.into(),
            exchange_time: chrono::DateTime::UNIX_EPOCH,
            receive_time: chrono::DateTime::UNIX_EPOCH,
            price: 1.0,
            best_bid: 1.0,
            best_ask: 1.0,
            best_bid_size: None,
            best_ask_size: None,
            last_size: None,
            side: None,
            trade_id: Some(trade_id),
            sequence: Some(sequence),
            source: Feed::Exchange,
        }
    }

    #[test]
    fn exchange_gaps_are_trade_id_jumps_per_product() {
        let mut s = ExchangeSequences::default();
        assert_eq!(s.observe(&tick("BTC-USD", 10, 1000)), Continuity::First);
        assert_eq!(s.observe(&tick("ETH-USD", 500, 7)), Continuity::First);
        assert_eq!(s.observe(&tick("BTC-USD", 11, 1750)), Continuity::InOrder, "sequence jumps are normal");
        assert_eq!(s.observe(&tick("BTC-USD", 14, 1900)), Continuity::Gap { missed: 2 });
        assert_eq!(s.observe(&tick("BTC-USD", 14, 1900)), Continuity::OutOfOrder);
        assert_eq!(s.observe(&tick("BTC-USD", 13, 1800)), Continuity::OutOfOrder);
        assert_eq!(s.observe(&tick("BTC-USD", 15, 1950)), Continuity::InOrder);
        assert_eq!(s.observe(&tick("ETH-USD", 501, 9)), Continuity::InOrder);
    }

    #[test]
    fn connection_sequence_counts_missing_numbers_and_resets() {
        let mut s = ConnectionSequence::default();
        assert_eq!(s.observe(0), Continuity::First);
        assert_eq!(s.observe(1), Continuity::InOrder);
        assert_eq!(s.observe(5), Continuity::Gap { missed: 3 });
        assert_eq!(s.observe(5), Continuity::OutOfOrder);
        s.reset();
        assert_eq!(s.observe(0), Continuity::First);
    }
}
