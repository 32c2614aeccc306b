//! Timing of the membership protocol.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// How often every member tells every other member it is alive.
    pub heartbeat_interval: Duration,
    /// A member not heard from for this long is removed. With the defaults a
    /// killed member is gone within 6 s (one interval plus the timeout).
    pub failure_timeout: Duration,
    /// Pause between two discovery rounds while looking for a cluster.
    pub join_round_interval: Duration,
    /// Consecutive rounds in which no master answered and no lower-addressed
    /// member was seen before a member starts a cluster of its own. Members
    /// started at once all bind before they probe, so by the time the lowest
    /// one claims mastership the others have seen it and wait for it.
    pub claim_rounds: u32,
    /// How often a master looks at its discovery candidates for another
    /// cluster of the same group to merge with.
    pub merge_interval: Duration,
    /// Bound on one request (probe, join) to one member.
    pub request_timeout: Duration,
    /// At first start, how long to wait for a listed candidate with a lower
    /// address that has nothing listening yet. Dynamic discovery (Kubernetes
    /// API or DNS) lists a pod as soon as it has an address, possibly before
    /// its process listens; without this patience a higher pod that probes
    /// first would found a cluster of its own and the two would only meet
    /// at the next merge round. Members of a static list started together
    /// race the same way, so it gets a short one.
    pub listed_peer_patience: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            failure_timeout: Duration::from_secs(5),
            join_round_interval: Duration::from_millis(200),
            claim_rounds: 3,
            merge_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            listed_peer_patience: Duration::ZERO,
        }
    }
}
