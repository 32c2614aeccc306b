//! Connection set-up between members: preamble, group check and a mutual
//! challenge-response proof of the group password.
//!
//! The password never crosses the wire. Each side sends a fresh random nonce;
//! each proves knowledge of the password with HMAC-SHA256 keyed by it over
//! both nonces, both UUIDs, the group name and a role label (so a proof can
//! not be reflected back). The acceptor proves first, so a dialer never hands
//! a proof to a member that does not know the password either.
//!
//! ```text
//! dialer                               acceptor
//!   "FCM"  Hello{group, member, Nd}  ->
//!                                    <- Challenge{member, Na, HMAC(pw, accept|..)}
//!   Proof{HMAC(pw, dial|..)}         ->
//!                                    <- Welcome | Refused{reason}
//! ```

use crate::error::NetError;
use crate::member::MemberInfo;
use crate::{codec, PREAMBLE_MEMBER};
use futures::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Raised whenever the handshake or envelope layout changes incompatibly,
/// so members of builds that cannot read each other's messages refuse to
/// connect, with the reason in their logs, instead of failing every write.
/// 2 (2026-11-26): backup batches carry the owner's term and base.
/// 3 (2026-11-26): copy requests say what they accept (complete, last
/// resort, a base to merge over); an upgrading backup answers with its log.
/// 4 (2026-11-26): backup batches carry the version of the owner's table
/// that last changed the partition's replicas; copies carry the changes
/// their source took ahead of their turn; `NoData` answers.
pub const HANDSHAKE_VERSION: u16 = 4;

/// The version this member speaks: [`HANDSHAKE_VERSION`], unless a test
/// stands in for a build of another version with
/// `FERROCAST_TEST_MEMBER_PROTOCOL_VERSION` (fault injection; tests only).
fn speaks() -> u16 {
    static VERSION: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        std::env::var("FERROCAST_TEST_MEMBER_PROTOCOL_VERSION")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(HANDSHAKE_VERSION)
    })
}

/// Whether a peer's refusal reason says it speaks another member protocol
/// version (the wording every version since 2 uses, see `accept`).
pub fn is_version_refusal(reason: &str) -> bool {
    reason.contains("member protocol version") && reason.contains("is not supported")
}

/// The version a refusing peer speaks, from its reason's "(this member
/// speaks N)".
pub fn refusing_peer_version(reason: &str) -> Option<u16> {
    let rest = reason.split("(this member speaks ").nth(1)?;
    rest.split(')').next()?.trim().parse().ok()
}

/// Whether a joining member refused for `reason` must not found a cluster
/// of its own: the peer speaks an older member protocol version (an old
/// build mid-upgrade, whose cluster the Service still routes clients to).
/// Only the newer side holds back, so two versions starting together
/// never wait on each other; a reason without the peer's version holds
/// back too.
pub fn holds_back_founding(reason: &str) -> bool {
    is_version_refusal(reason) && refusing_peer_version(reason).is_none_or(|v| v < speaks())
}

type Nonce = [u8; 32];
type Proof = [u8; 32];

/// The group a member belongs to and the password that proves it.
#[derive(Clone)]
pub struct Credentials {
    pub group: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("group", &self.group)
            .field("password", &"<hidden>")
            .finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Handshake {
    Hello {
        version: u16,
        group: String,
        member: MemberInfo,
        nonce: Nonce,
    },
    Challenge {
        member: MemberInfo,
        nonce: Nonce,
        proof: Proof,
    },
    Proof {
        proof: Proof,
    },
    Welcome,
    Refused {
        reason: String,
    },
}

pub(crate) type FramedStream = Framed<TcpStream, LengthDelimitedCodec>;

fn fresh_nonce() -> Nonce {
    let mut n = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

/// HMAC over everything both sides contributed; `role` keeps the dialer's and
/// the acceptor's proofs distinct.
fn mac(
    creds: &Credentials,
    role: &[u8],
    dialer: &MemberInfo,
    acceptor: &MemberInfo,
    dialer_nonce: &Nonce,
    acceptor_nonce: &Nonce,
) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(creds.password.as_bytes())
        .expect("HMAC accepts keys of any length");
    m.update(role);
    m.update(&(creds.group.len() as u64).to_be_bytes());
    m.update(creds.group.as_bytes());
    m.update(dialer.uuid.as_bytes());
    m.update(acceptor.uuid.as_bytes());
    m.update(dialer_nonce);
    m.update(acceptor_nonce);
    m
}

fn prove(m: Hmac<Sha256>) -> Proof {
    m.finalize().into_bytes().into()
}

async fn send(framed: &mut FramedStream, msg: &Handshake) -> Result<(), NetError> {
    framed.send(codec::encode(msg)?).await?;
    Ok(())
}

async fn recv(framed: &mut FramedStream, peer: SocketAddr) -> Result<Handshake, NetError> {
    match framed.next().await {
        Some(Ok(frame)) => codec::decode(&frame),
        Some(Err(e)) => Err(e.into()),
        None => Err(NetError::Closed(peer)),
    }
}

fn unexpected(peer: SocketAddr, got: &Handshake) -> NetError {
    NetError::Handshake {
        peer,
        reason: format!("unexpected handshake message {got:?}"),
    }
}

/// Dialer side: writes the preamble and proves the password. Returns the
/// peer's identity once both sides are satisfied.
pub(crate) async fn dial(
    stream: TcpStream,
    creds: &Credentials,
    me: MemberInfo,
    max_frame: usize,
) -> Result<(FramedStream, MemberInfo), NetError> {
    let peer_addr = stream.peer_addr()?;
    let mut stream = stream;
    stream.write_all(PREAMBLE_MEMBER).await?;
    let mut framed =
        Framed::with_capacity(stream, codec::frame_codec(max_frame), codec::READ_BUFFER);
    let my_nonce = fresh_nonce();
    send(
        &mut framed,
        &Handshake::Hello {
            version: speaks(),
            group: creds.group.clone(),
            member: me,
            nonce: my_nonce,
        },
    )
    .await?;
    let (peer, their_nonce, their_proof) = match recv(&mut framed, peer_addr).await? {
        Handshake::Challenge {
            member,
            nonce,
            proof,
        } => (member, nonce, proof),
        Handshake::Refused { reason } => {
            return Err(NetError::Refused {
                peer: peer_addr,
                reason,
            })
        }
        other => return Err(unexpected(peer_addr, &other)),
    };
    if peer.uuid == me.uuid {
        return Err(NetError::SelfConnection(peer_addr));
    }
    let expected = mac(creds, b"accept", &me, &peer, &my_nonce, &their_nonce);
    if expected.verify_slice(&their_proof).is_err() {
        let reason = format!(
            "wrong group password: {} and {} have different group passwords",
            me.address, peer.address
        );
        let _ = send(&mut framed, &Handshake::Refused { reason }).await;
        return Err(NetError::PeerFailedProof { peer: peer_addr });
    }
    let proof = prove(mac(creds, b"dial", &me, &peer, &my_nonce, &their_nonce));
    send(&mut framed, &Handshake::Proof { proof }).await?;
    match recv(&mut framed, peer_addr).await? {
        Handshake::Welcome => Ok((framed, peer)),
        Handshake::Refused { reason } => Err(NetError::Refused {
            peer: peer_addr,
            reason,
        }),
        other => Err(unexpected(peer_addr, &other)),
    }
}

/// Acceptor side, after the preamble was read: checks the group, proves the
/// password first, then checks the dialer's proof.
pub(crate) async fn accept(
    mut framed: FramedStream,
    creds: &Credentials,
    me: MemberInfo,
) -> Result<(FramedStream, MemberInfo), NetError> {
    let remote = framed.get_ref().peer_addr()?;
    let (peer, their_nonce) = match recv(&mut framed, remote).await? {
        Handshake::Hello {
            version,
            group,
            member,
            nonce,
        } => {
            // The group first: a member of another group and build must
            // hear "group", or it would hold back its founding for us.
            let refusal = if group != creds.group {
                Some(format!(
                    "group name mismatch: {} is in group '{}', the joiner asked for group '{}'",
                    me.address, creds.group, group
                ))
            } else if version != speaks() {
                Some(format!(
                    "member protocol version {version} is not supported (this member speaks {})",
                    speaks()
                ))
            } else if member.uuid == me.uuid {
                // Tell the dialing side (ourselves) who answered, so it
                // knows this address is its own and not a silent peer.
                let _ = send(
                    &mut framed,
                    &Handshake::Challenge {
                        member: me,
                        nonce: fresh_nonce(),
                        proof: [0; 32],
                    },
                )
                .await;
                return Err(NetError::SelfConnection(remote));
            } else {
                None
            };
            if let Some(reason) = refusal {
                let _ = send(
                    &mut framed,
                    &Handshake::Refused {
                        reason: reason.clone(),
                    },
                )
                .await;
                return Err(NetError::Handshake {
                    peer: member.address,
                    reason,
                });
            }
            (member, nonce)
        }
        other => return Err(unexpected(remote, &other)),
    };
    let my_nonce = fresh_nonce();
    let proof = prove(mac(creds, b"accept", &peer, &me, &their_nonce, &my_nonce));
    send(
        &mut framed,
        &Handshake::Challenge {
            member: me,
            nonce: my_nonce,
            proof,
        },
    )
    .await?;
    match recv(&mut framed, remote).await? {
        Handshake::Proof { proof } => {
            let expected = mac(creds, b"dial", &peer, &me, &their_nonce, &my_nonce);
            if expected.verify_slice(&proof).is_err() {
                let reason = format!(
                    "wrong group password: {} did not prove the password of group '{}'",
                    peer.address, creds.group
                );
                let _ = send(
                    &mut framed,
                    &Handshake::Refused {
                        reason: reason.clone(),
                    },
                )
                .await;
                return Err(NetError::Handshake {
                    peer: peer.address,
                    reason,
                });
            }
        }
        Handshake::Refused { reason } => {
            return Err(NetError::Refused {
                peer: peer.address,
                reason,
            })
        }
        other => return Err(unexpected(remote, &other)),
    }
    send(&mut framed, &Handshake::Welcome).await?;
    Ok((framed, peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A member of a build whose messages this one cannot read (an older
    /// backup layout, say) is refused at the door, and told why.
    #[tokio::test]
    async fn a_member_of_another_protocol_version_is_refused_with_the_reason() {
        let reason = refusal_for(HANDSHAKE_VERSION - 1, "dev").await;
        let old = HANDSHAKE_VERSION - 1;
        assert!(
            reason.contains(&format!("member protocol version {old} is not supported")),
            "{reason}"
        );
        assert!(is_version_refusal(&reason), "recognised by the dialer");
        assert!(!is_version_refusal("wrong group password"));
        assert_eq!(refusing_peer_version(&reason), Some(HANDSHAKE_VERSION));
        assert!(
            !holds_back_founding(&reason),
            "the older dialer does not hold back for a newer peer"
        );
        let older_peer = format!(
            "member protocol version {HANDSHAKE_VERSION} is not supported (this member speaks {old})"
        );
        assert!(
            holds_back_founding(&older_peer),
            "the newer side holds back"
        );
    }

    /// A member of another group hears about the group even when it also
    /// speaks another version: a version refusal holds its founding back.
    #[tokio::test]
    async fn another_group_of_another_version_hears_about_the_group() {
        let reason = refusal_for(HANDSHAKE_VERSION - 1, "other").await;
        assert!(reason.contains("group name mismatch"), "{reason}");
        assert!(!holds_back_founding(&reason));
    }

    /// The acceptor's refusal of a hello of `version` and `group`.
    async fn refusal_for(version: u16, group: &str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let creds = Credentials {
            group: "dev".into(),
            password: String::new(),
        };
        let acceptor = MemberInfo::new(uuid::Uuid::new_v4(), addr);
        let accepting = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut preamble = [0u8; 3];
            stream.read_exact(&mut preamble).await.unwrap();
            assert_eq!(&preamble, PREAMBLE_MEMBER);
            let framed = Framed::new(stream, codec::frame_codec(1 << 20));
            accept(framed, &creds, acceptor).await
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(PREAMBLE_MEMBER).await.unwrap();
        let mut framed = Framed::new(stream, codec::frame_codec(1 << 20));
        let dialer = MemberInfo::new(uuid::Uuid::new_v4(), "127.0.0.1:1".parse().unwrap());
        send(
            &mut framed,
            &Handshake::Hello {
                version,
                group: group.into(),
                member: dialer,
                nonce: fresh_nonce(),
            },
        )
        .await
        .unwrap();
        let reason = match recv(&mut framed, addr).await.unwrap() {
            Handshake::Refused { reason } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(accepting.await.unwrap().is_err());
        reason
    }
}
