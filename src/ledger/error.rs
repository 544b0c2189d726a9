//! The ledger's one error type, shared by the stores, the writer and the accounts.

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Carries only the scheme: the rest of a URL may hold a password.
    #[error("unsupported ledger database URL scheme {0:?}: use sqlite:… or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the ledger's directory: {0}")]
    CreateDir(std::io::Error),
    #[error("ledger database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the ledger writer has stopped")]
    Closed,
    /// An outage is under way: the writer holds the records until the database is back.
    #[error("the ledger database is unavailable ({held} records held for it): {reason}")]
    Unavailable { held: usize, reason: String },
    #[error("ledger data: {0}")]
    Corrupt(String),
}
