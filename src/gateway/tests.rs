//! The call pipeline without HTTP: fake providers that answer from a script, so that retries,
//! fallbacks, the breaker, the deadline and cancellation are tested as the gateway runs them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;

use super::*;
use crate::config::ProviderConfig;
use crate::providers::{EventStream, Provider};
use crate::resilience::{BreakerPolicy, RateLimits, RetryPolicy};
use crate::types::{
    ChatResponse, Content, FinishReason, Message, ModelInfo, Role, StreamEvent, Usage,
};

/// What a fake provider does with one request.
enum Reply {
    Answer(&'static str),
    Fail(ErrorKind),
    /// Never answers.
    Hang,
    /// Streams one delta, then nothing more; sets the flag when the stream is dropped.
    DeltaThenSilence(Arc<AtomicBool>),
}

struct Fake {
    name: ProviderName,
    replies: Mutex<VecDeque<Reply>>,
    calls: AtomicU32,
}

const CATALOG: &[ModelInfo] = &[ModelInfo::new("m", 1000)];

impl Fake {
    fn new(name: ProviderName, replies: Vec<Reply>) -> Arc<Self> {
        Arc::new(Self {
            name,
            replies: Mutex::new(replies.into()),
            calls: AtomicU32::new(0),
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn next_reply(&self) -> Reply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.replies.lock().unwrap().pop_front();
        next.expect("the fake was asked more often than scripted")
    }

    fn failure(&self, kind: ErrorKind) -> Error {
        Error::new(kind, format!("{} failed", self.name))
            .with_provider(self.name)
            .with_status(503)
    }
}

fn answer(text: &str) -> ChatResponse {
    ChatResponse {
        id: None,
        model: None,
        content: text.into(),
        tool_calls: Vec::new(),
        usage: Usage::default(),
        finish_reason: FinishReason::Stop,
    }
}

/// Sets its flag when dropped: the stream it lives in was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> ProviderName {
        self.name
    }

    fn is_configured(&self) -> bool {
        true
    }

    fn catalog(&self) -> &'static [ModelInfo] {
        CATALOG
    }

    async fn complete(&self, _: &ChatRequest, _: &UpstreamTrace) -> Result<ChatResponse, Error> {
        match self.next_reply() {
            Reply::Answer(text) => Ok(answer(text)),
            Reply::Fail(kind) => Err(self.failure(kind)),
            Reply::Hang | Reply::DeltaThenSilence(_) => std::future::pending().await,
        }
    }

    async fn stream(&self, _: &ChatRequest, _: &UpstreamTrace) -> Result<EventStream, Error> {
        match self.next_reply() {
            Reply::Answer(text) => Ok(stream::iter([
                Ok(StreamEvent::Delta(text.into())),
                Ok(StreamEvent::Finish(FinishReason::Stop)),
            ])
            .boxed()),
            Reply::Fail(kind) => Err(self.failure(kind)),
            Reply::Hang => std::future::pending().await,
            Reply::DeltaThenSilence(dropped) => {
                let guard = DropFlag(dropped);
                let first = stream::iter([Ok(StreamEvent::Delta("first".into()))]);
                let silence = stream::pending().map(move |event| {
                    let _held = &guard;
                    event
                });
                Ok(first.chain(silence).boxed())
            }
        }
    }
}

fn config(max_retries: u32, threshold: u32) -> ProviderConfig {
    ProviderConfig {
        api_key: None,
        base_url: String::new(),
        key_var: "UNUSED",
        retry: RetryPolicy {
            max_retries,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(1),
        },
        breaker: BreakerPolicy {
            threshold,
            cooldown: Duration::from_secs(60),
        },
        requests_per_minute: None,
        max_concurrent: None,
    }
}

/// A gateway over the fakes, with the alias `pair` = openai/m then anthropic/m.
fn gateway(fakes: &[Arc<Fake>], max_retries: u32, threshold: u32) -> Gateway {
    let catalogs = fakes.iter().map(|f| (f.name, CATALOG)).collect();
    let aliases = [(
        "pair".to_owned(),
        vec!["openai/m".to_owned(), "anthropic/m".to_owned()],
    )]
    .into();
    let registry = ModelRegistry::new(catalogs, &aliases).unwrap();
    let upstreams = fakes
        .iter()
        .map(|f| {
            let provider: Arc<dyn Provider> = Arc::clone(f) as Arc<dyn Provider>;
            Upstream::new(
                provider,
                &config(max_retries, threshold),
                Arc::new(RateLimits::local()),
            )
        })
        .collect();
    let settings = Settings {
        default_model: None,
        default_timeout: Duration::from_secs(30),
        first_byte_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        max_in_flight: 8,
        max_in_flight_per_team: 8,
        budget_max_tokens: 8192,
    };
    let access = Arc::new(Access::anonymous(Arc::new(RateLimits::local())));
    Gateway::new(
        registry,
        upstreams,
        settings,
        None,
        None,
        Prices::default(),
        access,
    )
}

fn call(model: &str, timeout: Option<Duration>) -> CallRequest {
    CallRequest {
        chat: ChatRequest {
            model: model.into(),
            messages: vec![Message::new(Role::User, Content::Text("hi".into()))],
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: vec![],
            reasoning_effort: None,
            ..ChatRequest::default()
        },
        timeout,
        metadata: None,
    }
}

fn ctx() -> CallContext {
    CallContext::new(None, None)
}

#[tokio::test]
async fn a_transient_failure_is_retried_on_the_same_provider() {
    let openai = Fake::new(
        ProviderName::Openai,
        vec![
            Reply::Fail(ErrorKind::ProviderUnavailable),
            Reply::Answer("ok"),
        ],
    );
    let gateway = gateway(&[Arc::clone(&openai)], 2, 5);
    let done = gateway
        .complete("llm.complete", call("openai/m", None), &ctx())
        .await
        .unwrap();
    assert_eq!(done.response.content, "ok");
    assert_eq!((done.attempts, openai.calls()), (2, 2));
}

#[tokio::test]
async fn a_failure_that_retries_cannot_mend_falls_back_to_the_next_model() {
    let openai = Fake::new(
        ProviderName::Openai,
        vec![Reply::Fail(ErrorKind::ProviderUnavailable)],
    );
    let anthropic = Fake::new(ProviderName::Anthropic, vec![Reply::Answer("from claude")]);
    let gateway = gateway(&[Arc::clone(&openai), Arc::clone(&anthropic)], 0, 5);
    let done = gateway
        .complete("llm.complete", call("pair", None), &ctx())
        .await
        .unwrap();
    assert_eq!(done.response.content, "from claude");
    assert_eq!(done.route.provider, ProviderName::Anthropic);
    assert_eq!(
        (done.attempts, openai.calls(), anthropic.calls()),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn a_request_error_is_neither_retried_nor_sent_elsewhere() {
    let openai = Fake::new(
        ProviderName::Openai,
        vec![Reply::Fail(ErrorKind::ProviderRejected)],
    );
    let anthropic = Fake::new(ProviderName::Anthropic, vec![]);
    let gateway = gateway(&[Arc::clone(&openai), Arc::clone(&anthropic)], 3, 5);
    let err = gateway
        .complete("llm.complete", call("pair", None), &ctx())
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.attempts),
        (ErrorKind::ProviderRejected, Some(1))
    );
    assert_eq!((openai.calls(), anthropic.calls()), (1, 0));
}

#[tokio::test]
async fn an_open_circuit_answers_without_asking_the_provider() {
    let openai = Fake::new(
        ProviderName::Openai,
        vec![Reply::Fail(ErrorKind::ProviderUnavailable)],
    );
    let gateway = gateway(&[Arc::clone(&openai)], 0, 1);
    let first = gateway
        .complete("llm.complete", call("openai/m", None), &ctx())
        .await;
    assert_eq!(first.unwrap_err().kind, ErrorKind::ProviderUnavailable);
    let err = gateway
        .complete("llm.complete", call("openai/m", None), &ctx())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
    assert!(err.message.contains("circuit is open"), "{}", err.message);
    assert_eq!(openai.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_provider_ends_at_the_call_deadline() {
    let openai = Fake::new(ProviderName::Openai, vec![Reply::Hang]);
    let gateway = gateway(&[Arc::clone(&openai)], 3, 5);
    let started = tokio::time::Instant::now();
    let timeout = Some(Duration::from_millis(250));
    let err = gateway
        .complete("llm.complete", call("openai/m", timeout), &ctx())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(
        openai.calls(),
        1,
        "a passed deadline leaves no time to retry"
    );
}

#[tokio::test]
async fn a_stream_retries_until_its_first_delta_then_streams_to_its_end() {
    let openai = Fake::new(
        ProviderName::Openai,
        vec![Reply::Fail(ErrorKind::RateLimited), Reply::Answer("hello")],
    );
    let gateway = gateway(&[Arc::clone(&openai)], 2, 5);
    let chunks: Vec<Chunk> = gateway
        .stream("llm.stream", call("openai/m", None), &ctx())
        .await
        .unwrap()
        .collect()
        .await;
    let [Chunk::Delta(text), Chunk::Done(summary)] = chunks.as_slice() else {
        panic!("{chunks:?}");
    };
    assert_eq!(text, "hello");
    assert_eq!(
        (summary.attempts, summary.finish_reason),
        (2, FinishReason::Stop)
    );
}

#[tokio::test]
async fn dropping_a_stream_drops_its_upstream_and_counts_a_cancellation() {
    let dropped = Arc::new(AtomicBool::new(false));
    let openai = Fake::new(
        ProviderName::Openai,
        vec![Reply::DeltaThenSilence(Arc::clone(&dropped))],
    );
    let gateway = gateway(&[Arc::clone(&openai)], 0, 5);
    let mut chunks = gateway
        .stream("llm.stream", call("openai/m", None), &ctx())
        .await
        .unwrap();
    assert!(matches!(chunks.next().await, Some(Chunk::Delta(t)) if t == "first"));
    assert!(!dropped.load(Ordering::SeqCst));
    assert_eq!(gateway.metrics().snapshot().in_flight, 1);
    drop(chunks);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the upstream stream lives on"
    );
    assert_eq!(gateway.metrics().snapshot().in_flight, 0);
    assert!(
        gateway
            .metrics()
            .encode()
            .contains(r#"llm_requests_total{provider="openai",model="m",status="cancelled"} 1"#)
    );
}
