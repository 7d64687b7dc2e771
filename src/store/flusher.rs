//! The one thread that flushes the store (see the store's module doc): a group commit, so
//! two `Db::flush` calls never run at once (spacejam/sled#1308).

use super::StoreError;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Who waits for a flush: an async task or a plain thread.
pub(super) enum Waiter {
    Task(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
    Thread(mpsc::SyncSender<Result<(), StoreError>>),
}

impl Waiter {
    fn answer(self, result: Result<(), StoreError>) {
        // A waiter that stopped waiting (its task was dropped) needs no answer.
        match self {
            Waiter::Task(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Thread(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// The one thread that flushes the store: a group commit over every request pending when a
/// round starts. Stopped (and joined, so the store's lock is released) when the last clone of
/// the [`super::Store`] is dropped.
pub(super) struct Flusher {
    requests: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(db: sled::Db) -> Result<Flusher, StoreError> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || {
                // Blocks until a request comes; ends when every sender is gone.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = db.flush().map(|_| ());
                    for waiter in batch {
                        waiter.answer(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(StoreError::Sled(e.clone())),
                        });
                    }
                }
            })
            .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        Ok(Flusher {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    pub(super) fn request(&self, waiter: Waiter) -> Result<(), StoreError> {
        match self.requests.as_ref() {
            Some(tx) => tx.send(waiter).map_err(|_| Flusher::gone()),
            None => Err(Flusher::gone()),
        }
    }

    pub(super) fn gone() -> StoreError {
        StoreError::Corrupt("the store's flusher has stopped".into())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the round in progress; joining it lets
        // go of its handle on the database, so the store can be opened again at once.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
