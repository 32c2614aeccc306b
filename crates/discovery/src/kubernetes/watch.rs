//! The watcher task: follows the EndpointSlices (or Endpoints) of the
//! member service and publishes the member addresses as a [`Snapshot`].
//!
//! It owns its state; the discovery reads snapshots through a
//! `tokio::sync::watch` channel. Errors are classified once here so the log
//! says what to fix: a missing RBAC permission names the resource and verb,
//! an unreachable server is retried with backoff.

use super::addresses::{from_endpoint_slices, from_endpoints, AddressRules};
use super::MemberSelector;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, watcher, Event};
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch::Sender;
use tokio_util::sync::CancellationToken;

/// Failed attempts after which the first discovery stops waiting and the
/// member starts alone (it keeps looking through its merge rounds).
pub(crate) const FAILURES_BEFORE_ALONE: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the discovery sees of the watcher.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    /// A complete list has been read at least once.
    pub synced: bool,
    pub addresses: Vec<SocketAddr>,
    /// The last problem, worded for the operator; cleared by a success.
    pub problem: Option<String>,
    /// Consecutive failed attempts.
    pub failures: u32,
}

pub(crate) struct Target {
    pub namespace: String,
    pub selector: MemberSelector,
    pub rules: AddressRules,
    pub server: String,
}

/// Where the addresses are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    EndpointSlices,
    Endpoints,
}

impl Source {
    /// How this source's objects for the members are selected: a Service's
    /// EndpointSlices carry its name as a label, its Endpoints bear its name.
    fn watch_config(self, selector: &MemberSelector) -> watcher::Config {
        let config = watcher::Config::default();
        match (self, selector) {
            (_, MemberSelector::Labels(l)) => config.labels(l),
            (Source::EndpointSlices, MemberSelector::Service(name)) => {
                config.labels(&format!("kubernetes.io/service-name={name}"))
            }
            (Source::Endpoints, MemberSelector::Service(name)) => {
                config.fields(&format!("metadata.name={name}"))
            }
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Source::EndpointSlices => "endpointslices (discovery.k8s.io)",
            Source::Endpoints => "endpoints (core)",
        }
    }
}

/// Why following one source stopped.
enum Stop {
    Cancelled,
    /// Switch to the other source (not served, or not allowed).
    Switch,
}

pub(crate) async fn run(
    client: Client,
    target: Target,
    tx: Sender<Snapshot>,
    cancel: CancellationToken,
) {
    let mut source = Source::EndpointSlices;
    let mut backoff = Backoff::default();
    loop {
        let config = source.watch_config(&target.selector);
        let mut follower = Follower {
            source,
            target: &target,
            tx: &tx,
            cancel: &cancel,
            backoff: &mut backoff,
        };
        let ns = target.namespace.as_str();
        let stop = match source {
            Source::EndpointSlices => {
                let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
                follower
                    .follow(api, config, |objs, r| from_endpoint_slices(objs, r))
                    .await
            }
            Source::Endpoints => {
                let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
                follower
                    .follow(api, config, |objs, r| from_endpoints(objs, r))
                    .await
            }
        };
        match stop {
            Stop::Cancelled => return,
            Stop::Switch => {
                source = match source {
                    Source::EndpointSlices => Source::Endpoints,
                    Source::Endpoints => Source::EndpointSlices,
                };
                tracing::info!(
                    "Kubernetes discovery: reading {} instead",
                    source.resource()
                );
            }
        }
    }
}

#[derive(Default)]
struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    fn step(&mut self) -> Duration {
        let d = self.next.unwrap_or(FIRST_BACKOFF);
        self.next = Some((d * 2).min(MAX_BACKOFF));
        d
    }
    fn reset(&mut self) {
        self.next = None;
    }
}

/// Follows one source until it is cancelled or must switch to the other.
struct Follower<'a> {
    source: Source,
    target: &'a Target,
    tx: &'a Sender<Snapshot>,
    cancel: &'a CancellationToken,
    backoff: &'a mut Backoff,
}

impl Follower<'_> {
    async fn follow<K>(
        &mut self,
        api: Api<K>,
        config: watcher::Config,
        to_addresses: fn(Vec<&K>, &AddressRules) -> Vec<SocketAddr>,
    ) -> Stop
    where
        K: Resource + Clone + Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        let (source, target, tx, cancel) = (self.source, self.target, self.tx, self.cancel);
        let mut stream = watcher(api, config).boxed();
        let mut objects: BTreeMap<String, K> = BTreeMap::new();
        let mut listing: BTreeMap<String, K> = BTreeMap::new();
        let mut empty_warned = false;
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => return Stop::Cancelled,
                item = stream.next() => item,
            };
            let Some(item) = item else {
                return Stop::Cancelled;
            };
            let event = match item {
                Ok(event) => event,
                Err(e) if is_gone(&e) => {
                    // 410 Gone: the watch's resource version is too old (etcd
                    // compacted it); the watcher lists again by itself. Normal.
                    tracing::debug!("Kubernetes discovery: watch expired ({e}); listing again");
                    continue;
                }
                Err(e) => {
                    let failure = Failure::classify(&e, source, target);
                    let mut switch = false;
                    tx.send_modify(|s| {
                        s.failures += 1;
                        if s.problem.as_deref() != Some(&failure.message) {
                            tracing::error!("Kubernetes discovery: {}", failure.message);
                        }
                        s.problem = Some(failure.message.clone());
                        // Slices not served or not allowed: try Endpoints; and
                        // back, so a Role fixed later is picked up.
                        switch = failure.try_other_source;
                    });
                    let pause = self.backoff.step();
                    tokio::select! {
                        _ = cancel.cancelled() => return Stop::Cancelled,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    if switch {
                        return Stop::Switch;
                    }
                    continue;
                }
            };
            let changed = match event {
                Event::Init => {
                    listing.clear();
                    false
                }
                Event::InitApply(o) => {
                    listing.insert(o.name_any(), o);
                    false
                }
                Event::InitDone => {
                    objects = std::mem::take(&mut listing);
                    true
                }
                Event::Apply(o) => {
                    objects.insert(o.name_any(), o);
                    true
                }
                Event::Delete(o) => {
                    objects.remove(&o.name_any());
                    true
                }
            };
            if !changed {
                continue;
            }
            self.backoff.reset();
            let addresses = to_addresses(objects.values().collect(), &target.rules);
            if objects.is_empty() && !empty_warned {
                empty_warned = true;
                tracing::warn!(
                "Kubernetes discovery: no {} for {} in namespace {} yet (a missing service, or \
                 one without pods)",
                source.resource(),
                target.selector,
                target.namespace
            );
            }
            tx.send_modify(|s| {
                if !s.synced || s.addresses != addresses {
                    tracing::info!(
                        "Kubernetes discovery: {} member address(es) from {}: {:?}",
                        addresses.len(),
                        source.resource(),
                        addresses
                    );
                }
                if s.problem.is_some() {
                    tracing::info!("Kubernetes discovery: reading {} works", source.resource());
                }
                s.synced = true;
                s.addresses = addresses;
                s.problem = None;
                s.failures = 0;
            });
        }
    }
}

fn is_gone(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// An error worded for the operator.
struct Failure {
    message: String,
    try_other_source: bool,
}

impl Failure {
    fn classify(e: &watcher::Error, source: Source, target: &Target) -> Failure {
        let (verb, inner) = match e {
            watcher::Error::InitialListFailed(inner) => ("list", Some(inner)),
            watcher::Error::WatchStartFailed(inner) | watcher::Error::WatchFailed(inner) => {
                ("watch", Some(inner))
            }
            watcher::Error::WatchError(_) | watcher::Error::NoResourceVersion => ("watch", None),
        };
        let status = match (e, inner) {
            (_, Some(kube::Error::Api(status))) => Some(status.as_ref()),
            (watcher::Error::WatchError(status), _) => Some(status.as_ref()),
            _ => None,
        };
        let ns = &target.namespace;
        let resource = source.resource();
        match status.map(|s| s.code) {
            Some(403) => Failure {
                message: format!(
                    "forbidden: this member's service account may not {verb} {resource} in \
                     namespace {ns}; its Role needs get, list and watch on endpointslices and \
                     endpoints (see deploy/kubernetes/rbac.yaml). API server said: {}",
                    status.map(|s| s.message.as_str()).unwrap_or_default()
                ),
                try_other_source: true,
            },
            Some(401) => Failure {
                message: format!(
                    "the API server {} refused the credentials (401 Unauthorized): the \
                     service-account token is invalid or expired",
                    target.server
                ),
                try_other_source: false,
            },
            Some(404) if source == Source::EndpointSlices => Failure {
                message: format!(
                    "the API server {} does not serve {resource} (404)",
                    target.server
                ),
                try_other_source: true,
            },
            Some(code) => Failure {
                message: format!(
                    "cannot {verb} {resource} in namespace {ns}: {code} {}",
                    status.map(|s| s.message.as_str()).unwrap_or_default()
                ),
                try_other_source: false,
            },
            None => {
                let detail = error_chain(e);
                let message = if detail.contains("certificate") {
                    format!(
                        "TLS verification of the Kubernetes API server {} failed ({detail}): \
                         is the CA file the one that signed the server's certificate? \
                         Retrying with backoff",
                        target.server
                    )
                } else {
                    format!(
                        "cannot reach the Kubernetes API server {} ({detail}); retrying with \
                         backoff",
                        target.server
                    )
                };
                Failure {
                    message,
                    try_other_source: false,
                }
            }
        }
    }
}

/// An error with its causes, so a TLS or connect failure says what it was.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}
