//! Every enabled feature's backend is linked into the registry.

/// The kinds each enabled feature of the facade compiles in.
fn enabled() -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if cfg!(feature = "bullmq") {
        kinds.push("bullmq");
    }
    if cfg!(feature = "temporal") {
        kinds.push("temporal");
    }
    if cfg!(feature = "n8n") {
        kinds.push("n8n");
    }
    if cfg!(feature = "testkit") {
        kinds.extend(["memory-bullmq", "memory-temporal", "memory-n8n"]);
    }
    kinds
}

#[test]
fn every_enabled_backend_is_registered() {
    let registry = orchestrator::Registry::global();
    let names = registry.names();
    assert_eq!(names.len(), enabled().len(), "{names:?}");
    for expected in enabled() {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn disabled_backends_name_their_feature() {
    // The facade registers each kind whose feature is off as absent; a registry with only
    // that entry answers as a build without `temporal` does.
    let mut registry = orchestrator::Registry::new();
    registry.register(orchestrator::raw::BackendRegistration::absent(
        "temporal", "temporal",
    ));
    let err = registry.get("temporal").expect_err("absent");
    assert!(
        err.to_string().contains("enable the `temporal` feature"),
        "{err}"
    );
    let err = registry.get("nonsense").expect_err("unknown");
    assert_eq!(err.kind(), orchestrator::ErrorKind::NoBackend);
}

/// Routing a type to a backend kind that does not run it fails when the orchestrator is
/// built, naming the type and the backend; building does no I/O (nothing listens on the
/// configured ports), so nothing is written anywhere.
#[cfg(all(feature = "bullmq", feature = "temporal"))]
#[test]
fn routes_to_backends_that_do_not_run_the_type_fail_at_build() {
    let names = orchestrator::Registry::global().names();
    for (route, backend, ty) in [
        ("ORCHESTRATOR_ROUTE_COMPLEX", "bullmq", "COMPLEX"),
        ("ORCHESTRATOR_ROUTE_INTEGRATION", "temporal", "INTEGRATION"),
        ("ORCHESTRATOR_ROUTE_SIMPLE", "memory-temporal", "SIMPLE"),
    ] {
        let vars = [
            (route, backend),
            ("ORCHESTRATOR_BULLMQ_URL", "redis://127.0.0.1:1"),
            ("ORCHESTRATOR_TEMPORAL_URL", "http://127.0.0.1:1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let config = orchestrator::OrchestratorConfig::from_vars(vars, &names).expect("config");
        let e = orchestrator::Orchestrator::from_config(config).expect_err(route);
        assert_eq!(e.kind(), orchestrator::ErrorKind::InvalidConfig, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(ty) && msg.contains(&format!("`{backend}`")),
            "{route}: {msg}"
        );
    }
}

/// Shown by a plain `cargo test` (default members only) so it never looks like the
/// real-engine suites ran.
#[test]
#[ignore = "the real-engine suites (Redis, Temporal, n8n, Node BullMQ) run under scripts/test.sh: cargo test --workspace --all-features with ORCH_TEST_REQUIRE=1"]
fn real_engine_suites_run_under_scripts_test_sh() {
    panic!("a notice, not a test: run scripts/test.sh for the real-engine suites");
}
