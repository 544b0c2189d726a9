//! What keeps calls correct when providers misbehave: retries with backoff, circuit breakers,
//! client-side rate limits, rate limits shared by the replicas, and the call deadline.

pub mod breaker;
mod deadline;
pub mod limits;
pub mod rate;
pub mod retry;

pub use breaker::{Breaker, BreakerPolicy, BreakerState};
pub use deadline::Deadline;
pub use limits::Limiter;
pub use rate::{RateLimits, Rule};
pub use retry::RetryPolicy;
