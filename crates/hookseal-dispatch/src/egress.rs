//! Deliveries through an HTTP CONNECT proxy (`--proxy`, `HOOKSEAL_PROXY`),
//! for a fixed egress address that receivers can allow-list.
//!
//! The address guard stays ours: the destination's name is resolved here
//! and checked by the [`AddressPolicy`] before the proxy is asked, and the
//! proxy is asked to `CONNECT` to the checked address (`CONNECT
//! 93.184.215.14:443`), never to the name. So neither the proxy's own
//! resolver nor a DNS answer that changes between the check and the
//! connect (rebinding) can reach an address the guard refused. The name is
//! kept for what it is needed for: TLS (SNI and certificate) runs end to
//! end through the tunnel against the name, and `Host` is the name.
//!
//! Plain `http://` destinations are tunnelled too (a request in origin
//! form inside the tunnel), so the proxy never parses a delivery. Hosts
//! named by `NO_PROXY` (curl's rules) connect directly, to the checked
//! address as well.
//!
//! Built from hyper-util's `Tunnel` and proxy `Matcher` (the pieces reqwest
//! uses) and hyper-rustls: reqwest's own proxy support sends the name in
//! its `CONNECT`, which is what this module exists to avoid.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::ssrf::{AddressPolicy, NoAddress};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where deliveries go out: the proxy, and the hosts that skip it.
#[derive(Clone)]
pub struct Proxy {
    matcher: Arc<Matcher>,
    shown: String,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("url", &self.shown).finish()
    }
}

impl Proxy {
    /// The proxy at `url` (`http://[user:password@]host:port`), skipped for
    /// the hosts of `no_proxy` (comma-separated names, which match their
    /// subdomains too, IP addresses and networks, or `*`; the `NO_PROXY`
    /// variable's rules). The error never repeats a password.
    pub fn new(url: &str, no_proxy: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        if parsed.scheme() != "http" {
            return Err(format!(
                "`{}://` is not supported; give the proxy as http://host:port (the tunnel carries TLS end to end)",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none() || parsed.path() != "/" || parsed.query().is_some() {
            return Err("give the proxy as http://host:port, without a path".into());
        }
        let mut shown = parsed.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        let matcher = Matcher::builder().all(url).no(no_proxy).build();
        Ok(Proxy {
            matcher: Arc::new(matcher),
            shown: shown.to_string(),
        })
    }

    /// [`Proxy::new`] with the hosts of `NO_PROXY` (or `no_proxy`) as `env`
    /// gives them: what the CLI and the Lambda read.
    pub fn with_env_no_proxy(
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let no_proxy = env("NO_PROXY")
            .or_else(|| env("no_proxy"))
            .unwrap_or_default();
        Proxy::new(url, &no_proxy)
    }

    /// The proxy's URL, a password replaced by `***`: for logs.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// The connector under hyper-rustls: resolves and checks the destination,
/// then connects to the checked address, through the proxy's tunnel unless
/// `NO_PROXY` names the host.
#[derive(Clone)]
pub(crate) struct CheckedConnector {
    policy: Arc<AddressPolicy>,
    proxy: Proxy,
    tcp: HttpConnector,
}

impl CheckedConnector {
    pub(crate) fn new(policy: Arc<AddressPolicy>, proxy: Proxy, connect_timeout: Duration) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        CheckedConnector { policy, proxy, tcp }
    }
}

/// The address a delivery to `dst` may connect to: an IP literal the
/// policy allows, or the first allowed address of the name.
async fn checked_address(policy: &AddressPolicy, dst: &Uri) -> Result<SocketAddr, BoxError> {
    let host = dst.host().ok_or("the URL has no host")?;
    let port = dst
        .port_u16()
        .unwrap_or(if dst.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        policy.check(ip)?;
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs = policy.allowed_addrs(host).await.map_err(|e| -> BoxError {
        match e {
            NoAddress::Refused(r) => Box::new(r),
            other => Box::new(other),
        }
    })?;
    let mut first = addrs[0];
    first.set_port(port);
    Ok(first)
}

impl tower_service::Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let addr = checked_address(&this.policy, &dst).await?;
            let target: Uri = format!("http://{addr}").parse()?;
            match this.proxy.matcher.intercept(&dst) {
                Some(via) => {
                    let mut tunnel = Tunnel::new(via.uri().clone(), this.tcp.clone());
                    if let Some(auth) = via.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    tower_service::Service::call(&mut tunnel, target)
                        .await
                        .map_err(|e| -> BoxError { Box::new(ProxyError(e.to_string())) })
                }
                None => {
                    let mut tcp = this.tcp.clone();
                    Ok(tower_service::Service::call(&mut tcp, target).await?)
                }
            }
        })
    }
}

/// The proxy refused or broke the tunnel (its answer to `CONNECT`).
#[derive(Debug, thiserror::Error)]
#[error("proxy: {0}")]
pub struct ProxyError(String);

/// The HTTP client of a dispatcher that sends through a proxy.
pub(crate) type ProxiedClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<CheckedConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// A pooled client over [`CheckedConnector`], TLS by webpki's roots.
pub(crate) fn client(
    policy: Arc<AddressPolicy>,
    proxy: Proxy,
    connect_timeout: Duration,
    per_host: usize,
) -> ProxiedClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(CheckedConnector::new(policy, proxy, connect_timeout));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(per_host)
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_are_checked_and_passwords_never_shown() {
        let p = Proxy::new("http://user:hunter2@127.0.0.1:3128", "").unwrap();
        assert!(!p.shown().contains("hunter2"), "{}", p.shown());
        assert!(!format!("{p:?}").contains("hunter2"));
        for bad in [
            "https://p:3128",
            "socks5://p:1080",
            "http://p:3128/path",
            "p:3128",
            "",
        ] {
            let e = Proxy::new(bad, "").unwrap_err();
            assert!(
                e.contains("http://host:port") || e.contains("not a URL"),
                "{bad}: {e}"
            );
        }
        let e = Proxy::new("http://u:hunter2@p:3128/x", "").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn no_proxy_follows_curls_rules() {
        let p = Proxy::new("http://127.0.0.1:3128", "internal.example, 10.0.0.0/8").unwrap();
        let via = |u: &str| p.matcher.intercept(&u.parse().unwrap()).is_some();
        assert!(via("https://example.com/hook"));
        assert!(via("http://example.com/hook"));
        assert!(!via("https://api.internal.example/hook"));
        assert!(!via("http://10.1.2.3/hook"));
    }
}
