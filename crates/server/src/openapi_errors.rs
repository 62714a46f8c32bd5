//! The error answers every operation of the OpenAPI document can give, added to each
//! operation that does not describe them itself: 401/403 where a token is needed, 404 for
//! ids in the path, 400 for malformed path, query or header values and bodies, 415/422
//! for JSON bodies. Checked against a running server by crates/cli/tests/openapi_fuzz.rs;
//! the tests here also check that the document names every route `app()` serves.

use serde_json::{json, Map, Value};

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// An error answer: our own `{"error": ...}` JSON, or the plain text the HTTP framework
/// sends for a path or body it cannot parse before our code runs.
fn error(description: &str) -> Value {
    json!({"description": description, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
        "text/plain": {"schema": {"type": "string"}}
    }})
}

/// Adds the common error answers to every operation in `doc["paths"]`, leaving answers an
/// operation already describes as they are.
pub fn add(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let path_params = item
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        for method in METHODS {
            let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                continue;
            };
            let extra = wanted(op, path_params);
            let responses = op
                .entry("responses")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(responses) = responses.as_object_mut() {
                for (code, description) in extra {
                    responses.entry(code).or_insert_with(|| error(description));
                }
            }
        }
    }
}

/// The error answers `op` can give that it may not describe yet.
fn wanted(op: &Map<String, Value>, path_params: bool) -> Vec<(&'static str, &'static str)> {
    let mut codes = Vec::new();
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    if secured {
        codes.push(("401", "no token, or one the server does not know"));
        codes.push(("403", "the token's role may not do this"));
    }
    let op_params = op.get("parameters").and_then(Value::as_array);
    let query = |name: Option<&str>| {
        op_params.is_some_and(|p| {
            p.iter()
                .any(|p| p["in"] == "query" && name.is_none_or(|n| p["name"].as_str() == Some(n)))
        })
    };
    let body = op.get("requestBody");
    if path_params || op_params.is_some_and(|p| !p.is_empty()) || body.is_some() {
        codes.push((
            "400",
            "a malformed path, query or header value or request body; the reason says which",
        ));
    }
    // A flight named in the query, like one in the path, must be one of yours; exports
    // without one need a processed flight.
    if path_params || query(Some("flight")) {
        codes.push(("404", "not found in your organisation"));
    }
    if query(None) {
        codes.push((
            "422",
            "a query value outside the values it may take (e.g. an unknown review state)",
        ));
    }
    if body.is_some_and(|b| b.pointer("/content/application~1json").is_some()) {
        codes.push(("413", "the request body is larger than the server accepts"));
        codes.push((
            "415",
            "the body is not sent as Content-Type: application/json",
        ));
        codes.push((
            "422",
            "the JSON does not have the members this operation needs",
        ));
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secured_operation_names_its_errors_and_keeps_its_own() {
        let mut doc = json!({"paths": {
            "/a/{id}": {"parameters": [{"name": "id", "in": "path"}], "put": {
                "security": [{"bearer": []}],
                "requestBody": {"content": {"application/json": {}}},
                "responses": {"200": {"description": "ok"}, "404": {"description": "mine"}}}},
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "ok"}}}}
        }});
        add(&mut doc);
        let put = &doc["paths"]["/a/{id}"]["put"]["responses"];
        for code in ["200", "400", "401", "403", "404", "413", "415", "422"] {
            assert!(put.get(code).is_some(), "{code} missing: {put}");
        }
        assert_eq!(put["404"]["description"], "mine");
        let health = doc["paths"]["/healthz"]["get"]["responses"]
            .as_object()
            .unwrap();
        assert_eq!(health.keys().collect::<Vec<_>>(), ["200"]);
    }

    /// Every `.route("PATH", ...)` of `app()` in lib.rs with the methods it answers.
    fn routes() -> Vec<(String, Vec<&'static str>)> {
        let src = include_str!("lib.rs");
        let start = src.find("pub fn app(").expect("lib.rs has app()");
        let end = start + src[start..].find("\n}\n").expect("app() ends");
        let body = &src[start..end];
        let nested = body
            .find(".nest(\"/api/v1\"")
            .expect("the API is nested under /api/v1");
        let mut out = Vec::new();
        let parts: Vec<(usize, &str)> = body.match_indices(".route(").collect();
        for (i, (at, _)) in parts.iter().enumerate() {
            let next = parts.get(i + 1).map_or(body.len(), |(n, _)| *n);
            let text = &body[*at..next];
            let path = text.split('"').nth(1).expect("a route path literal");
            let prefix = if *at < nested { "/api/v1" } else { "" };
            let methods = METHODS
                .into_iter()
                .filter(|m| text.contains(&format!("{m}(")))
                .collect();
            out.push((format!("{prefix}{path}"), methods));
        }
        out
    }

    #[test]
    fn the_document_describes_every_route_and_method() {
        let doc = crate::openapi::document();
        let paths = doc["paths"].as_object().unwrap();
        let routes = routes();
        assert!(routes.len() > 30, "{routes:?}");
        let mut missing = Vec::new();
        for (route, methods) in routes {
            assert!(!methods.is_empty(), "{route}: no methods found");
            // The tile route takes `{y}.png` as its last segment.
            let item = paths
                .get(&route)
                .or_else(|| paths.get(&format!("{route}.png")));
            for m in methods {
                if item.and_then(|i| i.get(m)).is_none() {
                    missing.push(format!("{m} {route}"));
                }
            }
        }
        assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
    }
}
