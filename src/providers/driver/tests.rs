//! The driver's tests, over [`Fake`], an adapter of the tests' own making: what the driver does
//! for every provider (headers, the stream's end, error answers, redaction) is tested here once,
//! apart from any real provider's format.

use futures::StreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::providers::adapter::Outgoing;
use crate::providers::fault::Fault;
use crate::sse::SseEvent;
use crate::types::{
    Capabilities, Content, FinishReason, Message, ModelTable, Reasoning, Role, Usage,
};

const KEY: &str = "fake-secret-key-0123456789";

/// Its answer's body is the content; each stream event's data is a delta, an `end` event ends
/// the answer and a `fail` event fails it with its data; its error body is JSON with the
/// provider's words (`detail`), a wait (`wait`, in seconds) and `retryable`, each optional.
struct Fake;

impl Adapter for Fake {
    const NAME: ProviderName = ProviderName::Openai;
    const MODELS: &'static ModelTable = &ModelTable {
        models: &[],
        families: &[],
        others: Capabilities {
            reasoning: Reasoning::None,
            json_schema: false,
        },
        routed_prefixes: &[],
    };
    const KEY_VARS: &'static [&'static str] = &["FAKE_API_KEY"];
    const BASE_URL_VAR: &'static str = "FAKE_BASE_URL";
    const BASE_URL: &'static str = "http://127.0.0.1";
    const ENDPOINT: &'static str = "/v1/fake";
    type StreamState = ();

    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            url: endpoint.clone(),
            auth: ("x-fake-key", format!("Key {key}")),
            headers: &[("fake-version", "7")],
            body: json!({ "model": req.model, "stream": stream }),
        })
    }

    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
        Ok(ChatResponse {
            id: None,
            model: None,
            content: String::from_utf8_lossy(body).into_owned(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            finish_reason: FinishReason::Stop,
        })
    }

    fn parse_stream_event(event: &SseEvent, _: &mut ()) -> Result<Option<Vec<StreamEvent>>, Error> {
        match event.event.as_deref() {
            Some("end") => Ok(None),
            Some("fail") => Err(Error::new(
                ErrorKind::ProviderUnavailable,
                format!("fake: {}", event.data),
            )),
            _ => Ok(Some(vec![StreamEvent::Delta(event.data.clone())])),
        }
    }

    fn parse_error(_: u16, body: &[u8]) -> Fault {
        let body: Value = serde_json::from_slice(body).unwrap_or_default();
        Fault {
            kind: None,
            detail: body["detail"].as_str().unwrap_or_default().to_owned(),
            retry_after: body["wait"].as_u64().map(Duration::from_secs),
            retryable: body["retryable"].as_bool(),
        }
    }
}

/// The fake provider at `base`, with [`KEY`] when `keyed`.
fn driver(base: &str, keyed: bool) -> Driver<Fake> {
    let target = Endpoint {
        api_key: keyed.then(|| Secret::new(KEY.to_owned())),
        base_url: base.to_owned(),
        key_var: "OPENAI_API_KEY",
    };
    let client = http_client(Duration::from_secs(5)).unwrap();
    Driver::new(client, target).unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "fake-1".into(),
        messages: vec![Message::new(Role::User, Content::Text("hi".into()))],
        ..ChatRequest::default()
    }
}

fn trace() -> UpstreamTrace {
    UpstreamTrace {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        request_id: "req-42".into(),
    }
}

/// What a streamed answer with this SSE body yields, item by item.
async fn streamed(sse: &'static str) -> Vec<Result<StreamEvent, Error>> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(json!({ "model": "fake-1", "stream": true })))
        .respond_with(ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"))
        .expect(1)
        .mount(&server)
        .await;
    let fake = driver(&server.uri(), true);
    let stream = fake.stream(&request(), &trace()).await.unwrap();
    stream.collect().await
}

fn delta(text: &str) -> StreamEvent {
    StreamEvent::Delta(text.into())
}

#[tokio::test]
async fn a_call_carries_the_key_the_adapters_headers_and_the_trace() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/fake"))
        .and(header("x-fake-key", format!("Key {KEY}").as_str()))
        .and(header("fake-version", "7"))
        .and(header("traceparent", trace().traceparent.as_str()))
        .and(header("x-request-id", "req-42"))
        .and(body_json(json!({ "model": "fake-1", "stream": false })))
        .respond_with(ResponseTemplate::new(200).set_body_string("hello"))
        .expect(1)
        .mount(&server)
        .await;
    // A trailing slash on the base URL must not double up in the path.
    let fake = driver(&format!("{}/", server.uri()), true);
    let answer = fake.complete(&request(), &trace()).await.unwrap();
    assert_eq!(answer.content, "hello");
}

#[tokio::test]
async fn a_stream_ends_at_the_adapters_end_event_though_the_body_goes_on() {
    let items = streamed("data: a\n\ndata: b\n\nevent: end\ndata: \n\ndata: AFTER\n\n").await;
    let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(events, [delta("a"), delta("b")]);
}

#[tokio::test]
async fn a_stream_without_an_end_event_ends_with_its_body() {
    let items = streamed("data: a\n\ndata: b\n\n").await;
    let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(events, [delta("a"), delta("b")]);
}

#[tokio::test]
async fn an_error_event_ends_the_stream_with_the_error_and_the_key_redacted() {
    let sse = "data: a\n\nevent: fail\ndata: overloaded for fake-secret-key-0123456789\n\n";
    let mut items = streamed(sse).await;
    let err = items.pop().unwrap().unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (
            ErrorKind::ProviderUnavailable,
            "fake: overloaded for [redacted]"
        )
    );
    assert_eq!(
        items.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [delta("a")]
    );
}

#[tokio::test]
async fn an_error_answer_is_classified_with_its_status_and_retry_after_and_the_key_redacted() {
    let server = MockServer::start().await;
    let echoed = json!({ "detail": format!("Overloaded for {KEY}") });
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(529)
                .insert_header("retry-after", "3")
                .set_body_json(echoed),
        )
        .expect(2)
        .mount(&server)
        .await;
    let fake = driver(&server.uri(), true);
    let refused = fake.complete(&request(), &trace()).await.unwrap_err();
    let Err(refused_stream) = fake.stream(&request(), &trace()).await else {
        panic!("a refused stream must fail before it starts");
    };
    for err in [refused, refused_stream] {
        assert_eq!(
            (err.kind, err.retryable, err.status, err.retry_after),
            (
                ErrorKind::ProviderUnavailable,
                true,
                Some(529),
                Some(Duration::from_secs(3))
            )
        );
        assert_eq!(err.message, "openai: Overloaded for [redacted]");
        assert_eq!(err.provider, Some(ProviderName::Openai));
    }
}

#[test]
fn retry_after_wins_over_the_bodys_wait_and_408_and_409_may_be_retried() {
    let empty = HeaderMap::new();
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("3"));
    let wait = br#"{"detail": "slow down", "wait": 19}"#;
    let err = http_error::<Fake>(429, &empty, wait);
    assert_eq!(err.retry_after, Some(Duration::from_secs(19)));
    let err = http_error::<Fake>(429, &headers, wait);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(
        (err.kind, err.status, err.message.as_str()),
        (ErrorKind::RateLimited, Some(429), "openai: slow down")
    );

    for status in [408, 409] {
        let err = http_error::<Fake>(status, &empty, b"");
        assert_eq!(
            (err.kind, err.retryable, err.status),
            (ErrorKind::ProviderRejected, true, Some(status))
        );
        let err = http_error::<Fake>(status, &empty, br#"{"retryable": false}"#);
        assert!(!err.retryable, "{status}: the body says otherwise");
    }
    let err = http_error::<Fake>(400, &empty, b"");
    assert_eq!(
        (err.kind, err.retryable),
        (ErrorKind::ProviderRejected, false)
    );
}

#[tokio::test]
async fn a_missing_key_is_named_and_nothing_is_sent() {
    // Nothing listens on port 9: a request sent would fail as a connection error instead.
    let fake = driver("http://127.0.0.1:9", false);
    let err = fake.complete(&request(), &trace()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ProviderAuth);
    assert_eq!(err.message, "openai is not configured: set OPENAI_API_KEY");
}

#[tokio::test]
async fn an_upstream_that_cannot_be_reached_is_unavailable() {
    let fake = driver("http://127.0.0.1:9", true);
    let err = fake.complete(&request(), &trace()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.retryable, err.message.as_str()),
        (
            ErrorKind::ProviderUnavailable,
            true,
            "openai could not connect"
        )
    );
}

#[test]
fn a_base_url_that_is_not_http_is_refused_at_start() {
    let url = |base: &str| endpoint_url(Fake::NAME, base, Fake::ENDPOINT);
    assert_eq!(
        url("https://api.example.com/").unwrap().as_str(),
        "https://api.example.com/v1/fake"
    );
    for base in ["ftp://api.example.com", "api.example.com", "http://", ""] {
        assert!(url(base).is_err(), "{base:?}");
    }
}

#[test]
fn keys_echoed_upstream_are_redacted() {
    let key = Secret::new("sk-secret-value".into());
    let echoed = Error::new(ErrorKind::ProviderAuth, "bad key sk-secret-value");
    assert_eq!(redact(Some(&key), echoed).message, "bad key [redacted]");
}

#[test]
fn retry_after_reads_seconds_milliseconds_and_dates() {
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("2"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    h.insert("retry-after-ms", HeaderValue::from_static("250"));
    assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    let mut h = HeaderMap::new();
    h.insert(
        "retry-after",
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    assert_eq!(retry_after(&h), Some(Duration::ZERO));
    h.insert("retry-after", HeaderValue::from_static("soon"));
    assert_eq!(retry_after(&h), None);
    h.insert("retry-after", HeaderValue::from_static("1e19"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(86_400)));
    for absurd in ["1e300", "-1", "NaN", "inf"] {
        h.insert("retry-after", HeaderValue::from_static(absurd));
        assert_eq!(retry_after(&h), None, "{absurd}");
    }
}

/// An upstream may echo the key in another case, split or cut: no piece of it of 12
/// characters or more survives, and the rest of the text does.
#[test]
fn the_key_is_redacted_in_any_case_and_in_pieces() {
    let key = "sk-test-0123456789abcdefghijKLMNOP";
    let text = format!(
        "bad key {}; retried with {} and {} — über",
        key.to_uppercase(),
        &key[..16],
        &key[14..]
    );
    let redacted = redact_text(key, &text);
    assert_eq!(
        redacted,
        "bad key [redacted]; retried with [redacted] and [redacted] — über"
    );
    assert_eq!(
        redact_text(key, "nothing of it: sk-test-"),
        "nothing of it: sk-test-"
    );
}
