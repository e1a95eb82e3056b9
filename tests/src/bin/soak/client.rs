//! One simulated client's state, whatever its protocol: its tenant, its share of the mix,
//! the shared tally, and the signal that ends the soak.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Tenant;
use crate::tally::Tally;
use crate::workload::Mix;

/// One simulated client: its tenant, its mix, the shared tally and the end of the soak.
pub struct Client {
    /// The tenant it logs in as.
    pub tenant: Tenant,
    /// Its queries.
    pub mix: Mix,
    /// Where it counts outcomes.
    pub tally: Arc<Tally>,
    /// Fired when the soak stops sending queries.
    pub stop: CancellationToken,
}

impl Client {
    /// Sleeps `pause`, or less if the soak stops; whether to go on.
    pub async fn pause(&self, pause: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(pause) => !self.stop.is_cancelled(),
            () = self.stop.cancelled() => false,
        }
    }

    /// Pauses for a think time between two queries; whether to go on.
    pub async fn think(&mut self) -> bool {
        let pause = self.mix.think();
        self.pause(pause).await
    }

    /// Pauses up to `most` before trying to connect again; whether to go on.
    pub async fn back_off(&mut self, most: Duration) -> bool {
        let pause = self.mix.up_to(most);
        self.pause(pause).await
    }
}
