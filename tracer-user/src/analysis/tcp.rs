//! TCP streams: numbering as Wireshark's `tcp.stream`, client/server roles, sequence tracking.

#[derive(Default)]
pub struct TcpTracker {}
