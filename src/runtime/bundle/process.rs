//! A bundle's process object (PID 1's, or `exec --process`'s) as a
//! [`ProcessPlan`], and `linux.memoryPolicy` as set_mempolicy(2) takes it.

use super::{invalid, ProcessPlan, Result};
use crate::linux::caps;

/// An OCI process object (PID 1's, or `exec --process`'s).
pub fn process_plan(p: &oci_spec::runtime::Process) -> Result<ProcessPlan> {
    let argv = p.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(invalid("process.args must not be empty"));
    }
    let cwd = p.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(invalid(format!("process.cwd {cwd:?} is not absolute")));
    }
    let mut sets = caps::Sets::default();
    if let Some(c) = p.capabilities() {
        let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut m = 0u64;
            for cap in set.clone().unwrap_or_default() {
                let name = serde_json::to_value(cap)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                // One this list does not know is left out, as runc leaves
                // out those the kernel lacks.
                if let Some(n) = caps::number(&name) {
                    m |= caps::bit(n);
                }
            }
            m
        };
        let (permitted, inheritable) = (mask(c.permitted()), mask(c.inheritable()));
        sets = caps::Sets {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted,
            inheritable,
            // The kernel raises an ambient capability only when it is both
            // permitted and inheritable; runc leaves the others out rather
            // than fail (`runc spec --rootless` lists ambient capabilities
            // with no inheritable set), and so does burrow.
            ambient: mask(c.ambient()) & permitted & inheritable,
        };
    }
    let mut rlimits = Vec::new();
    for r in p.rlimits().clone().unwrap_or_default() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rlimits.push((name, r.soft(), r.hard()));
    }
    let user = p.user();
    Ok(ProcessPlan {
        argv,
        env: p.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        caps: sets,
        terminal: p.terminal().unwrap_or(false),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        rlimits,
        oom_score_adj: p.oom_score_adj(),
    })
}

/// `linux.memoryPolicy` for set_mempolicy(2): the mode's number with the
/// flags' bits, and `nodes` ("0-3,5") as a mask. The kernel checks the
/// combination (an empty mask where the mode needs nodes, a node it does
/// not have) and refuses it at create.
pub(super) fn mempolicy(
    p: &oci_spec::runtime::LinuxMemoryPolicy,
) -> Result<(i32, Vec<libc::c_ulong>)> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    // include/uapi/linux/mempolicy.h
    let mut mode = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for f in p.flags().clone().unwrap_or_default() {
        mode |= match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    // Far above any kernel's MAX_NUMNODES (1 << 10): a mask of that size
    // is refused by the kernel anyway.
    const MAX_NODE: usize = 1 << 16;
    let bits = libc::c_ulong::BITS as usize;
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    let nodes = p.nodes().clone().unwrap_or_default();
    for part in nodes.split(',').filter(|s| !s.trim().is_empty()) {
        let bad = || {
            invalid(format!(
                "linux.memoryPolicy.nodes {nodes:?}: use a list like 0-3,5"
            ))
        };
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if a > b || b >= MAX_NODE {
            return Err(bad());
        }
        if mask.len() <= b / bits {
            mask.resize(b / bits + 1, 0);
        }
        for n in a..=b {
            mask[n / bits] |= 1 << (n % bits);
        }
    }
    Ok((mode, mask))
}
