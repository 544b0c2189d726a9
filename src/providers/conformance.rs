//! The conformance suite every adapter runs: what must hold of any provider, checked over each
//! adapter's own recorded fixtures (`tests/fixtures/<provider>/`). An adapter's tests give it a
//! [`Recorded`] table and expand [`suite!`] beside it; what is particular to one provider (its
//! words, its tool calls, its own error types) stays in that provider's tests.
//!
//! The suite checks that each recorded error answer maps to its kind, that each recorded stream
//! ends with its finish reason and usage (with LF or CRLF line ends alike) and each recorded
//! failing stream with its error, that an HTML page (a proxy's, say) is `provider_unavailable`
//! where it stands for an answer and leaves the kind to the status where it stands for an
//! error, that events the adapter does not know are skipped, and that the key goes in the
//! authentication header and nowhere else (URLs and bodies end up in logs).

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::adapter::Adapter;
use super::testing::{error_from_response, fixture, fixture_headers, request, stream_events, text};
use crate::error::ErrorKind;
use crate::sse::SseEvent;
use crate::types::{FinishReason, Role, StreamEvent, Usage};

/// One adapter's recorded fixtures and what each must give.
pub(super) struct Recorded {
    /// Each recorded error answer: its status, its body's file, and the kind and retryability
    /// it must map to.
    pub errors: &'static [(u16, &'static str, ErrorKind, bool)],
    /// A recorded rate-limit answer (status 429): its body's file, its headers' file when they
    /// were recorded, and the wait it asks for.
    pub rate_limit: (&'static str, Option<&'static str>, Duration),
    /// Each recorded stream, the finish reason it ends with, and its usage (prompt, completion
    /// and total tokens).
    pub streams: &'static [(&'static str, FinishReason, (u64, u64, u64))],
    /// Each recorded stream that fails, and the kind of its error.
    pub failing_streams: &'static [(&'static str, ErrorKind)],
    /// One whole SSE event, in this provider's framing, of a kind it does not know.
    pub unknown_event: &'static str,
}

/// The suite's tests for `$adapter` over its `$recorded` table, as `#[test]` functions of the
/// module the macro is expanded in.
macro_rules! suite {
    ($adapter:ty, $recorded:expr) => {
        #[test]
        fn recorded_error_answers_map_to_their_kinds() {
            crate::providers::conformance::error_answers::<$adapter>(&$recorded);
        }

        #[test]
        fn a_recorded_rate_limit_waits_what_it_asks() {
            crate::providers::conformance::rate_limit::<$adapter>(&$recorded);
        }

        #[test]
        fn recorded_streams_end_with_their_finish_reason_and_usage() {
            crate::providers::conformance::streams::<$adapter>(&$recorded);
        }

        #[test]
        fn an_html_page_is_unavailable_or_left_to_the_status() {
            crate::providers::conformance::html_pages::<$adapter>();
        }

        #[test]
        fn the_key_goes_in_the_auth_header_alone() {
            crate::providers::conformance::key_in_auth_header_alone::<$adapter>();
        }

        #[test]
        fn unknown_stream_events_are_skipped() {
            crate::providers::conformance::unknown_events::<$adapter>(&$recorded);
        }
    };
}
pub(super) use suite;

/// An error page a proxy or load balancer sends in the provider's stead.
const HTML: &[u8] = b"<html><head><title>502 Bad Gateway</title></head>\
    <body><center><h1>502 Bad Gateway</h1></center></body></html>";

pub(super) fn error_answers<A: Adapter>(recorded: &Recorded) {
    let empty = HeaderMap::new();
    for &(status, file, kind, retryable) in recorded.errors {
        let err = error_from_response::<A>(status, &empty, &fixture::<A>(file));
        assert_eq!(
            (err.kind, err.retryable, err.status, err.provider),
            (kind, retryable, Some(status), Some(A::NAME)),
            "{file}"
        );
        // The provider's own words reach the caller, not just the status.
        let prefix = format!("{}: ", A::NAME);
        assert!(err.message.starts_with(&prefix), "{file}: {}", err.message);
        assert_ne!(err.message, format!("{prefix}HTTP {status}"), "{file}");
    }
}

pub(super) fn rate_limit<A: Adapter>(recorded: &Recorded) {
    let (body, headers, wait) = recorded.rate_limit;
    let headers = headers.map(fixture_headers::<A>).unwrap_or_default();
    let err = error_from_response::<A>(429, &headers, &fixture::<A>(body));
    assert_eq!(
        (err.kind, err.retryable, err.retry_after),
        (ErrorKind::RateLimited, true, Some(wait)),
        "{body}"
    );
}

pub(super) fn streams<A: Adapter>(recorded: &Recorded) {
    for &(file, finish, (prompt, completion, total)) in recorded.streams {
        let lf = fixture::<A>(file);
        let events = stream_events::<A>(&lf).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let finishes: Vec<&StreamEvent> = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Finish(_)))
            .collect();
        assert_eq!(finishes, [&StreamEvent::Finish(finish)], "{file}");
        let usage = events.iter().rev().find_map(|e| match e {
            StreamEvent::Usage(usage) => Some(*usage),
            _ => None,
        });
        let expected = Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total,
        };
        assert_eq!(usage, Some(expected), "{file}");
        assert!(
            !events.contains(&StreamEvent::Delta(String::new())),
            "{file}: an empty delta"
        );
        let crlf = String::from_utf8(lf).unwrap().replace('\n', "\r\n");
        assert_eq!(
            stream_events::<A>(crlf.as_bytes()).unwrap(),
            events,
            "{file} with CRLF"
        );
    }
    for &(file, kind) in recorded.failing_streams {
        let err = stream_events::<A>(&fixture::<A>(file)).unwrap_err();
        assert_eq!(
            (err.kind, err.provider),
            (kind, Some(A::NAME)),
            "{file}: {}",
            err.message
        );
    }
}

pub(super) fn html_pages<A: Adapter>() {
    let empty = HeaderMap::new();
    for status in [500, 502, 503, 504] {
        let err = error_from_response::<A>(status, &empty, HTML);
        assert_eq!(
            (err.kind, err.retryable, err.message.clone()),
            (
                ErrorKind::ProviderUnavailable,
                true,
                format!("{}: HTTP {status}", A::NAME)
            ),
        );
    }
    // Where the body says nothing the provider would, the status decides.
    for (status, kind) in [
        (400, ErrorKind::ProviderRejected),
        (401, ErrorKind::ProviderAuth),
        (403, ErrorKind::ProviderAuth),
        (404, ErrorKind::ModelNotFound),
        (413, ErrorKind::ProviderRejected),
        (429, ErrorKind::RateLimited),
    ] {
        for body in [HTML, b"", b"Forbidden"] {
            let err = error_from_response::<A>(status, &empty, body);
            assert_eq!(
                (err.kind, err.status),
                (kind, Some(status)),
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
    // A 2xx answer, or a stream event, that is an HTML page is the provider being unwell.
    let html = String::from_utf8(HTML.to_vec()).unwrap();
    let err = A::parse_response(HTML).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
    let event = SseEvent {
        event: None,
        data: html,
    };
    let err = A::parse_stream_event(&event, &mut A::StreamState::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
}

pub(super) fn unknown_events<A: Adapter>(recorded: &Recorded) {
    let alone = stream_events::<A>(recorded.unknown_event.as_bytes()).unwrap();
    assert!(alone.is_empty(), "{}: {alone:?}", recorded.unknown_event);
    // Amid a recorded stream, after its first event, it changes nothing.
    for &(file, ..) in recorded.streams {
        let stream = String::from_utf8(fixture::<A>(file)).unwrap();
        let (first, rest) = stream.split_at(stream.find("\n\n").unwrap() + 2);
        let spliced = format!("{first}{}{rest}", recorded.unknown_event);
        assert_eq!(
            stream_events::<A>(spliced.as_bytes()).unwrap(),
            stream_events::<A>(stream.as_bytes()).unwrap(),
            "{file}"
        );
    }
}

pub(super) fn key_in_auth_header_alone<A: Adapter>() {
    let key = "conformance-key-0123456789";
    let endpoint = reqwest::Url::parse("https://api.example.com/v1/").unwrap();
    let req = request(A::MODELS.models[0].id, vec![text(Role::User, "hi")]);
    for stream in [false, true] {
        let outgoing = A::request(&endpoint, key, &req, stream).unwrap();
        assert!(outgoing.auth.1.contains(key), "{stream}");
        assert!(!outgoing.url.as_str().contains(key), "{}", outgoing.url);
        assert!(!outgoing.body.to_string().contains(key), "{stream}");
        for (name, value) in outgoing.headers {
            assert!(!value.contains(key), "{name}");
        }
    }
}
