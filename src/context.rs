//! The caller's A2A context and W3C trace context: what identifies a call from the agent that
//! made it, through every upstream request, log line and result.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::access::Caller;

use crate::error::Error;

/// The A2A context as callers send it (contract §4). Every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct A2aContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

const MAX_TRACE_ID: usize = 128;
/// The longest name or id a caller may give a context (agents, session, conversation), in
/// characters: each is logged, spanned and kept in the ledger with every call.
pub const MAX_NAME: usize = 256;

impl A2aContext {
    /// Checks the rules of contract §4, naming the field that breaks one.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(id) = &self.trace_id {
            let ok_chars = id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
            if id.is_empty() || id.len() > MAX_TRACE_ID || !ok_chars {
                return Err(Error::invalid_params(
                    "a2a_context.trace_id must be 1-128 characters of A-Za-z0-9._:-",
                ));
            }
        }
        if let Some(span) = &self.span_id {
            if !is_lower_hex(span, 16) {
                return Err(Error::invalid_params(
                    "a2a_context.span_id must be 16 lowercase hex digits",
                ));
            }
        }
        for (name, value) in [
            ("source_agent", &self.source_agent),
            ("target_agent", &self.target_agent),
            ("session_id", &self.session_id),
            ("conversation_id", &self.conversation_id),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_NAME) {
                return Err(Error::invalid_params(format!(
                    "a2a_context.{name} must be at most 256 characters"
                )));
            }
        }
        if let Some(ts) = &self.timestamp {
            if !looks_like_iso8601(ts) {
                return Err(Error::invalid_params(
                    "a2a_context.timestamp must be an ISO-8601 date-time such as 2026-11-21T10:00:00Z",
                ));
            }
        }
        Ok(())
    }
}

/// A loose ISO-8601 check: a date, `T`, a time; offsets and fractions are accepted as given.
fn looks_like_iso8601(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A valid W3C `traceparent` header's ids; anything invalid is treated as absent, as the
/// specification asks.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceParent {
    pub trace_id: String,
    pub parent_id: String,
    pub flags: u8,
}

impl TraceParent {
    /// The request's `traceparent` header, when it has a valid one; every surface reads the
    /// caller's trace context this way.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
    }

    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let valid_version = is_lower_hex(version, 2) && version != "ff";
        // Version 00 has exactly four fields; later versions may append more.
        if !valid_version || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if !is_lower_hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') {
            return None;
        }
        if !is_lower_hex(parent_id, 16) || parent_id.bytes().all(|b| b == b'0') {
            return None;
        }
        if !is_lower_hex(flags, 2) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags,
        })
    }
}

/// Everything that identifies one call while it is served.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The caller's trace id, echoed verbatim everywhere.
    pub trace_id: String,
    /// The 32-hex W3C trace id sent upstream: `trace_id` itself when it already is one.
    pub w3c_trace_id: String,
    /// This call's own span id (16 hex), returned as `a2a_context.span_id`.
    pub span_id: String,
    /// The caller's span, parent of this call's: from `a2a_context.span_id`, or from a
    /// `traceparent` header of the same trace.
    pub parent_span_id: Option<String>,
    /// The context as received, to be echoed back with the ids filled in.
    pub a2a: A2aContext,
    /// Who calls, when the request presented a valid key; set by the surface.
    pub caller: Option<Arc<Caller>>,
    /// The A2A task the call runs as, on the A2A surface.
    pub task_id: Option<String>,
}

impl CallContext {
    /// Builds the call's identity: a context in the request wins over the `traceparent` header,
    /// which wins over a freshly generated id.
    pub fn new(a2a: Option<A2aContext>, traceparent: Option<&TraceParent>) -> Self {
        let mut a2a = a2a.unwrap_or_default();
        let trace_id = match (&a2a.trace_id, traceparent) {
            (Some(id), _) => id.clone(),
            (None, Some(tp)) => tp.trace_id.clone(),
            (None, None) => new_trace_id(),
        };
        let w3c_trace_id = w3c_trace_id(&trace_id);
        let from_header = traceparent
            .filter(|tp| tp.trace_id == w3c_trace_id)
            .map(|tp| tp.parent_id.clone());
        let parent_span_id = a2a.span_id.clone().or(from_header);
        let span_id = new_span_id();
        a2a.trace_id = Some(trace_id.clone());
        a2a.span_id = Some(span_id.clone());
        Self {
            trace_id,
            w3c_trace_id,
            span_id,
            parent_span_id,
            a2a,
            caller: None,
            task_id: None,
        }
    }

    /// Takes the span id the tracing layer gave this call's span, so that answers, upstream
    /// requests and exported spans name the same span.
    pub fn adopt_span_id(&mut self, span_id: String) {
        self.a2a.span_id = Some(span_id.clone());
        self.span_id = span_id;
    }

    /// The `traceparent` for an upstream request made under `parent_span`.
    pub fn upstream_traceparent(&self, parent_span: &str) -> String {
        format!("00-{}-{}-01", self.w3c_trace_id, parent_span)
    }
}

/// A random, non-zero 16-hex span id. Ids need to be unique, not secret: a fast generator
/// seeded from the OS spares a system call per call.
pub fn new_span_id() -> String {
    format!("{:016x}", fastrand::u64(1..))
}

/// A random, non-zero 32-hex trace id.
fn new_trace_id() -> String {
    format!("{:032x}", fastrand::u128(1..))
}
/// The W3C trace id for a caller's trace id: the id itself when it is 32 hex digits (not all
/// zero), otherwise a stable id derived from it so that every hop of one trace agrees.
fn w3c_trace_id(trace_id: &str) -> String {
    let lower = trace_id.to_ascii_lowercase();
    if is_lower_hex(&lower, 32) && lower.bytes().any(|b| b != b'0') {
        return lower;
    }
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, trace_id.as_bytes())
        .simple()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_accepts_the_spec_example() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id, "00f067aa0ba902b7");
        assert_eq!(tp.flags, 1);
    }

    #[test]
    fn traceparent_rejects_what_the_spec_rejects() {
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
                .is_some()
        );
    }

    #[test]
    fn context_wins_over_header_which_wins_over_generation() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let a2a = A2aContext {
            trace_id: Some("planner:run-7".into()),
            ..Default::default()
        };
        assert_eq!(
            CallContext::new(Some(a2a), Some(&tp)).trace_id,
            "planner:run-7"
        );
        assert_eq!(
            CallContext::new(None, Some(&tp)).trace_id,
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let generated = CallContext::new(None, None);
        assert!(
            is_lower_hex(&generated.trace_id, 32),
            "{}",
            generated.trace_id
        );
        assert!(is_lower_hex(&generated.span_id, 16));
    }

    #[test]
    fn non_hex_trace_ids_map_to_a_stable_w3c_id() {
        let a = w3c_trace_id("planner:run-7");
        assert!(is_lower_hex(&a, 32));
        assert_eq!(a, w3c_trace_id("planner:run-7"));
        assert_ne!(a, w3c_trace_id("planner:run-8"));
        assert_eq!(
            w3c_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = A2aContext {
            trace_id: Some("has space".into()),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .message
                .contains("a2a_context.trace_id")
        );
        let bad = A2aContext {
            source_agent: Some("x".repeat(257)),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .message
                .contains("a2a_context.source_agent")
        );
        let bad = A2aContext {
            timestamp: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .message
                .contains("a2a_context.timestamp")
        );
        let good = A2aContext {
            trace_id: Some("a.b:c-d_e".into()),
            timestamp: Some("2026-11-21T10:00:00Z".into()),
            ..Default::default()
        };
        assert!(good.validate().is_ok());
    }
}
