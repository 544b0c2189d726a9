//! Callers, teams and credits (contract §7) against a real `llmrpc serve`: keys on every surface,
//! revocation, roles, team allow-lists, credits and their reservations, isolation of the ledger,
//! per-team rate limits, and `llmrpc admin` working on the database directly.
//!
//! Every service here runs on a SQLite database in a temp dir whose first admin key was made with
//! `llmrpc admin keys create` before the service started, as an operator would make it; the price
//! table is 1 USD per token, so that the mock's 9 + 3 tokens cost exactly 12 USD.

use crate::common;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::gate::Gate;
use common::raw::{Behaviour, RawUpstream, Seen, sse_prefix};
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wiremock::MockServer;

/// 1 USD per token, prompt and answer alike.
const PRICES: &str = "[prices.\"openai/gpt-4.1-mini\"]\ninput = 1000000.0\noutput = 1000000.0\n";
const MODEL: &str = "gpt-4.1-mini";
/// What the mock's answer (9 prompt + 3 completion tokens) costs at `PRICES`.
const CALL_COST: f64 = 12.0;
/// A key of the right shape that no service made.
const UNKNOWN_KEY: &str = "llmrpc-00000000000000000000000000000000deadbeef";
/// How long anything asynchronous (settlement, propagation, logs) may take to show.
const PATIENCE: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn database_url(dir: &TempDir) -> String {
    format!("sqlite://{}/llmrpc.db", dir.path().display())
}

/// `llmrpc admin <args>` on the database in `dir`, with nothing else in its environment.
fn admin_cli(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env("LLMRPC_DATABASE_URL", database_url(dir))
        .current_dir(dir.path())
        .output()
        .expect("run llmrpc admin")
}

/// The first admin key, made on the database with no service running: stdout is the key alone.
fn first_admin_key(dir: &TempDir) -> String {
    let out = admin_cli(dir, &["keys", "create", "--team", "ops", "--role", "admin"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "llmrpc admin failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.strip_suffix('\n').unwrap_or(&stdout);
    assert!(
        !key.contains('\n') && key.starts_with("llmrpc-") && is_hex(&key[7..], 40),
        "stdout is not one key: {stdout:?}"
    );
    key.to_owned()
}

/// A key's public prefix: `llmrpc-` and its first 8 hex digits.
fn prefix(key: &str) -> &str {
    &key[..15]
}

/// An `llm.complete` whose reservation is easy to bound: `max_tokens` 10.
fn ask() -> Value {
    let mut p = params(MODEL);
    p["max_tokens"] = json!(10);
    p
}

fn openai_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello."}]})
}

/// Asserts a JSON-RPC refusal of the caller: the HTTP status, -32009 and the reason.
#[track_caller]
fn assert_denied(status: u16, answer: &Value, http: u16, reason: &str) {
    assert_eq!(status, http, "{answer}");
    assert_eq!(answer["error"]["code"], -32009, "{answer}");
    assert_eq!(answer["error"]["data"]["kind"], "unauthorized", "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], reason, "{answer}");
}

/// Polls `check` until it holds, failing after `PATIENCE` with the last value seen.
async fn eventually<T: std::fmt::Debug, F, Fut>(
    what: &str,
    mut probe: F,
    check: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = probe().await;
        if check(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: still {value:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A service with an admin key (so callers need keys), the test prices, and its OpenAI base URL
/// at `base`; the database lives in `dir`, which other replicas and the CLI may share.
struct Teams {
    service: Service,
    admin: String,
    dir: TempDir,
    config: std::path::PathBuf,
    base: String,
}

impl Teams {
    fn start(base: String) -> Teams {
        Teams::start_with(base, "")
    }

    /// With `settings` (top-level keys of the config file) before the prices.
    fn start_with(base: String, settings: &str) -> Teams {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("llmrpc.toml");
        std::fs::write(&config, format!("{settings}{PRICES}")).unwrap();
        let admin = first_admin_key(&dir);
        let service = replica(&dir, &config, &base);
        Teams {
            service,
            admin,
            dir,
            config,
            base,
        }
    }

    fn with(upstream: &MockServer) -> Teams {
        Teams::start(format!("{}/v1", upstream.uri()))
    }

    /// Another service on the same database: a second replica.
    fn replica(&self) -> Service {
        replica(&self.dir, &self.config, &self.base)
    }

    async fn call(&self, key: Option<&str>, method: &str, params: Value) -> (u16, Value) {
        call_on(&self.service, key, method, params).await
    }

    /// An admin method's result, called with the admin key.
    async fn admin(&self, method: &str, params: Value) -> Value {
        let (status, answer) = self.call(Some(&self.admin), method, params).await;
        assert_eq!(status, 200, "{method}: {answer}");
        assert!(answer["error"].is_null(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Creates a team; its id.
    async fn team(&self, settings: Value) -> String {
        let team = self.admin("admin.teams.create", settings).await;
        team["id"].as_str().expect("team id").to_owned()
    }

    /// A new key of `team` (id or name): the secret and what `admin.keys.create` said of it.
    async fn key(&self, team: &str, role: &str) -> (String, Value) {
        let info = self
            .admin("admin.keys.create", json!({"team_id": team, "role": role}))
            .await;
        let key = info["key"].as_str().expect("the new key").to_owned();
        assert_eq!(info["prefix"], prefix(&key));
        (key, info)
    }

    async fn revoke(&self, info: &Value) {
        let revoked = self
            .admin("admin.keys.revoke", json!({"id": info["id"]}))
            .await;
        assert!(revoked["revoked_at"].is_string(), "{revoked}");
    }

    async fn credits(&self, team: &str) -> f64 {
        let team = self.admin("admin.teams.get", json!({"id": team})).await;
        team["credits_usd"].as_f64().expect("credits")
    }

    /// Waits for the team's credits to read `expected` (reservations settle after the answer).
    async fn credits_become(&self, team: &str, expected: f64) {
        eventually(
            &format!("credits of {team} should become {expected}"),
            || self.credits(team),
            |c| *c == expected,
        )
        .await;
    }
}

/// A service on the database in `dir`, with the config file `config` and its OpenAI base URL at
/// `base`.
fn replica(dir: &TempDir, config: &std::path::Path, base: &str) -> Service {
    let url = database_url(dir);
    Service::start_with(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", base),
        ("LLMRPC_DATABASE_URL", &url),
        ("LLMRPC_CONFIG", config.to_str().unwrap()),
    ])
}

/// One JSON-RPC call (id `"req-1"`) over `POST /`, with `key` as bearer if any.
async fn call_on(
    service: &Service,
    key: Option<&str>,
    method: &str,
    params: Value,
) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": "req-1", "method": method, "params": params});
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    service.post_raw(body.to_string(), &headers).await
}

/// `POST /v1/chat/completions`, with `key` as bearer if any.
async fn openai_call(service: &Service, key: Option<&str>, body: Value) -> (u16, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let url = format!("{}/v1/chat/completions", service.url());
    post_to(url, body.to_string(), &headers).await
}

/// `llm.stream` over SSE with `key`: the HTTP status and the whole body as text.
async fn sse_call(service: &Service, key: Option<&str>, params: Value) -> (u16, String) {
    let mut request = service.sse_request(json!(7), params);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("SSE request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("SSE body"))
}

fn ws_request(service: &Service, key: Option<&str>) -> tungstenite::handshake::client::Request {
    let mut request = service.ws_url().into_client_request().unwrap();
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().unwrap();
        request.headers_mut().insert("authorization", value);
    }
    request
}

async fn ws_open(service: &Service, key: Option<&str>) -> Socket {
    tokio_tungstenite::connect_async(ws_request(service, key))
        .await
        .expect("WebSocket upgrade")
        .0
}

/// The HTTP status a WebSocket upgrade with `key` is refused with.
async fn ws_refusal(service: &Service, key: Option<&str>) -> u16 {
    match tokio_tungstenite::connect_async(ws_request(service, key)).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// One request over an open socket and its answer (the first text message back).
async fn ws_call(ws: &mut Socket, id: u64, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    ws.send(Message::text(request.to_string())).await.unwrap();
    loop {
        match ws.next().await.expect("socket open").expect("message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn calls_without_a_valid_key_are_refused_on_every_surface_and_never_sent() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    let (revoked, info) = t.key("ops", "caller").await;
    t.revoke(&info).await;

    for (key, reason) in [
        (None, "missing_key"),
        (Some(UNKNOWN_KEY), "unknown_key"),
        (Some("sk-not-one-of-ours"), "unknown_key"),
        (Some(revoked.as_str()), "revoked_key"),
    ] {
        let (status, answer) = t.call(key, "llm.complete", params(MODEL)).await;
        assert_denied(status, &answer, 401, reason);
        assert_eq!(answer["id"], "req-1", "{answer}");
        let trace_id = answer["error"]["data"]["trace_id"].as_str();
        assert!(trace_id.is_some_and(|t| !t.is_empty()), "{answer}");

        // SSE: a plain 401 with the JSON-RPC error as body, not an event stream.
        let (status, body) = sse_call(&t.service, key, params(MODEL)).await;
        let answer: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_denied(status, &answer, 401, reason);
        assert_eq!(answer["id"], 7, "{answer}");

        assert_eq!(ws_refusal(&t.service, key).await, 401, "{reason}");

        let (status, answer) = openai_call(&t.service, key, openai_body(MODEL)).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_api_key", "{answer}");
        assert_eq!(answer["error"]["type"], "authentication_error", "{answer}");
    }
    assert_eq!(received(&upstream).await.len(), 0);
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_on_its_replica_on_open_sockets_and_soon_on_others() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    let other = t.replica();
    let (http_key, http_info) = t.key("ops", "caller").await;
    let (ws_key, ws_info) = t.key("ops", "caller").await;

    let (status, answer) = t.call(Some(&http_key), "llm.complete", params(MODEL)).await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );
    // The other replica learns of a key made elsewhere on its first use.
    let (status, answer) = call_on(&other, Some(&http_key), "llm.complete", params(MODEL)).await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );
    let mut ws = ws_open(&t.service, Some(&ws_key)).await;
    let answer = ws_call(&mut ws, 1, "llm.complete", params(MODEL)).await;
    assert_eq!(answer["result"]["content"], "ok", "{answer}");

    t.revoke(&http_info).await;
    t.revoke(&ws_info).await;

    // Through the replica that revoked it: the very next call.
    let (status, answer) = t.call(Some(&http_key), "llm.complete", params(MODEL)).await;
    assert_denied(status, &answer, 401, "revoked_key");
    // The socket opened with it: its next calls, complete and stream.
    let answer = ws_call(&mut ws, 2, "llm.complete", params(MODEL)).await;
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["error"]["code"], -32009, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "revoked_key", "{answer}");
    let answer = ws_call(&mut ws, 3, "llm.stream", params(MODEL)).await;
    assert_eq!(answer["id"], 3, "{answer}");
    assert_eq!(answer["error"]["code"], -32009, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "revoked_key", "{answer}");
    assert_eq!(ws_refusal(&t.service, Some(&ws_key)).await, 401);
    // The other replica polls the database: it refuses the key within its poll interval.
    // (Probed with llm.models, which asks for a key like every method but costs no upstream
    // call.)
    let (status, answer) = eventually(
        "the other replica should refuse the revoked key",
        || call_on(&other, Some(&http_key), "llm.models", json!({})),
        |(status, _)| *status != 200,
    )
    .await;
    assert_denied(status, &answer, 401, "revoked_key");
    let (status, answer) = call_on(&other, Some(&http_key), "llm.complete", params(MODEL)).await;
    assert_denied(status, &answer, 401, "revoked_key");

    assert_eq!(received(&upstream).await.len(), 3);
}

#[tokio::test]
async fn admin_methods_need_an_admin_key_and_never_show_a_secret() {
    let upstream = MockServer::start().await;
    let t = Teams::with(&upstream);
    let (caller, _) = t.key("ops", "caller").await;

    let (status, answer) = t.call(Some(&caller), "admin.teams.list", json!({})).await;
    assert_denied(status, &answer, 403, "admin_only");
    assert_eq!(answer["id"], "req-1");
    // Nor may a caller mint itself an admin key.
    let mint = json!({"team_id": "ops", "role": "admin"});
    let (status, answer) = t.call(Some(&caller), "admin.keys.create", mint).await;
    assert_denied(status, &answer, 403, "admin_only");

    let teams = t.admin("admin.teams.list", json!({})).await;
    let names: Vec<&str> = teams
        .as_array()
        .unwrap()
        .iter()
        .map(|team| team["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ops"]);

    let (status, answer) = t.call(Some(&t.admin), "admin.keys.list", json!({})).await;
    assert_eq!(status, 200);
    let text = answer.to_string();
    assert!(
        !text.contains(&t.admin) && !text.contains(&caller),
        "{text}"
    );
    let keys = answer["result"].as_array().expect("a list of keys");
    assert_eq!(keys.len(), 2, "{text}");
    for key in keys {
        assert!(key.get("key").is_none(), "{key}");
        assert!(key.get("hash").is_none(), "{key}");
    }
    let prefixes: Vec<&Value> = keys.iter().map(|k| &k["prefix"]).collect();
    assert_eq!(prefixes, [prefix(&t.admin), prefix(&caller)]);

    // `llmrpc admin --url` goes through the same methods, with the same rule.
    let cli = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_llmrpc"))
            .args(["admin", "--url", &t.service.url(), "--api-key", key])
            .args(["--output", "json", "teams", "list"])
            .env_clear()
            .output()
            .expect("run llmrpc admin --url")
    };
    let refused = cli(&caller);
    assert!(!refused.status.success());
    let listed = cli(&t.admin);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed, teams);
}

#[tokio::test]
async fn a_team_calls_only_its_allowed_models() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    t.team(json!({"name": "quick", "allowed_models": ["fast"]}))
        .await;
    let (key, _) = t.key("quick", "caller").await;

    let (status, answer) = t.call(Some(&key), "llm.complete", params(MODEL)).await;
    assert_denied(status, &answer, 403, "model_not_allowed_for_team");
    let (status, body) = sse_call(&t.service, Some(&key), params(MODEL)).await;
    let answer: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_denied(status, &answer, 403, "model_not_allowed_for_team");
    let (status, answer) = openai_call(&t.service, Some(&key), openai_body(MODEL)).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["type"], "permission_error", "{answer}");
    assert_eq!(
        answer["error"]["code"], "model_not_allowed_for_team",
        "{answer}"
    );
    assert_eq!(answer["error"]["param"], "model", "{answer}");
    assert_eq!(received(&upstream).await.len(), 0);

    // The tier it lists, by its name: the tier's OpenAI model answers.
    let (status, answer) = t.call(Some(&key), "llm.complete", params("fast")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["content"], "ok", "{answer}");
    assert_eq!(answer["result"]["model"], "gpt-5-mini", "{answer}");
    // And one of the tier's models by its own name.
    let (status, answer) = t
        .call(Some(&key), "llm.complete", params("gpt-5-mini"))
        .await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );
    assert_eq!(received(&upstream).await.len(), 2);
}

/// A team that pays from credits calls only models with a price: an unpriced one (the built-in
/// table covers the catalog; `o1-pro` is routed to OpenAI by its prefix but has none) would cost
/// it nothing, so it is refused before anything goes upstream. A team without credits calls it.
#[tokio::test]
async fn a_team_with_credits_calls_only_priced_models() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    t.team(json!({"name": "paying", "credits_usd": 100.0}))
        .await;
    t.team(json!({"name": "free"})).await;
    let (paying, _) = t.key("paying", "caller").await;
    let (free, _) = t.key("free", "caller").await;

    for model in ["o1-pro", "openai/gpt-4.5-preview"] {
        let (status, answer) = t.call(Some(&paying), "llm.complete", params(model)).await;
        assert_denied(status, &answer, 403, "unpriced_model");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{model:?}"))
                && message.contains("team \"paying\" pays from its credits")
                && message.contains("[prices."),
            "{answer}"
        );
        let (status, body) = sse_call(&t.service, Some(&paying), params(model)).await;
        let answer: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_denied(status, &answer, 403, "unpriced_model");
        let (status, answer) = openai_call(&t.service, Some(&paying), openai_body(model)).await;
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["error"]["code"], "unpriced_model", "{answer}");
        assert_eq!(answer["error"]["param"], "model", "{answer}");
    }
    assert_eq!(received(&upstream).await.len(), 0);
    assert_eq!(t.credits("paying").await, 100.0);

    let (status, answer) = t.call(Some(&free), "llm.complete", params("o1-pro")).await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );
    assert_eq!(received(&upstream).await.len(), 1);
}

/// The reservation covers the whole request as sent: a 2.3 MB `response_format` schema with
/// `max_tokens: 1` once reserved 0.000006 USD and cost 0.23, and four 200 KB stop strings went
/// uncounted. And a team paying list prices may not ask for a tier billed otherwise.
#[tokio::test]
async fn the_worst_case_covers_the_whole_request_as_sent() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    t.team(json!({"name": "none-left", "credits_usd": 0.0}))
        .await;
    let (key, _) = t.key("none-left", "caller").await;
    // At 1 USD a token (PRICES), what a call reserves is its token bound.
    let needed = |params: Value| {
        let (t, key) = (&t, &key);
        async move {
            let (_, answer) = t.call(Some(key), "llm.complete", params).await;
            assert_eq!(answer["error"]["code"], -32010, "{answer}");
            answer["error"]["data"]["needed_usd"].as_f64().unwrap()
        }
    };
    let plain = needed(ask()).await;

    let mut schema = ask();
    schema["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "big",
        "schema": {"type": "object", "description": "x".repeat(2_300_000)}}});
    assert!(needed(schema).await >= plain + 2_300_000.0);
    let mut stops = ask();
    stops["stop"] = json!(vec!["s".repeat(200_000); 4]);
    assert!(needed(stops).await >= plain + 800_000.0);

    let mut tiered = openai_body(MODEL);
    tiered["service_tier"] = json!("priority");
    let (status, answer) = openai_call(&t.service, Some(&key), tiered).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("service_tier \"priority\""), "{answer}");
    assert_eq!(received(&upstream).await.len(), 0);
}

#[tokio::test]
async fn credits_pay_for_exactly_the_calls_that_fit_and_settle_to_the_real_cost() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    let team = t.team(json!({"name": "two", "credits_usd": 0.0})).await;
    let (key, _) = t.key("two", "caller").await;

    // What a call reserves, learnt from its refusal: at least its real worst case, 9 prompt
    // tokens and max_tokens 10 at 1 USD each.
    let (status, refused) = t.call(Some(&key), "llm.complete", ask()).await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["error"]["code"], -32010, "{refused}");
    let needed = refused["error"]["data"]["needed_usd"]
        .as_f64()
        .expect("needed_usd");
    assert!(needed >= 19.0, "{refused}");
    assert_eq!(refused["error"]["data"]["credits_usd"], 0.0, "{refused}");

    // Call k is admitted while what is left covers `needed`; each settles to 12 USD. With
    // 24 + needed - 1: 1st and 2nd fit (left: needed + 11, then needed - 1), the 3rd does not.
    let credits = 2.0 * CALL_COST + needed - 1.0;
    t.admin(
        "admin.teams.update",
        json!({"id": team, "credits_usd": credits}),
    )
    .await;
    for k in 1..=2 {
        let (status, answer) = t.call(Some(&key), "llm.complete", ask()).await;
        assert_eq!(
            (status, &answer["result"]["content"]),
            (200, &json!("ok")),
            "{answer}"
        );
        t.credits_become(&team, credits - CALL_COST * f64::from(k))
            .await;
    }
    let (status, answer) = t.call(Some(&key), "llm.complete", ask()).await;
    assert_eq!(status, 200, "{answer}");
    let error = &answer["error"];
    assert_eq!(error["code"], -32010, "{answer}");
    assert_eq!(error["data"]["kind"], "budget_exceeded", "{answer}");
    assert_eq!(error["data"]["team_id"], team.as_str(), "{answer}");
    assert_eq!(error["data"]["credits_usd"], needed - 1.0, "{answer}");
    assert_eq!(error["data"]["needed_usd"], needed, "{answer}");

    // The OpenAI surface answers the same refusal as OpenAI does a spent account.
    let mut body = openai_body(MODEL);
    body["max_tokens"] = json!(10);
    let (status, answer) = openai_call(&t.service, Some(&key), body).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "insufficient_quota", "{answer}");

    assert_eq!(received(&upstream).await.len(), 2);
    // Refusals take nothing.
    assert_eq!(t.credits(&team).await, credits - 2.0 * CALL_COST);
}

#[tokio::test]
async fn streams_and_the_openai_surface_are_charged_their_real_cost() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    let team = t
        .team(json!({"name": "streams", "credits_usd": 1000.0}))
        .await;
    let (key, _) = t.key("streams", "caller").await;
    // The mock's stream reports 5 + 3 tokens: 8 USD; its whole answer 12 USD.
    let mut left = 1000.0;

    let (status, body) = sse_call(&t.service, Some(&key), ask()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""done":true"#) && !body.contains("error"),
        "{body}"
    );
    left -= 8.0;
    t.credits_become(&team, left).await;

    let mut ws = ws_open(&t.service, Some(&key)).await;
    let answer = ws_call(&mut ws, 1, "llm.stream", ask()).await;
    assert!(
        answer["result"].is_number() || answer["result"].is_string(),
        "{answer}"
    );
    loop {
        let Message::Text(text) = ws.next().await.unwrap().unwrap() else {
            continue;
        };
        let chunk: Value = serde_json::from_str(text.as_str()).unwrap();
        assert!(chunk["params"]["result"]["error"].is_null(), "{chunk}");
        if chunk["params"]["result"]["done"] == true {
            break;
        }
    }
    left -= 8.0;
    t.credits_become(&team, left).await;

    let mut body = openai_body(MODEL);
    body["max_tokens"] = json!(10);
    let (status, answer) = openai_call(&t.service, Some(&key), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    left -= CALL_COST;
    t.credits_become(&team, left).await;
    body["stream"] = json!(true);
    let (status, answer) = openai_call(&t.service, Some(&key), body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.as_str().is_some_and(|s| s.contains("[DONE]")),
        "{answer}"
    );
    left -= 8.0;
    t.credits_become(&team, left).await;

    assert_eq!(received(&upstream).await.len(), 4);
}

#[tokio::test]
async fn a_stream_its_caller_abandons_is_charged_its_whole_reservation() {
    let chunk =
        json!({"choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]});
    let mut upstream = RawUpstream::start(Behaviour::SendThenHang(sse_prefix(&format!(
        "data: {chunk}\n\n"
    ))))
    .await;
    let t = Teams::start(format!("{}/v1", upstream.url));
    let team = t.team(json!({"name": "gone", "credits_usd": 0.0})).await;
    let (key, _) = t.key("gone", "caller").await;
    let (_, refused) = t.call(Some(&key), "llm.complete", ask()).await;
    let needed = refused["error"]["data"]["needed_usd"]
        .as_f64()
        .expect("needed_usd");
    t.admin(
        "admin.teams.update",
        json!({"id": team, "credits_usd": needed}),
    )
    .await;

    let mut p = ask();
    p["a2a_context"] = json!({"trace_id": "trace-abandoned"});
    let mut response = t
        .service
        .sse_request(json!(1), p)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("the first event");
    assert!(String::from_utf8_lossy(&first).contains("par"));
    drop(response);
    assert_eq!(upstream.next().await, Seen::Request);
    assert_eq!(upstream.next().await, Seen::Closed);

    // What the provider billed is never known: the team pays the most it could have cost.
    t.credits_become(&team, 0.0).await;
    let trace = eventually(
        "the abandoned call should be in the ledger",
        || t.admin("ops.trace", json!({"trace_id": "trace-abandoned"})),
        |trace| trace.as_array().is_some_and(|calls| !calls.is_empty()),
    )
    .await;
    assert_eq!(trace[0]["status"], "cancelled", "{trace}");
    assert_eq!(trace[0]["cost_usd"], needed, "{trace}");
    assert_eq!(trace[0]["team_id"], team.as_str(), "{trace}");
}

#[tokio::test]
async fn concurrent_calls_never_spend_more_than_the_credits_reserve() {
    let gate = Gate::start().await;
    let t = Teams::start(gate.base.clone());
    let team = t.team(json!({"name": "five", "credits_usd": 0.0})).await;
    let (key, _) = t.key("five", "caller").await;
    let (_, refused) = t.call(Some(&key), "llm.complete", ask()).await;
    let needed = refused["error"]["data"]["needed_usd"]
        .as_f64()
        .expect("needed_usd");
    let credits = 5.0 * needed;
    t.admin(
        "admin.teams.update",
        json!({"id": team, "credits_usd": credits}),
    )
    .await;

    // 40 at once. The upstream holds the admitted ones until every call is either at the
    // upstream or refused, so that no settlement can free credits while others are admitted.
    let refusals = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let (url, refusals) = (t.service.url(), Arc::clone(&refusals));
            let body =
                json!({"jsonrpc": "2.0", "id": i, "method": "llm.complete", "params": ask()});
            let auth = format!("Bearer {key}");
            tokio::spawn(async move {
                let answer = post_to(url, body.to_string(), &[("authorization", &auth)]).await;
                if answer.1["error"]["code"] == -32010 {
                    refusals.fetch_add(1, Ordering::SeqCst);
                }
                answer
            })
        })
        .collect();
    let accounted = || {
        let n = refusals.load(Ordering::SeqCst) + gate.arrived.load(Ordering::SeqCst);
        async move { n }
    };
    let deadline = Instant::now() + PATIENCE;
    while accounted().await < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.release.send(true).unwrap();

    let mut served = 0;
    for call in calls {
        let (status, answer) = call.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        match answer["error"]["code"].as_i64() {
            None => {
                assert_eq!(answer["result"]["content"], "ok", "{answer}");
                served += 1;
            }
            Some(-32010) => assert_eq!(answer["error"]["data"]["team_id"], team.as_str()),
            Some(_) => panic!("neither served nor refused for its budget: {answer}"),
        }
    }
    assert_eq!(served, 5);
    assert_eq!(refusals.load(Ordering::SeqCst), 35);
    assert_eq!(gate.arrived.load(Ordering::SeqCst), 5);
    t.credits_become(&team, credits - 5.0 * CALL_COST).await;
}

/// One team cannot take every slot of the service: beyond its share of the calls in flight
/// (`max_in_flight_per_team`, half the service's by default) its next call is refused at once
/// with `-32008`, naming it, while another team's call is served.
#[tokio::test]
async fn a_team_has_its_share_of_the_calls_in_flight_and_no_more() {
    let gate = Gate::start().await;
    let t = Teams::start_with(
        gate.base.clone(),
        "max_in_flight = 4\nmax_in_flight_per_team = 2\n",
    );
    t.team(json!({"name": "greedy"})).await;
    t.team(json!({"name": "other"})).await;
    let (greedy, _) = t.key("greedy", "caller").await;
    let (other, _) = t.key("other", "caller").await;
    let spawn_call = |key: &str| {
        let (url, auth) = (t.service.url(), format!("Bearer {key}"));
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": ask()});
        tokio::spawn(
            async move { post_to(url, body.to_string(), &[("authorization", &auth)]).await },
        )
    };
    let arrived = |n: usize| {
        let gate = &gate;
        async move {
            let deadline = Instant::now() + PATIENCE;
            while gate.arrived.load(Ordering::SeqCst) < n {
                assert!(
                    Instant::now() < deadline,
                    "{n} calls should reach the upstream"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    let held = [spawn_call(&greedy), spawn_call(&greedy)];
    arrived(2).await;
    let (status, answer) = t.call(Some(&greedy), "llm.complete", ask()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error"]["code"], -32008, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("team \"greedy\" is at its limit of 2"),
        "{answer}"
    );

    let served = spawn_call(&other);
    arrived(3).await;
    gate.release.send(true).unwrap();
    for call in held.into_iter().chain([served]) {
        let (status, answer) = call.await.unwrap();
        assert_eq!(
            (status, &answer["result"]["content"]),
            (200, &json!("ok")),
            "{answer}"
        );
    }
    assert_eq!(gate.arrived.load(Ordering::SeqCst), 3);
}

/// `llm.metrics` shows a caller key its team's calls only (it once showed every team's), and an
/// admin the service's.
#[tokio::test]
async fn llm_metrics_counts_a_callers_own_team() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let t = Teams::with(&upstream);
    t.team(json!({"name": "a"})).await;
    t.team(json!({"name": "b"})).await;
    let (key_a, _) = t.key("a", "caller").await;
    let (key_b, _) = t.key("b", "caller").await;
    for key in [&key_a, &key_a, &key_b] {
        let (_, answer) = t.call(Some(key), "llm.complete", params(MODEL)).await;
        assert_eq!(answer["result"]["content"], "ok", "{answer}");
    }
    let total = |key: String| {
        let t = &t;
        async move {
            let (_, answer) = t.call(Some(&key), "llm.metrics", json!({})).await;
            answer["result"]["total_requests"].clone()
        }
    };
    assert_eq!(total(key_a).await, 2);
    assert_eq!(total(key_b).await, 1);
    assert_eq!(total(t.admin.clone()).await, 3);
}

#[tokio::test]
async fn a_team_sees_only_its_own_calls_in_the_ledger() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let t = &Teams::with(&upstream);
    let a = t.team(json!({"name": "a"})).await;
    let b = t.team(json!({"name": "b"})).await;
    let (key_a, _) = t.key("a", "caller").await;
    let (key_b, _) = t.key("b", "caller").await;
    for (key, trace_id) in [(&key_a, "trace-of-a"), (&key_b, "trace-of-b")] {
        let mut p = params(MODEL);
        p["a2a_context"] = json!({"trace_id": trace_id});
        let (status, answer) = t.call(Some(key), "llm.complete", p).await;
        assert_eq!(
            (status, &answer["result"]["content"]),
            (200, &json!("ok")),
            "{answer}"
        );
    }

    let trace = |key: &str, trace_id: &str| {
        let key = key.to_owned();
        let params = json!({"trace_id": trace_id});
        async move {
            let (status, answer) = t.call(Some(&key), "ops.trace", params).await;
            assert_eq!(status, 200, "{answer}");
            answer["result"].clone()
        }
    };
    // Another team's trace reads exactly as a trace that does not exist.
    assert_eq!(trace(&key_b, "trace-of-a").await, json!([]));
    assert_eq!(trace(&key_b, "no-such-trace").await, json!([]));
    let own = trace(&key_a, "trace-of-a").await;
    let records = own.as_array().expect("records");
    assert_eq!(records.len(), 1, "{own}");
    assert_eq!(records[0]["team_id"], a.as_str());
    assert_eq!(records[0]["key_prefix"], prefix(&key_a));
    let shown = records[0]["key_prefix"].as_str().unwrap();
    assert!(
        shown.starts_with("llmrpc-") && is_hex(&shown[7..], 8),
        "{shown}"
    );
    assert!(!own.to_string().contains(&key_a), "{own}");
    assert_eq!(trace(&t.admin, "trace-of-a").await, own);

    let teams_in_usage = |key: &str| {
        let key = key.to_owned();
        async move {
            let (status, answer) = t
                .call(Some(&key), "ops.usage", json!({"group_by": "team"}))
                .await;
            assert_eq!(status, 200, "{answer}");
            let mut groups: Vec<(String, u64)> = answer["result"]["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .map(|g| {
                    (
                        g["key"].as_str().unwrap().to_owned(),
                        g["calls"].as_u64().unwrap(),
                    )
                })
                .collect();
            groups.sort();
            groups
        }
    };
    assert_eq!(teams_in_usage(&key_b).await, [(b.clone(), 1)]);
    assert_eq!(teams_in_usage(&key_a).await, [(a.clone(), 1)]);
    let mut both = vec![(a, 1), (b, 1)];
    both.sort();
    assert_eq!(teams_in_usage(&t.admin).await, both);
}

#[tokio::test]
async fn keys_appear_in_neither_the_logs_nor_the_ledger() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let t = Teams::with(&upstream);
    let (key, _) = t.key("ops", "caller").await;
    let (revoked, info) = t.key("ops", "caller").await;
    t.revoke(&info).await;

    let mut p = params(MODEL);
    p["a2a_context"] = json!({"trace_id": "trace-keys"});
    let (status, answer) = t.call(Some(&key), "llm.complete", p.clone()).await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );
    let (status, body) = sse_call(&t.service, Some(&key), p.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""done":true"#), "{body}");
    let mut ws = ws_open(&t.service, Some(&key)).await;
    let answer = ws_call(&mut ws, 1, "llm.complete", p).await;
    assert_eq!(answer["result"]["content"], "ok", "{answer}");
    let mut openai = openai_body(MODEL);
    openai["a2a_context"] = json!({"trace_id": "trace-keys"});
    let (status, answer) = openai_call(&t.service, Some(&key), openai).await;
    assert_eq!(status, 200, "{answer}");
    for refused in [UNKNOWN_KEY, revoked.as_str()] {
        let (status, _) = t.call(Some(refused), "llm.complete", params(MODEL)).await;
        assert_eq!(status, 401);
    }

    let secrets = [
        key.as_str(),
        revoked.as_str(),
        UNKNOWN_KEY,
        t.admin.as_str(),
    ];
    let trace = t
        .admin("ops.trace", json!({"trace_id": "trace-keys"}))
        .await;
    assert_eq!(trace.as_array().map(Vec::len), Some(4), "{trace}");
    let text = trace.to_string();
    assert!(text.contains(prefix(&key)), "{text}");
    for secret in secrets {
        assert!(!text.contains(secret), "{text}");
    }

    // The four answered calls are logged as finished and the two refusals as refused; the log
    // lines arrive through a pipe, a moment after the answers.
    eventually(
        "every call should be logged",
        || async {
            let logs = t.service.logs();
            let count = |what: &str| logs.iter().filter(|l| l.contains(what)).count();
            (count("call finished"), count("caller refused"))
        },
        |&(finished, refused)| finished >= 4 && refused >= 2,
    )
    .await;
    for line in t.service.logs() {
        for secret in secrets {
            assert!(!line.contains(secret), "a key in the logs: {line}");
        }
    }

    // Nor in the database file, whatever table: only hashes and prefixes are stored.
    let mut stored = Vec::new();
    for file in ["llmrpc.db", "llmrpc.db-wal"] {
        if let Ok(bytes) = std::fs::read(t.dir.path().join(file)) {
            stored.extend(bytes);
        }
    }
    let holds = |s: &str| stored.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(
        holds(prefix(&key)),
        "the database was not where the test looked"
    );
    for secret in secrets {
        assert!(!holds(secret), "{secret} is in the database");
    }
}

/// Runs `llmrpc serve` until it exits, which it must within 30 s.
fn serve_until_exit(dir: &TempDir, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .arg("serve")
        .env_clear()
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("LLMRPC_DATABASE_URL", database_url(dir))
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn llmrpc serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("llmrpc serve did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn without_keys_the_service_is_anonymous_on_loopback_only() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;

    // Loopback and no key: as before keys existed.
    let local = Service::start(&upstream, &[]);
    let answer = local.call("llm.complete", params(MODEL)).await;
    assert_eq!(answer["result"]["content"], "ok", "{answer}");

    // Any other address and no key: refuses to start, and says how to make one.
    let dir = tempfile::tempdir().unwrap();
    let out = serve_until_exit(&dir, &[("LLMRPC_ADDR", "0.0.0.0:0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("llmrpc admin keys create"), "{stderr}");

    // Unless LLMRPC_AUTH=off, with a warning.
    let open = Service::start(
        &upstream,
        &[("LLMRPC_ADDR", "0.0.0.0:0"), ("LLMRPC_AUTH", "off")],
    );
    open.wait_for_log(|l| l.contains(r#""level":"WARN""#) && l.contains("LLMRPC_AUTH=off"));
    let port = open.addr.rsplit(':').next().unwrap();
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": params(MODEL)});
    let (status, answer) = post_to(format!("http://127.0.0.1:{port}"), body.to_string(), &[]).await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );

    // With a key in the database, it starts on any address, and asks for keys.
    first_admin_key(&dir);
    let url = database_url(&dir);
    let keyed = Service::start(
        &upstream,
        &[("LLMRPC_ADDR", "0.0.0.0:0"), ("LLMRPC_DATABASE_URL", &url)],
    );
    let port = keyed.addr.rsplit(':').next().unwrap();
    let (status, answer) = post_to(format!("http://127.0.0.1:{port}"), body.to_string(), &[]).await;
    assert_denied(status, &answer, 401, "missing_key");

    // LLMRPC_AUTH=required asks for keys even before any exists.
    let required = Service::start(&upstream, &[("LLMRPC_AUTH", "required")]);
    let (status, answer) = call_on(&required, None, "llm.complete", params(MODEL)).await;
    assert_denied(status, &answer, 401, "missing_key");

    assert_eq!(received(&upstream).await.len(), 2);
}

#[tokio::test]
async fn a_socket_opened_before_the_first_key_needs_one_once_it_exists() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &["o", "k"]).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir);
    let service = Service::start(&upstream, &[("LLMRPC_DATABASE_URL", &url)]);
    let mut ws = ws_open(&service, None).await;
    let answer = ws_call(&mut ws, 1, "llm.complete", params(MODEL)).await;
    assert_eq!(answer["result"]["content"], "ok", "{answer}");

    // The first key, made anonymously on loopback as the contract allows: auth is on from now.
    let (_, team) = call_on(&service, None, "admin.teams.create", json!({"name": "ops"})).await;
    assert!(team["error"].is_null(), "{team}");
    let first = json!({"team_id": "ops", "role": "admin"});
    let (_, created) = call_on(&service, None, "admin.keys.create", first).await;
    let admin = created["result"]["key"].as_str().expect("a key").to_owned();
    let (status, answer) = call_on(&service, None, "llm.complete", params(MODEL)).await;
    assert_denied(status, &answer, 401, "missing_key");

    // The anonymous socket is refused too, for every method that needs a caller.
    for (id, method, params) in [
        (2, "llm.complete", params(MODEL)),
        (3, "llm.stream", params(MODEL)),
        (4, "ops.trace", json!({"trace_id": "anything"})),
        (5, "ops.usage", json!({})),
        (6, "admin.teams.list", json!({})),
    ] {
        let answer = ws_call(&mut ws, id, method, params).await;
        assert_eq!(answer["error"]["code"], -32009, "{method}: {answer}");
        assert_eq!(
            answer["error"]["data"]["reason"], "missing_key",
            "{method}: {answer}"
        );
    }
    let (status, _) = call_on(&service, Some(&admin), "llm.models", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(received(&upstream).await.len(), 1);
}

#[test]
fn the_admin_cli_works_on_the_database_with_no_service() {
    let dir = tempfile::tempdir().unwrap();
    let out = admin_cli(
        &dir,
        &[
            "--output",
            "json",
            "teams",
            "create",
            "--name",
            "x",
            "--credits",
            "5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let team: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(
        team["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{team}"
    );
    assert_eq!(team["name"], "x");
    assert_eq!(team["credits_usd"], 5.0);

    // Team ops does not exist yet: made on the way, and stdout is the key alone.
    let key = first_admin_key(&dir);
    let out = admin_cli(&dir, &["--output", "json", "teams", "list"]);
    let teams: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let names: Vec<&str> = teams
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "ops"]);

    let out = admin_cli(&dir, &["--output", "json", "keys", "list"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains(&key), "{stdout}");
    let keys: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(keys[0]["prefix"], prefix(&key));
    assert_eq!(keys[0]["role"], "admin");
}

#[tokio::test]
async fn a_team_over_its_requests_per_minute_is_refused_before_the_upstream() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let t = Teams::with(&upstream);
    t.team(json!({"name": "slow", "requests_per_minute": 2}))
        .await;
    let (key, _) = t.key("slow", "caller").await;
    for _ in 0..2 {
        let (status, answer) = t.call(Some(&key), "llm.complete", params(MODEL)).await;
        assert_eq!(
            (status, &answer["result"]["content"]),
            (200, &json!("ok")),
            "{answer}"
        );
    }
    let (status, answer) = t.call(Some(&key), "llm.complete", params(MODEL)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    assert_eq!(answer["error"]["data"]["kind"], "rate_limited", "{answer}");
    let wait = answer["error"]["data"]["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!(wait > 0 && wait <= 60_000, "{answer}");
    assert_eq!(received(&upstream).await.len(), 2);

    // Another team's calls are not held back by it.
    let (status, answer) = t.call(Some(&t.admin), "llm.complete", params(MODEL)).await;
    assert_eq!(
        (status, &answer["result"]["content"]),
        (200, &json!("ok")),
        "{answer}"
    );
    assert_eq!(received(&upstream).await.len(), 3);
}
