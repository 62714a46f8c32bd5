//! Security headers on every answer: a Content-Security-Policy that lets the bundled pages
//! load only from this server (plus the configured map tiles), no framing by other sites,
//! and no MIME sniffing.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// `https://tiles.example.org` from `https://tiles.example.org/{z}/{x}/{y}.png`; a host
/// label with a placeholder (`{s}.tile.example.org`) becomes a wildcard.
pub(crate) fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split('/').next()?;
    let host: Vec<String> = host
        .split('.')
        .map(|label| {
            if label.contains('{') {
                "*".to_string()
            } else {
                label.to_string()
            }
        })
        .collect();
    let host = host.join(".");
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'));
    ok.then(|| format!("{scheme}://{host}"))
}

/// The policy: scripts from this server and the pages' own inline scripts by hash; the
/// map library's workers from `blob:`; images also from `data:`/`blob:` and the tiles.
pub fn content_security_policy(tile_url: Option<&str>, inline_script_hashes: &[String]) -> String {
    let tiles = tile_url
        .and_then(tile_origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let hashes: String = inline_script_hashes
        .iter()
        .map(|h| format!(" 'sha256-{h}'"))
        .collect();
    format!(
        "default-src 'self'; script-src 'self'{hashes}; style-src 'self'; \
         img-src 'self' data: blob:{tiles}; connect-src 'self'{tiles}; \
         worker-src 'self' blob:; child-src 'self' blob:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

pub async fn add_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, state.inner.csp.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_origins() {
        assert_eq!(
            tile_origin("https://tile.openstreetmap.org/{z}/{x}/{y}.png").as_deref(),
            Some("https://tile.openstreetmap.org")
        );
        assert_eq!(
            tile_origin("https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png").as_deref(),
            Some("https://*.tiles.example.org:8443")
        );
        assert_eq!(tile_origin("javascript:alert(1)"), None);
        assert_eq!(tile_origin("https://evil.org;script-src *"), None);
    }
}
