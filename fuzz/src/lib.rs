//! What the fuzz targets share: everything the analysis reports, as JSON (`summaries`), TCP
//! segments as Ethernet frames (`frame`), and MPTCP connections generated from fixed keys
//! (`scenario`).

pub mod frame;
pub mod scenario;

use mptcp_tracer::{analysis::Analyzer, offline::OfflineReport};

/// Every summary the CLI can print about an analysis, serialised as `--json` does: the
/// diagnostics, list-tcp, each tcp-summary, list-mptcp, each mptcp-summary. Building them
/// walks every connection, subflow and event; two analyses that agree on this agree on every
/// answer the tool gives.
pub fn summaries(analyzer: &Analyzer) -> String {
    let mut text = json(analyzer.diagnostics());
    text += &json(&analyzer.tcp_list());
    for stream in 0.. {
        let Some(summary) = analyzer.tcp_summary(stream) else {
            break;
        };
        text += &json(&summary);
    }
    text += &json(&analyzer.mptcp_list());
    for id in 0.. {
        let Some(summary) = analyzer.mptcp_summary(id) else {
            break;
        };
        text += &json(&summary);
        text += &json(&analyzer.mptcp_info(id));
    }
    text
}

/// `summaries`, and the damage that stopped reading, if any.
pub fn report(report: &OfflineReport) -> String {
    let mut text = summaries(&report.analyzer);
    if let Some(error) = &report.error {
        text += &format!("\nerror: {error}");
    }
    text
}

/// One summary as `--json` prints it (compact). The summaries are plain data: serialising
/// them cannot fail, and if it does the fuzzer should hear of it.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("summaries serialise")
}
