//! The web page: a fixed set of files compiled into the binary. A path is looked up in
//! that set by name, so no path can reach anything else.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// Each file: its path, content type and bytes.
const FILES: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
];

/// Any path outside `/api`: one of [`FILES`], or 404.
pub(super) async fn asset(uri: Uri) -> Response {
    let path = match uri.path() {
        "/index.html" => "/",
        other => other,
    };
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                ),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
