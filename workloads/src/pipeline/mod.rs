//! Stage wiring: sources → features → model → sinks over a transport (Kafka or in-memory).
