//! Two `llmrpc serve` processes sharing one PostgreSQL database and one Redis, as replicas behind a
//! load balancer do: a team's credits and requests per minute hold across both, so two replicas
//! never serve more than one would. The tests are `#[ignore]`d, so that a machine without the
//! servers reports them as ignored: `make test` runs them (`--ignored postgres::`) when
//! PostgreSQL answers, and always when `CI=true`.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::gate::Gate;
use common::pg::PgDb;
use common::{OPENAI_KEY, Service, completion_body, received};

/// 1 USD per token, so that a call of 9 + 3 tokens costs 12 USD.
const PRICES: &str = r#"
[prices."openai/gpt-4.1-mini"]
input = 1000000.0
output = 1000000.0
"#;

/// Two replicas on one database and one Redis, and an admin key.
struct Pair {
    replicas: [Service; 2],
    admin: String,
    _db: PgDb,
    _config: tempfile::TempDir,
}

/// An OpenAI upstream that answers every call at once.
async fn answering() -> MockServer {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion_body("hi")))
        .mount(&upstream)
        .await;
    upstream
}

impl Pair {
    /// Both replicas send their OpenAI calls to `openai_base`.
    async fn start(openai_base: &str) -> Self {
        let db = PgDb::new().await;
        let admin = admin_cli(
            &db.url,
            &["keys", "create", "--team", "ops", "--role", "admin"],
        );
        let config = tempfile::tempdir().unwrap();
        let config_file = config.path().join("llmrpc.toml");
        std::fs::write(&config_file, PRICES).unwrap();
        let redis = std::env::var("LLMRPC_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let env = [
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("OPENAI_BASE_URL", openai_base),
            ("LLMRPC_DATABASE_URL", db.url.as_str()),
            ("LLMRPC_REDIS_URL", redis.as_str()),
            ("LLMRPC_CONFIG", config_file.to_str().unwrap()),
        ];
        let replicas = [Service::start_with(&env), Service::start_with(&env)];
        Self {
            replicas,
            admin: admin.trim().to_owned(),
            _db: db,
            _config: config,
        }
    }

    /// Calls `method` on replica `i` with `key`; the whole JSON-RPC response.
    async fn call(&self, i: usize, key: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let auth = format!("Bearer {key}");
        let (_, answer) = self.replicas[i]
            .post_raw(body.to_string(), &[("authorization", auth.as_str())])
            .await;
        answer
    }

    async fn admin(&self, method: &str, params: Value) -> Value {
        let answer = self.call(0, &self.admin, method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// A team with these settings and a caller key of it.
    async fn team(&self, settings: Value) -> (String, String) {
        let mut params = json!({"name": format!("team-{:x}", fastrand::u64(..))});
        params
            .as_object_mut()
            .unwrap()
            .extend(settings.as_object().unwrap().clone());
        let team = self.admin("admin.teams.create", params).await;
        let id = team["id"].as_str().unwrap().to_owned();
        let key = self
            .admin(
                "admin.keys.create",
                json!({"team_id": id, "role": "caller"}),
            )
            .await;
        (id, key["key"].as_str().unwrap().to_owned())
    }
}

/// Runs `llmrpc admin` on the database directly; its standard output.
fn admin_cli(database_url: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env("LLMRPC_DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn ask() -> Value {
    json!({"model": "openai/gpt-4.1-mini", "max_tokens": 5,
           "messages": [{"role": "user", "content": "Say hello."}]})
}

/// The reservation one call of [`ask`] needs, from the refusal of a team without credits.
async fn reservation(pair: &Pair) -> f64 {
    let (_, key) = pair.team(json!({"credits_usd": 0.0})).await;
    let refused = pair.call(0, &key, "llm.complete", ask()).await;
    assert_eq!(refused["error"]["code"], -32010, "{refused}");
    refused["error"]["data"]["needed_usd"].as_f64().unwrap()
}

async fn credits(pair: &Pair, team: &str) -> f64 {
    pair.admin("admin.teams.get", json!({"id": team})).await["credits_usd"]
        .as_f64()
        .unwrap()
}

mod postgres {
    use super::*;

    /// Credits for five calls' reservations, twenty calls at once spread over both replicas: the
    /// reservations are one atomic update in the shared database, so at most five are sent.
    #[tokio::test]
    #[ignore = "needs PostgreSQL (LLMRPC_TEST_POSTGRES_URL) and Redis (LLMRPC_TEST_REDIS_URL); make test runs it when PostgreSQL answers or CI=true"]
    async fn credits_hold_across_replicas() {
        let gate = Gate::start().await;
        let pair = Pair::start(&gate.base).await;
        let needed = reservation(&pair).await;
        let budget = 5.0 * needed;
        let (team, key) = pair.team(json!({"credits_usd": budget})).await;
        // The upstream holds the admitted calls until every call is either there or refused, so
        // that no settlement can free credits while others are still being admitted.
        let refusals = &AtomicUsize::new(0);
        let (pair, key) = (&pair, key.as_str());
        let calls = (0..20).map(|i| async move {
            let answer = pair.call(i % 2, key, "llm.complete", ask()).await;
            if answer["error"]["code"] == -32010 {
                refusals.fetch_add(1, Ordering::SeqCst);
            }
            answer
        });
        let release = async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while refusals.load(Ordering::SeqCst) + gate.arrived.load(Ordering::SeqCst) < 20 {
                assert!(
                    Instant::now() < deadline,
                    "not every call was admitted or refused"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            gate.release.send(true).unwrap();
        };
        let (answers, ()) = tokio::join!(futures::future::join_all(calls), release);
        let served = answers.iter().filter(|a| a.get("result").is_some()).count();
        let refused = answers
            .iter()
            .filter(|a| a["error"]["code"] == -32010)
            .count();
        assert_eq!(served + refused, 20, "{answers:#?}");
        // Every reservation was taken before the first answer came back: exactly five.
        assert_eq!(served, 5, "{answers:#?}");
        assert_eq!(gate.arrived.load(Ordering::SeqCst), 5);
        // Settled on both replicas to the real cost: 12 USD a call.
        let expected = budget - 12.0 * served as f64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while (credits(pair, &team).await - expected).abs() > 1e-6 {
            assert!(Instant::now() < deadline, "credits never settled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Three requests a minute for the team: the fourth is refused on either replica, because
    /// both count in Redis.
    #[tokio::test]
    #[ignore = "needs PostgreSQL (LLMRPC_TEST_POSTGRES_URL) and Redis (LLMRPC_TEST_REDIS_URL); make test runs it when PostgreSQL answers or CI=true"]
    async fn requests_per_minute_hold_across_replicas() {
        let upstream = answering().await;
        let pair = Pair::start(&format!("{}/v1", upstream.uri())).await;
        let (_, key) = pair.team(json!({"requests_per_minute": 3})).await;
        for i in 0..3 {
            let answer = pair.call(i % 2, &key, "llm.complete", ask()).await;
            assert!(answer.get("result").is_some(), "call {i}: {answer}");
        }
        for i in 0..2 {
            let answer = pair.call(i, &key, "llm.complete", ask()).await;
            assert_eq!(answer["error"]["code"], -32002, "replica {i}: {answer}");
            assert!(answer["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);
        }
        assert_eq!(received(&upstream).await.len(), 3);
    }

    /// A key revoked through one replica is refused by the other within a second.
    #[tokio::test]
    #[ignore = "needs PostgreSQL (LLMRPC_TEST_POSTGRES_URL) and Redis (LLMRPC_TEST_REDIS_URL); make test runs it when PostgreSQL answers or CI=true"]
    async fn revocation_reaches_the_other_replica_within_a_second() {
        let upstream = answering().await;
        let pair = Pair::start(&format!("{}/v1", upstream.uri())).await;
        let (_, key) = pair.team(json!({})).await;
        let works = pair.call(1, &key, "llm.complete", ask()).await;
        assert!(works.get("result").is_some(), "{works}");
        let keys = pair.admin("admin.keys.list", json!({})).await;
        let id = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| key.starts_with(k["prefix"].as_str().unwrap()) && k["role"] == "caller")
            .unwrap()["id"]
            .clone();
        pair.admin("admin.keys.revoke", json!({"id": id})).await;
        let revoked = Instant::now();
        loop {
            let answer = pair.call(1, &key, "llm.complete", ask()).await;
            if answer["error"]["data"]["reason"] == "revoked_key" {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_millis(1500),
                "replica 1 still serves a revoked key: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
