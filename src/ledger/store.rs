//! The contract of a ledger backend ([`Store`]), and how each applies the migrations compiled
//! into the binary.

use std::borrow::Cow;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::error::LedgerError;
use super::record::{CallRecord, GroupBy, UsageRow};

/// Where records are kept. Timestamps are unix milliseconds.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies the migrations this backend ships; idempotent.
    async fn migrate(&self) -> Result<(), LedgerError>;

    /// Writes `records` in one transaction.
    async fn insert(&self, records: &[CallRecord]) -> Result<(), LedgerError>;

    /// Every call of `trace_id`, oldest first.
    async fn trace(&self, trace_id: &str) -> Result<Vec<CallRecord>, LedgerError>;

    /// The call that ran as the A2A task `task_id`.
    async fn task(&self, task_id: &str) -> Result<Option<CallRecord>, LedgerError>;

    /// Totals of the calls started in `[since_ms, until_ms)` (of one team's, with `team`),
    /// ordered by key, calls without one last.
    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        group_by: GroupBy,
        team: Option<&str>,
    ) -> Result<Vec<UsageRow>, LedgerError>;

    /// Deletes the calls started before `older_than_ms`; returns how many.
    async fn prune(&self, older_than_ms: i64) -> Result<u64, LedgerError>;
}

/// Migrations compiled into the binary, so that a deployment is the binary alone.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The migrator of one backend's embedded migrations.
pub(super) async fn migrator(
    migrations: &'static [(i64, &'static str, &'static str)],
) -> Result<Migrator, LedgerError> {
    Ok(Migrator::new(Embedded(migrations)).await?)
}
