//! What the portal's integration tests share: the test cluster, a fresh
//! database from its template, and the portal served in this process.

use std::net::SocketAddr;

use hookseal::TokenKey;
use tokio_postgres::Client;

pub use hookseal_testdb::{drop_database, pg};

/// A fresh database `t_portal_{test}_{pid}` from `hookseal_template`:
/// (its name, a superuser connection to it).
pub async fn database(test: &str) -> (String, Client) {
    let name = format!("t_portal_{test}_{}", std::process::id());
    let admin = hookseal_testdb::from_template(&name).await;
    (name, admin)
}

/// The portal, in this process, for the admin login of `db`.
#[allow(dead_code)] // not every test file uses it
pub async fn portal(db: &str, key: TokenKey) -> SocketAddr {
    portal_framed(db, key, Vec::new()).await
}

/// The same, its owner pages framed by `frame_ancestors`; owners' URLs
/// may be on loopback (the receivers of these tests), nothing else
/// non-public.
pub async fn portal_framed(db: &str, key: TokenKey, frame_ancestors: Vec<String>) -> SocketAddr {
    let config = hookseal_portal::Config {
        database_url: format!("postgres://hookseal_test_admin@{}/{db}", pg()),
        key,
        secure_cookies: true,
        policy: hookseal_portal::AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]),
        frame_ancestors,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(hookseal_portal::serve(
        config,
        "127.0.0.1:0".parse().unwrap(),
        move |a| {
            let _ = tx.send(a);
        },
        std::future::pending(),
    ));
    rx.await.unwrap()
}

pub mod procs;
