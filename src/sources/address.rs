//! Who is calling, by address: the client IP behind trusted proxies, and IP allowlists.
//!
//! The client address is the socket peer, unless the peer is a configured trusted proxy: then it is
//! the right-most `X-Forwarded-For` hop that is not itself a trusted proxy. A forwarding header from
//! any other peer is ignored, so a caller cannot choose its own address. Only `X-Forwarded-For` is
//! read; `Forwarded` and `X-Real-IP` never are.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use super::refusal::AuthError;

/// Most `X-Forwarded-For` hops read; a longer chain is cut from the left (the client's side,
/// which is the part a caller can invent anyway).
pub const MAX_HOPS: usize = 32;

/// The client's address (see the module documentation). A header from an untrusted peer is
/// ignored, so it cannot be spoofed.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = forwarded_for
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|h| parse_hop(h.trim()))
        .collect();
    if hops.len() > MAX_HOPS {
        hops.drain(..hops.len() - MAX_HOPS);
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !is_trusted(hop, trusted) {
            break;
        }
    }
    client
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, optionally `[v6]`, `[v6]:port` or `v4:port`.
fn parse_hop(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = h.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    h.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|v6| v6.parse::<Ipv6Addr>().ok())
        .map(|ip| canonical(IpAddr::V6(ip)))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// An empty allowlist allows everyone.
pub fn check_ip(ip: IpAddr, allow: &[IpNet]) -> Result<(), AuthError> {
    let ip = canonical(ip);
    if allow.is_empty() || allow.iter().any(|n| n.contains(&ip)) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_address_resolution() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let peer = ip("10.1.1.1");
        let untrusted = ip("203.0.113.9");
        // Untrusted peer: header ignored.
        assert_eq!(client_ip(untrusted, ["1.2.3.4"], &trusted), untrusted);
        // Trusted peer: right-most untrusted hop.
        assert_eq!(
            client_ip(peer, ["1.2.3.4, 198.51.100.7, 10.2.2.2"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer, ["1.2.3.4", "198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // All hops trusted: the left-most.
        assert_eq!(client_ip(peer, ["10.3.3.3"], &trusted), ip("10.3.3.3"));
        // No header: the peer.
        assert_eq!(client_ip(peer, [], &trusted), peer);
        // Garbage hops are skipped.
        assert_eq!(
            client_ip(peer, ["nonsense, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // IPv4-mapped IPv6 peer compares as IPv4; bracketed IPv6 hops with or without a port.
        let mapped = ip("::ffff:10.1.1.1");
        assert_eq!(
            client_ip(mapped, ["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(mapped, ["[2001:db8::2]"], &trusted),
            ip("2001:db8::2")
        );
        assert_eq!(
            client_ip(ip("fd00::1"), ["::ffff:198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_long_chain_is_cut_from_the_client_side() {
        let trusted = nets(&["10.0.0.0/8"]);
        let mut hops: Vec<String> = (0..1000)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        hops.insert(0, "198.51.100.1".into());
        let header = hops.join(", ");
        // Every hop Hoist reads is trusted: the left-most one read (hop 968), never the client
        // the caller invented at the far left.
        assert_eq!(
            client_ip(ip("10.9.9.9"), [header.as_str()], &trusted),
            ip("10.0.3.218")
        );
    }

    #[test]
    fn allowlists() {
        let allow = nets(&["13.52.5.96/28", "2401:1d80:3000::/36"]);
        assert!(check_ip(ip("13.52.5.100"), &allow).is_ok());
        assert!(check_ip(ip("13.52.5.112"), &allow).is_err());
        assert!(check_ip(ip("2401:1d80:3000::1"), &allow).is_ok());
        assert!(check_ip(ip("::ffff:13.52.5.100"), &allow).is_ok());
        assert_eq!(
            check_ip(ip("::ffff:13.52.5.112"), &allow),
            Err(AuthError::Forbidden(ip("13.52.5.112")))
        );
        assert!(check_ip(ip("1.1.1.1"), &[]).is_ok());
    }
}
