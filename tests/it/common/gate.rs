//! An OpenAI upstream that holds every request until the test releases it, so that calls can be
//! made to overlap exactly: nothing they started (a reservation, a permit) can be undone by an
//! answer before every one of them has been counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::completion_body;

/// An OpenAI upstream that holds every request until released, counting those that arrived.
pub struct Gate {
    pub base: String,
    pub arrived: Arc<AtomicUsize>,
    pub release: watch::Sender<bool>,
}

impl Gate {
    pub async fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let arrived = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let counter = Arc::clone(&arrived);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer_when_released(
                    socket,
                    Arc::clone(&counter),
                    released.clone(),
                ));
            }
        });
        Gate {
            base,
            arrived,
            release,
        }
    }
}

async fn answer_when_released(
    mut socket: TcpStream,
    arrived: Arc<AtomicUsize>,
    mut released: watch::Receiver<bool>,
) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let mut read = async |seen: &mut Vec<u8>| match socket.read(&mut buf).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            seen.extend_from_slice(&buf[..n]);
            true
        }
    };
    let head = loop {
        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if !read(&mut seen).await {
            return;
        }
    };
    let length = String::from_utf8_lossy(&seen[..head])
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while seen.len() < head + length {
        if !read(&mut seen).await {
            return;
        }
    }
    arrived.fetch_add(1, Ordering::SeqCst);
    if released.wait_for(|r| *r).await.is_err() {
        return;
    }
    let body = completion_body("ok").to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}
