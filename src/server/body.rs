//! Reading a request's body, for every surface alike: within the size limit, and within a
//! deadline, so that a caller trickling a body (a byte every few seconds of a gigabyte it
//! declared) holds its connection for no longer than the deadline.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::reply::BoxError;

/// What a body may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// A body that could not be taken whole.
pub enum Refused {
    /// Larger than the limit.
    TooLarge,
    /// Not all there by the deadline.
    TooSlow,
}

/// What of a refused caller's body is read, to answer under its request's id and trace: the
/// start of a small JSON-RPC request, and not a moment longer than it takes to arrive at once.
const REFUSAL_BYTES: usize = 64 * 1024;
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// Reads a whole request body within `limits`. The excess of a body over the size limit is read
/// and dropped (up to a bound, and within the deadline) so that a caller still sending gets the
/// 413 rather than a reset connection.
pub async fn read(body: Incoming, limits: Limits) -> Result<Result<Bytes, Refused>, BoxError> {
    match tokio::time::timeout(limits.timeout, collect(body, limits.max_bytes)).await {
        Ok(read) => Ok(read?.ok_or(Refused::TooLarge)),
        Err(_) => Ok(Err(Refused::TooSlow)),
    }
}

/// The body of a request that is refused for its key, when it is small and already there:
/// the refusal names the request's id and trace from it. Anything else is not waited for.
pub async fn of_refused(body: Incoming) -> Option<Bytes> {
    let read = tokio::time::timeout(REFUSAL_WAIT, collect(body, REFUSAL_BYTES)).await;
    read.ok()?.ok()?
}

/// The body, or `None` when it is over `limit`.
async fn collect(mut body: Incoming, limit: usize) -> Result<Option<Bytes>, BoxError> {
    const DRAIN: usize = 64 * 1024 * 1024;
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit + DRAIN {
            break;
        }
    }
    Ok((seen <= limit).then(|| kept.freeze()))
}
