//! Backend registry: which backends this binary can build, by name.
//!
//! Backend crates submit one [`BackendRegistration`] with [`crate::register_backend!`]; the facade
//! names every enabled backend crate so the linker keeps those registrations, and submits
//! an [`BackendRegistration::absent`] entry for each backend whose feature is off, so the
//! error for it names the feature. Explicit registration on a [`Registry`] works too, for
//! platforms or tests without life-before-main.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

use schemars::Schema;

use crate::backend::SharedBackend;
use crate::descriptor::{BackendFactory, Descriptor};
use crate::error::{Error, Result};
use crate::handle::BackendHandle;
use crate::task::TaskType;

/// How to build one kind of backend: its [`Descriptor`], the JSON Schema of its
/// configuration table and a constructor. Made by [`BackendRegistration::of`] from a
/// [`BackendFactory`]; submit it with [`crate::register_backend!`].
#[derive(Clone, Copy)]
pub struct BackendRegistration {
    kind: &'static str,
    built: Option<Built>,
    /// For a kind this build left out: the Cargo feature of the `orchestrator` crate that
    /// compiles it in.
    feature: Option<&'static str>,
}

#[derive(Clone, Copy)]
struct Built {
    descriptor: Descriptor,
    config_schema: fn() -> Schema,
    build: fn(&str, &serde_json::Value) -> Result<SharedBackend>,
}

impl BackendRegistration {
    /// The registration of factory `F`.
    pub const fn of<F: BackendFactory>() -> Self {
        Self {
            kind: F::DESCRIPTOR.kind,
            built: Some(Built {
                descriptor: F::DESCRIPTOR,
                config_schema: schema_of::<F>,
                build: build_of::<F>,
            }),
            feature: None,
        }
    }

    /// A kind this build knows of but left out: asking for it says to enable `feature` of
    /// the `orchestrator` crate. A real registration of the same kind replaces it.
    pub const fn absent(kind: &'static str, feature: &'static str) -> Self {
        Self {
            kind,
            built: None,
            feature: Some(feature),
        }
    }

    /// The kind's name.
    pub fn name(&self) -> &'static str {
        self.kind
    }

    /// What the kind is and can do (`None` for an absent kind).
    pub fn descriptor(&self) -> Option<&Descriptor> {
        self.built.as_ref().map(|b| &b.descriptor)
    }

    /// JSON Schema of its configuration table (`None` for an absent kind).
    pub fn config_schema(&self) -> Option<Schema> {
        self.built.map(|b| (b.config_schema)())
    }

    /// Build the instance `instance` from its configuration table (`null`: no table
    /// given; the `kind` key already removed), behind the orchestrator's checks.
    pub fn build(&self, instance: &str, table: &serde_json::Value) -> Result<BackendHandle> {
        let Some(built) = self.built else {
            return Err(Error::UnknownBackend {
                name: self.kind.to_string(),
                available: Vec::new(),
                feature: self.feature.map(str::to_string),
            });
        };
        crate::config::check_instance_name(instance)?;
        (built.build)(instance, table).map(BackendHandle::from)
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
            .field("kind", &self.kind)
            .field("descriptor", &self.descriptor())
            .field("feature", &self.feature)
            .finish()
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
        $crate::raw::inventory::submit!($crate::raw::BackendRegistration::of::<$factory>());
    };
}

inventory::collect!(BackendRegistration);

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

    /// Add a registration. Registering the same backend twice (same name, label and
    /// summary) is harmless, and a real registration replaces an absent one; two different
    /// backends under one name make that name unusable (an error at lookup, never
    /// last-one-wins).
    pub fn register(&mut self, reg: BackendRegistration) -> &mut Self {
        let key = reg.kind;
        match (self.entries.get(key), reg.descriptor()) {
            (Some(existing), Some(d)) => match existing.descriptor() {
                None => {
                    self.entries.insert(key, reg);
                }
                Some(e) if (e.label, e.summary) != (d.label, d.summary) => {
                    self.duplicates.insert(key);
                }
                Some(_) => {}
            },
            (Some(_), None) => {}
            (None, _) => {
                self.entries.insert(key, reg);
            }
        }
        self
    }

    /// Register factory `F` (the explicit form of [`crate::register_backend!`]).
    pub fn register_factory<F: BackendFactory>(&mut self) -> &mut Self {
        self.register(BackendRegistration::of::<F>())
    }

    /// The kinds this registry can build, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(BackendRegistration::name).collect()
    }

    /// The kinds this registry can build or knows were left out, sorted: the names an
    /// `ORCHESTRATOR_<KIND>_<KEY>` variable may use.
    pub fn known_names(&self) -> Vec<&'static str> {
        self.entries.keys().copied().collect()
    }

    /// Every kind this registry can build, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &BackendRegistration> + '_ {
        self.entries.values().filter(|r| r.built.is_some())
    }

    /// The kinds that run `task_type`, sorted.
    pub fn kinds_running(&self, task_type: TaskType) -> Vec<&'static str> {
        self.iter()
            .filter(|r| r.descriptor().is_some_and(|d| d.accepts(task_type)))
            .map(BackendRegistration::name)
            .collect()
    }

    /// The engine option `key`, as the first registered kind that owns it declares it.
    pub fn engine_option(&self, key: &str) -> Option<&crate::descriptor::EngineOption> {
        self.iter()
            .filter_map(BackendRegistration::descriptor)
            .flat_map(|d| d.options.iter())
            .find(|o| o.key == key)
    }

    /// Every engine option key some registered kind owns, sorted, deduplicated.
    pub fn engine_option_keys(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = self
            .iter()
            .filter_map(BackendRegistration::descriptor)
            .flat_map(|d| d.options.iter().map(|o| o.key))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Find a registration by name; an unknown name lists what is available and, for a
    /// kind this build left out, names the feature to enable.
    pub fn get(&self, name: &str) -> Result<&BackendRegistration> {
        if self.duplicates.contains(name) {
            return Err(Error::config(format!(
                "two different backends are registered under the name `{name}`"
            )));
        }
        match self.entries.get(name) {
            Some(r) if r.built.is_some() => Ok(r),
            other => Err(Error::UnknownBackend {
                name: name.to_string(),
                available: self.names().iter().map(|s| s.to_string()).collect(),
                feature: other.and_then(|r| r.feature).map(str::to_string),
            }),
        }
    }

    /// Build instance `instance` of kind `kind` from its configuration table.
    pub fn build(
        &self,
        kind: &str,
        instance: &str,
        config: &serde_json::Value,
    ) -> Result<BackendHandle> {
        self.get(kind)?.build(instance, config)
    }
}
