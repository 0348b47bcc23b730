//! `GET /docs` (and `/docs/`): the API reference, rendered in the browser from `/openapi.json` by
//! RapiDoc (`page/vendor/rapidoc/README.md`), served from the binary at `/docs/rapidoc-min.js`:
//! pinned, and working offline. The Content-Security-Policy admits only this origin, so the page
//! can load nothing from elsewhere (it asks for no web font: `load-fonts="false"`).

use axum::response::Response;

use crate::http::embedded::embedded;

/// Only this origin (RapiDoc styles its elements from script, hence inline styles).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
                                       img-src 'self' data:; font-src 'self' data:; base-uri 'none'; \
                                       form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("page/docs.html");
const RAPIDOC: &str = include_str!("page/vendor/rapidoc/rapidoc-min.js");

/// `GET /docs`, `GET /docs/`
pub async fn page() -> Response {
    embedded(PAGE, "text/html; charset=utf-8", CONTENT_SECURITY_POLICY)
}

/// `GET /docs/rapidoc-min.js`
pub async fn script() -> Response {
    embedded(RAPIDOC, "text/javascript; charset=utf-8", CONTENT_SECURITY_POLICY)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_page_is_titled_spikewatch_and_loads_only_this_origin() {
        assert!(PAGE.contains("<title>spikewatch API</title>"));
        assert!(PAGE.contains(r#"src="/docs/rapidoc-min.js""#));
        assert!(PAGE.contains(r#"spec-url="/openapi.json""#));
        assert!(PAGE.contains(r#"load-fonts="false""#), "RapiDoc would fetch Open Sans from a font CDN");
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"), "no other origin");
    }

    #[test]
    fn the_vendored_script_is_the_pinned_release() {
        // page/vendor/rapidoc/README.md: rapidoc 9.3.8 from the npm registry, unmodified.
        let digest = Sha256::digest(RAPIDOC.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "affbd173a65e870e18f392cca963113bcdafb6e50e88cd2f6a834a65b22db94d");
        assert!(RAPIDOC.starts_with("/*! RapiDoc 9.3.8 "));
    }
}
