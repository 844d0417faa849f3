//! Multicast discovery: listens for announcements and feeds them to the node. Sending is done
//! by the driver when the node asks for it.

use std::sync::Arc;

use dftp_core::{Announcement, Event};

use crate::cluster_secret::{Guard, Refused};
use crate::driver::Handle;
use crate::mgmt::host_of;
use crate::net::Datagram;

/// With a cluster secret, a packet without a good stamp is dropped (logged at most once a
/// minute: anyone on the group can send them).
pub async fn listen(socket: Arc<dyn Datagram>, handle: Handle, guard: Option<Arc<Guard>>) {
    loop {
        match socket.recv().await {
            Ok((packet, from)) => match open(&packet, guard.as_deref()) {
                Err(refusal) => {
                    if let Some(g) = &guard {
                        g.log_refusal(
                            Refused::Packet,
                            format_args!("dropped a discovery packet from {from}: {refusal}"),
                        );
                    }
                }
                Ok(json) => match Announcement::from_json(json) {
                    Ok(announcement) => {
                        handle.send(Event::AnnouncementReceived { announcement, from_host: Some(host_of(from)) }).await
                    }
                    Err(e) => tracing::debug!("ignoring a discovery packet from {from}: {e}"),
                },
            },
            Err(e) => {
                tracing::warn!("multicast receive failed: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// The announcement's JSON: the packet itself without a secret, its checked part with one.
fn open<'p>(packet: &'p [u8], guard: Option<&Guard>) -> Result<&'p [u8], dftp_core::cluster_auth::Refusal> {
    match guard {
        None => Ok(packet),
        Some(g) => g.open(packet),
    }
}
