//! The little of the wire `llmrpc verify` speaks, on its own so that it can give way to a shared
//! JSON-RPC client later: JSON-RPC over `POST /`, `llm.stream` as Server-Sent Events and as a
//! WebSocket subscription, and plain requests for the other surfaces, each carrying the caller
//! key when there is one. It knows nothing of the cases: what an answer must hold is theirs.

use futures::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::sse;

/// The service verified, and the key every request carries.
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
}

impl Client {
    /// `url` without its trailing `/`, as it is reported.
    pub(crate) fn new(http: reqwest::Client, url: &str, key: Option<String>) -> Client {
        Client {
            http,
            url: url.trim_end_matches('/').to_owned(),
            key,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A POST to `url`, absolute: the A2A case posts where the agent card says.
    pub(crate) fn post_to(&self, url: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.post(url))
    }

    /// A POST to `path` of the service.
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.post_to(&format!("{}{path}", self.url))
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.get(format!("{}{path}", self.url)))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// One JSON-RPC call over HTTP: the whole response object.
    pub(crate) async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let response = self
            .post("/")
            .json(&request(method, params))
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        response
            .json()
            .await
            .map_err(|e| format!("{method}: the answer is not JSON: {e}"))
    }

    /// One JSON-RPC call over HTTP: its result, or its error as the reason.
    pub(crate) async fn result(&self, method: &str, params: Value) -> Result<Value, String> {
        let answer = self.rpc(method, params).await?;
        match answer.get("error") {
            Some(error) => Err(format!("{method} failed: {error}")),
            None => Ok(answer["result"].clone()),
        }
    }

    /// A JSON-RPC call answered as Server-Sent Events: each event's data, until the stream ends
    /// or breaks (a break is the last item).
    pub(crate) async fn sse(
        &self,
        method: &str,
        params: Value,
    ) -> Result<impl Stream<Item = Result<String, String>>, String> {
        let response = self
            .post("/")
            .header("accept", "text/event-stream")
            .json(&request(method, params))
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        let events = sse::decode(response.bytes_stream());
        Ok(events.map(|event| event.map(|e| e.data).map_err(|e| e.to_string())))
    }

    /// A WebSocket on `/` (the key on its upgrade), with one JSON-RPC call sent on it.
    pub(crate) async fn subscribe(&self, method: &str, params: Value) -> Result<Socket, String> {
        let url = self.url.replacen("http", "ws", 1);
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
        socket
            .send(Message::text(request(method, params).to_string()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Socket(socket))
    }
}

/// A JSON-RPC request object; verify sends one call at a time, so its id is always 1.
fn request(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
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

    /// Closes it politely; the verdict is in already, so how the close goes does not matter.
    pub(crate) async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}
