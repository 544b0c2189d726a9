//! The call's deadline: one budget for the whole call, which the retries, the queues of the
//! limits and the stream all wait within.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::types::ProviderName;

/// The call's overall deadline, retries, fallbacks and streaming included.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    budget: Duration,
}

impl Deadline {
    pub fn start(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of the deadline and `limit` from now, for one wait within the call.
    pub fn within(&self, limit: Duration) -> Instant {
        self.at.min(Instant::now() + limit)
    }

    pub fn expired(&self, provider: ProviderName) -> Error {
        let ms = self.budget.as_millis();
        Error::new(
            ErrorKind::Timeout,
            format!("the call's deadline of {ms} ms passed"),
        )
        .with_provider(provider)
    }
}
