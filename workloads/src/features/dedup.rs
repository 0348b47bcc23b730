//! Recently accepted tick identities of one product, to drop duplicates in O(1).
//!
//! A tick is a duplicate of an accepted one when both carry the same `trade_id`, or the same
//! `sequence` at the same exchange time. The time is part of the sequence key because Advanced
//! Trade numbers messages per connection: after a reconnect the numbers start again and would
//! otherwise collide with the previous connection's. Identities are kept while they are within
//! the out-of-order tolerance of the product's latest time; anything older is rejected as out of
//! order before it could be compared.

use std::collections::{HashSet, VecDeque};

#[derive(Debug, Clone, Copy)]
struct Identity {
    time: i64,
    sequence: Option<u64>,
    trade_id: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SeenTicks {
    /// Insertion order, for eviction.
    order: VecDeque<Identity>,
    sequences: HashSet<(u64, i64)>,
    trade_ids: HashSet<u64>,
}

impl SeenTicks {
    pub(crate) fn contains(&self, time: i64, sequence: Option<u64>, trade_id: Option<u64>) -> bool {
        sequence.is_some_and(|s| self.sequences.contains(&(s, time)))
            || trade_id.is_some_and(|id| self.trade_ids.contains(&id))
    }

    pub(crate) fn insert(&mut self, time: i64, sequence: Option<u64>, trade_id: Option<u64>) {
        if sequence.is_none() && trade_id.is_none() {
            return; // nothing to recognise it by
        }
        if let Some(s) = sequence {
            self.sequences.insert((s, time));
        }
        if let Some(id) = trade_id {
            self.trade_ids.insert(id);
        }
        self.order.push_back(Identity { time, sequence, trade_id });
    }

    /// Forgets identities older than `cutoff`, in insertion order (a late tick's identity may
    /// outlive its cutoff a little; memory stays bounded by the ticks within the tolerance).
    pub(crate) fn evict_older_than(&mut self, cutoff: i64) {
        while let Some(front) = self.order.front().copied() {
            if front.time >= cutoff {
                break;
            }
            self.order.pop_front();
            if let Some(s) = front.sequence {
                self.sequences.remove(&(s, front.time));
            }
            if let Some(id) = front.trade_id {
                self.trade_ids.remove(&id);
            }
        }
    }
}
