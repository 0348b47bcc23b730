//! The names of the metrics the workloads export, declared once.
//!
//! The workloads register them; the operator's alerting rules, dashboard and rollback checks
//! query them; the docs list them. A name written here and nowhere else cannot drift between the
//! exporter and its readers. The predictor's and the API's names are those of the original
//! system (`volatility_*`, `model_*`), kept for its dashboards and runbook.

/// The prediction API (`spikewatch serve`, `spikewatch run --serve`).
pub mod api {
    /// `{endpoint, method, status}`: requests answered.
    pub const REQUESTS: &str = "volatility_api_requests_total";
    /// `{endpoint, error_type}`: requests answered with an error.
    pub const ERRORS: &str = "volatility_api_errors_total";
    /// `{endpoint, variant}`, histogram: request in to prediction out.
    pub const LATENCY: &str = "volatility_prediction_latency_seconds";
    /// `{variant}`: feature rows scored.
    pub const ROWS_PREDICTED: &str = "volatility_api_rows_predicted_total";
    /// Requests with at least one field filled with its training median.
    pub const IMPUTED_REQUESTS: &str = "volatility_api_imputed_requests_total";
}

/// The live prediction feed of the API and its stream clients (`/predictions/*`, the page).
pub mod prediction_feed {
    /// Predictions received by the feed.
    pub const PREDICTIONS: &str = "volatility_api_feed_predictions_total";
    /// `{error_type}`: feed input that was skipped.
    pub const ERRORS: &str = "volatility_api_feed_errors_total";
    /// `{reason}`: predictions streamed but not judged.
    pub const UNJUDGED: &str = "volatility_api_feed_unjudged_total";
    /// Connected `/predictions/stream` clients.
    pub const STREAM_CLIENTS: &str = "volatility_api_stream_clients";
    /// Predictions slow stream clients did not get.
    pub const STREAM_DROPPED: &str = "volatility_api_stream_dropped_total";
}

/// The served model, on every process that serves one (the API and the predictor), and the
/// lever that switches it (`POST /admin/variant`, `POST /admin/reload`).
pub mod model {
    /// Seconds the last successful model load took.
    pub const LOAD_TIME: &str = "model_load_time_seconds";
    /// `{variant}`: 1 for the variant answering, 0 for the other.
    pub const VARIANT_ACTIVE: &str = "model_variant_active";
    /// `{name, version, variant}`: 1 for the model answering.
    pub const INFO: &str = "model_info";
    /// 1 once a model answers.
    pub const LOADED: &str = "model_loaded";
    /// `{result}`: reloads and variant switches.
    pub const RELOADS: &str = "model_reloads_total";
    /// `{reason}`: 1 while the baseline answers because the configured ML model could not be
    /// loaded (a fallback, not a choice).
    pub const FALLBACK: &str = "model_fallback_active";
}

/// The predictor (`spikewatch predict`, the predict stage of `spikewatch run`).
pub mod predictor {
    /// Feature vectors consumed.
    pub const MESSAGES_PROCESSED: &str = "volatility_consumer_messages_processed_total";
    /// Predictions published.
    pub const PREDICTIONS_MADE: &str = "volatility_consumer_predictions_made_total";
    /// `{error_type}`: consume, deserialize, inference, produce, commit errors.
    pub const ERRORS: &str = "volatility_consumer_errors_total";
    /// Histogram: time to process a batch.
    pub const PROCESSING_SECONDS: &str = "volatility_consumer_processing_seconds";
    /// Now minus the receive time of the newest feature vector consumed.
    pub const LAG_SECONDS: &str = "volatility_consumer_lag_seconds";
    /// Feature vectors processed per second over the last second.
    pub const PROCESSING_RATE: &str = "volatility_consumer_processing_rate";
    /// Feature vectors scored by the model, also outside Kafka.
    pub const SCORED: &str = "spikewatch_predictor_scored_total";
}

/// The predictor's judgement of its own predictions and of its input's drift.
pub mod quality {
    /// `{product_id, variant}`: share of alerts whose minute was in the top decile.
    pub const ALERT_PRECISION: &str = "volatility_online_alert_precision";
    /// `{product_id, variant}`: share of top-decile minutes that were alerted.
    pub const ALERT_RECALL: &str = "volatility_online_alert_recall";
    /// `{product_id, variant}`: Brier score of the probabilities.
    pub const BRIER: &str = "volatility_online_brier";
    /// `{product_id, variant}`: share of judged predictions whose outcome was positive.
    pub const POSITIVE_RATE: &str = "volatility_online_positive_rate";
    /// `{product_id, variant}`: share of judged predictions that alerted.
    pub const ALERT_RATE: &str = "volatility_online_alert_rate";
    /// `{product_id, variant}`: predictions whose outcome is known and judged.
    pub const LABELLED: &str = "volatility_online_labelled_total";
    /// `{feature}`: population stability index against the training rows.
    pub const FEATURE_PSI: &str = "volatility_feature_psi";
    /// `{feature}`: the largest PSI of one training day against all training rows.
    pub const FEATURE_PSI_LIMIT: &str = "volatility_feature_psi_limit";
}

/// The featurizer (`spikewatch featurize`).
pub mod featurizer {
    pub const TICKS_CONSUMED: &str = "spikewatch_featurizer_ticks_consumed_total";
    pub const FEATURES_PUBLISHED: &str = "spikewatch_featurizer_features_published_total";
    /// `{error_type}`
    pub const ERRORS: &str = "spikewatch_featurizer_errors_total";
    /// Histogram: time to process a batch.
    pub const PROCESSING_SECONDS: &str = "spikewatch_featurizer_processing_seconds";
    pub const FEATURES_COMPUTED: &str = "spikewatch_featurizer_features_computed_total";
    /// `{kind}`: ticks the feature engine did not use.
    pub const TICKS_REJECTED: &str = "spikewatch_featurizer_ticks_rejected_total";
    /// Now minus the receive time of the last tick processed.
    pub const CONSUMER_LAG_SECONDS: &str = "spikewatch_featurizer_consumer_lag_seconds";
    pub const WINDOW_REBUILDS: &str = "spikewatch_featurizer_window_rebuilds_total";
    pub const WINDOW_REBUILD_TICKS: &str = "spikewatch_featurizer_window_rebuild_ticks_total";
}

/// The market feed reader (`spikewatch ingest`).
pub mod ingest {
    pub const FRAMES_RECEIVED: &str = "spikewatch_ingest_frames_received_total";
    pub const BYTES_RECEIVED: &str = "spikewatch_ingest_bytes_received_total";
    /// `{product}`
    pub const TICKS_PUBLISHED: &str = "spikewatch_ingest_ticks_published_total";
    pub const TICKS_ACKNOWLEDGED: &str = "spikewatch_ingest_ticks_acknowledged_total";
    /// `{type}`
    pub const FRAMES_SKIPPED: &str = "spikewatch_ingest_frames_skipped_total";
    /// `{kind}`
    pub const PARSE_ERRORS: &str = "spikewatch_ingest_parse_errors_total";
    pub const CONNECTIONS: &str = "spikewatch_ingest_connections_total";
    pub const RECONNECTS: &str = "spikewatch_ingest_reconnects_total";
    pub const WATCHDOG_TIMEOUTS: &str = "spikewatch_ingest_watchdog_timeouts_total";
    pub const CONNECTED: &str = "spikewatch_ingest_connected";
    pub const SERVER_ERRORS: &str = "spikewatch_ingest_server_errors_total";
    /// `{product}`
    pub const SEQUENCE_GAPS: &str = "spikewatch_ingest_sequence_gaps_total";
    /// `{product}`
    pub const MISSED_MESSAGES: &str = "spikewatch_ingest_missed_messages_total";
    /// `{product}`
    pub const OUT_OF_ORDER: &str = "spikewatch_ingest_out_of_order_total";
    /// Histogram: receive time minus exchange time.
    pub const FEED_LAG_SECONDS: &str = "spikewatch_ingest_feed_lag_seconds";
    pub const MIRROR_FRAMES_WRITTEN: &str = "spikewatch_ingest_mirror_frames_written_total";
    pub const MIRROR_FRAMES_DROPPED: &str = "spikewatch_ingest_mirror_frames_dropped_total";
    pub const MIRROR_ROTATIONS: &str = "spikewatch_ingest_mirror_rotations_total";
}

/// The recording player (`spikewatch replay`).
pub mod replay {
    pub const TICKS_READ: &str = "spikewatch_replay_ticks_read_total";
    pub const TICKS_PUBLISHED: &str = "spikewatch_replay_ticks_published_total";
    /// `{frame_type}`
    pub const FRAMES_SKIPPED: &str = "spikewatch_replay_frames_skipped_total";
    /// `{error_type}`
    pub const MALFORMED_LINES: &str = "spikewatch_replay_malformed_lines_total";
    pub const PASSES: &str = "spikewatch_replay_passes_total";
}

/// Every workload.
pub mod config {
    /// Keys of the config file this version does not know (ignored, logged at start).
    pub const UNKNOWN_KEYS: &str = "spikewatch_config_unknown_keys";
}
