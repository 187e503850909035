//! The replay guard's memory: which message ids were accepted, until when.
//!
//! A signed request stays valid while its timestamp is within the
//! verifier's tolerance, so an attacker who captured one can send it again
//! until then. The guard remembers each accepted id until that moment (the
//! timestamp plus the tolerance; receipt plus the window for schemes without
//! a timestamp) and refuses a second request with the same id meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use hookseal::UnixTime;
use thiserror::Error;

/// A boxed future, as the object-safe [`ReplayStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a replay store could not answer. The request is then refused (503)
/// rather than let through unchecked.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The in-memory store holds its maximum of live ids.
    #[error("the replay store is full ({0} live ids)")]
    Full(usize),
    /// The database could not be reached or refused the statement.
    #[error("replay store database: {0}")]
    Database(String),
}

/// Where the replay guard records accepted message ids.
///
/// `reserve` is called after a request verified and before its handler
/// runs; `forget` when the handler did not accept it (a non-2xx answer, or
/// the request was dropped), so the sender's retry is let through.
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `id` (within `scope`, say one route) as seen until `until`,
    /// unless it is already recorded with a later end than `now`. `Ok(true)`
    /// means first sight (go on), `Ok(false)` a replay.
    fn reserve<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, ReplayError>>;

    /// Removes `id`'s record. Must not block: a store that needs I/O
    /// spawns it.
    fn forget(&self, scope: &str, id: &str);
}

/// Default bound of [`MemoryReplayStore`]: 1,000,000 live ids (about
/// 100 MB at 64-byte ids).
pub const DEFAULT_MEMORY_CAPACITY: usize = 1_000_000;

/// A replay store in this process's memory: for one instance (every
/// replica behind a load balancer needs a shared store such as the
/// PostgreSQL one). Bounded: expired ids are dropped as new ones arrive, and
/// when `capacity` live ids are held, new requests are refused (503), never
/// let through unchecked.
#[derive(Debug)]
pub struct MemoryReplayStore {
    capacity: usize,
    state: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<(String, String), i64>,
    by_end: BTreeSet<(i64, String, String)>,
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        MemoryReplayStore::with_capacity(DEFAULT_MEMORY_CAPACITY)
    }
}

impl MemoryReplayStore {
    /// A store holding at most `capacity` live ids.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryReplayStore {
            capacity,
            state: Mutex::new(Seen::default()),
        }
    }

    /// Live ids held now (expired ones are dropped lazily).
    pub fn len(&self) -> usize {
        self.lock().until.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A panic elsewhere while holding the lock leaves consistent maps
        // (every update below is one insert or remove per map).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reserve_now(
        &self,
        scope: &str,
        id: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, ReplayError> {
        let (now, until) = (now.as_millis(), until.as_millis());
        let mut seen = self.lock();
        seen.expire(now);
        let key = (scope.to_owned(), id.to_owned());
        if seen.until.contains_key(&key) {
            return Ok(false);
        }
        if seen.until.len() >= self.capacity {
            return Err(ReplayError::Full(self.capacity));
        }
        seen.by_end.insert((until, key.0.clone(), key.1.clone()));
        seen.until.insert(key, until);
        Ok(true)
    }
}

impl Seen {
    /// Drops every record whose end is not after `now`.
    fn expire(&mut self, now: i64) {
        while let Some(first) = self.by_end.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, scope, id)) = self.by_end.pop_first() {
                self.until.remove(&(scope, id));
            }
        }
    }
}

impl ReplayStore for MemoryReplayStore {
    fn reserve<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, ReplayError>> {
        let r = self.reserve_now(scope, id, until, now);
        Box::pin(std::future::ready(r))
    }

    fn forget(&self, scope: &str, id: &str) {
        let mut seen = self.lock();
        if let Some(until) = seen.until.remove(&(scope.to_owned(), id.to_owned())) {
            seen.by_end
                .remove(&(until, scope.to_owned(), id.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    #[test]
    fn second_sight_is_a_replay_until_the_end_then_forgotten() {
        let s = MemoryReplayStore::default();
        assert!(s.reserve_now("a", "m1", t(400), t(100)).unwrap());
        assert!(!s.reserve_now("a", "m1", t(500), t(399)).unwrap());
        // Another scope is another namespace.
        assert!(s.reserve_now("b", "m1", t(400), t(100)).unwrap());
        // At its end the record is gone.
        assert!(s.reserve_now("a", "m1", t(700), t(400)).unwrap());
        assert_eq!(s.len(), 1, "b's record expired at 400 too");
    }

    #[test]
    fn forget_lets_a_retry_through() {
        let s = MemoryReplayStore::default();
        assert!(s.reserve_now("a", "m1", t(400), t(100)).unwrap());
        s.forget("a", "m1");
        assert!(s.is_empty());
        assert!(s.reserve_now("a", "m1", t(400), t(101)).unwrap());
    }

    #[test]
    fn full_refuses_instead_of_forgetting_live_ids() {
        let s = MemoryReplayStore::with_capacity(2);
        assert!(s.reserve_now("a", "1", t(400), t(100)).unwrap());
        assert!(s.reserve_now("a", "2", t(300), t(100)).unwrap());
        assert!(matches!(
            s.reserve_now("a", "3", t(400), t(100)),
            Err(ReplayError::Full(2))
        ));
        // Once "2" expires there is room again, and "1" is still a replay.
        assert!(s.reserve_now("a", "3", t(400), t(300)).unwrap());
        assert!(!s.reserve_now("a", "1", t(400), t(300)).unwrap());
    }
}
