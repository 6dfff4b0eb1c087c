//! Many short MPTCP connections one after the other, each with its own byte counts, as the
//! application counted them: the load of a long-running tracer's eviction test.
//!
//! Every blocking step has a timeout (`STEP_TIMEOUT`) and a failure is an error naming the
//! step and the connection: a run never hangs. In particular the server does not rely on
//! SO_RCVTIMEO for `accept`: on an MPTCP listener the kernel ignores it (`accept` waits on the
//! listener's first subflow, which the option set on the MPTCP socket does not reach), so the
//! server polls its non-blocking listener instead.

use std::{
    fs::File,
    io::{self, Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsFd as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sched::{CloneFlags, setns},
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{IpVersion, Lab, LabError, Side, transfer::mptcp_info};

/// How long any one step (listening, accepting, connecting, reading, writing) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the server, waiting for a connection, looks whether the client gave up.
const ACCEPT_SLICE: Duration = Duration::from_millis(200);
/// Where `mptcpi_token` is in `struct mptcp_info` (include/uapi/linux/mptcp.h): six u8 fields
/// and `mptcpi_flags` come before it.
const MPTCP_INFO_TOKEN_OFFSET: usize = 12;

/// One finished short connection, as the client counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortConnection {
    /// The client's end of the initial subflow.
    pub client_addr: SocketAddr,
    /// The client's MPTCP token (`mptcpi_token`: the token of the client's key, what the
    /// tracer calls `client_token`). With the address it names one connection, also when the
    /// kernel reuses the client port for a later one.
    pub client_token: u32,
    pub client_sent: u64,
    pub client_received: u64,
}

/// Bytes the client of connection `index` sends: different from its neighbours', so that a
/// mixed-up report shows.
pub fn short_request_bytes(index: usize) -> u64 {
    100 + (index as u64 * 37) % 1900
}

/// Bytes the server answers a request of `request` bytes with.
pub fn short_reply_bytes(request: u64) -> u64 {
    request / 2 + 1
}

impl Lab {
    /// Runs `count` MPTCP connections from the client to the server's path-1 address on
    /// `port`, one after the other: the client sends `short_request_bytes(i)` and shuts its
    /// side, the server reads all and answers `short_reply_bytes` bytes, then closes. Calls
    /// `progress(i)` after each connection. Every connection is closed (both ways) on return.
    pub fn short_connections(
        &self,
        count: usize,
        port: u16,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<ShortConnection>, LabError> {
        let server_addr = SocketAddr::new(self.address(Side::Server, 1, IpVersion::V4)?, port);
        let client_namespace = self.namespace(Side::Client).to_owned();
        // Set when the client stops early: the server then stops waiting for connections.
        let client_done = AtomicBool::new(false);
        let (server, client) = thread::scope(|scope| {
            let (ready_tx, ready_rx) = mpsc::channel();
            let server_namespace = self.namespace(Side::Server).to_owned();
            let client_done = &client_done;
            let server = thread::Builder::new()
                .name("short-server".into())
                .spawn_scoped(scope, move || {
                    run_server(&server_namespace, port, count, ready_tx, client_done)
                })
                .map_err(|e| failed("spawning the server", e))?;
            if ready_rx.recv_timeout(STEP_TIMEOUT).is_err() {
                client_done.store(true, Ordering::Relaxed);
                joined(server.join(), "short-connection server")?;
                return Err(LabError::Timeout {
                    what: "short connections: the server listening".into(),
                    timeout: STEP_TIMEOUT,
                });
            }
            // The client runs on a thread of its own too: only that thread enters the namespace.
            let client = thread::Builder::new()
                .name("short-client".into())
                .spawn_scoped(scope, || {
                    // Also when `progress` panics.
                    let _done = SetOnDrop(client_done);
                    run_client(&client_namespace, server_addr, count, progress)
                })
                .map_err(|e| failed("spawning the client", e))?;
            let client = joined(client.join(), "short-connection client");
            Ok((joined(server.join(), "short-connection server"), client))
        })?;
        match (server, client) {
            (Ok(()), Ok(connections)) => Ok(connections),
            (Err(error), Ok(_)) | (Ok(()), Err(error)) => Err(error),
            // One failure often makes the other (a client gone leaves the server waiting):
            // both are said.
            (Err(server), Err(client)) => Err(LabError::TransferMismatch(format!(
                "short connections: client: {}; server: {}",
                error_chain(&client),
                error_chain(&server)
            ))),
        }
    }
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A lab thread's result; its panic is an error naming it.
fn joined<T>(
    result: thread::Result<Result<T, LabError>>,
    thread: &'static str,
) -> Result<T, LabError> {
    result.map_err(|_| LabError::ThreadPanicked(thread))?
}

/// The error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Listens on `port` in `namespace`, says so on `ready`, then serves `count` connections, or
/// stops (an error) when one does not come within `STEP_TIMEOUT` or the client gave up.
fn run_server(
    namespace: &str,
    port: u16,
    count: usize,
    ready: mpsc::Sender<()>,
    client_done: &AtomicBool,
) -> Result<(), LabError> {
    enter(namespace)?;
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    let listener = mptcp_listener(listen).map_err(|e| failed("listening", e))?;
    let _ = ready.send(());
    for index in 0..count {
        let step = |what: &str| format!("server, connection {index}: {what}");
        let stream = accept(&listener, client_done).map_err(|e| failed(&step("accepting"), e))?;
        serve(stream).map_err(|e| failed(&step("serving"), e))?;
    }
    Ok(())
}

/// Runs the `count` connections one after the other.
fn run_client(
    namespace: &str,
    server: SocketAddr,
    count: usize,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Vec<ShortConnection>, LabError> {
    enter(namespace)?;
    (0..count)
        .map(|index| {
            let connection = connect_once(server, index)
                .map_err(|(step, e)| failed(&format!("client, connection {index}: {step}"), e))?;
            progress(index);
            Ok(connection)
        })
        .collect()
}

fn failed(step: &str, source: io::Error) -> LabError {
    LabError::Transfer {
        step: format!("short connections: {step}"),
        source,
    }
}

fn enter(namespace: &str) -> Result<(), LabError> {
    let error = |source| LabError::EnterNamespace {
        namespace: namespace.to_owned(),
        source,
    };
    let file = File::open(format!("/run/netns/{namespace}")).map_err(error)?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| error(errno.into()))
}

/// A non-blocking MPTCP listener (see the module docs for why not blocking with a timeout).
fn mptcp_listener(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::MPTCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The next connection, waiting at most `STEP_TIMEOUT`, or less if the client gave up.
fn accept(listener: &TcpListener, client_done: &AtomicBool) -> io::Result<TcpStream> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {STEP_TIMEOUT:?}"),
            ));
        }
        if client_done.load(Ordering::Relaxed) {
            return Err(io::Error::other("the client stopped before connecting"));
        }
        wait_readable(listener, left.min(ACCEPT_SLICE))?;
    }
}

/// poll(2) for POLLIN on `listener`, at most `timeout` (an MPTCP listener is readable once a
/// connection waits in its queue).
fn wait_readable(listener: &TcpListener, timeout: Duration) -> io::Result<()> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Reads the request to its end, answers, closes.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    stream.set_write_timeout(Some(STEP_TIMEOUT))?;
    let mut request = Vec::new();
    stream.read_to_end(&mut request)?;
    stream.write_all(&vec![7u8; short_reply_bytes(request.len() as u64) as usize])?;
    stream.shutdown(Shutdown::Write)
}

/// One connection, as the client counts it; an error says which step failed.
fn connect_once(
    server: SocketAddr,
    index: usize,
) -> Result<ShortConnection, (&'static str, io::Error)> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::MPTCP))
        .map_err(|e| ("socket", e))?;
    socket
        .connect_timeout(&server.into(), STEP_TIMEOUT)
        .map_err(|e| ("connecting", e))?;
    let mut stream: TcpStream = socket.into();
    let setup = |stream: &TcpStream| -> io::Result<(SocketAddr, u32)> {
        stream.set_read_timeout(Some(STEP_TIMEOUT))?;
        stream.set_write_timeout(Some(STEP_TIMEOUT))?;
        Ok((stream.local_addr()?, mptcp_token(stream)?))
    };
    let (client_addr, client_token) = setup(&stream).map_err(|e| ("socket options", e))?;
    let request = short_request_bytes(index);
    stream
        .write_all(&vec![3u8; request as usize])
        .map_err(|e| ("sending the request", e))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| ("shutting down its side", e))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| ("reading the reply", e))?;
    Ok(ShortConnection {
        client_addr,
        client_token,
        client_sent: request,
        client_received: reply.len() as u64,
    })
}

/// The socket's own MPTCP token (`mptcpi_token` of MPTCP_INFO).
fn mptcp_token(stream: &TcpStream) -> io::Result<u32> {
    let (info, length) = mptcp_info(stream)?;
    let token = info
        .get(MPTCP_INFO_TOKEN_OFFSET..MPTCP_INFO_TOKEN_OFFSET + 4)
        .filter(|_| length >= MPTCP_INFO_TOKEN_OFFSET + 4)
        .ok_or_else(|| io::Error::other(format!("MPTCP_INFO of {length} bytes has no token")))?;
    Ok(u32::from_ne_bytes([token[0], token[1], token[2], token[3]]))
}
