//! The little HTTP the tests and benchmarks need to read the tracer's `/metrics` and
//! Prometheus' API: one GET over a fresh connection (`Connection: close`, so the body is
//! whatever comes before the peer closes), and a loopback port for an endpoint to listen on.
//! Hand-written rather than an HTTP client crate: a request line and two headers are all the
//! tracer's endpoint and Prometheus need, and this crate stays free of an async runtime.

use std::{
    collections::BTreeMap,
    io::{self, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    time::Duration,
};

/// An HTTP answer: its status line, its headers (names lowercased) and its body.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub status: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl HttpResponse {
    /// Whether the status is 200.
    pub fn is_ok(&self) -> bool {
        self.status.split(' ').nth(1) == Some("200")
    }
}

/// One HTTP/1.1 `GET path` of `address` (`host:port`), with `accept` as its `Accept` header
/// when given; waits at most `timeout` for each read.
pub fn http_get(
    address: &str,
    path: &str,
    accept: Option<&str>,
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(timeout))?;
    let accept = accept.map_or(String::new(), |accept| format!("Accept: {accept}\r\n"));
    // One write: `write!` on the stream itself writes each formatted piece on its own, a
    // request in half a dozen segments.
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A port of 127.0.0.1 nobody listened on a moment ago (the kernel's pick of a free one).
pub fn free_loopback_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    /// A one-shot server answering `answer` to whatever it is sent; its address.
    fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            // The whole request, however it was cut into segments: a socket closed with unread
            // data resets the connection, and the client may then lose the answer.
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).expect("read");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(answer.as_bytes()).expect("write");
        });
        address
    }

    #[test]
    fn get_splits_status_headers_and_body() {
        let address =
            serve_once("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: b\r\n\r\nline\nmore\n");
        let response = http_get(&address, "/metrics", None, Duration::from_secs(5)).expect("get");
        assert!(response.is_ok());
        assert_eq!(response.status, "HTTP/1.1 200 OK");
        assert_eq!(response.headers["content-type"], "text/plain");
        assert_eq!(response.headers["x-a"], "b");
        assert_eq!(response.body, "line\nmore\n");
    }

    #[test]
    fn a_404_is_not_ok() {
        let address = serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
        let response =
            http_get(&address, "/x", Some("text/plain"), Duration::from_secs(5)).expect("get");
        assert!(!response.is_ok());
        assert_eq!(response.body, "");
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_loopback_port().expect("port");
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
