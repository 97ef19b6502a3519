//! Group commit: many concurrent webhooks, one transaction and one fsync.
//!
//! Request handlers hand their events to a single writer task and wait for the answer.
//! The writer takes everything queued while the previous transaction was being written
//! and writes it in the next one, so under load the cost of a transaction is shared by
//! the whole batch, and when idle a lone request is written at once (no timer, no added
//! wait).
//!
//! On SQLite, writing and flushing are pipelined: the writer hands each written batch to
//! a flusher thread and goes on to the next batch while the disk flushes
//! (`Store::sync_blocking`); the flusher answers the batch's handlers only once their
//! batch is durable. One flush covers every batch written before it began, so under load
//! the fsync is shared by several transactions too. On PostgreSQL a written batch is
//! already durable and the writer answers it at once.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Committed, NewEvent, Store, StoreError};

/// Most events written in one transaction.
const MAX_BATCH_EVENTS: usize = 1024;
/// Requests that may wait for the writer before handlers get back-pressure.
const QUEUE_DEPTH: usize = 4096;
/// Written batches that may wait for the flusher before the writer waits too.
const UNFLUSHED_BATCHES: usize = 64;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CommitError(pub String);

type Reply = oneshot::Sender<Result<Vec<Committed>, CommitError>>;

struct Job {
    events: Vec<NewEvent>,
    reply: Reply,
}

/// A batch written but not yet durable: who waits for which results.
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
        let run = writer(store.clone(), rx, on_new_messages, on_held);
        if store.is_shared() {
            return (CommitHandle { tx }, tokio::spawn(run));
        }
        // SQLite: the writer gets a thread of its own (and starts the flusher's). Each
        // statement is a hop to SQLite's thread and back; on the shared runtime every
        // hop back waited behind the request tasks queued there (most of a batch's time
        // under load).
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let started = std::thread::Builder::new()
            .name("roam-notify-writer".into())
            .spawn(move || {
                // Timers only: SQLite's connections talk to their own threads, not sockets.
                match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt.block_on(run),
                    Err(e) => tracing::error!(error = %e, "cannot start the storage writer"),
                }
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

/// Where a written batch waits until it is durable.
enum Flush {
    /// The flusher thread answers it after the next `fdatasync` (SQLite).
    Thread(mpsc::Sender<Written>, std::thread::JoinHandle<()>),
    /// The writer answers it at once (PostgreSQL: written is durable), after flushing
    /// inline if the flusher thread could not start.
    Inline,
}

impl Flush {
    fn start(store: &Store, notify: &Arc<Notify>, on_held: &Arc<Notify>) -> Flush {
        if store.is_shared() {
            return Flush::Inline;
        }
        let (tx, rx) = mpsc::channel(UNFLUSHED_BATCHES);
        let (store, notify, on_held) = (store.clone(), notify.clone(), on_held.clone());
        let started = std::thread::Builder::new()
            .name("roam-notify-flusher".into())
            .spawn(move || flusher(&store, rx, &notify, &on_held));
        match started {
            Ok(thread) => Flush::Thread(tx, thread),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the storage flusher thread; flushing in the writer");
                Flush::Inline
            }
        }
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    notify: Arc<Notify>,
    on_held: Arc<Notify>,
) {
    let flush = Flush::start(&store, &notify, &on_held);
    while let Some(first) = rx.recv().await {
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
        match store.write_events(&all).await {
            Ok(results) => {
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
                let batch = Written {
                    replies,
                    queued,
                    held,
                };
                match &flush {
                    Flush::Thread(tx, _) => {
                        if let Err(mpsc::error::SendError(batch)) = tx.send(batch).await {
                            // The flusher only stops when this sender is dropped.
                            let gone = Err(StoreError::Closed);
                            answer(vec![batch], &gone, &notify, &on_held);
                        }
                    }
                    Flush::Inline => {
                        let flushed = store.sync().await;
                        answer(vec![batch], &flushed, &notify, &on_held);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = all.len(), "commit failed; senders get 503 and will retry");
                let err = CommitError(e.to_string());
                for (reply, _) in waiting {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
    // Every batch written is answered before the writer's task ends.
    if let Flush::Thread(tx, thread) = flush {
        drop(tx);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// The flusher thread: flushes written batches to disk and answers their handlers.
/// Everything queued when a flush begins shares it. A thread of its own, so the flush
/// and the answers cost no hand-off back to the writer.
fn flusher(store: &Store, mut rx: mpsc::Receiver<Written>, notify: &Notify, on_held: &Notify) {
    while let Some(first) = rx.blocking_recv() {
        let mut batches = vec![first];
        while let Ok(b) = rx.try_recv() {
            batches.push(b);
        }
        let flushed = store.sync_blocking();
        answer(batches, &flushed, notify, on_held);
    }
}

/// Answers the handlers of flushed batches (503 if the flush failed), then wakes
/// delivery and grouping for what the batches queued.
fn answer(
    batches: Vec<Written>,
    flushed: &Result<(), StoreError>,
    notify: &Notify,
    on_held: &Notify,
) {
    if let Err(e) = flushed {
        tracing::error!(error = %e, "flushing committed webhooks to disk failed; senders get 503 and will retry");
    }
    let (mut queued, mut held) = (false, false);
    for batch in batches {
        queued |= batch.queued;
        held |= batch.held;
        for (reply, results) in batch.replies {
            let answer = match flushed {
                Ok(()) => Ok(results),
                Err(e) => Err(CommitError(e.to_string())),
            };
            let _ = reply.send(answer);
        }
    }
    if flushed.is_ok() {
        if queued {
            notify.notify_one();
        }
        if held {
            on_held.notify_one();
        }
    }
}
