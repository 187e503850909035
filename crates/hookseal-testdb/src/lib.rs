//! What the integration tests of every crate share about the test cluster
//! `scripts/dispatch-test.sh` starts: its address (`HOOKSEAL_TEST_PG`), the
//! flavour installed in its `hookseal_template` database, and a fresh
//! database cloned from that template per test, so tests run in parallel.
//! A dev-dependency only; it panics with what to run when the cluster is
//! missing, as a test should.

pub mod otlp;

use tokio_postgres::{Client, NoTls};

/// `host:port` of the test cluster.
pub fn pg() -> String {
    std::env::var("HOOKSEAL_TEST_PG").expect(
        "HOOKSEAL_TEST_PG=host:port is not set; run these tests with scripts/dispatch-test.sh",
    )
}

/// A connection to `url`, its connection task spawned.
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

/// A superuser (`postgres`) connection to database `db` of the cluster.
pub async fn superuser(db: &str) -> Client {
    connect(&format!("postgres://postgres@{}/{db}", pg())).await
}

/// Database `name` made anew (`CREATE DATABASE name options`, an older one
/// of that name dropped first); a superuser connection to it.
pub async fn fresh(name: &str, options: &str) -> Client {
    let root = superuser("postgres").await;
    root.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    root.batch_execute(&format!("CREATE DATABASE {name} {options}"))
        .await
        .unwrap();
    superuser(name).await
}

/// Database `name` cloned from `hookseal_template` (hookseal of the
/// cluster's flavour, the test roles); a superuser connection to it.
pub async fn from_template(name: &str) -> Client {
    fresh(name, "TEMPLATE hookseal_template").await
}

/// Drops database `name`, closing its connections.
pub async fn drop_database(name: &str) {
    superuser("postgres")
        .await
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// Whether the template holds the portable flavour (HOOKSEAL_FLAVOUR).
pub fn portable() -> bool {
    std::env::var("HOOKSEAL_TEST_FLAVOUR").as_deref() == Ok("portable")
}

/// The portable flavour's sealing key file, when the cluster has one.
pub fn sealing_key_file() -> Option<String> {
    std::env::var("HOOKSEAL_TEST_SEALING_KEY_FILE").ok()
}
