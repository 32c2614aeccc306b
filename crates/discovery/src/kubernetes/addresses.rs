//! From EndpointSlices (or legacy Endpoints) to member addresses: which
//! addresses count and which port they listen on. Plain functions over the
//! API objects, tested without an API server.

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::net::{IpAddr, SocketAddr};

/// The service port name that marks the member port.
pub const PORT_NAME: &str = "hazelcast";
/// The port used when no port is named `hazelcast` and none is configured.
pub const FALLBACK_PORT: u16 = 5701;

/// How addresses are chosen from the endpoints of the service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressRules {
    /// Port when no endpoint port is named `hazelcast` [5701].
    pub port: Option<u16>,
    /// Take not-ready addresses as well. They are taken anyway when no
    /// address is ready: after a full restart no pod is ready until it has
    /// joined, so ready-only discovery would leave every pod alone.
    pub include_not_ready: bool,
}

/// Ready and not-ready addresses found so far.
#[derive(Default)]
struct Found {
    ready: Vec<SocketAddr>,
    not_ready: Vec<SocketAddr>,
}

impl Found {
    fn add(&mut self, ip: &str, port: u16, ready: bool) {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            tracing::debug!("endpoint address '{ip}' is not an IP address; skipped");
            return;
        };
        let list = if ready {
            &mut self.ready
        } else {
            &mut self.not_ready
        };
        list.push(SocketAddr::new(ip, port));
    }

    fn pick(self, rules: &AddressRules) -> Vec<SocketAddr> {
        let mut out = self.ready;
        if rules.include_not_ready || out.is_empty() {
            out.extend(self.not_ready);
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The member port among a slice's or subset's ports.
fn member_port<'a>(
    ports: impl Iterator<Item = (Option<&'a str>, Option<i32>)>,
    rules: &AddressRules,
) -> u16 {
    for (name, port) in ports {
        if name == Some(PORT_NAME) {
            if let Some(p) = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) {
                return p;
            }
        }
    }
    rules.port.unwrap_or(FALLBACK_PORT)
}

/// Member addresses in EndpointSlices. Terminating endpoints are left out
/// (those pods are handing their data over and leaving); an endpoint with
/// no ready condition counts as ready, as the API documents.
pub fn from_endpoint_slices<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    rules: &AddressRules,
) -> Vec<SocketAddr> {
    let mut found = Found::default();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let port = member_port(
            slice
                .ports
                .iter()
                .flatten()
                .map(|p| (p.name.as_deref(), p.port)),
            rules,
        );
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            if conditions.and_then(|c| c.terminating).unwrap_or(false) {
                continue;
            }
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            for ip in &endpoint.addresses {
                found.add(ip, port, ready);
            }
        }
    }
    found.pick(rules)
}

/// Member addresses in legacy core/v1 Endpoints (deprecated since
/// Kubernetes 1.33, still served; the fallback when EndpointSlices are not).
#[allow(deprecated)]
pub fn from_endpoints<'a>(
    endpoints: impl IntoIterator<Item = &'a Endpoints>,
    rules: &AddressRules,
) -> Vec<SocketAddr> {
    let mut found = Found::default();
    for subset in endpoints
        .into_iter()
        .flat_map(|e| e.subsets.iter().flatten())
    {
        let port = member_port(
            subset
                .ports
                .iter()
                .flatten()
                .map(|p| (p.name.as_deref(), Some(p.port))),
            rules,
        );
        for a in subset.addresses.iter().flatten() {
            found.add(&a.ip, port, true);
        }
        for a in subset.not_ready_addresses.iter().flatten() {
            found.add(&a.ip, port, false);
        }
    }
    found.pick(rules)
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort as CorePort, EndpointSubset};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    fn endpoint(ip: &str, ready: Option<bool>, terminating: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready,
                serving: ready,
                terminating,
            }),
            ..Default::default()
        }
    }

    fn slice(ports: &[(&str, i32)], endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints,
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| EndpointPort {
                        name: Some(n.to_string()),
                        port: Some(*p),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn ready_addresses_on_the_port_named_hazelcast() {
        let s = slice(
            &[("metrics", 9090), ("hazelcast", 5801)],
            vec![
                endpoint("10.0.0.3", Some(true), None),
                endpoint("10.0.0.2", None, None),
                endpoint("10.0.0.4", Some(false), None),
                endpoint("10.0.0.5", Some(true), Some(true)),
            ],
        );
        let got = from_endpoint_slices([&s], &AddressRules::default());
        assert_eq!(got, addrs(&["10.0.0.2:5801", "10.0.0.3:5801"]));
        let all = AddressRules {
            include_not_ready: true,
            ..Default::default()
        };
        assert_eq!(
            from_endpoint_slices([&s], &all),
            addrs(&["10.0.0.2:5801", "10.0.0.3:5801", "10.0.0.4:5801"])
        );
    }

    #[test]
    fn not_ready_addresses_when_none_is_ready() {
        let s = slice(
            &[("hazelcast", 5701)],
            vec![
                endpoint("10.0.0.7", Some(false), None),
                endpoint("10.0.0.6", Some(false), None),
            ],
        );
        assert_eq!(
            from_endpoint_slices([&s], &AddressRules::default()),
            addrs(&["10.0.0.6:5701", "10.0.0.7:5701"])
        );
    }

    #[test]
    fn configured_port_then_5701_when_no_port_is_named_hazelcast() {
        let s = slice(&[("http", 8080)], vec![endpoint("fd00::1", None, None)]);
        assert_eq!(
            from_endpoint_slices([&s], &AddressRules::default()),
            addrs(&["[fd00::1]:5701"])
        );
        let rules = AddressRules {
            port: Some(5702),
            ..Default::default()
        };
        assert_eq!(
            from_endpoint_slices([&s], &rules),
            addrs(&["[fd00::1]:5702"])
        );
    }

    #[test]
    fn several_slices_are_merged_and_junk_is_skipped() {
        let a = slice(
            &[("hazelcast", 5701)],
            vec![endpoint("10.0.0.9", None, None)],
        );
        let mut b = slice(
            &[("hazelcast", 5701)],
            vec![
                endpoint("10.0.0.8", None, None),
                endpoint("not-an-ip", None, None),
                endpoint("10.0.0.9", None, None),
            ],
        );
        let mut fqdn = slice(
            &[("hazelcast", 5701)],
            vec![endpoint("pod.example", None, None)],
        );
        fqdn.address_type = "FQDN".into();
        assert_eq!(
            from_endpoint_slices([&a, &b, &fqdn], &AddressRules::default()),
            addrs(&["10.0.0.8:5701", "10.0.0.9:5701"])
        );
        b.ports = None;
        assert_eq!(
            from_endpoint_slices([&b], &AddressRules::default()),
            addrs(&["10.0.0.8:5701", "10.0.0.9:5701"])
        );
    }

    #[test]
    fn legacy_endpoints_ready_then_not_ready() {
        let address = |ip: &str| EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        };
        let mut e = Endpoints {
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![address("10.1.0.2")]),
                not_ready_addresses: Some(vec![address("10.1.0.3")]),
                ports: Some(vec![CorePort {
                    name: Some("hazelcast".into()),
                    port: 5711,
                    ..Default::default()
                }]),
            }]),
            ..Default::default()
        };
        assert_eq!(
            from_endpoints([&e], &AddressRules::default()),
            addrs(&["10.1.0.2:5711"])
        );
        e.subsets.as_mut().unwrap()[0].addresses = None;
        assert_eq!(
            from_endpoints([&e], &AddressRules::default()),
            addrs(&["10.1.0.3:5711"])
        );
    }
}
