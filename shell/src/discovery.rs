//! Multicast discovery: listens for announcements and feeds them to the node. Sending is done
//! by the driver when the node asks for it.

use std::sync::Arc;

use dftp_core::{Announcement, Event};

use crate::driver::Handle;
use crate::mgmt::host_of;
use crate::net::Datagram;

pub async fn listen(socket: Arc<dyn Datagram>, handle: Handle) {
    loop {
        match socket.recv().await {
            Ok((packet, from)) => match Announcement::from_json(&packet) {
                Ok(announcement) => {
                    handle.send(Event::AnnouncementReceived { announcement, from_host: Some(host_of(from)) }).await
                }
                Err(e) => tracing::debug!("ignoring a discovery packet from {from}: {e}"),
            },
            Err(e) => {
                tracing::warn!("multicast receive failed: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
