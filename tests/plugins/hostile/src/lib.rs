//! A plugin that misbehaves when a company's `name` asks it to, so the tests can show
//! that the host stops it, reports a clear error and keeps serving.

use crm_plugin_sdk::{HookError, Plugin, Record, SaveContext, Value, records};

struct Hostile;

impl Plugin for Hostile {
    fn before_save(_context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        let name = record.get("name").and_then(Value::as_str).unwrap_or("");
        match name {
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "panic" => panic!("the hostile plugin panics on purpose"),
            "recurse" => Ok(Some(deep(0))),
            "huge" => {
                let mut patch = Record::new();
                patch.insert("description".into(), Value::String("x".repeat(8 << 20)));
                Ok(Some(patch))
            }
            "flood" => {
                for _ in 0..1_000_000 {
                    crm_plugin_sdk::log::debug("flood");
                }
                Ok(None)
            }
            // Reads a record of an object outside its grants (companies) and one inside
            // (deals) and reports what it got in the description.
            n if n.starts_with("peek:") => {
                let (object, id) = n["peek:".len()..].split_once('/').unwrap_or(("", ""));
                let seen = match records::get(object, id) {
                    Ok(r) => format!(
                        "read {}",
                        r.get("name").and_then(Value::as_str).unwrap_or("?")
                    ),
                    Err(e) => format!("refused: {e}"),
                };
                let mut patch = Record::new();
                patch.insert("description".into(), Value::String(seen));
                Ok(Some(patch))
            }
            _ => Ok(None),
        }
    }
}

/// Recursion without end, on purpose: the sandbox must stop it.
#[allow(unconditional_recursion)]
fn deep(n: u64) -> Record {
    let mut r = deep(std::hint::black_box(n + 1));
    r.insert("n".into(), Value::from(n));
    r
}

crm_plugin_sdk::export_plugin!(Hostile);
