//! Many short MPTCP connections one after the other, each with its own byte counts, as the
//! application counted them: the load of a long-running tracer's eviction test.

use std::{
    fs::File,
    io::{self, Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use nix::sched::{CloneFlags, setns};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{IpVersion, Lab, LabError, Side};

/// One finished short connection, as the client counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortConnection {
    /// The client's end of the initial subflow.
    pub client_addr: SocketAddr,
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
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
        let server_namespace = self.namespace(Side::Server).to_owned();
        let client_namespace = self.namespace(Side::Client).to_owned();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = thread::Builder::new()
            .name("short-server".into())
            .spawn(move || -> Result<(), LabError> {
                enter(&server_namespace)?;
                let listener = mptcp_listener(listen).map_err(|e| failed("listening", e))?;
                let _ = ready_tx.send(());
                for _ in 0..count {
                    let (stream, _) = listener.accept().map_err(|e| failed("accepting", e))?;
                    serve(stream).map_err(|e| failed("serving", e))?;
                }
                Ok(())
            })
            .map_err(|e| failed("spawning the server", e))?;
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
            return Err(match server.join() {
                Ok(Err(error)) => error,
                _ => LabError::TransferMismatch("short-connection server did not listen".into()),
            });
        }
        // The client runs on a thread of its own too: only that thread enters the namespace.
        let client = thread::scope(|scope| {
            scope
                .spawn(|| -> Result<Vec<ShortConnection>, LabError> {
                    enter(&client_namespace)?;
                    (0..count)
                        .map(|index| {
                            let connection = connect_once(server_addr, index)
                                .map_err(|e| failed(&format!("connection {index}"), e))?;
                            progress(index);
                            Ok(connection)
                        })
                        .collect()
                })
                .join()
        });
        let server = server.join();
        let connections =
            client.map_err(|_| LabError::ThreadPanicked("short-connection client"))??;
        server.map_err(|_| LabError::ThreadPanicked("short-connection server"))??;
        Ok(connections)
    }
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

fn mptcp_listener(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::MPTCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    // accept() times out too (SO_RCVTIMEO): a client that failed must not leave the server
    // waiting for ever.
    socket.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(socket.into())
}

/// Reads the request to its end, answers, closes.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut request = Vec::new();
    stream.read_to_end(&mut request)?;
    stream.write_all(&vec![7u8; short_reply_bytes(request.len() as u64) as usize])?;
    stream.shutdown(Shutdown::Write)
}

fn connect_once(server: SocketAddr, index: usize) -> io::Result<ShortConnection> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::MPTCP))?;
    socket.connect_timeout(&server.into(), Duration::from_secs(20))?;
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let client_addr = stream.local_addr()?;
    let request = short_request_bytes(index);
    stream.write_all(&vec![3u8; request as usize])?;
    stream.shutdown(Shutdown::Write)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(ShortConnection {
        client_addr,
        client_sent: request,
        client_received: reply.len() as u64,
    })
}
