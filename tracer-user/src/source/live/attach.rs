//! Attaching the classifiers to interfaces and taking exactly that back off.
//!
//! TCX links are file descriptors: closing them detaches. Netlink (clsact) filters are identified
//! by interface, direction, priority and handle; each is deleted only while the kernel still
//! shows our program there (`tc_filters` lists them), so only our filters are removed, never
//! another program's or a second tracer's. The clsact qdisc is removed only when this run
//! created it and, our filters gone, it holds no filter of anyone else.

use aya::{
    Ebpf,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType,
        links::Link,
        tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions, TcError},
    },
    util::KernelVersion,
};
use nix::errno::Errno;

use super::{
    AttachMode, LiveError,
    tc_filters::{self, Hook},
};

/// The classifiers' names, which `tc filter show` and the kernel's filter dumps give as the bpf
/// filter's name: unmistakably ours, so that a stale filter of an earlier run can be told from
/// anyone else's (at most 15 characters: the kernel keeps that much of a program's name).
pub(super) const INGRESS_PROGRAM: &str = "mptcp_trc_in";
pub(super) const EGRESS_PROGRAM: &str = "mptcp_trc_eg";

/// An interface to trace, resolved in the traced namespace before anything is attached.
#[derive(Clone, Debug)]
pub(super) struct Interface {
    pub(super) name: String,
    pub(super) ifindex: u32,
}

/// Resolves names to indices; an unknown name is an error that names it.
pub(super) fn resolve(names: &[String], netns: Option<&str>) -> Result<Vec<Interface>, LiveError> {
    if names.is_empty() {
        return Err(LiveError::Other(
            "no interface to trace (give at least one)".into(),
        ));
    }
    let mut interfaces: Vec<Interface> = Vec::new();
    for name in names {
        if interfaces.iter().any(|known| &known.name == name) {
            continue;
        }
        let ifindex = ifindex_of(name).ok_or_else(|| LiveError::Interface {
            name: name.clone(),
            reason: match netns {
                Some(ns) => format!("no such interface in network namespace {ns}"),
                None => "no such interface (use --netns for one in another namespace)".into(),
            },
        })?;
        interfaces.push(Interface {
            name: name.clone(),
            ifindex,
        });
    }
    Ok(interfaces)
}

/// `if_nametoindex` in the calling thread's network namespace.
pub(super) fn ifindex_of(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// The mechanism actually used on one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mechanism {
    Tcx,
    /// clsact filters; `created_clsact` says whether this run added the qdisc.
    Netlink {
        created_clsact: bool,
    },
}

struct Attachment {
    interface: Interface,
    mechanism: Mechanism,
    ingress: Option<SchedClassifierLinkId>,
    egress: Option<SchedClassifierLinkId>,
    /// The interface went away while tracing: its links are already gone with it.
    gone: bool,
}

/// Everything attached by this run. Dropping it detaches (also on unwinding), but `detach`
/// reports what could not be undone.
pub(super) struct Attached {
    attachments: Vec<Attachment>,
    pub(super) ebpf: Ebpf,
}

impl Attached {
    pub(super) fn new(ebpf: Ebpf) -> Attached {
        Attached {
            attachments: Vec::new(),
            ebpf,
        }
    }

    /// Attaches ingress and egress on `interface`. On failure whatever this call attached is
    /// already taken off again.
    pub(super) fn attach(
        &mut self,
        interface: &Interface,
        mode: AttachMode,
    ) -> Result<Mechanism, LiveError> {
        let use_tcx = match mode {
            AttachMode::Tcx => true,
            AttachMode::Netlink => false,
            AttachMode::Auto => {
                KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
            }
        };
        if use_tcx {
            match self.attach_with(interface, Mechanism::Tcx) {
                Ok(()) => return Ok(Mechanism::Tcx),
                Err(e) if mode == AttachMode::Tcx => return Err(e),
                Err(e) => log::warn!("TCX attach failed ({e}); falling back to a clsact qdisc"),
            }
        }
        let created_clsact = add_clsact(interface)?;
        let mechanism = Mechanism::Netlink { created_clsact };
        self.attach_with(interface, mechanism)?;
        Ok(mechanism)
    }

    fn attach_with(
        &mut self,
        interface: &Interface,
        mechanism: Mechanism,
    ) -> Result<(), LiveError> {
        self.attachments.push(Attachment {
            interface: interface.clone(),
            mechanism,
            ingress: None,
            egress: None,
            gone: false,
        });
        let result = self
            .attach_direction(TcAttachType::Ingress)
            .and_then(|()| self.attach_direction(TcAttachType::Egress));
        if let Err(e) = result {
            if let Some(attachment) = self.attachments.pop() {
                for warning in self.undo(attachment) {
                    log::warn!("{warning}");
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Attaches one direction for the last pushed attachment.
    fn attach_direction(&mut self, direction: TcAttachType) -> Result<(), LiveError> {
        let Some(attachment) = self.attachments.last_mut() else {
            return Ok(());
        };
        let (name, label) = match direction {
            TcAttachType::Egress => (EGRESS_PROGRAM, "egress"),
            _ => (INGRESS_PROGRAM, "ingress"),
        };
        let options = match attachment.mechanism {
            Mechanism::Tcx => TcAttachOptions::TcxOrder(LinkOrder::default()),
            Mechanism::Netlink { .. } => TcAttachOptions::Netlink(NlOptions::default()),
        };
        let program = classifier(&mut self.ebpf, name)?;
        let link = program
            .attach_with_options(&attachment.interface.name, direction, options)
            .map_err(|e| LiveError::Attach {
                interface: attachment.interface.name.clone(),
                direction: label,
                reason: error_chain(&e),
            })?;
        match direction {
            TcAttachType::Egress => attachment.egress = Some(link),
            _ => attachment.ingress = Some(link),
        }
        Ok(())
    }

    /// Marks interfaces whose index no longer resolves to the same name; returns their names.
    pub(super) fn check_vanished(&mut self) -> Vec<String> {
        let mut vanished = Vec::new();
        for attachment in &mut self.attachments {
            if !attachment.gone
                && ifindex_of(&attachment.interface.name) != Some(attachment.interface.ifindex)
            {
                attachment.gone = true;
                vanished.push(attachment.interface.name.clone());
            }
        }
        vanished
    }

    pub(super) fn all_gone(&self) -> bool {
        self.attachments.iter().all(|a| a.gone)
    }

    /// Detaches everything; returns what could not be undone, one line each.
    pub(super) fn detach(&mut self) -> Vec<String> {
        let attachments = std::mem::take(&mut self.attachments);
        attachments.into_iter().flat_map(|a| self.undo(a)).collect()
    }

    fn undo(&mut self, attachment: Attachment) -> Vec<String> {
        let mut warnings = Vec::new();
        let Attachment {
            interface,
            mechanism,
            ingress,
            egress,
            gone,
        } = attachment;
        for (name, hook, link) in [
            (INGRESS_PROGRAM, Hook::Ingress, ingress),
            (EGRESS_PROGRAM, Hook::Egress, egress),
        ] {
            let Some(link) = link else { continue };
            let result = classifier(&mut self.ebpf, name).and_then(|program| match mechanism {
                Mechanism::Tcx => program
                    .detach(link)
                    .map_err(|e| LiveError::Other(error_chain(&e))),
                Mechanism::Netlink { .. } => detach_own_filter(program, link, &interface, hook),
            });
            // A vanished interface took its filters and links with it.
            if let Err(e) = result
                && !gone
            {
                warnings.push(format!(
                    "could not detach {name} from {}: {e}",
                    interface.name
                ));
            }
        }
        if mechanism
            == (Mechanism::Netlink {
                created_clsact: true,
            })
            && !gone
            && let Err(e) = remove_clsact_if_unused(&interface)
        {
            warnings.push(e);
        }
        warnings
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        for warning in self.detach() {
            log::warn!("{warning}");
        }
    }
}

/// Deletes our netlink filter, identified by hook, priority and handle as aya does, but only
/// while the kernel still shows our program there: had someone deleted ours and another filter
/// taken its place (a `tc filter del` of the whole hook, then a new filter), deleting by
/// priority and handle would delete theirs.
fn detach_own_filter(
    program: &mut SchedClassifier,
    link: SchedClassifierLinkId,
    interface: &Interface,
    hook: Hook,
) -> Result<(), LiveError> {
    let failed = |e: &dyn std::error::Error| LiveError::Other(error_chain(e));
    let our_id = program.info().map_err(|e| failed(&e))?.id();
    let link = program.take_link(link).map_err(|e| failed(&e))?;
    let priority = link.priority().map_err(|e| failed(&e))?;
    let handle = u32::from(link.handle().map_err(|e| failed(&e))?);
    let shown = match tc_filters::list(interface.ifindex) {
        Ok(filters) => filters
            .into_iter()
            .find(|f| f.hook == hook && f.priority == priority && f.handle == handle),
        Err(e) => {
            log::debug!(
                "listing the filters of {} failed ({e}); detaching",
                interface.name
            );
            return Link::detach(link).map_err(|e| failed(&e));
        }
    };
    match shown {
        Some(filter) if filter.program_id == Some(our_id) => {
            Link::detach(link).map_err(|e| failed(&e))
        }
        other => {
            if let Some(filter) = other {
                log::warn!(
                    "{}: {} is not our filter any more; left alone",
                    interface.name,
                    filter.describe()
                );
            }
            // Dropping the link would delete whatever sits at its priority and handle now.
            std::mem::forget(link);
            Ok(())
        }
    }
}

/// Removes the clsact qdisc this run added, unless it holds a filter of anyone else by now (a
/// second tracer's, a CNI's): deleting the qdisc would delete those filters with it. Our own
/// filters are gone already, so any filter left is someone else's. Returns the warning to give.
fn remove_clsact_if_unused(interface: &Interface) -> Result<(), String> {
    let hint = |e: &dyn std::fmt::Display| {
        format!(
            "could not remove the clsact qdisc this run added to {}: {e} (once it holds no \
             filter, remove it with `tc qdisc del dev {} clsact`)",
            interface.name, interface.name
        )
    };
    let others = tc_filters::list(interface.ifindex).map_err(|e| hint(&e))?;
    if !others.is_empty() {
        let shown: Vec<String> = others.iter().map(tc_filters::Filter::describe).collect();
        log::info!(
            "leaving the clsact qdisc of {} in place: it holds filters of others ({})",
            interface.name,
            shown.join("; ")
        );
        return Ok(());
    }
    tc_filters::delete_clsact(interface.ifindex).map_err(|e| hint(&e))
}

pub(super) fn classifier<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut SchedClassifier, LiveError> {
    ebpf.program_mut(name)
        .ok_or_else(|| LiveError::Load(format!("the eBPF object has no program {name}")))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| {
            LiveError::Load(format!("{name}: {}", error_chain(&e)))
        })
}

/// Adds the clsact qdisc; `true` when this call created it, `false` when it was already there.
fn add_clsact(interface: &Interface) -> Result<bool, LiveError> {
    match tc::qdisc_add_clsact(&interface.name) {
        Ok(()) => Ok(true),
        Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(Errno::EEXIST as i32) => {
            Ok(false)
        }
        Err(e) => Err(LiveError::Attach {
            interface: interface.name.clone(),
            direction: "clsact qdisc",
            reason: error_chain(&e),
        }),
    }
}

/// An error and its sources on one line (aya's errors keep the errno in the source).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
