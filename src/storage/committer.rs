//! Group commit: many concurrent webhooks, one transaction and one fsync.
//!
//! Request handlers hand their events to a single writer task and wait for the answer.
//! The writer takes everything queued while the previous transaction was being written
//! and writes it in the next one, so under load the cost of a transaction is shared by
//! the whole batch, and when idle a lone request is written at once (no timer, no added
//! wait).
//!
//! On SQLite the writer is a thread of its own: it writes the batch with direct calls
//! into SQLite (`sqlite/commit.rs`), flushes the WAL (`fdatasync`), and answers the
//! batch's handlers; what arrives meanwhile is the next batch. Flushing on a second
//! thread while the writer went on was measured against this: with the writer this fast
//! it made batches of two or three webhooks, more WAL pages per webhook, and more CPU
//! per webhook than the overlap saved (docs/performance.md). On PostgreSQL a written
//! batch is already durable and the writer task answers it at once.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::sqlite::SqliteStore;
use super::{Committed, Engine, NewEvent, Store, StoreError};

/// Most events written in one transaction.
const MAX_BATCH_EVENTS: usize = 1024;
/// Requests that may wait for the writer before handlers get back-pressure.
const QUEUE_DEPTH: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CommitError(pub String);

type Reply = oneshot::Sender<Result<Vec<Committed>, CommitError>>;

struct Job {
    events: Vec<NewEvent>,
    reply: Reply,
}

/// A written batch: who waits for which results, and whom to wake once it is durable.
struct Written {
    replies: Vec<(Reply, Vec<Committed>)>,
    queued: bool,
    held: bool,
}

/// Cheap to clone; dropping every handle stops the writer after it drains its queue.
#[derive(Clone)]
pub struct CommitHandle {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for CommitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHandle")
    }
}

impl CommitHandle {
    /// Starts the writer. `on_new_messages` is notified after a commit that queued
    /// messages, `on_held` after one that held items back in groups.
    pub fn spawn(
        store: Store,
        on_new_messages: Arc<Notify>,
        on_held: Arc<Notify>,
    ) -> (CommitHandle, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let sqlite = match &store.backend {
            Engine::Sqlite(s) => s.clone(),
            Engine::Postgres(_) => {
                let run = shared_writer(store, rx, on_new_messages, on_held);
                return (CommitHandle { tx }, tokio::spawn(run));
            }
        };
        // SQLite: a thread of its own, which blocks in SQLite and in `fdatasync`.
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let started = std::thread::Builder::new()
            .name("roam-notify-writer".into())
            .spawn(move || {
                local_writer(&sqlite, rx, &on_new_messages, &on_held);
                let _ = done_tx.send(());
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the storage writer thread");
        }
        let task = tokio::spawn(async move {
            let _ = done_rx.await;
        });
        (CommitHandle { tx }, task)
    }

    /// Returns once the events are durably committed (or refused as duplicates).
    pub async fn commit(&self, events: Vec<NewEvent>) -> Result<Vec<Committed>, CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| CommitError("storage writer has stopped".into()))?;
        rx.await
            .map_err(|_| CommitError("storage writer stopped before answering".into()))?
    }
}

/// The next batch: `first` and every job queued behind it, up to `MAX_BATCH_EVENTS`
/// events. Returns all their events and, per job, its reply and how many were its.
fn gather(first: Job, rx: &mut mpsc::Receiver<Job>) -> (Vec<NewEvent>, Vec<(Reply, usize)>) {
    let mut jobs = vec![first];
    let mut count = jobs[0].events.len();
    while count < MAX_BATCH_EVENTS {
        match rx.try_recv() {
            Ok(job) => {
                count += job.events.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    let mut all: Vec<NewEvent> = Vec::with_capacity(count);
    let mut waiting = Vec::with_capacity(jobs.len());
    for job in jobs {
        waiting.push((job.reply, job.events.len()));
        all.extend(job.events);
    }
    (all, waiting)
}

/// Splits a written batch's results among its jobs; `Err` when the write failed (every
/// job gets 503 and its sender retries).
fn written(
    result: Result<Vec<Committed>, StoreError>,
    waiting: Vec<(Reply, usize)>,
    events: usize,
) -> Option<Written> {
    let results = match result {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, events, "commit failed; senders get 503 and will retry");
            let err = CommitError(e.to_string());
            for (reply, _) in waiting {
                let _ = reply.send(Err(err.clone()));
            }
            return None;
        }
    };
    let queued = results
        .iter()
        .any(|r| matches!(r, Committed::Inserted { messages, .. } if *messages > 0));
    let held = results
        .iter()
        .any(|r| matches!(r, Committed::Inserted { held, .. } if *held > 0));
    let mut results = results.into_iter();
    let replies = waiting
        .into_iter()
        .map(|(reply, n)| (reply, results.by_ref().take(n).collect()))
        .collect();
    Some(Written {
        replies,
        queued,
        held,
    })
}

/// PostgreSQL: a written batch is already durable; the writer answers it at once.
async fn shared_writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    notify: Arc<Notify>,
    on_held: Arc<Notify>,
) {
    while let Some(first) = rx.recv().await {
        let (all, waiting) = gather(first, &mut rx);
        let result = store.commit_events(&all).await;
        if let Some(batch) = written(result, waiting, all.len()) {
            answer(batch, &Ok(()), &notify, &on_held);
        }
    }
}

/// SQLite: writes each batch on this thread, flushes it, and answers it. Requests that
/// arrive meanwhile queue up into the next batch.
fn local_writer(
    store: &SqliteStore,
    mut rx: mpsc::Receiver<Job>,
    notify: &Arc<Notify>,
    on_held: &Arc<Notify>,
) {
    while let Some(first) = rx.blocking_recv() {
        let (all, waiting) = gather(first, &mut rx);
        let result = store.write_events_blocking(&all);
        if let Some(batch) = written(result, waiting, all.len()) {
            answer(batch, &store.sync_blocking(), notify, on_held);
        }
    }
}

/// Answers the handlers of a flushed batch (503 if the flush failed), then wakes
/// delivery and grouping for what the batch queued.
fn answer(batch: Written, flushed: &Result<(), StoreError>, notify: &Notify, on_held: &Notify) {
    if let Err(e) = flushed {
        tracing::error!(error = %e, "flushing committed webhooks to disk failed; senders get 503 and will retry");
    }
    for (reply, results) in batch.replies {
        let answer = match flushed {
            Ok(()) => Ok(results),
            Err(e) => Err(CommitError(e.to_string())),
        };
        let _ = reply.send(answer);
    }
    if flushed.is_ok() {
        if batch.queued {
            notify.notify_one();
        }
        if batch.held {
            on_held.notify_one();
        }
    }
}
