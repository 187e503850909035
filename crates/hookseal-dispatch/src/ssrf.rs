//! Which addresses a delivery may connect to.
//!
//! A webhook URL is chosen by a customer, so a dispatcher that follows it
//! blindly is a proxy into the network it runs in (cloud metadata at
//! 169.254.169.254, the database, internal admin ports). The policy refuses
//! every non-public address unless an allow-list names it, and it is
//! applied to the addresses a connection is actually opened to: IP-literal
//! hosts are checked before connecting, and names go through
//! [`PolicyResolver`], which drops refused addresses from the DNS answer the
//! HTTP client then connects to (so a name that re-resolves to a private
//! address between a check and the connect cannot slip through).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused: the kind of range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// 0.0.0.0/8, `::` — "this network" / unspecified.
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and IPv6 unique-local fc00::/7.
    Private,
    /// 169.254/16 (cloud metadata lives here) and fe80::/10.
    LinkLocal,
    /// Carrier-grade NAT, 100.64.0.0/10.
    SharedCgnat,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// Documentation, benchmarking, IETF protocol assignments, 240/4,
    /// broadcast, 6to4/Teredo/NAT64/discard/ORCHID prefixes and the like.
    Reserved,
}

impl Blocked {
    /// A short name for logs and the outbox's `last_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Blocked::Unspecified => "unspecified",
            Blocked::Loopback => "loopback",
            Blocked::Private => "private",
            Blocked::LinkLocal => "link-local",
            Blocked::SharedCgnat => "shared (CGNAT)",
            Blocked::Multicast => "multicast",
            Blocked::Reserved => "reserved",
        }
    }
}

/// The class of a non-public address; `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => Blocked::Unspecified,
        (127, _, _) => Blocked::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Blocked::Private,
        (169, 254, _) => Blocked::LinkLocal,
        (100, 64..=127, _) => Blocked::SharedCgnat,
        (224..=239, _, _) => Blocked::Multicast,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Blocked::Reserved,
        (198, 18..=19, _) | (192, 88, 99) | (240..=255, _, _) => Blocked::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if ip.is_unspecified() {
        return Some(Blocked::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Blocked::Loopback);
    }
    let s = ip.segments();
    Some(match s[0] {
        0xfc00..=0xfdff => Blocked::Private,
        0xfe80..=0xfebf => Blocked::LinkLocal,
        0xff00..=0xffff => Blocked::Multicast,
        // Within global unicast (2000::/3): 2001::/23 IETF (Teredo, ORCHID,
        // benchmarking), 2001:db8::/32 and 3fff::/20 documentation,
        // 2002::/16 6to4 (can reach private IPv4).
        0x2001 if s[1] < 0x0200 || s[1] == 0x0db8 => Blocked::Reserved,
        0x2002 => Blocked::Reserved,
        0x3fff if s[1] < 0x1000 => Blocked::Reserved,
        0x2000..=0x3fff => return None,
        // Everything outside 2000::/3 that is not named above is not
        // global unicast: ::/96 IPv4-compatible, 64:ff9b::/96 and
        // 64:ff9b:1::/48 NAT64 (can reach private IPv4), 100::/64 discard,
        // and unassigned space.
        _ => Blocked::Reserved,
    })
}

/// The refusal of one address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {ip} is a {} address and not on the allow-list", .class.as_str())]
pub struct Refused {
    /// The refused address.
    pub ip: IpAddr,
    /// Its class.
    pub class: Blocked,
}

/// Public addresses pass; others pass only when an allow-list net holds them.
#[derive(Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
    lookup: Option<Arc<dyn Lookup>>,
}

impl std::fmt::Debug for AddressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressPolicy")
            .field("allow", &self.allow)
            .field("lookup", &self.lookup.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// A name's addresses, for a deployment (or a test) that resolves names
/// otherwise than the system's resolver: [`AddressPolicy::with_lookup`].
/// Every delivery's connection asks it once and connects only to what
/// the policy allows of its answer.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses of `host`.
    fn lookup<'a>(
        &'a self,
        host: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>,
    >;
}

impl AddressPolicy {
    /// A policy allowing public addresses plus the given networks.
    pub fn new(allow: Vec<IpNet>) -> Self {
        AddressPolicy {
            allow,
            lookup: None,
        }
    }

    /// The same policy, resolving names with `lookup` instead of the
    /// system's resolver.
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// The allow-list.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether a connection to `ip` may be opened.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(class) = classify(ip) else {
            return Ok(());
        };
        // An IPv4-mapped IPv6 address is allowed by the IPv4 net it maps to.
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self
            .allow
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&plain))
        {
            Ok(())
        } else {
            Err(Refused { ip, class })
        }
    }
}

/// Why a destination URL is refused before any connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    /// The URL cannot be used: it does not parse, is not http(s), or has
    /// no host. Permanent (the `invalid` failure class).
    #[error("{0}")]
    Invalid(String),
    /// Its host is an IP literal the policy refuses (the `policy` class).
    #[error("refused: {0}")]
    Policy(#[from] Refused),
}

impl AddressPolicy {
    /// Parses a destination URL and checks an IP-literal host (names are
    /// checked by [`PolicyResolver`] when they resolve). The URL to send
    /// to, or why not.
    pub fn check_url(&self, url: &str) -> Result<url::Url, UrlRefused> {
        let url = match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return Err(UrlRefused::Invalid(format!(
                    "unsupported URL scheme `{}`",
                    u.scheme()
                )))
            }
            Err(e) => return Err(UrlRefused::Invalid(format!("invalid URL: {e}"))),
        };
        let literal: IpAddr = match url.host() {
            Some(url::Host::Ipv4(v4)) => v4.into(),
            Some(url::Host::Ipv6(v6)) => v6.into(),
            Some(url::Host::Domain(_)) => return Ok(url),
            None => return Err(UrlRefused::Invalid("URL has no host".into())),
        };
        self.check(literal)?;
        Ok(url)
    }
}

/// A DNS resolver for the HTTP client that answers only with addresses the
/// policy allows, so the client can connect to nothing else.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl PolicyResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        PolicyResolver { policy }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = policy.allowed_addrs(name.as_str()).await.map_err(|e| {
                // The worker classifies a `Refused` in the error's source
                // chain as a policy refusal; a lookup failure stays the I/O
                // error it was.
                let boxed: Box<dyn std::error::Error + Send + Sync> = match e {
                    NoAddress::Refused(r) => Box::new(r),
                    NoAddress::Lookup { source, .. } => Box::new(source),
                    empty @ NoAddress::Empty(_) => Box::new(empty),
                };
                boxed
            })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Why a name gave no address a connection may be opened to.
#[derive(Debug, thiserror::Error)]
pub enum NoAddress {
    /// Every address it has is refused (the first refusal).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The lookup failed.
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// What the system's resolver said.
        source: std::io::Error,
    },
    /// The name has no address.
    #[error("{0} resolves to no address")]
    Empty(String),
}

/// Why a destination is refused before it is stored ([`AddressPolicy::check_destination`]).
#[derive(Debug, thiserror::Error)]
pub enum DestinationRefused {
    /// The URL, or its IP-literal host.
    #[error(transparent)]
    Url(#[from] UrlRefused),
    /// Its name.
    #[error(transparent)]
    Name(#[from] NoAddress),
}

impl AddressPolicy {
    /// The addresses `host` resolves to that this policy allows: what
    /// [`PolicyResolver`] hands the HTTP client for every connection.
    pub async fn allowed_addrs(&self, host: &str) -> Result<Vec<SocketAddr>, NoAddress> {
        let found: Vec<SocketAddr> = match &self.lookup {
            None => tokio::net::lookup_host((host, 0))
                .await
                .map(|a| a.collect()),
            Some(l) => l
                .lookup(host)
                .await
                .map(|ips| ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect()),
        }
        .map_err(|source| NoAddress::Lookup {
            host: host.to_owned(),
            source,
        })?;
        let mut refused = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check(a.ip()) {
                Ok(()) => true,
                Err(r) => {
                    refused.get_or_insert(r);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            return Err(match refused {
                Some(r) => NoAddress::Refused(r),
                None => NoAddress::Empty(host.to_owned()),
            });
        }
        Ok(allowed)
    }

    /// A destination checked as a delivery would check it now: the URL
    /// ([`check_url`](Self::check_url)) and, for a name, its addresses
    /// ([`allowed_addrs`](Self::allowed_addrs)). For a page that takes a
    /// URL from an endpoint's owner, so the refusal is shown when the URL
    /// is entered; the delivery checks again at every connection (a name's
    /// answer can change).
    pub async fn check_destination(&self, url: &str) -> Result<url::Url, DestinationRefused> {
        let u = self.check_url(url)?;
        if let Some(url::Host::Domain(d)) = u.host() {
            self.allowed_addrs(d).await?;
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused_by_default() {
        let p = AddressPolicy::default();
        let cases = [
            ("0.0.0.0", Blocked::Unspecified),
            ("0.1.2.3", Blocked::Unspecified),
            ("127.0.0.1", Blocked::Loopback),
            ("127.255.255.254", Blocked::Loopback),
            ("10.0.0.1", Blocked::Private),
            ("172.16.0.1", Blocked::Private),
            ("172.31.255.255", Blocked::Private),
            ("192.168.1.1", Blocked::Private),
            ("169.254.169.254", Blocked::LinkLocal),
            ("100.64.0.1", Blocked::SharedCgnat),
            ("100.127.255.255", Blocked::SharedCgnat),
            ("224.0.0.1", Blocked::Multicast),
            ("239.255.255.250", Blocked::Multicast),
            ("192.0.2.1", Blocked::Reserved),
            ("198.51.100.7", Blocked::Reserved),
            ("203.0.113.9", Blocked::Reserved),
            ("198.18.0.1", Blocked::Reserved),
            ("240.0.0.1", Blocked::Reserved),
            ("255.255.255.255", Blocked::Reserved),
            ("::", Blocked::Unspecified),
            ("::1", Blocked::Loopback),
            ("fc00::1", Blocked::Private),
            ("fd12:3456::1", Blocked::Private),
            ("fe80::1", Blocked::LinkLocal),
            ("ff02::1", Blocked::Multicast),
            ("::ffff:127.0.0.1", Blocked::Loopback),
            ("::ffff:169.254.169.254", Blocked::LinkLocal),
            ("64:ff9b::a00:1", Blocked::Reserved),
            ("::127.0.0.1", Blocked::Reserved),
            ("2001:db8::1", Blocked::Reserved),
            ("2002:a00:1::", Blocked::Reserved),
            ("2001::1", Blocked::Reserved),
        ];
        for (addr, class) in cases {
            let r = p.check(ip(addr));
            assert_eq!(
                r,
                Err(Refused {
                    ip: ip(addr),
                    class
                }),
                "{addr}"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = AddressPolicy::default();
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(p.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_nets() {
        let p = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(p.check(ip("::1")).is_err());
        assert!(p.check(ip("10.0.0.1")).is_err());
        assert!(p.check(ip("169.254.169.254")).is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let strict = PolicyResolver::new(Arc::new(AddressPolicy::default()));
        let err = match strict.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved under the default policy"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("loopback"), "{err}");

        let open = PolicyResolver::new(Arc::new(AddressPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ])));
        let addrs: Vec<SocketAddr> = match open.resolve("localhost".parse().unwrap()).await {
            Ok(a) => a.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn a_destination_is_checked_as_a_delivery_would_be() {
        let strict = AddressPolicy::default();
        let why = |r: Result<url::Url, DestinationRefused>| match r {
            Ok(u) => panic!("{u} passed"),
            Err(e) => e.to_string(),
        };
        let name = why(strict.check_destination("http://localhost:9/hook").await);
        assert!(name.contains("loopback"), "{name}");
        let literal = why(strict.check_destination("http://169.254.169.254/").await);
        assert!(literal.contains("link-local"), "{literal}");
        let scheme = why(strict.check_destination("ftp://example.com/").await);
        assert!(scheme.contains("unsupported URL scheme"), "{scheme}");
        let unknown = why(strict
            .check_destination("http://no-such-host.invalid/")
            .await);
        assert!(unknown.contains("no-such-host.invalid"), "{unknown}");

        let open = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let u = open
            .check_destination("http://localhost:9/hook")
            .await
            .unwrap();
        assert_eq!(u.as_str(), "http://localhost:9/hook");
    }
}
