//! A plugin that misbehaves when a company's `name` asks it to, so the tests can show
//! that the host stops it, reports a clear error and keeps serving.

use crm_plugin_sdk::{Committed, HookError, Plugin, Record, SaveContext, Value, kv, records};

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
                    // Reserved, not written: the limit is hit by growing memory, not
                    // by the time it takes to touch every page.
                    hoard.push(std::hint::black_box(Vec::with_capacity(1 << 20)));
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
            // Tries to write a record inside before-save, which the host refuses.
            "write-in-before-save" => {
                let mut deal = Record::new();
                deal.insert("name".into(), Value::from("sneaky"));
                let outcome = match records::create("deals", &deal) {
                    Ok(_) => "created".to_string(),
                    Err(e) => format!("refused: {e}"),
                };
                Ok(Some(description(outcome)))
            }
            // Lets the after-save hook accept what it refused so far.
            "forgive" => {
                kv::set("forgive", "yes").map_err(HookError::Failed)?;
                Ok(None)
            }
            // Reads a kv key (its own store only) into the description.
            n if n.starts_with("kv-peek:") => {
                let value = kv::get(&n["kv-peek:".len()..]).map_err(HookError::Failed)?;
                Ok(Some(description(format!(
                    "kv: {}",
                    value.as_deref().unwrap_or("none")
                ))))
            }
            _ => Ok(None),
        }
    }

    /// Fails for a company named `after-save-fails` until a company named `forgive`
    /// was saved; otherwise counts deliveries per record in kv.
    fn after_save(change: &Committed) -> Result<(), String> {
        let name = change
            .record
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name == "after-save-fails" && kv::get("forgive")?.is_none() {
            return Err("asked to fail".into());
        }
        let key = format!("seen/{}", change.record_id);
        let seen: u64 = kv::get_json(&key)?.unwrap_or(0);
        kv::set_json(&key, &(seen + 1))
    }
}

fn description(text: String) -> Record {
    let mut patch = Record::new();
    patch.insert("description".into(), Value::String(text));
    patch
}

/// Recursion without end, on purpose: the sandbox must stop it.
#[allow(unconditional_recursion)]
fn deep(n: u64) -> Record {
    let mut r = deep(std::hint::black_box(n + 1));
    r.insert("n".into(), Value::from(n));
    r
}

crm_plugin_sdk::export_plugin!(Hostile);
