//! Binding the member port and choosing the address peers reach us at.

use crate::config::{Config, PORT_AUTO_INCREMENT};
use anyhow::{anyhow, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;

/// Binds the configured port; when the port was not given explicitly and is
/// taken, tries the next ones (5701, 5702, ... 5801) as Hazelcast does.
pub async fn bind(cfg: &Config) -> Result<TcpListener> {
    let last = if cfg.port_explicit {
        cfg.port
    } else {
        cfg.port.saturating_add(PORT_AUTO_INCREMENT)
    };
    let mut last_err = None;
    for port in cfg.port..=last {
        let addr = SocketAddr::new(cfg.bind_ip, port);
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::debug!("{addr} is in use");
                last_err = Some(e);
            }
            Err(e) => return Err(anyhow!("cannot listen on {addr}: {e}")),
        }
    }
    let range = if cfg.port_explicit {
        format!("{}:{}", cfg.bind_ip, cfg.port)
    } else {
        format!("{}:{}-{last}", cfg.bind_ip, cfg.port)
    };
    Err(anyhow!(
        "cannot listen on {range}: {}",
        last_err.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// The address announced to peers: `--public-address`, else `POD_IP`, else
/// the bind address, else (bound to 0.0.0.0) the first non-loopback
/// interface, else 127.0.0.1.
pub fn public_address(cfg: &Config, bound: SocketAddr) -> SocketAddr {
    let port = cfg.public_port.unwrap_or(bound.port());
    let ip = cfg.public_ip.unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            first_interface_ip(bound.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            bound.ip()
        }
    });
    SocketAddr::new(ip, port)
}

fn first_interface_ip(family_of: IpAddr) -> Option<IpAddr> {
    let ifaces = if_addrs::get_if_addrs().ok()?;
    ifaces
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| !ip.is_loopback() && ip.is_ipv4() == family_of.is_ipv4())
}
