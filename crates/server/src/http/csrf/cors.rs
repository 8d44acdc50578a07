//! CORS for the allowed browser origins (`TESSERA_ALLOWED_ORIGINS`): their
//! pages may read Tessera's answers and send the headers the API needs
//! (`Authorization`, `X-CSRF-Token`, `X-Device-Id` for device-bound
//! sessions, JSON bodies). No wildcard and no credentials: the API takes no
//! cookies. Preflights are answered here, before authentication or routing,
//! and cached by the browser for 10 min.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::guard::X_CSRF_TOKEN;
use crate::{
    config::{normalize_origin, BrowserSettings},
    http::request_id::X_REQUEST_ID,
};

/// How long a browser may reuse a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for `settings`' origins; none when no origin is allowed, so no
/// CORS header is ever sent then.
pub fn cors_layer(settings: &BrowserSettings) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let settings = settings.clone();
    // Compared as the guard compares them: normalised. A match is echoed
    // as the browser sent it.
    let allowed = move |origin: &HeaderValue, _: &_| {
        origin
            .to_str()
            .ok()
            .and_then(|o| normalize_origin(o).ok())
            .is_some_and(|o| settings.allows(&o))
    };
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(allowed))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                X_CSRF_TOKEN.clone(),
                X_REQUEST_ID.clone(),
                // A front end that binds its sessions to the device.
                HeaderName::from_static("x-device-id"),
            ])
            .expose_headers([header::RETRY_AFTER, X_REQUEST_ID.clone()])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
