//! What callers see when what the service stands on fails under it: the ledger's database going
//! away and coming back, the SQLite file locked by another process, the OpenTelemetry collector
//! not answering. Calls are answered throughout; records are held and written later, or counted.
//! The PostgreSQL test is `#[ignore]`d like the others that need a server (`make test` runs it
//! with `--ignored postgres::` when PostgreSQL answers, and always under `CI=true`).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use wiremock::MockServer;

use common::{Service, mount_openai, params};

/// Completes `model` once and returns the answer's content: every call must be answered.
async fn complete(service: &Service, i: usize) -> String {
    let answer = service
        .post(&json!({"jsonrpc": "2.0", "id": i, "method": "llm.complete", "params": params("gpt-4o-mini")}))
        .await;
    assert_eq!(answer.0, 200, "{answer:?}");
    answer.1["result"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("call {i} not answered: {}", answer.1))
        .to_owned()
}

/// Reads one counter off `/metrics`.
async fn metric(service: &Service, name: &str) -> f64 {
    let text = service.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Polls `count` until it gives `want`, for at most `limit`.
async fn until_count<F, Fut>(limit: Duration, want: i64, mut count: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let deadline = Instant::now() + limit;
    loop {
        let got = count().await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{got} rows, expected {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP relay to a server that can be cut (every connection closed, new ones closed at once, as
/// a stopped server's are) and restored, standing for the database being stopped and started.
struct Relay {
    addr: String,
    up: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<JoinSet<()>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let (up2, connections2) = (Arc::clone(&up), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                connections2.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay {
            addr,
            up,
            connections,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().unwrap().abort_all();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

mod postgres {
    use super::*;
    use common::pg::PgDb;

    /// PostgreSQL stopped under load and started again: every call is answered meanwhile,
    /// `ops.trace` says at once that the ledger cannot be read (instead of hanging on it), the
    /// records are held, and when the database is back the service reconnects by itself and
    /// writes every one of them: none dropped, none failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL at LLMRPC_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres); make test runs it when that answers or CI=true"]
    async fn the_ledger_holds_its_records_while_its_database_is_away() {
        let db = PgDb::new().await;
        let (server, name) = db.url.rsplit_once('/').unwrap();
        let authority = server.rsplit_once('@').map_or(server, |(_, a)| a);
        let authority = authority.trim_start_matches("postgres://");
        let relay = Relay::start(authority.to_owned()).await;
        let relayed = db.url.replace(authority, &relay.addr);
        assert!(relayed.ends_with(name));
        let upstream = MockServer::start().await;
        mount_openai(&upstream, "fine", &[]).await;
        let service = Service::start(&upstream, &[("LLMRPC_DATABASE_URL", relayed.as_str())]);
        let rows = || async {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM calls")
                .fetch_one(&mut c)
                .await
                .unwrap();
            n
        };

        for i in 0..10 {
            assert_eq!(complete(&service, i).await, "fine");
        }
        until_count(Duration::from_secs(10), 10, rows).await;

        relay.cut();
        for i in 10..40 {
            assert_eq!(complete(&service, i).await, "fine");
        }
        service.wait_for_log(|l| l.contains("ledger database unavailable"));
        let asked = Instant::now();
        let trace = service
            .call(
                "ops.trace",
                json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}),
            )
            .await;
        assert_eq!(trace["error"]["code"], -32603, "{trace}");
        assert!(
            trace["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the call ledger cannot be read"),
            "{trace}"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "ops.trace waited for the database"
        );
        assert_eq!(rows().await, 10, "written while the database was away");

        relay.restore();
        until_count(Duration::from_secs(20), 40, rows).await;
        service.wait_for_log(|l| l.contains("ledger database back"));
        assert_eq!(metric(&service, "llm_ledger_dropped_total").await, 0.0);
        assert_eq!(metric(&service, "llm_ledger_failed_total").await, 0.0);
        let trace = service
            .call(
                "ops.trace",
                json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}),
            )
            .await;
        assert_eq!(trace["result"], json!([]), "{trace}");
    }
}

/// Another process holding SQLite's write lock (a backup, an operator's shell) for longer than
/// the busy timeout: the calls are answered, the records wait, and are written once it lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_wait_for_a_locked_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ledger.db");
    let url = format!("sqlite://{}", file.display());
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "fine", &[]).await;
    let service = Service::start(&upstream, &[("LLMRPC_DATABASE_URL", url.as_str())]);
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();

    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    for i in 0..10 {
        assert_eq!(complete(&service, i).await, "fine");
    }
    service.wait_for_log(|l| l.contains("ledger database unavailable"));
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    drop(other);
    until_count(Duration::from_secs(20), 10, || async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlite_rows(&mut c).await
    })
    .await;
    assert_eq!(metric(&service, "llm_ledger_failed_total").await, 0.0);
}

async fn sqlite_rows(c: &mut sqlx::SqliteConnection) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM calls")
        .fetch_one(c)
        .await
        .unwrap();
    n
}

/// An OpenTelemetry collector that accepts connections and never answers: calls are answered as
/// without one, also while the exporter is stuck on it, and the service still stops promptly
/// when told to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_costs_the_calls_nothing() {
    let collector = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    // Each connection accepted is held open (never answered) and reported.
    let (accepted, mut connections) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = collector.accept().await {
            held.push(socket);
            let _ = accepted.send(());
        }
    });
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "fine", &[]).await;
    let mut service = Service::start(
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let calls: Vec<_> = (0..50).map(|i| complete(&service, i)).collect();
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|a| a == "fine"));
    // The batch exporter sends the spans of those calls at its next tick, 100 ms on: the calls
    // may well have been answered before it tried, so wait for its connection.
    tokio::time::timeout(Duration::from_secs(10), connections.recv())
        .await
        .expect("the exporter never tried the collector")
        .expect("the collector stopped");
    // Now the exporter is stuck on the collector: more calls, answered all the same.
    let calls: Vec<_> = (50..100).map(|i| complete(&service, i)).collect();
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|a| a == "fine"));
    let health: Value = common::http_client()
        .get(format!("{}/health", service.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");

    let stop = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &service.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = service
        .wait_exit(Duration::from_secs(30))
        .expect("the service did not stop");
    assert!(exit.success(), "{exit:?}");
    println!(
        "stopped {:?} after SIGTERM with a hanging collector",
        stop.elapsed()
    );
}
