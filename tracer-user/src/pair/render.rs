//! The two-capture results as text: tables for people, JSON for programs. The per-packet
//! delays of a large pair are streamed: written as they are resolved to a temporary file per
//! direction, then copied after the statistics, which are known only at the end.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
};

use serde::Serialize;

use super::{
    PairError,
    map::MptcpMatch,
    matcher::OwdPacket,
    owd::{OwdOptions, OwdReport, owd},
    reinjections::{QualifyReport, ReinjectionList},
    tempfile::TempFile,
};
use crate::analysis::direction::Direction;

/// Writes the delays of `matched` as JSON or as tables, streaming the packets (`with_packets`)
/// through a temporary file per direction: the statistics come first but are known last.
/// Returns the report too.
pub fn write_owd(
    out: &mut dyn Write,
    json: bool,
    client: &Path,
    server: &Path,
    matched: &MptcpMatch,
    options: &OwdOptions,
    with_packets: bool,
) -> Result<OwdReport, PairError> {
    let mut spills = [Spill::create("c2s")?, Spill::create("s2c")?];
    let mut failed = None;
    let report = owd(client, server, matched, options, &mut |p: &OwdPacket| {
        if !with_packets || failed.is_some() {
            return;
        }
        let spill = &mut spills[usize::from(p.direction == Direction::ServerToClient)];
        let written = if json {
            spill.json_row(p)
        } else {
            spill.table_row(p)
        };
        failed = written.err();
    })?;
    if let Some(error) = failed {
        return Err(error.into());
    }
    if json {
        write_json(out, &report, &mut spills, with_packets)?;
    } else {
        out.write_all(render_owd_table(&report).as_bytes())?;
        for (direction, spill) in report.directions.iter().zip(&mut spills) {
            if with_packets {
                writeln!(out, "\npackets {}", direction.direction.as_str())?;
                writeln!(out, "{}", packet_header())?;
                spill.copy_to(out)?;
            }
        }
    }
    out.flush()?;
    Ok(report)
}

/// The report as JSON (its own serialisation, field for field: a test holds them equal), each
/// direction's packets (one per line) added after its subflows.
fn write_json(
    out: &mut dyn Write,
    report: &OwdReport,
    spills: &mut [Spill; 2],
    with_packets: bool,
) -> Result<(), PairError> {
    write!(
        out,
        "{{\"id\":{},\"peer_id\":{},\"clock_offset_s\":{},\"horizon_s\":{},\"notes\":{},\"directions\":[",
        report.id,
        report.peer_id,
        json(&report.clock_offset_s),
        json(&report.horizon_s),
        json(&report.notes),
    )?;
    for (i, (direction, spill)) in report.directions.iter().zip(spills).enumerate() {
        let comma = if i > 0 { "," } else { "" };
        write!(
            out,
            "{comma}\n{{\"direction\":{},\"subflows\":{},\"packets\":[",
            json(&direction.direction),
            json(&direction.subflows),
        )?;
        if with_packets {
            spill.copy_to(out)?;
        }
        write!(out, "]}}")?;
    }
    writeln!(out, "]}}")?;
    Ok(())
}

/// serde_json of a value made of numbers, strings, options and vectors of them, which always
/// serialises.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

/// One packet as a JSON row.
#[derive(Serialize)]
struct PacketRow {
    sent_s: f64,
    received_s: Option<f64>,
    owd_s: Option<f64>,
    tcp_stream: u64,
    peer_tcp_stream: Option<u64>,
    /// Decimal: 64-bit values do not survive JSON readers that use doubles.
    dsn: Option<String>,
    len: u32,
    retransmission: bool,
    reinjection: bool,
    frame: u64,
    peer_frame: Option<u64>,
    seq: Option<u64>,
}

impl PacketRow {
    fn of(p: &OwdPacket) -> Self {
        PacketRow {
            sent_s: p.sent_s(),
            received_s: p.received_s(),
            owd_s: p.owd_s(),
            tcp_stream: p.tcp_stream,
            peer_tcp_stream: p.peer_tcp_stream,
            dsn: p.data.map(|d| d.start.to_string()),
            len: p.len,
            retransmission: p.retransmission,
            reinjection: p.reinjection,
            frame: p.frame,
            peer_frame: p.peer_frame,
            seq: p.seq,
        }
    }
}

/// A direction's packet rows, written as they come and read back once at the end; the file
/// is removed when dropped.
struct Spill {
    file: TempFile,
    writer: Option<BufWriter<File>>,
    rows: u64,
}

impl Spill {
    fn create(name: &str) -> std::io::Result<Self> {
        let (file, writer) = TempFile::create(name)?;
        Ok(Spill {
            file,
            writer: Some(BufWriter::new(writer)),
            rows: 0,
        })
    }

    fn json_row(&mut self, p: &OwdPacket) -> std::io::Result<()> {
        let separator = if self.rows > 0 { ",\n" } else { "\n" };
        self.rows += 1;
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        writer.write_all(separator.as_bytes())?;
        serde_json::to_writer(&mut *writer, &PacketRow::of(p)).map_err(std::io::Error::other)
    }

    fn table_row(&mut self, p: &OwdPacket) -> std::io::Result<()> {
        self.rows += 1;
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        writeln!(writer, "{}", packet_line(p))
    }

    /// Appends what was written to `out`.
    fn copy_to(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush()?;
        }
        let mut file = File::open(self.file.path())?;
        std::io::copy(&mut file, out)?;
        Ok(())
    }
}

/// The header of `packet_line`'s columns.
fn packet_header() -> String {
    format!(
        "{:>17}  {:>17}  {:>9}  {:>6}  {:>4}  {:>20}  {:>5}  flags",
        "sent_s", "received_s", "owd_ms", "stream", "peer", "dsn", "len"
    )
}

/// One packet as a table line (`packet_header`); flags: R retransmission, J reinjection.
fn packet_line(p: &OwdPacket) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| String::from("-"));
    let flags = match (p.retransmission, p.reinjection) {
        (true, true) => "RJ",
        (true, false) => "R",
        (false, true) => "J",
        (false, false) => "",
    };
    let line = format!(
        "{:>17.6}  {:>17}  {:>9}  {:>6}  {:>4}  {:>20}  {:>5}  {flags}",
        p.sent_s(),
        opt(p.received_s().map(|s| format!("{s:.6}"))),
        opt(p.owd_s().map(|s| format!("{:.3}", s * 1e3))),
        p.tcp_stream,
        opt(p.peer_tcp_stream.map(|s| s.to_string())),
        opt(p.data.map(|d| d.start.to_string())),
        p.len,
    );
    // No trailing blanks when there are no flags.
    line.trim_end().to_string()
}

/// The per-subflow statistics as a table, delays in milliseconds.
pub fn render_owd_table(report: &OwdReport) -> String {
    let mut text = format!(
        "MPTCP connection {} (peer {}), clock offset {}, loss horizon {:.1} s\n",
        report.id,
        report.peer_id,
        report
            .clock_offset_s
            .map_or_else(|| String::from("unknown"), |s| format!("{s} s")),
        report.horizon_s,
    );
    for note in &report.notes {
        text += &format!("note: {note}\n");
    }
    text += &format!(
        "{:<16}  {:>6}  {:>4}  {:>7}  {:>7}  {:>9}  {:>7}  {:>9}  {:>7}  {:>7}\n",
        "direction",
        "stream",
        "peer",
        "packets",
        "lost",
        "unmatched",
        "min_ms",
        "median_ms",
        "p95_ms",
        "max_ms"
    );
    let ms = |s: Option<f64>| s.map_or_else(|| String::from("-"), |s| format!("{:.3}", s * 1e3));
    for direction in &report.directions {
        for s in &direction.subflows {
            text += &format!(
                "{:<16}  {:>6}  {:>4}  {:>7}  {:>7}  {:>9}  {:>7}  {:>9}  {:>7}  {:>7}\n",
                direction.direction.as_str(),
                s.tcp_stream,
                s.peer_tcp_stream
                    .map_or_else(|| String::from("-"), |p| p.to_string()),
                s.packets,
                s.lost,
                s.unmatched_received,
                ms(s.min_s),
                ms(s.median_s),
                ms(s.p95_s),
                ms(s.max_s),
            );
        }
    }
    text
}

/// Writes the listing as (pretty) JSON or as a table.
pub fn write_reinjection_list(
    out: &mut dyn Write,
    json: bool,
    list: &ReinjectionList,
) -> Result<(), PairError> {
    if json {
        serde_json::to_writer_pretty(&mut *out, list).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        out.write_all(render_reinjection_list(list).as_bytes())?;
    }
    Ok(())
}

/// Writes the qualification as (pretty) JSON or as a table.
pub fn write_qualify(
    out: &mut dyn Write,
    json: bool,
    report: &QualifyReport,
) -> Result<(), PairError> {
    if json {
        serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        out.write_all(render_qualify_table(report).as_bytes())?;
    }
    Ok(())
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| String::from("-"), |v| v.to_string())
}

/// The reinjections of one capture as a table.
pub fn render_reinjection_list(list: &ReinjectionList) -> String {
    let mut text = format!("MPTCP connection {}: reinjections\n", list.id);
    for note in &list.notes {
        text += &format!("note: {note}\n");
    }
    for d in &list.directions {
        text += &format!(
            "{}: {} reinjections, {} bytes\n",
            d.direction.as_str(),
            d.packets,
            d.bytes
        );
        if d.reinjections.is_empty() {
            continue;
        }
        text += "                 dsn    len  stream   frame            time_s  orig_stream  orig_frame  delay_ms\n";
        for r in &d.reinjections {
            text += &format!(
                "{:>20}  {:>5}  {:>6}  {:>6}  {:>16.6}  {:>11}  {:>10}  {:>8}\n",
                r.dsn,
                r.len,
                r.tcp_stream,
                r.frame,
                r.time_s,
                opt(r.original_tcp_stream),
                opt(r.original_frame),
                opt(r.delay_s.map(|s| format!("{:.3}", s * 1e3))),
            );
        }
    }
    text
}

/// The qualified reinjections as a table.
pub fn render_qualify_table(report: &QualifyReport) -> String {
    let mut text = format!(
        "MPTCP connection {} (peer {}): were the reinjections useful?\n",
        report.id, report.peer_id
    );
    for note in &report.notes {
        text += &format!("note: {note}\n");
    }
    for d in &report.directions {
        text += &format!(
            "{}: {} useful ({} bytes), {} redundant ({} bytes)\n",
            d.direction.as_str(),
            d.useful,
            d.useful_bytes,
            d.redundant,
            d.redundant_bytes
        );
        if d.reinjections.is_empty() {
            continue;
        }
        text += "                 dsn    len  stream  orig_stream  useful   gain_ms\n";
        for r in &d.reinjections {
            text += &format!(
                "{:>20}  {:>5}  {:>6}  {:>11}  {:>6}  {:>8}\n",
                r.dsn,
                r.len,
                r.tcp_stream,
                opt(r.original_tcp_stream),
                if r.useful { "yes" } else { "no" },
                opt(r.gain_s.map(|s| format!("{:.3}", s * 1e3))),
            );
        }
    }
    text
}
