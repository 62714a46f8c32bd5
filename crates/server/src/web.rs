//! The web pages (upload, map, exports), built into the binary so the service works offline:
//! our own pages from `web/src/`, the npm libraries from `web/dist/` (`web/build.sh` refreshes
//! those from npm).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

macro_rules! web {
    ($dir:literal, $name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../web/",
                $dir,
                "/",
                $name
            ))
            .as_slice(),
        )
    };
}

macro_rules! src {
    ($name:literal) => {
        web!("src", $name)
    };
}

macro_rules! dist {
    ($name:literal) => {
        web!("dist", $name)
    };
}

/// Every file served, by name.
const FILES: &[(&str, &[u8])] = &[
    src!("index.html"),
    src!("upload.html"),
    src!("map.html"),
    src!("exports.html"),
    src!("review.html"),
    src!("app.css"),
    src!("common.js"),
    src!("upload.js"),
    src!("map.js"),
    src!("exports.js"),
    src!("review.js"),
    dist!("maplibre-gl.js"),
    dist!("maplibre-gl.css"),
    dist!("tus.min.js"),
];

/// SHA-256 (base64) of every inline `<script>` of the pages: the Content-Security-Policy
/// allows exactly these and no other inline code.
pub fn inline_script_hashes() -> Vec<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut out = Vec::new();
    for (name, bytes) in FILES {
        if !name.ends_with(".html") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for piece in text.split("<script>").skip(1) {
            if let Some(code) = piece.split("</script>").next() {
                out.push(
                    base64::engine::general_purpose::STANDARD
                        .encode(sha2::Sha256::digest(code.as_bytes())),
                );
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _)| *n == name) {
        Some((n, bytes)) => ([(header::CONTENT_TYPE, content_type(n))], *bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/upload", get(|| async { file("upload.html") }))
        .route("/map", get(|| async { file("map.html") }))
        .route("/exports", get(|| async { file("exports.html") }))
        .route("/review", get(|| async { file("review.html") }))
        .route(
            "/static/{name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}
