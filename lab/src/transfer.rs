//! MPTCP transfers between the lab's hosts whose byte counts the application knows.

use std::{
    fs::File,
    io::{self, Read as _, Write as _},
    marker::PhantomData,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::mpsc,
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use nix::sched::{CloneFlags, setns};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{IpVersion, Lab, LabError, Side};

/// Bytes the client sends before it waits for joins (see `run_client`).
const FIRST_FLIGHT: u64 = 1000;

/// The transport protocol of a transfer's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `IPPROTO_MPTCP` sockets: the lab's point.
    Mptcp,
    /// Plain TCP sockets, for traffic a tracer must tell apart from MPTCP.
    Tcp,
}

/// One transfer between the lab's hosts.
#[derive(Debug, Clone)]
pub struct TransferSpec {
    pub transport: Transport,
    pub ip_version: IpVersion,
    /// The path whose server address the client connects to (the initial subflow's path).
    pub path: usize,
    pub port: u16,
    /// Bytes the client writes (then it shuts its sending side down).
    pub client_sends: u64,
    /// Bytes the server writes, at the same time as it reads.
    pub server_sends: u64,
    /// Extra subflows the client waits for (`MPTCP_INFO` `mptcpi_subflows`) before it sends
    /// more than a first flight of 1000 bytes (joins start only after data is acknowledged).
    pub wait_for_subflows: u8,
    /// How long the client waits for those subflows.
    pub subflow_timeout: Duration,
    /// Socket read/write/accept timeout: no step may block longer.
    pub timeout: Duration,
}

impl Default for TransferSpec {
    fn default() -> Self {
        Self {
            transport: Transport::Mptcp,
            ip_version: IpVersion::V4,
            path: 1,
            port: 5201,
            client_sends: 100_000,
            server_sends: 0,
            wait_for_subflows: 0,
            subflow_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(20),
        }
    }
}

/// What the application on each side counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferCounts {
    pub client_sent: u64,
    pub client_received: u64,
    pub server_sent: u64,
    pub server_received: u64,
    /// Extra subflows the client's MPTCP_INFO reported before it started sending.
    pub subflows_before_data: u8,
    pub client_addr: SocketAddr,
    pub server_addr: SocketAddr,
}

/// A connected transfer waiting for [`TransferSession::finish`].
#[derive(Debug)]
pub struct TransferSession<'lab> {
    go: mpsc::Sender<()>,
    client: JoinHandle<Result<ClientResult, LabError>>,
    server: JoinHandle<Result<ServerResult, LabError>>,
    established: Established,
    _lab: PhantomData<&'lab Lab>,
}

#[derive(Debug, Clone, Copy)]
struct Established {
    extra_subflows: u8,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
}

#[derive(Debug)]
struct ClientResult {
    sent: u64,
    received: u64,
}

#[derive(Debug)]
struct ServerResult {
    sent: u64,
    received: u64,
}

impl TransferSession<'_> {
    /// Extra subflows the client saw before sending.
    pub fn extra_subflows(&self) -> u8 {
        self.established.extra_subflows
    }

    /// Lets the client send, waits for both sides to finish and checks that each side read
    /// what the other wrote.
    pub fn finish(self) -> Result<TransferCounts, LabError> {
        let _ = self.go.send(());
        let client = self
            .client
            .join()
            .map_err(|_| LabError::ThreadPanicked("client"))?;
        let server = self
            .server
            .join()
            .map_err(|_| LabError::ThreadPanicked("server"))?;
        let (client, server) = (client?, server?);
        if client.sent != server.received || server.sent != client.received {
            return Err(LabError::TransferMismatch(format!(
                "client sent {} and the server read {}; server sent {} and the client read {}",
                client.sent, server.received, server.sent, client.received
            )));
        }
        Ok(TransferCounts {
            client_sent: client.sent,
            client_received: client.received,
            server_sent: server.sent,
            server_received: server.received,
            subflows_before_data: self.established.extra_subflows,
            client_addr: self.established.client_addr,
            server_addr: self.established.server_addr,
        })
    }
}

fn transfer_error(step: impl Into<String>, source: io::Error) -> LabError {
    LabError::Transfer {
        step: step.into(),
        source,
    }
}

impl Lab {
    /// Runs a whole transfer: [`Lab::start_transfer`] then [`TransferSession::finish`].
    pub fn transfer(&self, spec: &TransferSpec) -> Result<TransferCounts, LabError> {
        self.start_transfer(spec)?.finish()
    }

    /// Starts the server, connects the client and waits for the extra subflows; no data moves
    /// from the client until [`TransferSession::finish`] (the server starts sending at once).
    pub fn start_transfer(&self, spec: &TransferSpec) -> Result<TransferSession<'_>, LabError> {
        // The server's own address, or the router's that it DNATs to the server.
        let server_addr =
            SocketAddr::new(self.connect_address(spec.path, spec.ip_version)?, spec.port);
        let wildcard = match spec.ip_version {
            IpVersion::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpVersion::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let server_namespace = self.namespace(Side::Server).to_owned();
        let server_spec = spec.clone();
        let server = thread::Builder::new()
            .name("lab-server".into())
            .spawn(move || {
                run_server(
                    &server_namespace,
                    SocketAddr::new(wildcard, server_spec.port),
                    &server_spec,
                    ready_tx,
                )
            })
            .map_err(|source| transfer_error("spawning the server thread", source))?;
        match ready_rx.recv_timeout(spec.timeout) {
            Ok(()) => {}
            Err(_) => {
                // The server failed before listening: its error says why.
                return Err(match server.join() {
                    Ok(Err(error)) => error,
                    Ok(Ok(_)) => LabError::TransferMismatch("server ended before listening".into()),
                    Err(_) => LabError::ThreadPanicked("server"),
                });
            }
        }
        let (established_tx, established_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let client_namespace = self.namespace(Side::Client).to_owned();
        let client_spec = spec.clone();
        let client = thread::Builder::new()
            .name("lab-client".into())
            .spawn(move || {
                run_client(
                    &client_namespace,
                    server_addr,
                    &client_spec,
                    established_tx,
                    go_rx,
                )
            })
            .map_err(|source| transfer_error("spawning the client thread", source))?;
        match established_rx.recv_timeout(spec.timeout + spec.subflow_timeout) {
            Ok(established) => Ok(TransferSession {
                go: go_tx,
                client,
                server,
                established,
                _lab: PhantomData,
            }),
            Err(_) => {
                drop(go_tx);
                let client_result = client.join();
                let _ = server.join();
                Err(match client_result {
                    Ok(Err(error)) => error,
                    Ok(Ok(_)) => {
                        LabError::TransferMismatch("client ended before connecting".into())
                    }
                    Err(_) => LabError::ThreadPanicked("client"),
                })
            }
        }
    }
}

/// Moves the calling thread (only it) into a named network namespace.
fn enter_namespace(namespace: &str) -> Result<(), LabError> {
    let error = |source| LabError::EnterNamespace {
        namespace: namespace.to_owned(),
        source,
    };
    let file = File::open(format!("/run/netns/{namespace}")).map_err(error)?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| error(errno.into()))
}

fn stream_socket(transport: Transport, address: &SocketAddr) -> io::Result<Socket> {
    let protocol = match transport {
        Transport::Mptcp => Protocol::MPTCP,
        Transport::Tcp => Protocol::TCP,
    };
    Socket::new(Domain::for_address(*address), Type::STREAM, Some(protocol))
}

/// Extra subflows of an MPTCP socket (`mptcpi_subflows`, the first byte of `struct mptcp_info`).
fn mptcp_extra_subflows(stream: &TcpStream) -> io::Result<u8> {
    let (info, _) = mptcp_info(stream)?;
    Ok(info[0])
}

/// Kernel ABI of `getsockopt(SOL_MPTCP, MPTCP_INFO)` (include/uapi/linux/mptcp.h), spelled
/// out here because not every libc version exports them (and nix has no MPTCP socket options).
const SOL_MPTCP: libc::c_int = 284;
const MPTCP_INFO: libc::c_int = 1;

/// The socket's `struct mptcp_info` as the kernel wrote it, and how many bytes it wrote.
pub(crate) fn mptcp_info(stream: &TcpStream) -> io::Result<([u8; 256], usize)> {
    let mut info = [0u8; 256];
    let mut length = libc::socklen_t::try_from(info.len()).unwrap_or(libc::socklen_t::MAX);
    // SAFETY: getsockopt writes at most `length` bytes into `info`.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            SOL_MPTCP,
            MPTCP_INFO,
            info.as_mut_ptr().cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((info, length as usize))
}

/// A repeating, recognisable payload.
fn pattern() -> Vec<u8> {
    (0..65_536u32).map(|i| (i % 251) as u8).collect()
}

fn write_counted(stream: &mut TcpStream, total: u64) -> io::Result<u64> {
    let chunk = pattern();
    let mut sent = 0u64;
    while sent < total {
        let want = usize::try_from((total - sent).min(chunk.len() as u64)).unwrap_or(chunk.len());
        let written = stream.write(&chunk[..want])?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "peer stopped reading",
            ));
        }
        sent += written as u64;
    }
    Ok(sent)
}

fn read_counted(stream: &mut TcpStream) -> io::Result<u64> {
    let mut buffer = vec![0u8; 65_536];
    let mut received = 0u64;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(read) => received += read as u64,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// When a side shuts its sending side down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShutdownWhen {
    /// As soon as it has written everything (the client).
    Written,
    /// Once it has written everything and read the peer's end (the server): a server that
    /// sent its DATA_FIN at once would leave the connection half-closed before any join.
    WrittenAndPeerDone,
}

/// Writes on a clone of `stream` in another thread while this one reads; both counted.
fn exchange(
    stream: TcpStream,
    to_send: u64,
    shutdown: ShutdownWhen,
    who: &'static str,
) -> Result<(u64, u64), LabError> {
    let mut writer_stream = stream
        .try_clone()
        .map_err(|source| transfer_error(format!("{who}: cloning the socket"), source))?;
    let writer = thread::Builder::new()
        .name(format!("lab-{who}-writer"))
        .spawn(move || {
            let sent = write_counted(&mut writer_stream, to_send)?;
            if shutdown == ShutdownWhen::Written {
                writer_stream.shutdown(Shutdown::Write)?;
            }
            Ok(sent)
        })
        .map_err(|source| transfer_error(format!("{who}: spawning the writer"), source))?;
    let mut reader_stream = stream;
    let received = read_counted(&mut reader_stream)
        .map_err(|source| transfer_error(format!("{who}: reading"), source))?;
    let sent = writer
        .join()
        .map_err(|_| LabError::ThreadPanicked("writer"))?
        .map_err(|source: io::Error| transfer_error(format!("{who}: writing"), source))?;
    if shutdown == ShutdownWhen::WrittenAndPeerDone {
        reader_stream
            .shutdown(Shutdown::Write)
            .map_err(|source| transfer_error(format!("{who}: shutting down"), source))?;
    }
    Ok((sent, received))
}

/// Polls MPTCP_INFO until the connection has `spec.wait_for_subflows` extra subflows.
fn wait_for_subflows(stream: &TcpStream, spec: &TransferSpec, who: &str) -> Result<u8, LabError> {
    if spec.transport == Transport::Tcp {
        // A TCP socket has no MPTCP_INFO and never more than one path.
        return Ok(0);
    }
    let info_error = |source| transfer_error(format!("{who}: MPTCP_INFO"), source);
    let deadline = Instant::now() + spec.subflow_timeout;
    let mut extra_subflows = mptcp_extra_subflows(stream).map_err(info_error)?;
    while extra_subflows < spec.wait_for_subflows {
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: format!(
                    "{} extra subflows ({who} has {extra_subflows})",
                    spec.wait_for_subflows
                ),
                timeout: spec.subflow_timeout,
            });
        }
        thread::sleep(Duration::from_millis(10));
        extra_subflows = mptcp_extra_subflows(stream).map_err(info_error)?;
    }
    if spec.wait_for_subflows > 0 {
        // mptcpi_subflows counts a join when it starts; give its handshake time to end.
        thread::sleep(Duration::from_millis(100));
    }
    Ok(extra_subflows)
}

fn run_server(
    namespace: &str,
    bind: SocketAddr,
    spec: &TransferSpec,
    ready: mpsc::Sender<()>,
) -> Result<ServerResult, LabError> {
    enter_namespace(namespace)?;
    let step =
        |what: &'static str| move |source| transfer_error(format!("server: {what} {bind}"), source);
    let socket = stream_socket(spec.transport, &bind).map_err(step("socket for"))?;
    socket
        .set_reuse_address(true)
        .map_err(step("SO_REUSEADDR on"))?;
    if bind.is_ipv6() {
        socket.set_only_v6(true).map_err(step("IPV6_V6ONLY on"))?;
    }
    // accept(2) honours SO_RCVTIMEO: the server gives up if no client comes.
    socket
        .set_read_timeout(Some(spec.timeout))
        .map_err(step("SO_RCVTIMEO on"))?;
    // The wildcard address: a listener bound to one address refuses joins to the others.
    socket.bind(&bind.into()).map_err(step("binding"))?;
    socket.listen(8).map_err(step("listening on"))?;
    let listener: TcpListener = socket.into();
    let _ = ready.send(());
    let (stream, _peer) = listener.accept().map_err(step("accepting on"))?;
    stream
        .set_read_timeout(Some(spec.timeout))
        .and_then(|()| stream.set_write_timeout(Some(spec.timeout)))
        .map_err(step("socket timeouts on"))?;
    // Like the client, send only once the joins are up, so that both directions spread.
    wait_for_subflows(&stream, spec, &format!("server on {bind}"))?;
    let (sent, received) = exchange(
        stream,
        spec.server_sends,
        ShutdownWhen::WrittenAndPeerDone,
        "server",
    )?;
    Ok(ServerResult { sent, received })
}

fn run_client(
    namespace: &str,
    server: SocketAddr,
    spec: &TransferSpec,
    established: mpsc::Sender<Established>,
    go: mpsc::Receiver<()>,
) -> Result<ClientResult, LabError> {
    enter_namespace(namespace)?;
    let step = |what: &'static str| {
        move |source| transfer_error(format!("client: {what} {server}"), source)
    };
    let socket = stream_socket(spec.transport, &server).map_err(step("socket for"))?;
    socket
        .connect_timeout(&server.into(), spec.timeout)
        .map_err(step("connecting to"))?;
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(spec.timeout))
        .and_then(|()| stream.set_write_timeout(Some(spec.timeout)))
        .map_err(step("socket timeouts for"))?;
    // Linux opens joins only once the connection is fully established, that is when the
    // server has acknowledged data at the MPTCP level: send a first flight before waiting.
    let first_flight = if spec.wait_for_subflows > 0 {
        spec.client_sends.min(FIRST_FLIGHT)
    } else {
        0
    };
    let mut writer = &stream;
    writer
        .write_all(&pattern()[..usize::try_from(first_flight).unwrap_or(0)])
        .map_err(step("sending the first flight to"))?;
    let extra_subflows = wait_for_subflows(&stream, spec, &format!("client to {server}"))?;
    let client_addr = stream.local_addr().map_err(step("local address towards"))?;
    let _ = established.send(Established {
        extra_subflows,
        client_addr,
        server_addr: server,
    });
    // A dropped session (no finish) closes the connection without sending.
    if go.recv().is_err() {
        return Ok(ClientResult {
            sent: 0,
            received: 0,
        });
    }
    let (sent, received) = exchange(
        stream,
        spec.client_sends - first_flight,
        ShutdownWhen::Written,
        "client",
    )?;
    Ok(ClientResult {
        sent: first_flight + sent,
        received,
    })
}
