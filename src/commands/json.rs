//! `--json`: every command prints exactly one JSON object on stdout, its
//! report with `"format_version": 1` and `"ok"` added (documented in
//! `docs/formats.md`, "JSON output"; one JSON Schema per command in
//! `schemas/`). When a command fails before it has a report, `main` prints
//! the error object instead ([`print_error`]); when it fails after (a
//! snapshot whose push failed, a drill that failed), its report carries
//! `"ok": false` and the final error under `error` (unless the report has
//! its own `error` field, as a drill record does).

use crate::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};

/// The version of every `--json` document; raised when a field changes
/// meaning or disappears (adding a field does not raise it).
pub const FORMAT_VERSION: u32 = 1;

/// Whether this process has printed its JSON document already.
static PRINTED: AtomicBool = AtomicBool::new(false);

/// The final error as the JSON documents carry it.
pub fn error_object(e: &Error) -> serde_json::Value {
    serde_json::json!({
        "kind": e.kind,
        "message": e.message,
        "hint": e.hint,
        "exit_code": e.exit_code(),
    })
}

/// Print `value` as this command's document: an object gets
/// `format_version` and `ok` (kept if it has its own `ok`), and the final
/// error under `error` unless it has its own; anything else (an array) is
/// wrapped as `{"items": ...}`, which no command does today.
pub fn print<T: serde::Serialize>(value: &T, ok: bool, error: Option<&Error>) {
    let mut value = serde_json::to_value(value).expect("results serialise");
    add_bytes(&mut value);
    let mut doc = match value {
        serde_json::Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("items".into(), other);
            map
        }
    };
    doc.insert("format_version".into(), FORMAT_VERSION.into());
    doc.entry("ok").or_insert(ok.into());
    if let Some(e) = error {
        doc.insert("ok".into(), false.into());
        doc.entry("error").or_insert(error_object(e));
    }
    emit(&serde_json::Value::Object(doc));
}

/// The error document, when the command printed nothing yet:
/// `{"format_version": 1, "ok": false, "error": {kind, message, hint,
/// exit_code}}`.
pub fn print_error(e: &Error) {
    if PRINTED.load(Ordering::Relaxed) {
        return;
    }
    emit(&serde_json::json!({
        "format_version": FORMAT_VERSION,
        "ok": false,
        "error": error_object(e),
    }));
}

/// Sizes are `bytes` in every document: an object that names a size
/// `size` (a listed snapshot, a remote asset) gets `bytes` beside it, the
/// old name kept for the scripts that read it.
fn add_bytes(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(size) = map.get("size").filter(|s| s.is_u64()).cloned() {
                map.entry("bytes").or_insert(size);
            }
            map.values_mut().for_each(add_bytes);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_bytes),
        _ => {}
    }
}

fn emit(doc: &serde_json::Value) {
    PRINTED.store(true, Ordering::Relaxed);
    outln!(
        "{}",
        serde_json::to_string_pretty(doc).expect("results serialise")
    );
}
