//! The `/metrics` endpoint: a small HTTP/1.1 responder, one request per connection. `GET
//! /metrics` answers the OpenMetrics text (Prometheus's text format 0.0.4 to a client whose
//! `Accept` asks for `text/plain` only), anything else 404. It is bound by `bind` before the
//! trace attaches anything (so a port in use is an error up front) and served on the trace's
//! event loop (`into_side_task`), where each request is a task of its own with a deadline, so
//! a slow client holds no one up.

use std::{
    io,
    net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use super::{Exposition, Format};
use crate::source::live::SideTask;

/// `Content-Type` of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A request must be read and answered within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Longest request head read; scrapers send a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics {address}: not an ADDR:PORT address ({reason})")]
    Address { address: String, reason: String },
    /// The cause is in the message, not chained as a source: `{:#}` would print it twice.
    #[error("--metrics {address}: cannot listen there: {cause}")]
    Bind { address: String, cause: io::Error },
}

/// The endpoint's socket, bound, and what it serves.
pub struct MetricsServer {
    listener: StdListener,
    exposition: Exposition,
}

impl MetricsServer {
    /// Listens on `address` (`127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`).
    pub fn bind(address: &str, exposition: Exposition) -> Result<Self, MetricsError> {
        let addresses: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|e| MetricsError::Address {
                address: address.to_owned(),
                reason: e.to_string(),
            })?
            .collect();
        let bind_error = |cause| MetricsError::Bind {
            address: address.to_owned(),
            cause,
        };
        let listener = StdListener::bind(&addresses[..]).map_err(bind_error)?;
        // The event loop polls it: it must not block.
        listener.set_nonblocking(true).map_err(bind_error)?;
        Ok(MetricsServer {
            listener,
            exposition,
        })
    }

    /// Where it listens (the port chosen for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The accept loop, for the trace's event loop.
    pub fn into_side_task(self) -> SideTask {
        let server = Arc::new(self);
        SideTask::new(move || {
            let server = Arc::clone(&server);
            Box::pin(async move {
                if let Err(e) = server.serve().await {
                    log::warn!("the metrics endpoint stopped: {e}");
                }
            })
        })
    }

    async fn serve(&self) -> io::Result<()> {
        let listener = TcpListener::from_std(self.listener.try_clone()?)?;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                // A connection reset before it was accepted, out of descriptors for a moment:
                // the next one may do.
                Err(e) => {
                    log::debug!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let exposition = self.exposition.clone();
            tokio::spawn(async move {
                let answered =
                    tokio::time::timeout(REQUEST_DEADLINE, answer(stream, &exposition)).await;
                match answered {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::debug!("metrics endpoint: {peer}: {e}"),
                    Err(_) => log::debug!("metrics endpoint: {peer}: no request in time"),
                }
            });
        }
    }
}

/// Reads one request head and answers it; the connection closes after.
async fn answer(mut stream: TcpStream, exposition: &Exposition) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let response = respond(&head, exposition);
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// The response to a request head: the metrics for `GET /metrics`, 404 otherwise.
pub(super) fn respond(head: &[u8], exposition: &Exposition) -> Vec<u8> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    if (method, path) != (Some("GET"), Some("/metrics")) {
        return response(
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; the metrics are at /metrics\n",
        );
    }
    let format = format_asked(lines);
    match exposition.scrape(format) {
        Ok(text) => response("200 OK", format.content_type(), &text),
        Err(_) => response(
            "500 Internal Server Error",
            "text/plain; charset=utf-8",
            "the metrics could not be encoded\n",
        ),
    }
}

/// OpenMetrics, unless the `Accept` header names `text/plain` and not OpenMetrics.
fn format_asked<'a>(header_lines: impl Iterator<Item = &'a str>) -> Format {
    let accept = header_lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.to_ascii_lowercase());
    match accept {
        Some(accept)
            if accept.contains("text/plain")
                && !accept.contains("application/openmetrics-text") =>
        {
            Format::PrometheusText
        }
        _ => Format::OpenMetrics,
    }
}

fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
