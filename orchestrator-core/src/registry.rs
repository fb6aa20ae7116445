//! Backend registry: which backends this binary can build, by name.
//!
//! Backend crates submit one [`BackendRegistration`] with [`crate::register_backend!`]; the facade
//! names every enabled backend crate so the linker keeps those registrations. Explicit
//! registration on a [`Registry`] works too, for platforms or tests without life-before-main.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

pub use schemars::Schema;

use crate::backend::SharedBackend;
use crate::descriptor::{BackendFactory, Descriptor};
use crate::error::{Error, Result};

/// How to build one kind of backend: its [`Descriptor`], the JSON Schema of its
/// configuration table and a constructor. Made by [`BackendRegistration::of`] from a
/// [`BackendFactory`]; submit it with [`crate::register_backend!`].
#[derive(Clone, Copy)]
pub struct BackendRegistration {
    /// What the kind is and can do.
    pub descriptor: Descriptor,
    config_schema: fn() -> Schema,
    build: fn(&str, &serde_json::Value) -> Result<SharedBackend>,
}

impl BackendRegistration {
    /// The registration of factory `F`.
    pub const fn of<F: BackendFactory>() -> Self {
        Self {
            descriptor: F::DESCRIPTOR,
            config_schema: schema_of::<F>,
            build: build_of::<F>,
        }
    }

    /// The kind's name.
    pub fn name(&self) -> &'static str {
        self.descriptor.kind
    }

    /// JSON Schema of its configuration table.
    pub fn config_schema(&self) -> Schema {
        (self.config_schema)()
    }

    /// Build the instance `instance` from its configuration table (`null`: no table
    /// given; the `kind` key already removed).
    pub fn build(&self, instance: &str, table: &serde_json::Value) -> Result<SharedBackend> {
        crate::config::check_instance_name(instance)?;
        (self.build)(instance, table)
    }
}

fn schema_of<F: BackendFactory>() -> Schema {
    schemars::schema_for!(F::Config)
}

fn build_of<F: BackendFactory>(instance: &str, table: &serde_json::Value) -> Result<SharedBackend> {
    let kind = F::DESCRIPTOR.kind;
    let config = match (table.is_null(), F::default_config()) {
        (true, Some(config)) => config,
        _ => crate::config::parse_backend_config(instance, table)?,
    };
    let backend = F::build(instance, config)?;
    if backend.descriptor().kind != kind || backend.name() != instance {
        return Err(Error::config(format!(
            "factory `{kind}` built `{}` of kind `{}` when asked for instance `{instance}`",
            backend.name(),
            backend.descriptor().kind
        )));
    }
    Ok(backend)
}

impl fmt::Debug for BackendRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendRegistration")
            .field("descriptor", &self.descriptor)
            .finish_non_exhaustive()
    }
}

/// Submit `BackendRegistration::of::<$factory>()` to the global registry through
/// `inventory`, so [`Registry::global`] (and configuration) can build the kind by name.
///
/// ```ignore
/// orchestrator_core::register_backend!(MyFactory);
/// ```
#[macro_export]
macro_rules! register_backend {
    ($factory:ty) => {
        $crate::inventory::submit!($crate::registry::BackendRegistration::of::<$factory>());
    };
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
    entries: BTreeMap<&'static str, BackendRegistration>,
    duplicates: BTreeSet<&'static str>,
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::new();
    for reg in inventory::iter::<BackendRegistration> {
        r.register(*reg);
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
    pub fn register(&mut self, reg: BackendRegistration) -> &mut Self {
        let d = reg.descriptor;
        match self.entries.get(d.kind) {
            Some(existing)
                if (existing.descriptor.source, existing.descriptor.summary)
                    != (d.source, d.summary) =>
            {
                self.duplicates.insert(d.kind);
            }
            _ => {
                self.entries.insert(d.kind, reg);
            }
        }
        self
    }

    /// Register factory `F` (the explicit form of [`crate::register_backend!`]).
    pub fn register_factory<F: BackendFactory>(&mut self) -> &mut Self {
        self.register(BackendRegistration::of::<F>())
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.keys().copied().collect()
    }

    /// Every registration, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &BackendRegistration> + '_ {
        self.entries.values()
    }

    /// Find a registration by name; an unknown name lists what is available and, for a
    /// backend this workspace ships but this build left out, names the feature to enable.
    pub fn get(&self, name: &str) -> Result<&BackendRegistration> {
        if self.duplicates.contains(name) {
            return Err(Error::config(format!(
                "two different backends are registered under the name `{name}`"
            )));
        }
        self.entries.get(name).ok_or_else(|| Error::UnknownBackend {
            name: name.to_string(),
            available: self.names().iter().map(|s| s.to_string()).collect(),
            feature: KNOWN_BACKENDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| f.to_string()),
        })
    }

    /// Build instance `instance` of kind `kind` from its configuration table.
    pub fn build(
        &self,
        kind: &str,
        instance: &str,
        config: &serde_json::Value,
    ) -> Result<SharedBackend> {
        self.get(kind)?.build(instance, config)
    }
}
