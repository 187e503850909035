//! The dispatcher's URL and address policy, against a plain reference: a
//! table of the non-public networks (IANA special-purpose registries, as
//! CIDR text) checked with ipnet, IPv4-mapped IPv6 judged as its IPv4.
//! The first 17 bytes are an address (v4 or v6) checked directly; the rest
//! is a URL whose IP-literal host must get the same verdict.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use hookseal_dispatch::{AddressPolicy, IpNet, UrlRefused};
use libfuzzer_sys::fuzz_target;

const BLOCKED: &[&str] = &[
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    // Inside IPv6 global unicast (2000::/3); everything outside it is refused.
    "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
];

fn nets() -> &'static (Vec<IpNet>, IpNet) {
    static N: OnceLock<(Vec<IpNet>, IpNet)> = OnceLock::new();
    N.get_or_init(|| {
        (
            BLOCKED.iter().map(|s| s.parse().unwrap()).collect(),
            "2000::/3".parse().unwrap(),
        )
    })
}

/// The reference verdict: true when refused without an allow-list.
fn refused(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let (blocked, global) = nets();
    (ip.is_ipv6() && !global.contains(&ip)) || blocked.iter().any(|n| n.contains(&ip))
}

fuzz_target!(|data: &[u8]| {
    let policy = AddressPolicy::default();
    if data.len() >= 17 {
        let ip: IpAddr = if data[0] & 1 == 0 {
            Ipv4Addr::new(data[1], data[2], data[3], data[4]).into()
        } else {
            let b: [u8; 16] = data[1..17].try_into().unwrap();
            Ipv6Addr::from(b).into()
        };
        assert_eq!(policy.check(ip).is_err(), refused(ip), "{ip}");
        // An allow-list net holding the address opens it.
        let open = AddressPolicy::new(vec![IpNet::from(ip)]);
        assert!(open.check(ip).is_ok(), "{ip} allowed by its own net");
    }
    let Ok(text) = std::str::from_utf8(data.get(17..).unwrap_or(data)) else {
        return;
    };
    match policy.check_url(text) {
        Ok(url) => {
            assert!(matches!(url.scheme(), "http" | "https"));
            match url.host() {
                Some(url::Host::Ipv4(v4)) => assert!(!refused(v4.into()), "{text} passed"),
                Some(url::Host::Ipv6(v6)) => assert!(!refused(v6.into()), "{text} passed"),
                Some(url::Host::Domain(_)) => {}
                None => panic!("{text}: passed without a host"),
            }
        }
        Err(UrlRefused::Policy(r)) => assert!(refused(r.ip), "{text}: refused {r}"),
        Err(UrlRefused::Invalid(_)) => {}
    }
});
