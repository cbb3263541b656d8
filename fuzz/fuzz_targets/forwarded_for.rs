//! `X-Forwarded-For`: the input is the peer's address (16 bytes) then header lines. No header may
//! panic the resolution; an untrusted peer's header never counts; the client is the peer or one
//! of the hops.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use hoist::http::limits::rate_key;
use hoist::sources::auth::client_ip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((peer, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let peer = IpAddr::V6(Ipv6Addr::from(*peer)).to_canonical();
    let text = String::from_utf8_lossy(rest);
    let lines: Vec<&str> = text.lines().collect();
    let trusted: Vec<ipnet::IpNet> = ["10.0.0.0/8", "fd00::/8", "::ffff:0:0/96"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let client = client_ip(peer, lines.iter().copied(), &trusted);
    let peer_trusted = trusted.iter().any(|n| n.contains(&peer));
    if !peer_trusted {
        assert_eq!(client, peer);
    }
    let _ = rate_key(client);
});
