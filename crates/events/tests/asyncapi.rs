//! docs/asyncapi.yaml against the Rust types: one event of every kind,
//! encoded by the real codec, must have exactly the fields, types and
//! required set the document gives its message, on the channel the document
//! gives it; a field the document calls optional may be left out and one it
//! calls required may not. So an event changed without the document fails here.

use std::collections::BTreeSet;

use hail_events::{AnyEvent, EVENT_NAMES, EventKind, headers, sample};
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/asyncapi.yaml");

fn doc() -> Value {
    serde_norway::from_str(DOC).expect("docs/asyncapi.yaml is YAML")
}

/// Follows `$ref`s within the document.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let path = r
            .strip_prefix("#/")
            .unwrap_or_else(|| panic!("external $ref {r}"));
        schema = path.split('/').fold(doc, |v, key| &v[key]);
        assert!(!schema.is_null(), "$ref {r} points nowhere");
    }
    schema
}

fn types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
        other => panic!("schema without a type: {schema} ({other})"),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` (the event as the codec wrote it) against `schema`.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    let allowed = types(schema);
    let found = json_type(value);
    assert!(
        allowed.iter().any(|t| t == found),
        "{at}: the codec writes {found} ({value}), docs/asyncapi.yaml says {allowed:?}"
    );
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        assert!(
            values.contains(value),
            "{at}: {value} is not in the enum {values:?}"
        );
    }
    match value {
        Value::Object(fields) => {
            let props = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: object schema without properties"));
            let written: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
            let documented: BTreeSet<&str> = props.keys().map(String::as_str).collect();
            assert_eq!(written, documented, "{at}: fields written vs documented");
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().map(|s| s.as_str().unwrap()).collect())
                .unwrap_or_default();
            let not_nullable: BTreeSet<&str> = props
                .iter()
                .filter(|(_, s)| !types(resolve(doc, s)).iter().any(|t| t == "null"))
                .map(|(k, _)| k.as_str())
                .collect();
            assert_eq!(
                required, not_nullable,
                "{at}: required must be the fields that cannot be null"
            );
            for (k, v) in fields {
                check(doc, &props[k], v, &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check(doc, &schema["items"], v, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// The channel whose messages include `name`, and its address.
fn address_of(doc: &Value, name: &str) -> String {
    let channels = doc["channels"].as_object().unwrap();
    let found: Vec<&str> = channels
        .values()
        .filter(|c| c["messages"].get(name).is_some())
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{name} should be on one channel, is on {found:?}"
    );
    found[0].to_string()
}

/// `rides.requested.{city}` → `rides.requested.*`.
fn as_filter(address: &str) -> String {
    address
        .split('.')
        .map(|t| if t.starts_with('{') { "*" } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn every_event_is_documented_as_the_codec_writes_it() {
    let doc = doc();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let events = sample::one_of_each("r-1", "berlin");
    assert_eq!(events.len(), EventKind::ALL.len(), "one sample per kind");
    for event in &events {
        let name = event.name();
        let bytes = event.encode().unwrap();
        let envelope: Value = rmp_serde::from_slice(&bytes).unwrap();
        let message = &doc["components"]["messages"][name];
        assert!(
            message.is_object(),
            "docs/asyncapi.yaml has no message {name}"
        );
        assert_eq!(message["contentType"], headers::MSGPACK);
        let payload = &message["payload"];
        assert_eq!(payload["properties"]["t"]["const"], name);
        assert_eq!(
            payload["properties"]["v"]["const"], envelope["v"],
            "{name}: version"
        );
        check(&doc, payload, &envelope, name);
        assert_eq!(
            as_filter(&address_of(&doc, name)),
            event.kind().subject_pattern(),
            "{name}: channel address"
        );
    }
}

#[test]
fn optional_fields_may_be_left_out_and_required_ones_may_not() {
    let doc = doc();
    for event in sample::one_of_each("r-1", "berlin") {
        let name = event.name();
        let envelope: Value = rmp_serde::from_slice(&event.encode().unwrap()).unwrap();
        let schema = resolve(
            &doc,
            &doc["components"]["messages"][name]["payload"]["properties"]["e"],
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for field in envelope["e"].as_object().unwrap().keys() {
            let mut without = envelope.clone();
            without["e"].as_object_mut().unwrap().remove(field);
            let bytes = rmp_serde::to_vec_named(&without).unwrap();
            let decoded = AnyEvent::decode(&event.subject(), &bytes);
            if required.contains(&field.as_str()) {
                assert!(
                    decoded.is_err(),
                    "{name}.{field} is documented required but decodes without it"
                );
            } else {
                assert!(
                    decoded.is_ok(),
                    "{name}.{field} is documented optional but: {decoded:?}"
                );
            }
        }
    }
}

#[test]
fn the_document_has_no_message_the_code_does_not_have() {
    let doc = doc();
    let documented: BTreeSet<&str> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut known: BTreeSet<&str> = EVENT_NAMES.into_iter().collect();
    known.insert("DeadLetter");
    assert_eq!(documented, known);
}

#[test]
fn the_headers_are_the_codes_headers() {
    let doc = doc();
    let h = &doc["components"]["schemas"]["Headers"]["properties"];
    for name in [
        headers::MSG_ID,
        headers::EVENT,
        headers::RIDE_ID,
        headers::TRACEPARENT,
        headers::CONTENT_TYPE,
        headers::REPLAY_FOR,
        headers::REPLAY_OF,
    ] {
        assert!(h.get(name).is_some(), "Headers lacks {name}");
    }
    let dlq: BTreeSet<&str> = doc["components"]["schemas"]["DeadLetterHeaders"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    use headers::dlq::*;
    let code: BTreeSet<&str> = [
        REASON,
        REASON_KIND,
        SERVICE,
        STREAM,
        STREAM_SEQ,
        SUBJECT,
        DELIVERIES,
    ]
    .into();
    assert_eq!(dlq, code);
    // The headers of a real event are all documented.
    let e = sample::ride_requested("r-1", "berlin");
    for (name, _) in headers::for_event(&e).iter() {
        let name: &str = name.as_ref();
        assert!(h.get(name).is_some(), "Headers lacks {name}");
    }
}
