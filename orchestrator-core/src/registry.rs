//! Backend registry: which backends this binary can build, by name.
//!
//! Backend crates submit one [`BackendRegistration`] with `inventory::submit!`; the facade
//! names every enabled backend crate so the linker keeps those registrations. Explicit
//! registration on a [`Registry`] works too, for platforms or tests without life-before-main.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

pub use schemars::Schema;

use crate::backend::SharedBackend;
use crate::error::{Error, Result};
use crate::task::TaskType;

/// How to build one kind of backend. Declare it as a `const` and submit it with
/// `inventory::submit!`.
pub struct BackendRegistration {
    /// The backend's name (`bullmq`, `temporal`, `n8n`, …): its config key and the prefix
    /// of its task ids.
    pub name: &'static str,
    /// The source its statuses report (`BULLMQ`, …).
    pub source: &'static str,
    /// Task types it can run.
    pub task_types: &'static [TaskType],
    /// One line saying what it is.
    pub summary: &'static str,
    /// JSON Schema of its configuration table.
    pub config_schema: fn() -> schemars::Schema,
    /// Build an instance from its configuration table (validating it; no I/O).
    pub build: fn(&serde_json::Value) -> Result<SharedBackend>,
}

impl fmt::Debug for BackendRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendRegistration")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("task_types", &self.task_types)
            .finish_non_exhaustive()
    }
}

inventory::collect!(BackendRegistration);

/// Backends this workspace ships, with the facade feature that compiles each in, so an
/// unknown name can say which feature to enable.
pub const KNOWN_BACKENDS: &[(&str, &str)] = &[
    ("bullmq", "bullmq"),
    ("temporal", "temporal"),
    ("n8n", "n8n"),
    ("memory-bullmq", "testkit"),
    ("memory-temporal", "testkit"),
    ("memory-n8n", "testkit"),
];

/// A set of backend registrations, looked up by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, &'static BackendRegistration>,
    duplicates: BTreeSet<&'static str>,
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::new();
    for reg in inventory::iter::<BackendRegistration> {
        r.register(reg);
    }
    r
});

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every registration linked into this binary through `inventory`.
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    /// Add a registration. Registering the same backend twice (same name, source and
    /// summary) is harmless; two different backends under one name make that name
    /// unusable (an error at lookup, never last-one-wins).
    pub fn register(&mut self, reg: &'static BackendRegistration) -> &mut Self {
        match self.entries.get(reg.name) {
            Some(existing) if (existing.source, existing.summary) != (reg.source, reg.summary) => {
                self.duplicates.insert(reg.name);
            }
            _ => {
                self.entries.insert(reg.name, reg);
            }
        }
        self
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.keys().copied().collect()
    }

    /// Every registration, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &'static BackendRegistration> + '_ {
        self.entries.values().copied()
    }

    /// Find a registration by name; an unknown name lists what is available and, for a
    /// backend this workspace ships but this build left out, names the feature to enable.
    pub fn get(&self, name: &str) -> Result<&'static BackendRegistration> {
        if self.duplicates.contains(name) {
            return Err(Error::config(format!(
                "two different backends are registered under the name `{name}`"
            )));
        }
        self.entries
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownBackend {
                name: name.to_string(),
                available: self.names().iter().map(|s| s.to_string()).collect(),
                feature: KNOWN_BACKENDS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| f.to_string()),
            })
    }

    /// Build a backend from its configuration table.
    pub fn build(&self, name: &str, config: &serde_json::Value) -> Result<SharedBackend> {
        (self.get(name)?.build)(config)
    }
}
