//! `/openapi.json`: an OpenAPI 3.1 document whose schemas are the same schemars schemas the
//! rest of the orchestrator publishes (`orchestrator schema`), so there is one source of
//! truth. The paths are written here, beside the routes; a test checks that both list the
//! same routes.

use orchestrator_core::{Counts, Page, TaskOptions, TaskStatus, WaitOutcome};
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::error::Problem;
use crate::routes::{Bulk, NewTask};

/// Every route as `(method, path)`, in the document's order.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/tasks"),
    ("get", "/v1/tasks"),
    ("post", "/v1/tasks:bulk"),
    ("get", "/v1/tasks/{id}"),
    ("delete", "/v1/tasks/{id}"),
    ("post", "/v1/tasks/{id}/wait"),
    ("get", "/v1/counts"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn answer(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn query(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
}

/// The document.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let named = |name: &str, schema: schemars::Schema| (name.to_string(), schema.to_value());
    let roots = [
        named("NewTask", generator.subschema_for::<NewTask>()),
        named("Bulk", generator.subschema_for::<Bulk>()),
        named("TaskOptions", generator.subschema_for::<TaskOptions>()),
        named("TaskStatus", generator.subschema_for::<TaskStatus>()),
        named("WaitOutcome", generator.subschema_for::<WaitOutcome>()),
        named("Page", generator.subschema_for::<Page>()),
        named("Counts", generator.subschema_for::<Counts>()),
        named("Problem", generator.subschema_for::<Problem>()),
    ];
    let mut schemas = generator.take_definitions(true);
    // A type schemars inlines (no `$ref`) still gets its own component.
    for (name, schema) in roots {
        if schema.get("$ref").is_none() {
            schemas.insert(name, schema);
        }
    }
    let problem = json!({
        "description": "an RFC 9457 problem (see `kind`)",
        "content": { "application/problem+json": { "schema": reference("Problem") } }
    });
    let id = json!({ "name": "id", "in": "path", "required": true, "description": "a task id, percent-encoded", "schema": { "type": "string" } });
    let filters = [
        query("backend", "only this backend instance"),
        query("type", "SIMPLE, COMPLEX or INTEGRATION"),
        query("state", "a unified state (PENDING, RUNNING, …)"),
        query("name", "only tasks of this name"),
        query("since", "created at or after (epoch ms or RFC 3339)"),
        query("until", "created before (epoch ms or RFC 3339)"),
        query("limit", "tasks per page (1 to 1000, default 100)"),
        query("cursor", "the `next` of the previous page"),
        query("timeout", "how long each instance may take (default 5s)"),
    ];
    let body = |name: &str| json!({ "required": true, "content": { "application/json": { "schema": reference(name) } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "orchestrator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One task API over BullMQ-compatible queues, Temporal and n8n."
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/v1/tasks": {
                "post": {
                    "summary": "Schedule a task",
                    "requestBody": body("NewTask"),
                    "responses": {
                        "201": answer("scheduled", json!({ "type": "object", "properties": { "taskId": { "type": "string" } }, "required": ["taskId"] })),
                        "default": problem
                    }
                },
                "get": {
                    "summary": "List tasks across instances, newest first",
                    "parameters": filters,
                    "responses": { "200": answer("a page", reference("Page")), "default": problem }
                }
            },
            "/v1/tasks:bulk": {
                "post": {
                    "summary": "Schedule many tasks: one result per task, in order",
                    "requestBody": body("Bulk"),
                    "responses": {
                        "200": answer("one result per task", json!({ "type": "object", "properties": { "results": { "type": "array", "items": { "type": "object", "properties": { "taskId": { "type": "string" }, "error": reference("Problem") } } } } })),
                        "default": problem
                    }
                }
            },
            "/v1/tasks/{id}": {
                "get": {
                    "summary": "A task's status",
                    "parameters": [id],
                    "responses": { "200": answer("the status", reference("TaskStatus")), "default": problem }
                },
                "delete": {
                    "summary": "Cancel a task (200 for every outcome, 404 when not found)",
                    "parameters": [id],
                    "responses": {
                        "200": answer("what the cancel did", json!({ "type": "object", "properties": { "taskId": { "type": "string" }, "outcome": { "type": "string" }, "cancelled": { "type": "boolean" } } })),
                        "404": answer("no such task", json!({ "type": "object" })),
                        "default": problem
                    }
                }
            },
            "/v1/tasks/{id}/wait": {
                "post": {
                    "summary": "Wait until the task finishes or the timeout passes",
                    "parameters": [id, query("timeout", "how long to wait (default 30s, at most the server's max_wait)")],
                    "responses": { "200": answer("how the wait ended", reference("WaitOutcome")), "default": problem }
                }
            },
            "/v1/counts": {
                "get": {
                    "summary": "Tasks per instance and unified state",
                    "parameters": [filters[0].clone(), filters[1].clone(), filters[3].clone(), filters[8].clone()],
                    "responses": { "200": answer("the counts", reference("Counts")), "default": problem }
                }
            },
            "/healthz": {
                "get": { "summary": "Liveness", "security": [], "responses": { "200": answer("serving", json!({ "type": "object" })) } }
            },
            "/metrics": {
                "get": {
                    "summary": "The metrics (Prometheus text format; see orchestrator_core::instruments)",
                    "responses": {
                        "200": { "description": "the metrics", "content": { "text/plain": { "schema": { "type": "string" } } } },
                        "404": { "description": "metrics are not enabled" }
                    }
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Every instance's health (503 unless all are ok)",
                    "security": [],
                    "responses": {
                        "200": answer("all ok", json!({ "type": "object", "properties": { "backends": { "type": "array", "items": { "type": "object", "properties": { "backend": { "type": "string" }, "ok": { "type": "boolean" } } } } } })),
                        "503": answer("one is not", json!({ "type": "object" }))
                    }
                }
            },
            "/openapi.json": {
                "get": { "summary": "This document", "responses": { "200": answer("OpenAPI 3.1", json!({ "type": "object" })) } }
            }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_and_resolves_every_reference() {
        let doc = document();
        let mut listed: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                listed.push((method.clone(), path.clone()));
            }
        }
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        listed.sort();
        routes.sort();
        assert_eq!(listed, routes);
        // Every `$ref` points at a component that exists.
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = part.split('"').next().expect("ref");
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target}"));
            assert!(schemas.contains_key(name), "{target} missing");
        }
        for name in [
            "NewTask",
            "TaskOptions",
            "TaskStatus",
            "Page",
            "Counts",
            "Problem",
            "WaitOutcome",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }
}
