//! The Members block, printed exactly as a Hazelcast member prints it, so
//! operators and scripts that read Hazelcast logs read ours.

use ferrocast_cluster::ClusterSnapshot;
use ferrocast_net::HzAddress;
use std::fmt::Write;

pub fn format(snap: &ClusterSnapshot) -> String {
    let mut out = format!(
        "Members {{size:{}, ver:{}}} [\n",
        snap.view.members.len(),
        snap.view.version
    );
    for m in &snap.view.members {
        let this = if m.uuid == snap.me.uuid { " this" } else { "" };
        let _ = writeln!(
            out,
            "\tMember {} - {}{}",
            HzAddress(m.address),
            m.uuid,
            this
        );
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_net::{MemberInfo, MemberListView};

    #[test]
    fn matches_hazelcast() {
        let a = MemberInfo::new(
            "59045d20-faf3-4a73-b4de-e8036f4b7caa".parse().unwrap(),
            "172.17.0.4:5701".parse().unwrap(),
        );
        let b = MemberInfo::new(
            "e737cd89-cbf1-4358-8d5a-f5b06a464c4a".parse().unwrap(),
            "172.17.0.5:5701".parse().unwrap(),
        );
        let snap = ClusterSnapshot {
            me: b,
            joined: true,
            joins: 1,
            left: false,
            view: MemberListView {
                version: 2,
                members: vec![a, b],
                cluster_id: uuid::Uuid::nil(),
            },
        };
        assert_eq!(
            format(&snap),
            "Members {size:2, ver:2} [\n\
             \tMember [172.17.0.4]:5701 - 59045d20-faf3-4a73-b4de-e8036f4b7caa\n\
             \tMember [172.17.0.5]:5701 - e737cd89-cbf1-4358-8d5a-f5b06a464c4a this\n\
             ]"
        );
    }
}
