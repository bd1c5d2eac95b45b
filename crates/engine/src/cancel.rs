//! Cooperative cancellation: the binary turns SIGINT/SIGTERM into a cancel request; the engines
//! stop at the next await point and run their cleanup (a restore puts the target back).

use tokio::sync::watch;

/// The requesting side, held by whoever handles signals.
#[derive(Debug, Clone)]
pub struct CancelHandle(watch::Sender<bool>);

/// The observing side, passed to the engines.
#[derive(Debug, Clone)]
pub struct Cancel(watch::Receiver<bool>);

impl Cancel {
    pub fn new() -> (CancelHandle, Cancel) {
        let (tx, rx) = watch::channel(false);
        (CancelHandle(tx), Cancel(rx))
    }

    /// A token that is never cancelled.
    pub fn never() -> Cancel {
        Cancel::new().1
    }

    /// Resolves once cancellation is requested; never resolves if it is not.
    pub async fn cancelled(&mut self) {
        if self.0.wait_for(|cancelled| *cancelled).await.is_err() {
            // The handle is gone, so no cancellation can come any more.
            std::future::pending::<()>().await;
        }
    }
}

impl CancelHandle {
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}
