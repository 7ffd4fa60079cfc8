//! The points of a matrix: every combination of its axes that survives the implicit skips
//! (a precision the model cannot run, training at a quantised precision) and the explicit
//! excludes, each placed on the hardware its selector fans out to. Visited by reference,
//! so counting them allocates nothing per point.
//!
//! The size limit counts these points; [`crate::cell`] turns them into cells. They live
//! here, below `cell`, so that the spec never depends on the cells made from it.
//!
//! Must never: visit a point twice for a spec without duplicate axis values, or visit one
//! that an exclude removes.

use super::exclude::Rule;
use super::{Engine, FanOut, HardwareSelector, SweepSpec};
use crate::catalog::{self, is_runnable, Mode, ModelSpec, Precision};

/// Where a selector may fan out to: a hardware class, on one agent or on any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target<'a> {
    pub(crate) class: &'a str,
    pub(crate) agent: Option<&'a str>,
}

/// Each class, on whichever agent has it.
pub(crate) fn any_agent(classes: &[String]) -> Vec<Target<'_>> {
    classes.iter().map(|class| Target { class, agent: None }).collect()
}

/// A cell by reference, so counting allocates nothing per cell.
pub(crate) struct Point<'a> {
    pub(crate) model: &'a str,
    pub(crate) hardware: &'a HardwareSelector,
    pub(crate) class: Option<&'a str>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) batch: u32,
    pub(crate) seq_len: u32,
    pub(crate) precision: Precision,
    pub(crate) mode: Mode,
    pub(crate) engine: Engine,
}

/// The number of points [`for_each_point`] visits.
pub(crate) fn count(spec: &SweepSpec, targets: &[Target]) -> usize {
    let mut n = 0;
    for_each_point(spec, targets, |_| n += 1);
    n
}

/// Calls `visit` for every point that survives implicit and explicit excludes; a
/// selector fans out to `targets` as [`crate::cell::expand`] describes.
pub(crate) fn for_each_point(spec: &SweepSpec, targets: &[Target], mut visit: impl FnMut(&Point)) {
    let m = &spec.matrix;
    let rules: Vec<Rule> = m.exclude.iter().map(Rule::new).collect();
    let mut targets = targets.to_vec();
    targets.sort_unstable();
    targets.dedup();
    for model in &m.models {
        let fixed = catalog::lookup(model).and_then(ModelSpec::fixed_sequence_length);
        let seq_lens = fixed.as_ref().map_or(m.sequence_lengths.as_slice(), std::slice::from_ref);
        for hardware in &m.hardware {
            for (class, agent) in resolve(hardware, m.fan_out, &targets) {
                for &batch in &m.batch_sizes {
                    for &seq_len in seq_lens {
                        for &precision in &m.precisions {
                            for &mode in &m.modes {
                                if !is_runnable(model, precision, mode) {
                                    continue;
                                }
                                for &engine in &m.engines {
                                    let c = Point {
                                        model,
                                        hardware,
                                        class,
                                        agent,
                                        batch,
                                        seq_len,
                                        precision,
                                        mode,
                                        engine,
                                    };
                                    if !rules.iter().any(|r| r.removes(&c)) {
                                        visit(&c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The (class, agent) pairs one selector fans out to; `[(None, None)]` when unresolved
/// (see [`crate::cell::expand`]).
fn resolve<'a>(
    selector: &HardwareSelector,
    fan_out: FanOut,
    targets: &[Target<'a>],
) -> Vec<(Option<&'a str>, Option<&'a str>)> {
    if fan_out == FanOut::Any {
        return vec![(None, None)];
    }
    let matched: Vec<_> =
        targets.iter().filter(|t| selector.matches_class(t.class)).map(|t| (Some(t.class), t.agent)).collect();
    if matched.is_empty() {
        vec![(None, None)]
    } else {
        matched
    }
}
