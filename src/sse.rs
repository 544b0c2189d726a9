//! One Server-Sent Events decoder for every provider: LF, CRLF and CR line ends, multi-line
//! `data:`, comments, `event:` names, frames split anywhere across reads, and a last event that
//! ends without a blank line. And the one encoder of the surfaces that answer with events
//! (`llm.stream` over HTTP, the OpenAI and A2A surfaces): [`event`] and [`respond`], the one
//! pump from a stream of events to a reader.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;
use jsonrpsee::server::{HttpBody, HttpResponse};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Events buffered between a stream and a slow reader; beyond it the stream is not polled.
const BUFFER: usize = 16;
/// What keeps a quiet stream open: a comment line, which readers skip.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// One event carrying `data` (a single line).
pub fn event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// An event-stream response whose body is `events`, pumped in a task of its own (in `span`).
/// A reader that goes away ends the pump at once, without waiting for the next event, and
/// drops `events` — and with it whatever feeds them, such as an upstream request. With
/// `keepalive`, a comment goes out whenever no event did for that long.
pub fn respond<S>(events: S, keepalive: Option<Duration>, span: tracing::Span) -> HttpResponse
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER);
    let pump = async move {
        let mut events = std::pin::pin!(events);
        let mut quiet = keepalive.map(|every| {
            let mut interval = tokio::time::interval(every);
            interval.reset();
            interval
        });
        loop {
            let event = tokio::select! {
                event = events.next() => match event {
                    Some(event) => event,
                    None => return,
                },
                () = tx.closed() => return,
                () = tick(quiet.as_mut()) => Bytes::from_static(KEEPALIVE),
            };
            if tx.send(event).await.is_err() {
                return;
            }
            if let Some(quiet) = quiet.as_mut() {
                quiet.reset();
            }
        }
    };
    tokio::spawn(pump.instrument(span));
    response(rx)
}

/// The next tick of the keep-alive interval; never, without one.
async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => drop(interval.tick().await),
        None => std::future::pending().await,
    }
}

/// An event-stream response whose body is what arrives on `rx`, until its senders are gone.
fn response(mut rx: mpsc::Receiver<Bytes>) -> HttpResponse {
    let frames = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let mut response = HttpResponse::new(HttpBody::new(StreamBody::new(frames)));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    response
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, when the server gave one.
    pub event: Option<String>,
    pub data: String,
}

/// Incremental decoder: feed it bytes as they arrive, take complete events out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.buf[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + offset;
            let terminator_len = match (self.buf[end], self.buf.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                // A CR at the very end may be the first half of a CRLF still in flight.
                (b'\r', None) => break,
                _ => 1,
            };
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            start = end + terminator_len;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        events
    }

    /// Ends the input: a pending line and a pending event without a blank line are delivered.
    pub fn finish(mut self) -> Option<SseEvent> {
        let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
        let rest = rest.strip_suffix('\r').unwrap_or(&rest).to_owned();
        if !rest.is_empty() {
            if let Some(event) = self.line(&rest) {
                return Some(event);
            }
        }
        self.line("")
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            return self.data.take().map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// Decodes a byte stream into events; a transport error ends the stream after being yielded.
pub fn decode<S, E>(body: S) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Send,
{
    futures::stream::unfold(
        Some((body, SseDecoder::new(), Vec::new().into_iter())),
        |state| async move {
            let (mut body, mut decoder, mut ready) = state?;
            loop {
                if let Some(event) = ready.next() {
                    return Some((Ok(event), Some((body, decoder, ready))));
                }
                match body.next().await {
                    Some(Ok(bytes)) => ready = decoder.push(&bytes).into_iter(),
                    Some(Err(err)) => return Some((Err(err), None)),
                    None => return decoder.finish().map(|event| (Ok(event), None)),
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events: Vec<SseEvent> = chunks.iter().flat_map(|c| decoder.push(c)).collect();
        events.extend(decoder.finish());
        events
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn lf_crlf_and_cr_line_ends_decode_alike() {
        let expected = vec![ev(Some("ping"), "{}"), ev(None, "a\nb")];
        for text in [
            "event: ping\ndata: {}\n\ndata: a\ndata: b\n\n",
            "event: ping\r\ndata: {}\r\n\r\ndata: a\r\ndata: b\r\n\r\n",
            "event: ping\rdata: {}\r\rdata: a\rdata: b\r\r",
        ] {
            assert_eq!(decode_all(&[text.as_bytes()]), expected, "{text:?}");
        }
    }

    #[test]
    fn comments_are_skipped_and_unknown_fields_ignored() {
        let events = decode_all(&[b": keep-alive\nid: 7\nretry: 10\ndata:no-space\n\n"]);
        assert_eq!(events, vec![ev(None, "no-space")]);
    }

    #[test]
    fn a_last_event_without_blank_line_is_delivered() {
        assert_eq!(decode_all(&[b"data: [DONE]"]), vec![ev(None, "[DONE]")]);
        assert_eq!(decode_all(&[b"data: x\r\n"]), vec![ev(None, "x")]);
    }

    #[test]
    fn every_split_of_a_stream_decodes_the_same() {
        let text = "event: a\r\ndata: 1\r\n\r\n: c\r\ndata: é\r\ndata: 2\r\n\r\ndata: 3\n\n";
        let whole = decode_all(&[text.as_bytes()]);
        assert_eq!(whole.len(), 3);
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for j in i..bytes.len() {
                assert_eq!(
                    decode_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]),
                    whole,
                    "split at {i},{j}"
                );
            }
        }
    }

    proptest::proptest! {
        /// Any stream of valid events, with any line ends, split at any points, decodes to the
        /// events it was made of.
        #[test]
        fn any_split_of_a_valid_stream_decodes_to_the_same_events(
            events in proptest::collection::vec(
                (proptest::option::of("[a-z_]{1,12}"), proptest::collection::vec("[^\r\n]{0,20}", 1..4)),
                1..6,
            ),
            // One style per stream: a CR line end followed by an LF one would read as one CRLF.
            end in proptest::sample::select(vec!["\n", "\r\n", "\r"]),
            cuts in proptest::collection::vec(0usize..4096, 0..8),
        ) {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (name, lines) in &events {
                if let Some(name) = name {
                    text += &format!("event: {name}{end}");
                }
                for line in lines {
                    text += &format!("data: {line}{end}");
                }
                text += end;
                let data = lines.join("\n");
                expected.push(SseEvent { event: name.clone(), data });
            }
            let bytes = text.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for p in points {
                pieces.push(&bytes[last..p]);
                last = p;
            }
            pieces.push(&bytes[last..]);
            proptest::prop_assert_eq!(decode_all(&pieces), expected);
        }
    }

    #[test]
    fn every_fixture_stream_decodes_and_survives_byte_by_byte_feeding() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        let dirs = std::fs::read_dir(&root).unwrap().map(|d| d.unwrap().path());
        for dir in dirs.filter(|d| d.is_dir()) {
            for file in std::fs::read_dir(dir).unwrap() {
                let path = file.unwrap().path();
                if path.extension().is_some_and(|e| e == "sse") {
                    let bytes = std::fs::read(&path).unwrap();
                    let whole = decode_all(&[&bytes]);
                    assert!(!whole.is_empty(), "{}", path.display());
                    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
                    assert_eq!(decode_all(&pieces), whole, "{}", path.display());
                    seen += 1;
                }
            }
        }
        assert!(
            seen >= 5,
            "found only {seen} .sse fixtures under {}",
            root.display()
        );
    }
}
