//! A bare TCP upstream for what wiremock cannot do: hold a request open and see the moment the
//! other side gives up on it, or cut a connection off in the middle of an answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Clone)]
pub enum Behaviour {
    /// Read the request, send `prefix` (possibly nothing), then wait, reporting when the peer
    /// closes the connection.
    SendThenHang(String),
    /// Read the request, send `prefix`, then reset the connection.
    SendThenReset(String),
}

#[derive(Debug, PartialEq)]
pub enum Seen {
    Request,
    Closed,
}

pub struct RawUpstream {
    pub url: String,
    events: mpsc::UnboundedReceiver<Seen>,
}

/// Response headers that open an SSE answer, followed by `events`.
pub fn sse_prefix(events: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: identity\r\nconnection: close\r\n\r\n{events}"
    )
}

impl RawUpstream {
    pub async fn start(behaviour: Behaviour) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (tx, behaviour) = (tx.clone(), behaviour.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(Seen::Request);
                    match behaviour {
                        Behaviour::SendThenHang(prefix) => {
                            let _ = socket.write_all(prefix.as_bytes()).await;
                            // Drain whatever else comes until the peer hangs up.
                            loop {
                                match socket.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(_) => {}
                                }
                            }
                            let _ = tx.send(Seen::Closed);
                        }
                        Behaviour::SendThenReset(prefix) => {
                            let _ = socket.write_all(prefix.as_bytes()).await;
                            let _ = socket.flush().await;
                            // A zero linger resets at once, so nothing blocks on the drop.
                            #[allow(deprecated)]
                            let _ = socket.set_linger(Some(Duration::ZERO));
                            drop(socket);
                        }
                    }
                });
            }
        });
        RawUpstream { url, events }
    }

    /// Waits (10 s at most) for the next thing the upstream saw.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("the upstream saw nothing within 10 s")
            .expect("upstream gone")
    }
}
