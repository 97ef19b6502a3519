//! Group commit: many concurrent webhooks, one transaction and one fsync.
//!
//! Request handlers hand their events to a single writer task and wait for the answer.
//! The writer takes everything queued while the previous transaction was committing and
//! writes it in the next one, so under load the cost of `fsync` is shared by the whole
//! batch, and when idle a lone request is committed at once (no timer, no added wait).

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Committed, NewEvent, Store};

/// Most events written in one transaction.
const MAX_BATCH_EVENTS: usize = 1024;
/// Requests that may wait for the writer before handlers get back-pressure.
const QUEUE_DEPTH: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CommitError(pub String);

struct Job {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Committed>, CommitError>>,
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
        let task = tokio::spawn(writer(store, rx, on_new_messages, on_held));
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

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    notify: Arc<Notify>,
    on_held: Arc<Notify>,
) {
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
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            replies.push((job.reply, job.events.len()));
            all.extend(job.events);
        }
        match store.commit_events(&all).await {
            Ok(results) => {
                let queued = results
                    .iter()
                    .any(|r| matches!(r, Committed::Inserted { messages, .. } if *messages > 0));
                let held = results
                    .iter()
                    .any(|r| matches!(r, Committed::Inserted { held, .. } if *held > 0));
                let mut results = results.into_iter();
                for (reply, n) in replies {
                    let mine: Vec<Committed> = results.by_ref().take(n).collect();
                    let _ = reply.send(Ok(mine));
                }
                if queued {
                    notify.notify_one();
                }
                if held {
                    on_held.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = all.len(), "commit failed; senders get 503 and will retry");
                let err = CommitError(e.to_string());
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}
