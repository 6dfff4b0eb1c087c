//! The TC state of an interface as the kernel reports it over rtnetlink: the filters on its
//! clsact hooks (with a bpf filter's program name and id), and the two changes this tracer
//! makes beyond what aya does for it: deleting one filter it recognised as its own stale
//! leftover, and deleting the clsact qdisc it created.
//!
//! Messages are built and parsed by `netlink-packet-route` (which knows the bpf filter's
//! `TCA_BPF_NAME` and `TCA_BPF_ID`) and sent over a `netlink-sys` socket, in the network
//! namespace of the calling thread.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcMessage, TcOption},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// One of the two clsact hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hook {
    Ingress,
    Egress,
}

impl Hook {
    pub(super) const BOTH: [Hook; 2] = [Hook::Ingress, Hook::Egress];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }

    /// The filter parent of this hook under the clsact qdisc (`ffff:fff2` / `ffff:fff3`).
    fn parent(self) -> TcHandle {
        TcHandle {
            major: TcHandle::CLSACT.major,
            minor: match self {
                Hook::Ingress => TcHandle::MIN_INGRESS,
                Hook::Egress => TcHandle::MIN_EGRESS,
            },
        }
    }
}

/// One filter on a clsact hook, as a dump lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Filter {
    pub(super) hook: Hook,
    /// `pref` in tc's words.
    pub(super) priority: u16,
    /// In network byte order, as the kernel keeps it (ETH_P_ALL for ours).
    pub(super) protocol: u16,
    pub(super) handle: u32,
    /// The classifier: `bpf`, `u32`, `matchall`...
    pub(super) kind: String,
    /// A bpf filter's program name as given when it was attached (`TCA_BPF_NAME`).
    pub(super) program_name: Option<String>,
    /// A bpf filter's program id (`TCA_BPF_ID`).
    pub(super) program_id: Option<u32>,
}

impl Filter {
    /// `ingress pref 49152 handle 0x1 bpf mptcp_trc_in (program id 12)`: what tc would show.
    pub(super) fn describe(&self) -> String {
        let mut text = format!(
            "{} pref {} handle {:#x} {}",
            self.hook.as_str(),
            self.priority,
            self.handle,
            self.kind
        );
        if let Some(name) = &self.program_name {
            text.push(' ');
            text.push_str(name);
        }
        if let Some(id) = self.program_id {
            text.push_str(&format!(" (program id {id})"));
        }
        text
    }
}

/// Every filter on both clsact hooks of `ifindex`; none if the interface has no clsact qdisc.
/// The per-priority chain heads a dump also lists (handle 0, no options) are left out: they
/// exist exactly as long as a filter of theirs does.
pub(super) fn list(ifindex: u32) -> io::Result<Vec<Filter>> {
    let mut filters = Vec::new();
    for hook in Hook::BOTH {
        let mut request = filter_message(ifindex, hook);
        request.header.handle = TcHandle::UNSPEC;
        let replies = match exchange(
            RouteNetlinkMessage::GetTrafficFilter(request),
            NLM_F_REQUEST | NLM_F_DUMP,
        ) {
            Ok(replies) => replies,
            // No clsact qdisc on the interface: no hook, no filter.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => continue,
            Err(e) => return Err(e),
        };
        for reply in replies {
            if let RouteNetlinkMessage::NewTrafficFilter(message) = reply
                && let Some(filter) = parse_filter(hook, &message)
            {
                filters.push(filter);
            }
        }
    }
    Ok(filters)
}

fn parse_filter(hook: Hook, message: &TcMessage) -> Option<Filter> {
    let handle = u32::from(message.header.handle);
    if handle == 0 {
        return None;
    }
    let mut filter = Filter {
        hook,
        priority: (message.header.info >> 16) as u16,
        protocol: (message.header.info & 0xffff) as u16,
        handle,
        kind: String::new(),
        program_name: None,
        program_id: None,
    };
    for attribute in &message.attributes {
        match attribute {
            TcAttribute::Kind(kind) => filter.kind = kind.clone(),
            TcAttribute::Options(options) => {
                for option in options {
                    match option {
                        TcOption::Bpf(TcFilterBpfOption::ProgName(name)) => {
                            filter.program_name = Some(name.clone());
                        }
                        TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => {
                            filter.program_id = Some(*id);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(filter)
}

/// Deletes exactly this filter (by hook, priority, protocol and handle).
pub(super) fn delete(ifindex: u32, filter: &Filter) -> io::Result<()> {
    let mut request = filter_message(ifindex, filter.hook);
    request.header.handle = filter.handle.into();
    request.header.info = (u32::from(filter.priority) << 16) | u32::from(filter.protocol);
    request
        .attributes
        .push(TcAttribute::Kind(filter.kind.clone()));
    exchange(
        RouteNetlinkMessage::DelTrafficFilter(request),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .map(drop)
}

/// `tc qdisc del dev IF clsact`.
pub(super) fn delete_clsact(ifindex: u32) -> io::Result<()> {
    let mut request = TcMessage::default();
    request.header.family = AddressFamily::Unspec;
    request.header.index = ifindex as i32;
    request.header.handle = TcHandle {
        major: TcHandle::CLSACT.major,
        minor: 0,
    };
    request.header.parent = TcHandle::CLSACT;
    request.attributes.push(TcAttribute::Kind("clsact".into()));
    exchange(
        RouteNetlinkMessage::DelQueueDiscipline(request),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .map(drop)
}

fn filter_message(ifindex: u32, hook: Hook) -> TcMessage {
    let mut message = TcMessage::default();
    message.header.family = AddressFamily::Unspec;
    message.header.index = ifindex as i32;
    message.header.parent = hook.parent();
    message
}

/// Sends one request and collects the messages of its answer, up to the acknowledgement or the
/// end of the dump; a negative acknowledgement is the error.
fn exchange(request: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut answer = Vec::new();
    loop {
        let (buffer, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < buffer.len() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[offset..])
                .map_err(|e| io::Error::other(format!("unreadable netlink reply: {e}")))?;
            let length = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::Done(_) => return Ok(answer),
                NetlinkPayload::Error(error) => {
                    return match error.code {
                        None => Ok(answer),
                        Some(_) => Err(error.to_io()),
                    };
                }
                NetlinkPayload::InnerMessage(inner) => answer.push(inner),
                _ => {}
            }
            if length == 0 {
                return Err(io::Error::other("netlink reply of length 0"));
            }
            offset += length.next_multiple_of(4);
        }
    }
}
