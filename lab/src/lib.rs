//! Test and demo infrastructure for mptcp-tracer, kept out of the product: a small MPTCP lab
//! in network namespaces (two hosts joined by veth paths, the in-kernel path manager
//! configured; optionally a router namespace between them, with NAT and counted drops, for
//! two-ended captures), transfers whose byte counts the application knows, `ip mptcp monitor`,
//! tcpdump, nftables drop rules, one HTTP GET (the tracer's `/metrics`, Prometheus' API),
//! building the real binary for tests, and honest test skips.
//!
//! Used by `mptcp-tracer demo` (behind mptcp-tracer's default `demo` feature), mptcp-tracer's
//! live unit tests, the integration tests and xtask (`make-captures`, `bench-live`). It does
//! not depend on mptcp-tracer, so there is no package cycle.

mod capture;
mod cargo_build;
mod command;
mod error;
mod filter;
mod http;
mod lab;
mod monitor;
mod router;
mod shared;
mod short_connections;
pub mod skip;
mod transfer;

pub use capture::{Capture, CaptureCounts, CaptureSpec, TwoEndedCapture};
pub use cargo_build::{BuildError, build_binary};
pub use command::output_with_input;
pub use error::LabError;
pub use filter::{DropRule, PacketFilter};
pub use http::{HttpResponse, free_loopback_port, http_get};
pub use lab::{EndpointMode, IpVersion, Lab, LabConfig, MAX_PATHS, NAMESPACE_PREFIX, Side};
pub use monitor::{MonitorReport, MptcpMonitor};
pub use router::{DropCounter, DropPick, RouterConfig, RouterSide};
pub use shared::shared_pcaps;
pub use short_connections::{ShortConnection, short_reply_bytes, short_request_bytes};
pub use transfer::{TransferCounts, TransferSession, TransferSpec, Transport};
