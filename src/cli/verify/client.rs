//! The wire as `llmrpc verify` speaks it: JSON-RPC through the command line's one client
//! (`cli::rpc_client`), with the reasons verify gives when a call goes wrong, and plain requests
//! for the other surfaces, each carrying the caller key when there is one. It knows nothing of
//! the cases: what an answer must hold is theirs.

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::api::{Method, Subscription};
use crate::cli::rpc_client::{CallError, RpcClient};
use crate::sse;

pub(crate) use crate::cli::rpc_client::Socket;

/// The service verified, and the key every request carries.
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    rpc: RpcClient,
}

impl Client {
    /// `url` without its trailing `/`, as it is reported; JSON-RPC goes to its `/`.
    pub(crate) fn new(http: reqwest::Client, url: &str, key: Option<String>) -> Client {
        let url = url.trim_end_matches('/').to_owned();
        Client {
            rpc: RpcClient::new(http.clone(), format!("{url}/"), key),
            http,
            url,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A POST to `url`, absolute: the A2A case posts where the agent card says.
    pub(crate) fn post_to(&self, url: &str) -> reqwest::RequestBuilder {
        self.rpc.authorized(self.http.post(url))
    }

    /// A POST to `path` of the service.
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.post_to(&format!("{}{path}", self.url))
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.rpc
            .authorized(self.http.get(format!("{}{path}", self.url)))
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        format!("cannot reach {}: {e}", self.url)
    }

    /// One JSON-RPC call over HTTP: the whole response object.
    pub(crate) async fn rpc<M: Method>(&self, params: Value) -> Result<Value, String> {
        self.rpc
            .answer::<M>(&params, None)
            .await
            .map_err(|e| match e {
                CallError::Unreachable(e) => self.unreachable(&e),
                CallError::NotJson(e) => format!("{}: the answer is not JSON: {e}", M::NAME),
                CallError::Failed(error) => format!("{} failed: {error}", M::NAME),
            })
    }

    /// One JSON-RPC call over HTTP: its result, or its error as the reason.
    pub(crate) async fn result<M: Method>(&self, params: Value) -> Result<Value, String> {
        let answer = self.rpc::<M>(params).await?;
        match answer.get("error") {
            Some(error) => Err(format!("{} failed: {error}", M::NAME)),
            None => Ok(answer["result"].clone()),
        }
    }

    /// A call of `M` answered as Server-Sent Events: each event's data, until the stream ends
    /// or breaks (a break is the last item).
    pub(crate) async fn sse<M: Subscription>(
        &self,
        params: Value,
    ) -> Result<impl Stream<Item = Result<String, String>>, String> {
        let response = self
            .rpc
            .events::<M>(&params, None)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let events = sse::decode(response.bytes_stream());
        Ok(events.map(|event| event.map(|e| e.data).map_err(|e| e.to_string())))
    }

    /// A WebSocket on `/` (the key on its upgrade), with one call of `M` sent on it.
    pub(crate) async fn subscribe<M: Subscription>(
        &self,
        params: impl Serialize,
    ) -> Result<Socket, String> {
        self.rpc.subscribe::<M>(&params).await
    }
}
