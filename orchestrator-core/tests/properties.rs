//! Property tests of the parsers every caller's input goes through: any input gives a
//! value or a typed error, never a panic or a stack overflow.

use orchestrator_core::{ErrorKind, ScheduleRequest, TaskId, TaskOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("priority".to_string()),
                    Just("attempts".to_string()),
                    Just("delay".to_string()),
                    Just("backoff".to_string()),
                    Just("jobId".to_string()),
                    Just("taskType".to_string()),
                    Just("temporal".to_string()),
                    Just("n8n".to_string()),
                    Just("deduplication".to_string()),
                    Just("removeOnComplete".to_string()),
                    Just("type".to_string()),
                    Just("ttl".to_string()),
                    "[a-zA-Z]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any string parses to a task id or a typed error; a parsed id formats back to
    /// itself.
    #[test]
    fn task_ids_parse_or_fail_typed(text in ".{0,80}") {
        match text.parse::<TaskId>() {
            Ok(id) => {
                let again: TaskId = id.to_string().parse().expect("formatted id parses");
                prop_assert_eq!(again, id);
            }
            Err(e) => prop_assert_eq!(orchestrator_core::Error::from(e).kind(), ErrorKind::InvalidTaskId),
        }
    }

    /// Ids made of a backend name and a printable native part are valid, and round-trip.
    #[test]
    fn built_task_ids_round_trip(backend in "[a-z][a-z0-9-]{0,20}", native in "[ -~]{1,60}") {
        let id = TaskId::new(&backend, &native);
        prop_assert!(id.is_ok(), "{backend}:{native} refused: {id:?}");
        let id = id.expect("checked above");
        let parsed: TaskId = id.to_string().parse().expect("parses");
        prop_assert_eq!(parsed.backend(), backend.as_str());
        prop_assert_eq!(parsed.native(), native.as_str());
    }

    /// Any JSON object gives options or a typed error; options that validate schedule
    /// requests that validate or fail typed.
    #[test]
    fn options_parse_or_fail_typed(v in json_value()) {
        match TaskOptions::from_json(v) {
            Ok(o) => {
                if let Err(e) = ScheduleRequest::new("q", json!({}), o) {
                    prop_assert!(matches!(e.kind(), ErrorKind::InvalidInput), "{e}");
                }
            }
            Err(e) => prop_assert_eq!(e.field.as_str(), "options"),
        }
    }

    /// Any JSON payload is accepted or refused with a typed error.
    #[test]
    fn payloads_are_accepted_or_refused_typed(v in json_value()) {
        if let Err(e) = ScheduleRequest::new("q", v, TaskOptions::simple()) {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }
}

/// A value nested 10,000 deep (built in code: the JSON parser would refuse it) as a payload
/// and as options: a typed error, not a stack overflow, on a normal test thread.
fn nested(levels: usize) -> Value {
    let mut deep = json!(1);
    for _ in 0..levels {
        deep = Value::Array(vec![deep]);
    }
    deep
}

#[test]
fn a_payload_nested_10_000_deep_is_refused_not_a_stack_overflow() {
    let deep = nested(10_000);
    let e = ScheduleRequest::new("q", &deep, TaskOptions::simple()).expect_err("too deep");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("128"), "{e}");
    orchestrator_core::raw::validate::drop_deep(deep);
    // Built by hand: `json!` would copy the deep value recursively.
    let mut temporal = serde_json::Map::new();
    temporal.insert("workflowType".into(), json!("w"));
    temporal.insert("workflowArgs".into(), Value::Array(vec![nested(10_000)]));
    let mut options = serde_json::Map::new();
    options.insert("temporal".into(), Value::Object(temporal));
    let options = Value::Object(options);
    let e = TaskOptions::from_json(options).expect_err("too deep");
    assert_eq!(e.field, "options");
    // An engine option set in code, as deep: refused by the request, dropped without
    // recursion.
    let mut block = serde_json::Map::new();
    block.insert("workflowArgs".into(), Value::Array(vec![nested(10_000)]));
    let e = ScheduleRequest::new(
        "q",
        json!({}),
        TaskOptions::simple().engine_option("temporal", Value::Object(block)),
    )
    .expect_err("too deep");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
