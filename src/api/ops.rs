//! The operators' methods, read from the call ledger: `ops.trace` and `ops.usage`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::method::Method;
use crate::ledger::{CallRecord, GroupBy};

/// Every call of one trace id.
pub(crate) struct Trace;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceParams {
    pub(crate) trace_id: String,
}

impl Method for Trace {
    const NAME: &'static str = "ops.trace";
    type Params = TraceParams;
    type Result = Vec<CallRecord>;
}

/// Calls, errors, tokens and cost in a window, grouped.
pub(crate) struct Usage;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageParams {
    /// RFC 3339; absent: a day before `until`.
    pub(crate) since: Option<String>,
    /// RFC 3339; absent: now.
    pub(crate) until: Option<String>,
    pub(crate) group_by: Option<GroupBy>,
}

impl Method for Usage {
    const NAME: &'static str = "ops.usage";
    type Params = UsageParams;
    /// The window as read, the grouping and the groups.
    type Result = Value;
}
