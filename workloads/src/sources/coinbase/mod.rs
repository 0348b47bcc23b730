//! Coinbase ticker frames (Exchange and Advanced Trade) → [`crate::domain::Tick`].
