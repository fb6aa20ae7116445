//! Every enabled feature's backend is linked into the registry.

#[test]
fn every_enabled_backend_is_registered() {
    let registry = orchestrator::Registry::global();
    let names = registry.names();
    for expected in orchestrator::compiled_backends() {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn disabled_backends_name_their_feature() {
    let registry = orchestrator::Registry::new();
    let err = registry.get("temporal").expect_err("empty registry");
    assert!(
        err.to_string().contains("enable the `temporal` feature"),
        "{err}"
    );
    let err = registry.get("nonsense").expect_err("unknown");
    assert_eq!(err.kind(), orchestrator::ErrorKind::NoBackend);
}
