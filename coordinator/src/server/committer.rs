//! Results committed in groups: every result waiting when the committer comes round
//! shares one verdict read, one Parquet file per table and partition, one Raft entry
//! ([`Command::CompleteCells`], all or nothing) and one warehouse manifest commit, and
//! each is acknowledged only after that manifest commit.
//!
//! A group goes through rounds: when apply refuses some of its results (a lease expired
//! or the sweep was cancelled between the verdict read and the commit), nothing of the
//! round is kept, its files are discarded, the refused ones are answered, and the rest go
//! round again in fresh files. Each round answers at least one result, so it ends.
//!
//! Must never: acknowledge `Committed` before the warehouse manifest lists the result's
//! rows, keep the rows of a refused result in a committed file, or commit one attempt's
//! rows twice (two copies of one report in one group: the first commits, the copies are
//! answered `Duplicate`).

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::v1::AckStatus;
use shared::cell::CellKey;
use shared::result::{Coordinates, ResultRecord};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tonic::Status;

use super::errors::{raft_status, shutting_down, unexpected};
use super::Ctx;
use crate::state::command::Completion;
use crate::state::{check_completion, CellState, Command, FileEntry, Outcome, Rejection, State, SweepId};
use crate::warehouse::schema::{Origin, ResultKey};

/// Most results in one group: bounds the size of one Parquet file and one Raft entry.
const MAX_GROUP: usize = 512;
/// Results queued beyond the group in progress before reporters wait.
const QUEUE: usize = 8192;

/// How a reported result ended: an ack status and its message, or an error for the
/// reporter to retry on (the result may or may not have committed; a re-send finds out).
pub type Answer = Result<(AckStatus, String), Status>;

/// One checked result on its way to the warehouse: the completion Raft decides on
/// (without files; the group's files go with the group) and the rows to store.
pub struct Report {
    pub completion: Completion,
    pub record: ResultRecord,
}

struct Queued {
    report: Report,
    reply: oneshot::Sender<Answer>,
}

/// The handle RPCs use; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Queued>,
}

impl Committer {
    /// Starts the committer task. It ends when every handle is dropped and every group
    /// in flight has finished (its Raft command decided and, if committed, its warehouse
    /// commit landed): the returned handle resolves then, so a shutdown can drain it.
    pub fn start(ctx: Ctx) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let done = tokio::spawn(run(ctx, rx));
        (Committer { tx }, done)
    }

    /// Queues a checked result; the receiver answers once its group is decided.
    pub async fn submit(&self, report: Report) -> Result<oneshot::Receiver<Answer>, Status> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Queued { report, reply }).await.map_err(|_| shutting_down())?;
        Ok(answer)
    }
}

/// First and longest wait between tries of a warehouse commit that failed.
const WAREHOUSE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const WAREHOUSE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Groups in flight at once. Staging a group (Parquet encoding, file writes) takes
/// milliseconds whatever its size, so groups overlap: while one waits for its fsync or
/// its files, the next is staged. Concurrent groups cannot both commit one attempt: the
/// second's `CompleteCells` is refused at apply and its copy answered `Duplicate`.
const GROUPS_IN_FLIGHT: usize = 2;

async fn run(ctx: Ctx, mut rx: mpsc::Receiver<Queued>) {
    let slots = Arc::new(Semaphore::new(GROUPS_IN_FLIGHT));
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        // Wait for a free slot first, so that results pile up into the next group
        // while every slot is busy.
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let mut group = Vec::with_capacity(MAX_GROUP);
        if rx.recv_many(&mut group, MAX_GROUP).await == 0 {
            break;
        }
        let ctx = ctx.clone();
        in_flight.spawn(async move {
            commit_group(&ctx, group).await;
            drop(slot);
        });
        // Reap finished groups as we go, so the set stays small.
        while in_flight.try_join_next().is_some() {}
    }
    // Drain: a group whose Raft command committed finishes its warehouse commit before
    // the coordinator stops (a crash instead leaves it to the restart's mirror).
    while in_flight.join_next().await.is_some() {}
}

/// Results of one cell attempt in one group: the first is committed, the copies are
/// answered after it.
struct Entry {
    first: Queued,
    copies: Vec<Queued>,
}

impl Entry {
    fn answer(self, answer: Answer) {
        let for_copies = match &answer {
            Ok((AckStatus::Committed, _)) => Ok((AckStatus::Duplicate, "already committed".to_string())),
            other => other.clone(),
        };
        let _ = self.first.reply.send(answer);
        for copy in self.copies {
            let _ = copy.reply.send(for_copies.clone());
        }
    }
}

async fn commit_group(ctx: &Ctx, group: Vec<Queued>) {
    let (t0, n) = (std::time::Instant::now(), group.len());
    // Decided before any file is written, so that results that cannot commit cost
    // nothing; apply checks again.
    let verdicts = ctx.raft.read(|s| {
        group
            .iter()
            .map(|q| check_completion(s, &q.report.completion).and_then(|()| check_label(s, &q.report)))
            .collect()
    });
    let verdicts: Vec<_> = match verdicts.await {
        Ok(verdicts) => verdicts,
        Err(e) => {
            let status = raft_status(e);
            return group.into_iter().for_each(|q| drop(q.reply.send(Err(status.clone()))));
        }
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_attempt: BTreeMap<(SweepId, CellKey, u32), usize> = BTreeMap::new();
    for (queued, verdict) in group.into_iter().zip(verdicts) {
        match verdict {
            Err(outcome @ Outcome::Duplicate { .. }) => {
                let answer = duplicate_if_visible(ctx, &queued.report.record, outcome).await;
                drop(queued.reply.send(answer));
            }
            Err(outcome) => drop(queued.reply.send(refusal(outcome))),
            Ok(()) => {
                let c = &queued.report.completion;
                let id = (c.sweep_id, c.cell_key.clone(), c.attempt);
                match by_attempt.get(&id) {
                    Some(&i) => entries[i].copies.push(queued),
                    None => {
                        by_attempt.insert(id, entries.len());
                        entries.push(Entry { first: queued, copies: Vec::new() });
                    }
                }
            }
        }
    }
    let t1 = t0.elapsed();
    while !entries.is_empty() {
        entries = commit_round(ctx, entries).await;
    }
    tracing::debug!(n, verdicts_ms = t1.as_secs_f64() * 1e3, total_ms = t0.elapsed().as_secs_f64() * 1e3, "group done");
    ctx.metrics.group_committed(n, t0.elapsed());
}

/// One attempt at committing `entries` together; returns those to try again.
async fn commit_round(ctx: &Ctx, entries: Vec<Entry>) -> Vec<Entry> {
    let origin = if ctx.config.load_test { Origin::LoadTest } else { Origin::Measured };
    let records: Vec<&ResultRecord> = entries.iter().map(|e| &e.first.report.record).collect();
    let files = match ctx.warehouse.stage(&records, origin).await {
        Ok(files) => files,
        Err(e) => return fail_all(entries, Status::unavailable(format!("staging results: {e}"))),
    };
    // Before Raft decides: once it may have committed them, gc must keep the files.
    let intent = match ctx.warehouse.record_intent(&files).await {
        Ok(intent) => intent,
        Err(e) => {
            ctx.warehouse.discard(&files).await;
            return fail_all(entries, Status::unavailable(format!("recording the staged files: {e}")));
        }
    };
    let command = Command::CompleteCells {
        completions: entries.iter().map(|e| e.first.report.completion.clone()).collect(),
        files: files.clone(),
    };
    // A Raft error leaves the outcome unknown: the files and their intent stay, since the
    // command may still commit (then the restart mirror commits them and a re-send is a
    // duplicate).
    match ctx.raft.propose(command).await {
        Ok(Outcome::CellsCompleted { .. }) => {
            commit_to_warehouse(ctx, entries, files).await;
            ctx.warehouse.clear_intent(&intent).await;
            Vec::new()
        }
        Ok(Outcome::CompletionsRefused { refused }) => {
            ctx.warehouse.discard(&files).await;
            ctx.warehouse.clear_intent(&intent).await;
            answer_refused(entries, refused)
        }
        Ok(Outcome::Rejected(why)) => {
            ctx.warehouse.discard(&files).await;
            ctx.warehouse.clear_intent(&intent).await;
            fail_all(entries, Status::internal(format!("group commit refused: {why}")))
        }
        Ok(other) => fail_all(entries, unexpected(&other)),
        Err(e) => fail_all(entries, raft_status(e)),
    }
}

/// Commits a group Raft has recorded into the warehouse manifest, retrying until it
/// lands: Raft has decided these results exist, so giving up would leave rows that are
/// committed but invisible (and answered `Duplicate` on a re-send). The reporters wait;
/// a restart in the meantime mirrors the files from Raft's manifest instead.
async fn commit_to_warehouse(ctx: &Ctx, entries: Vec<Entry>, files: Vec<FileEntry>) {
    let keys: Vec<ResultKey> = entries.iter().map(|e| ResultKey::of(&e.first.report.record)).collect();
    let mut wait = WAREHOUSE_RETRY_FIRST;
    while let Err(e) = ctx.warehouse.commit_staged(files.clone(), keys.clone()).await {
        tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, n = entries.len(), "warehouse commit failed; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(WAREHOUSE_RETRY_MAX);
    }
    let answer = Ok((AckStatus::Committed, String::new()));
    for entry in entries {
        let c = &entry.first.report.completion;
        tracing::info!(agent_id = %c.agent_id, sweep_id = %c.sweep_id, cell_key = %c.cell_key, attempt = c.attempt, status = %c.status, "result committed");
        entry.answer(answer.clone());
    }
}

/// Answers the refused entries and returns the others, to go round again.
fn answer_refused(entries: Vec<Entry>, refused: Vec<(usize, Outcome)>) -> Vec<Entry> {
    let mut refused: BTreeMap<usize, Outcome> = refused.into_iter().collect();
    let mut again = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match refused.remove(&i) {
            None => again.push(entry),
            Some(outcome) => entry.answer(refusal(outcome)),
        }
    }
    again
}

fn fail_all(entries: Vec<Entry>, status: Status) -> Vec<Entry> {
    for entry in entries {
        entry.answer(Err(status.clone()));
    }
    Vec::new()
}

/// A re-send of an attempt Raft has committed is `Duplicate` only once its rows are in
/// the warehouse: an agent deletes its copy on that answer. Until then (a warehouse
/// commit still being retried, or lost in a crash and not yet mirrored) it is told to
/// try again later.
async fn duplicate_if_visible(ctx: &Ctx, record: &ResultRecord, outcome: Outcome) -> Answer {
    match ctx.warehouse.is_committed(&ResultKey::of(record)).await {
        Ok(true) => refusal(outcome),
        Ok(false) => {
            Err(Status::unavailable("the result is committed but not yet in the warehouse; send it again later"))
        }
        Err(e) => Err(Status::unavailable(format!("reading the warehouse manifest: {e}"))),
    }
}

/// The answer to a result apply would not record: a re-send of a committed attempt is
/// `Duplicate`, anything else `Rejected` with apply's reason.
fn refusal(outcome: Outcome) -> Answer {
    match outcome {
        Outcome::Duplicate { .. } => Ok((AckStatus::Duplicate, "already committed".into())),
        Outcome::Rejected(why) => Ok((AckStatus::Rejected, why.to_string())),
        other => Err(unexpected(&other)),
    }
}

/// The result must describe the cell it was leased for, on the device group the lease
/// took: the same coordinates, and an engine and class in its provenance that agree. A
/// result that claims another model, batch, device or engine is refused, never stored
/// under the cell's key.
fn check_label(s: &State, report: &Report) -> Result<(), Outcome> {
    let c = &report.completion;
    let wrong = |problem: String| Outcome::Rejected(Rejection::WrongLabel { cell_key: c.cell_key.clone(), problem });
    let record = s.cell(&c.sweep_id, &c.cell_key).ok_or_else(|| wrong("unknown cell".into()))?;
    let CellState::Leased { device_class, .. } = &record.state else {
        return Err(wrong(format!("the cell is {:?}, not leased", record.state.kind())));
    };
    let expected = Coordinates::of(&record.cell, device_class)
        .ok_or_else(|| wrong(format!("model {} is not in this coordinator's catalog", record.cell.model)))?;
    let got = &report.record.coordinates;
    if *got != expected {
        return Err(wrong(format!("got {got:?}, leased {expected:?}")));
    }
    let p = &report.record.provenance;
    if p.engine != got.engine || p.hardware_class != got.hardware_class {
        return Err(wrong(format!(
            "provenance says engine `{}` on `{}`, coordinates say `{}` on `{}`",
            p.engine, p.hardware_class, got.engine, got.hardware_class
        )));
    }
    Ok(())
}
