//! The pure scheduler: [`solve`] picks which pending cells one agent gets, and on which of
//! its devices (the algorithm is in this folder's README.md).
//!
//! Must never: assign more cells than a device has free slots, a cell to a device not in
//! its `fits`, the same cell twice, or more than `max_cells`; [`check`] states these and
//! runs after every solve in debug builds and in the proptests.

use std::collections::BTreeSet;

use super::model::{Assignment, Problem, SweepDemand};

/// The assignments, in decision order: higher priority first; within one priority, round
/// robin over the sweeps, oldest first, one cell per sweep per round.
pub fn solve(problem: &Problem) -> Vec<Assignment> {
    let mut free: Vec<u32> = problem.devices.iter().map(|d| d.free_slots).collect();
    let mut assignments = Vec::new();
    for level in priority_levels(problem) {
        if assignments.len() >= problem.max_cells || free.iter().all(|&f| f == 0) {
            break;
        }
        round_robin(problem, &level, &mut free, &mut assignments);
    }
    debug_assert_eq!(check(problem, &assignments), Ok(()));
    assignments
}

/// Sweep ordinals grouped by priority, highest first; each group oldest first (ties by
/// ordinal, so the result never depends on anything but the problem).
fn priority_levels(problem: &Problem) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..problem.sweeps.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(problem.sweeps[i].priority), problem.sweeps[i].submitted_at_ms, i));
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match levels.last_mut() {
            Some(level) if problem.sweeps[level[0]].priority == problem.sweeps[i].priority => level.push(i),
            _ => levels.push(vec![i]),
        }
    }
    levels
}

/// One cell per sweep per round until no sweep of the level can place another cell.
fn round_robin(problem: &Problem, level: &[usize], free: &mut [u32], assignments: &mut Vec<Assignment>) {
    let mut cursors = vec![0usize; level.len()];
    loop {
        let mut placed = false;
        for (cursor, &sweep) in cursors.iter_mut().zip(level) {
            if assignments.len() >= problem.max_cells {
                return;
            }
            if let Some(assignment) = next_fit(&problem.sweeps[sweep], sweep, cursor, free) {
                free[assignment.device] -= 1;
                assignments.push(assignment);
                placed = true;
            }
        }
        if !placed {
            return;
        }
    }
}

/// The sweep's next cell (from `cursor` on) that has a device with a free slot. A cell
/// passed over now can never fit later in this solve (free slots only shrink), so the
/// cursor never goes back.
fn next_fit(sweep: &SweepDemand, sweep_idx: usize, cursor: &mut usize, free: &[u32]) -> Option<Assignment> {
    while let Some(cell) = sweep.cells.get(*cursor) {
        let cell_idx = *cursor;
        *cursor += 1;
        if let Some(&device) = cell.fits.iter().find(|&&d| free.get(d).is_some_and(|&f| f > 0)) {
            return Some(Assignment { sweep: sweep_idx, cell: cell_idx, device });
        }
    }
    None
}

/// The post-conditions of a solution; `Err` names the first one broken.
pub fn check(problem: &Problem, assignments: &[Assignment]) -> Result<(), String> {
    if assignments.len() > problem.max_cells {
        return Err(format!("{} assignments, at most {} asked for", assignments.len(), problem.max_cells));
    }
    let mut seen = BTreeSet::new();
    let mut used = vec![0u32; problem.devices.len()];
    for a in assignments {
        let cell = problem.sweeps.get(a.sweep).and_then(|s| s.cells.get(a.cell));
        let Some(cell) = cell else { return Err(format!("{a:?} names no cell")) };
        if !cell.fits.contains(&a.device) {
            return Err(format!("{a:?} puts a cell on a device it does not fit"));
        }
        if !seen.insert((a.sweep, a.cell)) {
            return Err(format!("{a:?} assigns a cell twice"));
        }
        let Some(n) = used.get_mut(a.device) else { return Err(format!("{a:?} names no device")) };
        *n += 1;
        if *n > problem.devices[a.device].free_slots {
            return Err(format!(
                "device {} gets more than its {} free slots",
                a.device, problem.devices[a.device].free_slots
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::model::{CellDemand, DeviceSupply};
    use proptest::prelude::*;

    fn sweep(priority: i32, submitted_at_ms: i64, fits: &[&[usize]]) -> SweepDemand {
        SweepDemand { priority, submitted_at_ms, cells: fits.iter().map(|f| CellDemand { fits: f.to_vec() }).collect() }
    }

    fn problem(sweeps: Vec<SweepDemand>, free_slots: &[u32], max_cells: usize) -> Problem {
        let devices = free_slots.iter().map(|&free_slots| DeviceSupply { free_slots }).collect();
        Problem { sweeps, devices, max_cells }
    }

    /// (sweep, cell, device) triples, in decision order.
    fn solved(problem: &Problem) -> Vec<(usize, usize, usize)> {
        solve(problem).iter().map(|a| (a.sweep, a.cell, a.device)).collect()
    }

    #[test]
    fn higher_priority_first_then_older_sweeps() {
        let p = problem(vec![sweep(0, 1, &[&[0], &[0]]), sweep(5, 9, &[&[0]]), sweep(0, 0, &[&[0]])], &[3], 10);
        assert_eq!(solved(&p), [(1, 0, 0), (2, 0, 0), (0, 0, 0)]);
    }

    #[test]
    fn sweeps_of_one_priority_take_turns() {
        let p = problem(vec![sweep(0, 2, &[&[0], &[0], &[0]]), sweep(0, 1, &[&[0], &[0]])], &[4], 10);
        assert_eq!(solved(&p), [(1, 0, 0), (0, 0, 0), (1, 1, 0), (0, 1, 0)]);
    }

    #[test]
    fn cells_that_fit_nowhere_free_are_passed_over() {
        // Device 0 is full; the sweep's second cell fits device 1.
        let p = problem(vec![sweep(0, 0, &[&[0], &[0, 1], &[]])], &[0, 1], 10);
        assert_eq!(solved(&p), [(0, 1, 1)]);
        let p = problem(vec![sweep(0, 0, &[&[0], &[0], &[0]])], &[5], 2);
        assert_eq!(solved(&p).len(), 2);
    }

    fn any_problem() -> impl Strategy<Value = Problem> {
        let n_devices = 1..4usize;
        n_devices.prop_flat_map(|n| {
            let fits = prop::collection::vec(0..n, 0..3).prop_map(|mut f| {
                f.sort_unstable();
                f.dedup();
                CellDemand { fits: f }
            });
            let sweep = (-1..2i32, 0..5i64, prop::collection::vec(fits, 0..6))
                .prop_map(|(priority, submitted_at_ms, cells)| SweepDemand { priority, submitted_at_ms, cells });
            let devices = prop::collection::vec((0..4u32).prop_map(|free_slots| DeviceSupply { free_slots }), n);
            (prop::collection::vec(sweep, 0..5), devices, 0..12usize).prop_map(|(sweeps, devices, max_cells)| Problem {
                sweeps,
                devices,
                max_cells,
            })
        })
    }

    proptest! {
        #[test]
        fn solutions_keep_the_post_conditions_and_leave_nothing_placeable(p in any_problem()) {
            let assignments = solve(&p);
            prop_assert_eq!(check(&p, &assignments), Ok(()));
            // Greedy is maximal: with room left, every unassigned cell fits nowhere free.
            let mut free: Vec<u32> = p.devices.iter().map(|d| d.free_slots).collect();
            for a in &assignments {
                free[a.device] -= 1;
            }
            if assignments.len() < p.max_cells {
                let taken: BTreeSet<(usize, usize)> = assignments.iter().map(|a| (a.sweep, a.cell)).collect();
                for (s, sweep) in p.sweeps.iter().enumerate() {
                    for (c, cell) in sweep.cells.iter().enumerate() {
                        let placeable = cell.fits.iter().any(|&d| free[d] > 0);
                        prop_assert!(taken.contains(&(s, c)) || !placeable, "cell {s}/{c} left out");
                    }
                }
            }
            prop_assert_eq!(solve(&p), assignments, "deterministic");
        }

        #[test]
        fn a_lower_priority_cell_never_takes_a_slot_a_higher_one_could_use(p in any_problem()) {
            let assignments = solve(&p);
            let taken: BTreeSet<(usize, usize)> = assignments.iter().map(|a| (a.sweep, a.cell)).collect();
            for a in &assignments {
                let priority = p.sweeps[a.sweep].priority;
                for (s, sweep) in p.sweeps.iter().enumerate().filter(|(_, s)| s.priority > priority) {
                    for (c, cell) in sweep.cells.iter().enumerate() {
                        prop_assert!(taken.contains(&(s, c)) || !cell.fits.contains(&a.device), "cell {s}/{c} skipped for {a:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn check_names_what_is_broken() {
        let p = problem(vec![sweep(0, 0, &[&[0], &[1]])], &[1, 0], 5);
        let twice = [Assignment { sweep: 0, cell: 0, device: 0 }, Assignment { sweep: 0, cell: 0, device: 0 }];
        assert_eq!(check(&p, &twice), Err("Assignment { sweep: 0, cell: 0, device: 0 } assigns a cell twice".into()));
        let full = [Assignment { sweep: 0, cell: 1, device: 1 }];
        assert_eq!(check(&p, &full), Err("device 1 gets more than its 0 free slots".into()));
        let misfit = [Assignment { sweep: 0, cell: 0, device: 1 }];
        assert!(check(&p, &misfit).expect_err("misfit").contains("does not fit"));
    }
}
