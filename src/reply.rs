//! The plain HTTP answers that the server and every surface give alike: a JSON body with its
//! content type, or a line of text. Here on the ground floor so that the server above the
//! surfaces and the surfaces themselves share them without importing one another.

use http::{StatusCode, header};
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde_json::Value;

/// `body` as `application/json`.
pub fn json(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A line of text that says what to do instead (wrong method, unknown path).
pub fn text(status: StatusCode, text: &'static str) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(text));
    *response.status_mut() = status;
    response
}

/// What ends a connection's service early (the caller went away, a broken body): nobody is left
/// to answer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
