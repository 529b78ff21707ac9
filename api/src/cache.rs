//! What the API keeps between requests, per kind of caller, until the warehouse commits:
//! sessions (the registered, row-scoped catalog) and the bodies of `GET` responses.
//!
//! The warehouse's state is the list of every table's Delta version. It is read again at most
//! once per `refresh` interval (one request at a time does it); when it differs, everything
//! cached is dropped, so a commit is visible to the next request after at most `refresh`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use datafusion::execution::session_state::SessionState;
use plsw_store::Warehouse;

use crate::error::ApiError;
use crate::scope::{self, Places};
use crate::tokens::{Scope, TokenRecord};

/// Cached response bodies beyond this number are all dropped (a crude bound on memory; the
/// dashboards ask for a few hundred distinct URLs).
const MAX_RESPONSES: usize = 4096;

/// Callers that see the same rows share a session and cached responses: the same scope, and
/// the same right to the bookkeeping tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Audience {
    bookkeeping: bool,
    /// Sorted scope codes; empty for the province.
    codes: Vec<String>,
}

impl Audience {
    pub fn of(caller: &TokenRecord) -> Audience {
        let mut codes = match &caller.scope {
            Scope::Province => Vec::new(),
            Scope::Codes(c) => c.clone(),
        };
        codes.sort();
        codes.dedup();
        Audience {
            bookkeeping: scope::sees_bookkeeping(caller),
            codes,
        }
    }
}

/// An audience's registered, row-scoped views and the places of its scope (`None`: the
/// province).
pub struct AudienceCatalog {
    pub state: SessionState,
    pub places: Option<Places>,
}

#[derive(Default)]
struct Inner {
    /// Bumped whenever the versions change.
    generation: u64,
    versions: Vec<(&'static str, i64)>,
    checked: Option<Instant>,
    sessions: HashMap<Audience, Arc<AudienceCatalog>>,
    responses: HashMap<(Audience, String), Bytes>,
}

/// Counters of the cache, for `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub generation: u64,
}

pub struct Cache {
    refresh: Duration,
    inner: Mutex<Inner>,
    /// One version check at a time.
    checking: tokio::sync::Mutex<()>,
    stats: Mutex<CacheStats>,
}

impl Cache {
    pub fn new(refresh: Duration) -> Cache {
        Cache {
            refresh,
            inner: Mutex::default(),
            checking: tokio::sync::Mutex::new(()),
            stats: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("api cache")
    }

    fn fresh(&self, inner: &Inner) -> bool {
        inner.checked.is_some_and(|at| at.elapsed() < self.refresh)
    }

    /// The current generation, after reading the versions again if `refresh` has passed.
    pub async fn generation(&self, wh: &Warehouse) -> Result<u64, ApiError> {
        {
            let inner = self.lock();
            if self.fresh(&inner) {
                return Ok(inner.generation);
            }
        }
        // One request reads the versions; the others go on with the generation they have
        // rather than queue behind it (no request waits for a check but the first ever).
        let _one = match self.checking.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let known = {
                    let inner = self.lock();
                    inner.checked.map(|_| inner.generation)
                };
                match known {
                    Some(generation) => return Ok(generation),
                    None => self.checking.lock().await,
                }
            }
        };
        {
            let inner = self.lock();
            if self.fresh(&inner) {
                return Ok(inner.generation);
            }
        }
        let versions = wh.versions().await.map_err(ApiError::internal)?;
        let mut inner = self.lock();
        if inner.checked.is_none() || inner.versions != versions {
            inner.generation += 1;
            inner.versions = versions;
            inner.sessions.clear();
            inner.responses.clear();
            tracing::debug!(
                generation = inner.generation,
                "warehouse changed: caches dropped"
            );
        }
        inner.checked = Some(Instant::now());
        let generation = inner.generation;
        self.stats.lock().expect("cache stats").generation = generation;
        Ok(generation)
    }

    /// The versions last read (for `/metrics`).
    pub fn versions(&self) -> Vec<(&'static str, i64)> {
        self.lock().versions.clone()
    }

    pub fn session(&self, generation: u64, who: &Audience) -> Option<Arc<AudienceCatalog>> {
        let inner = self.lock();
        (inner.generation == generation)
            .then(|| inner.sessions.get(who).cloned())
            .flatten()
    }

    /// Keeps a session built for `generation`, unless the warehouse has moved on since.
    pub fn keep_session(&self, generation: u64, who: Audience, session: Arc<AudienceCatalog>) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.sessions.insert(who, session);
        }
    }

    pub fn response(&self, generation: u64, who: &Audience, key: &str) -> Option<Bytes> {
        let found = {
            let inner = self.lock();
            (inner.generation == generation)
                .then(|| {
                    inner
                        .responses
                        .get(&(who.clone(), key.to_string()))
                        .cloned()
                })
                .flatten()
        };
        let mut stats = self.stats.lock().expect("cache stats");
        if found.is_some() {
            stats.hits += 1;
        } else {
            stats.misses += 1;
        }
        found
    }

    pub fn keep_response(&self, generation: u64, who: Audience, key: String, body: Bytes) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.responses.len() >= MAX_RESPONSES {
            inner.responses.clear();
        }
        inner.responses.insert((who, key), body);
    }

    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().expect("cache stats")
    }
}

/// Shared by every clone of the application state.
pub type SharedCache = Arc<Cache>;
