//! The operators' methods, read from the call ledger: `ops.trace` and `ops.usage`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::method::methods;
use crate::ledger::{CallRecord, GroupBy};

methods! {
    /// Every call of one trace id.
    Trace = "ops.trace": TraceParams => Vec<CallRecord>;
    /// Calls, errors, tokens and cost in a window, grouped: the window as read, the grouping
    /// and the groups.
    Usage = "ops.usage": UsageParams => Value;
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceParams {
    pub(crate) trace_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageParams {
    /// RFC 3339; absent: a day before `until`.
    pub(crate) since: Option<String>,
    /// RFC 3339; absent: now.
    pub(crate) until: Option<String>,
    pub(crate) group_by: Option<GroupBy>,
}
