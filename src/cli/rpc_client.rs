//! The one JSON-RPC client of the command line: calls by the catalogue's methods (`crate::api`)
//! over `POST`, `llm.stream` as Server-Sent Events or as a WebSocket subscription, each request
//! carrying the caller key when there is one. `complete`, `stream`, `models`, `trace`, `admin`
//! and `verify` all speak through it; what a failure reads like is each command's own.

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::api::{Method, Subscription};

/// A service's JSON-RPC endpoint, and the key every request carries.
pub(crate) struct RpcClient {
    http: reqwest::Client,
    endpoint: String,
    key: Option<String>,
}

/// Why a call has no result.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The request did not get through.
    Unreachable(reqwest::Error),
    /// The answer is not a JSON body.
    NotJson(reqwest::Error),
    /// The service answered with this JSON-RPC error object.
    Failed(Value),
}

impl RpcClient {
    /// `endpoint` is where the calls are posted, exactly as given.
    pub(crate) fn new(http: reqwest::Client, endpoint: String, key: Option<String>) -> Self {
        RpcClient {
            http,
            endpoint,
            key,
        }
    }

    /// `request` with the caller key, when there is one.
    pub(crate) fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Posts a call of `M`. The params are those of `M`, as the caller can build them (the
    /// method's params type, or JSON); `a2a_context` goes beside them, in the request.
    async fn send<M: Method>(
        &self,
        params: &impl Serialize,
        a2a_context: Option<&Value>,
        events: bool,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut post = self.authorized(self.http.post(&self.endpoint));
        if events {
            post = post.header("accept", "text/event-stream");
        }
        post.json(&request::<M>(params, a2a_context)).send().await
    }

    /// One call of `M`: the whole response object, error or result.
    pub(crate) async fn answer<M: Method>(
        &self,
        params: &impl Serialize,
        a2a_context: Option<&Value>,
    ) -> Result<Value, CallError> {
        let response = self
            .send::<M>(params, a2a_context, false)
            .await
            .map_err(CallError::Unreachable)?;
        response.json().await.map_err(CallError::NotJson)
    }

    /// One call of `M`: its result, as the service sent it, so that a command prints every field
    /// of a newer (or an older) service as it came.
    pub(crate) async fn call<M: Method>(
        &self,
        params: &impl Serialize,
        a2a_context: Option<&Value>,
    ) -> Result<Value, CallError> {
        result_of(self.answer::<M>(params, a2a_context).await?)
    }

    /// A call of the subscription `M` answered as Server-Sent Events; a request refused before
    /// any stream is answered as a plain JSON body instead, for the caller to tell apart.
    pub(crate) async fn events<M: Subscription>(
        &self,
        params: &impl Serialize,
        a2a_context: Option<&Value>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.send::<M>(params, a2a_context, true).await
    }

    /// A WebSocket on the endpoint (the key on its upgrade), with a call of `M` sent on it.
    pub(crate) async fn subscribe<M: Subscription>(
        &self,
        params: &impl Serialize,
    ) -> Result<Socket, String> {
        let url = self.endpoint.replacen("http", "ws", 1);
        let mut upgrade = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(key) = &self.key {
            let value = format!("Bearer {key}")
                .parse()
                .map_err(|_| "the key is not a header value")?;
            upgrade.headers_mut().insert("authorization", value);
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(upgrade)
            .await
            .map_err(|e| format!("WebSocket: {e}"))?;
        let call = request::<M>(params, None).to_string();
        socket
            .send(Message::text(call))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Socket(socket))
    }
}

/// The result of a response object (or of one event of a stream), or its error object.
pub(crate) fn result_of(answer: Value) -> Result<Value, CallError> {
    match answer.get("error") {
        Some(error) => Err(CallError::Failed(error.clone())),
        None => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// A JSON-RPC request object; the command line sends one call at a time, so its id is always 1.
/// Params that serialize to `null` (`()`, for a method without any) are left out.
fn request<M: Method>(params: &impl Serialize, a2a_context: Option<&Value>) -> Value {
    let mut request = json!({"jsonrpc": "2.0", "id": 1, "method": M::NAME});
    let params = json!(params);
    if !params.is_null() {
        request["params"] = params;
    }
    if let Some(context) = a2a_context {
        request["a2a_context"] = context.clone();
    }
    request
}

/// A WebSocket with a call under way on it.
pub(crate) struct Socket(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Socket {
    /// The next JSON message the service sends (other frames are passed over); `None` once the
    /// socket is closed.
    pub(crate) async fn next(&mut self) -> Option<Result<Value, String>> {
        while let Some(message) = self.0.next().await {
            let text = match message {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(e) => return Some(Err(e.to_string())),
            };
            return Some(serde_json::from_str(&text).map_err(|e| e.to_string()));
        }
        None
    }

    /// Closes it politely; whatever was being checked is decided already.
    pub(crate) async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}
