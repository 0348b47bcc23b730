//! `GET /`: the live page (per product: mid price, spike probability and alerts, streamed from
//! `/predictions/stream`), and `GET /assets/{name}`: its script, styles and the vendored charting
//! library (uPlot, `page/vendor/uplot/README.md`).
//!
//! Everything is compiled into the binary and served from this origin; the Content-Security-
//! Policy forbids anything else, so the page works offline and never calls a CDN.

use axum::extract::Path;
use axum::response::Response;

use crate::http::embedded::embedded;
use crate::http::error::ApiError;

/// Only this origin; no inline script or style (the page has none).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; base-uri 'none'; \
                                       form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset =
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_str!("page/index.html") };

const ASSETS: [Asset; 4] = [
    Asset { name: "live.js", content_type: "text/javascript; charset=utf-8", body: include_str!("page/live.js") },
    Asset { name: "live.css", content_type: "text/css; charset=utf-8", body: include_str!("page/live.css") },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("page/vendor/uplot/uPlot.min.css"),
    },
];

/// `GET /`
pub async fn index() -> Response {
    serve(&INDEX)
}

/// `GET /assets/{name}`
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => Ok(serve(asset)),
        None => Err(ApiError::NotFound { field: "path", reason: format!("no asset named {name:?}") }),
    }
}

fn serve(asset: &Asset) -> Response {
    embedded(asset.body, asset.content_type, CONTENT_SECURITY_POLICY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_assets() {
        let html = INDEX.body;
        for reference in ["/assets/live.js", "/assets/live.css", "/assets/uPlot.iife.min.js", "/assets/uPlot.min.css"] {
            assert!(html.contains(reference), "index.html does not reference {reference}");
            let name = reference.trim_start_matches("/assets/");
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} is not embedded");
        }
        for asset in ASSETS.iter().chain([&INDEX]) {
            // The vendored library names its home page in a comment; nothing else may.
            let text = asset.body.replace("/*! https://github.com/leeoniya/uPlot ", "");
            for external in ["http://", "https://", "//cdn"] {
                assert!(!text.contains(external), "{} refers to another origin ({external})", asset.name);
            }
        }
    }
}
