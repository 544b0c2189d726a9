//! Reading a request's body, for every surface alike, within the service's size limit.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::reply::BoxError;

/// Reads a request body of at most `limit` bytes; `None` when it is larger. The excess is read
/// and dropped (up to a bound) so that a caller still sending gets the 413 rather than a reset
/// connection.
pub async fn read(mut body: Incoming, limit: usize) -> Result<Option<Bytes>, BoxError> {
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
