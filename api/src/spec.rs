//! The OpenAPI document as served and committed: poem-openapi's, with what
//! the request parsers enforce but the derive does not write down. For every
//! schema a request body uses (transitively):
//! - `additionalProperties: false` — request objects deny unknown fields;
//! - optional properties are `nullable` — a `null` reads as "absent";
//! - unsigned integers (`uint32`, `uint64`) have `minimum: 0`.
//!
//! Response schemas are left open, so that adding a field to a response does
//! not break generated clients.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// Applies the rules above to a rendered document; returns it pretty-printed.
pub fn tighten(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else { return spec.to_owned() };
    let mut names = BTreeSet::new();
    let mut pending: Vec<String> = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for item in paths.values() {
            for op in item.as_object().into_iter().flat_map(|o| o.values()) {
                collect_refs(&op["requestBody"], &mut pending);
            }
        }
    }
    while let Some(name) = pending.pop() {
        if names.insert(name.clone()) {
            collect_refs(&doc["components"]["schemas"][&name], &mut pending);
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for name in &names {
            if let Some(Value::Object(schema)) = schemas.get_mut(name) {
                tighten_object(schema);
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_owned())
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str)
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_owned());
            }
            o.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn tighten_object(schema: &mut Map<String, Value>) {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return;
    }
    if !schema.contains_key("additionalProperties") {
        schema.insert("additionalProperties".into(), Value::Bool(false));
    }
    let required: BTreeSet<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let Some(Value::Object(props)) = schema.get_mut("properties") else { return };
    for (name, prop) in props.iter_mut() {
        unsigned_minimum(prop);
        if !required.contains(name) {
            *prop = nullable(std::mem::take(prop));
        }
    }
}

fn unsigned_minimum(prop: &mut Value) {
    let targets: Vec<&mut Value> = match prop {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("array") => {
            o.get_mut("items").into_iter().collect()
        }
        other => vec![other],
    };
    for t in targets {
        let Value::Object(o) = t else { continue };
        let max = match o.get("format").and_then(Value::as_str) {
            Some("uint8") => u64::from(u8::MAX),
            Some("uint16") => u64::from(u16::MAX),
            Some("uint32") => u64::from(u32::MAX),
            Some("uint64") => u64::MAX,
            _ => continue,
        };
        o.entry("minimum").or_insert(json!(0));
        o.entry("maximum").or_insert(json!(max));
    }
}

/// A `$ref` cannot carry siblings in OpenAPI 3.0, so it is wrapped.
fn nullable(prop: Value) -> Value {
    match prop {
        Value::Object(mut o) if o.contains_key("$ref") => {
            json!({ "allOf": [Value::Object(std::mem::take(&mut o))], "nullable": true })
        }
        Value::Object(mut o) => {
            o.insert("nullable".into(), Value::Bool(true));
            Value::Object(o)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tightens_request_schemas_only() {
        let spec = json!({
            "paths": {"/x": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resp"}}}}}
            }}},
            "components": {"schemas": {
                "Req": {"type": "object", "required": ["a"], "properties": {
                    "a": {"type": "string"}, "n": {"type": "integer", "format": "uint32"},
                    "k": {"$ref": "#/components/schemas/Kind"}}},
                "Kind": {"type": "string", "enum": ["x"]},
                "Resp": {"type": "object", "properties": {"b": {"type": "string"}}}
            }}
        });
        let out: Value = serde_json::from_str(&tighten(&spec.to_string())).unwrap();
        let req = &out["components"]["schemas"]["Req"];
        assert_eq!(req["additionalProperties"], false);
        assert_eq!(req["properties"]["a"].get("nullable"), None);
        assert_eq!(req["properties"]["n"]["nullable"], true);
        assert_eq!(req["properties"]["n"]["minimum"], 0);
        assert_eq!(req["properties"]["k"]["allOf"][0]["$ref"], "#/components/schemas/Kind");
        assert_eq!(out["components"]["schemas"]["Resp"].get("additionalProperties"), None);
    }
}
