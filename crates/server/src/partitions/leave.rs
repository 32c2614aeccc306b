//! A member's intent to leave: the member shutting down tells the master
//! (and every other member) and learns which table the master follows; the
//! master leaves it out of the next table it publishes.

use super::Coordinator;
use crate::service_msg::ServiceMessage;
use ferrocast_net::Responder;
use std::time::Duration;
use uuid::Uuid;

impl Coordinator {
    /// `member` said it leaves (it may be us, told by ourselves as master).
    /// Answered with the version of the table we follow.
    pub(super) fn on_leave_intent(&mut self, member: Uuid, responder: Option<Responder>) {
        self.leaving.insert(member);
        self.hand_over.note_leaving(&self.leaving);
        if self.snapshot().is_master() {
            self.rebalance_soon();
        }
        let noted = ServiceMessage::LeaveNoted {
            table_version: self.data.service.table_version(),
        };
        if let (Some(r), Ok(answer)) = (responder, noted.wrap()) {
            tokio::spawn(r.respond(answer));
        }
    }

    /// This member shuts down: every member hears it, not only the master.
    /// One that takes over from a master failing meanwhile must not hand
    /// our partitions back to us (we would leave only at the shutdown
    /// timeout, after copies going round in circles). The master's answer
    /// says which table it follows (see `HandOver::master_table`).
    pub(super) fn on_leave_self(&mut self) {
        let snap = self.snapshot();
        self.leaving.insert(snap.me.uuid);
        self.hand_over.note_leaving(&self.leaving);
        let intent = ServiceMessage::LeaveIntent {
            member: snap.me.uuid,
        };
        self.send_to_members(&intent);
        if snap.is_master() {
            self.hand_over
                .note_master_table(self.data.service.table_version());
            self.rebalance_soon();
        } else if let (Some(master), Ok(m)) = (snap.view.master(), intent.wrap()) {
            let (t, addr) = (self.data.transport().clone(), master.address);
            let hand_over = self.hand_over.clone();
            let data = self.data.clone();
            tokio::spawn(async move {
                match t.request(addr, m, Duration::from_secs(5)).await {
                    Ok(answer) => match ServiceMessage::unwrap(&answer) {
                        Some(Ok(ServiceMessage::LeaveNoted { table_version })) => {
                            hand_over.note_master_table(table_version)
                        }
                        // A master of an earlier version (a rolling
                        // upgrade) says only that it took the intent:
                        // our own table is all there is to go by.
                        Some(Ok(ServiceMessage::Ack)) => {
                            hand_over.note_master_table(data.service.table_version())
                        }
                        _ => {}
                    },
                    Err(e) => tracing::warn!("could not tell the master we are leaving: {e}"),
                }
            });
        }
    }
}
