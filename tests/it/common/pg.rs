//! A PostgreSQL database of a test's own on the server at `LLMRPC_TEST_POSTGRES_URL`, created for
//! it and dropped after it.

use std::time::Duration;

use sqlx::Connection;

/// A database of its own on the test server, dropped with this.
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    /// Panics when no server answers: the test was asked to run (it is ignored otherwise).
    pub async fn new() -> Self {
        let admin_url = std::env::var("LLMRPC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let connected = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await;
        let mut admin = match connected {
            Ok(Ok(conn)) => conn,
            failed => {
                let why = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => "timed out".into(),
                };
                panic!("no PostgreSQL at {admin_url} (set LLMRPC_TEST_POSTGRES_URL): {why}");
            }
        };
        let name = format!("llmrpc_test_{:032x}", fastrand::u128(..));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let (server, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDb {
    /// Drops the database even when the test failed; on a thread of its own, because this
    /// runs inside the test's runtime.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&sql).execute(&mut admin).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}
