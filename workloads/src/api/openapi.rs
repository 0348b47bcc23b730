//! The OpenAPI document, generated from the handlers' annotations, and its docs page.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{metrics, oip, online_quality, predict, predictions, rows, status};
use crate::admin::routes as admin;
use crate::http::error;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "spikewatch prediction API",
        description = "Probability of a short-horizon volatility spike (next 60 s) from market features. \
                       Native endpoints plus the Open Inference Protocol v2 (KServe / Triton REST).",
        license(name = "Apache-2.0"),
    ),
    paths(
        predict::predict,
        status::health,
        status::version,
        metrics::metrics,
        admin::reload,
        admin::set_variant,
        oip::server_metadata,
        oip::live,
        oip::ready,
        oip::model_metadata,
        oip::model_version_metadata,
        oip::model_ready,
        oip::model_version_ready,
        oip::infer,
        oip::infer_version,
        predictions::stream,
        predictions::latest,
        online_quality::quality,
    ),
    components(schemas(
        rows::FeatureRow,
        error::ErrorBody,
        error::ErrorDetail,
        error::OipErrorBody,
        crate::domain::Prediction,
        predictions::LatestPredictions,
        online_quality::OnlineQuality,
        online_quality::ProductQuality,
        crate::prediction_feed::UnjudgedCounts,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "prediction", description = "Score feature rows"),
        (name = "operations", description = "Health, version, metrics"),
        (name = "admin", description = "Hot reload and variant switch (bearer token)"),
        (name = "open-inference-protocol", description = "Open Inference Protocol v2 REST"),
        (name = "predictions", description = "Live predictions of the pipeline (Server-Sent Events), the latest per product and their online quality"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
