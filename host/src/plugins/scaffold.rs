//! `crm plugin new NAME`: a plugin crate that builds, passes its test and packs out
//! of the box, for plugin authors to start from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The SDK this `crm` was built with; `--sdk` points elsewhere.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk")
}

/// Writes the crate for plugin `id` into `dir` (which must not exist yet).
pub fn new_plugin(id: &str, dir: &Path, sdk: &Path) -> anyhow::Result<()> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "a plugin id starts with a lower-case letter and holds only a-z, 0-9 and - (at most 63)"
        );
    }
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("the plugin SDK is not at {} (pass --sdk)", sdk.display()))?;
    let type_name: String = id
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        (
            "Cargo.toml",
            CARGO_TOML.replace("{sdk}", &sdk.display().to_string()),
        ),
        (
            "plugin.toml",
            PLUGIN_TOML.replace("{api}", super::manifest::CURRENT_API),
        ),
        ("src/lib.rs", LIB_RS.replace("{Type}", &type_name)),
        (".gitignore", "/target\n*.crmplugin\n".to_string()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text.replace("{id}", id))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

const CARGO_TOML: &str = r#"[package]
name = "{id}"
version = "0.1.0"
edition = "2024"
publish = false

# An rlib, so `cargo test` runs natively; `crm plugin pack` builds the component
# (a cdylib for wasm32-wasip2).
[lib]
crate-type = ["rlib"]

[dependencies]
crm-plugin-sdk = { path = "{sdk}" }

# Its own workspace, wherever it is created.
[workspace]

[profile.release]
opt-level = "s"
lto = true
strip = true
"#;

const PLUGIN_TOML: &str = r#"# What the CRM reads when an admin installs the plugin (docs/plugins.md).
id = "{id}"
name = "{id}"
version = "0.1.0"
# The crm:plugin WIT version this plugin is built against (the SDK's).
api = "{api}"
description = "Trims names and refuses a contact without a way to reach it."

[capabilities]
# Objects the plugin may read (records::get, records::list) and write (records::create,
# records::update, from after-save); the rest as needed.
read = []
write = []
kv = false
notify = false
# jobs = true                    # jobs::schedule_in / run_job
# documents = true               # documents::list / get / read (the document library)
# routes = true                  # handle() under /api/v1/x/{id}/...
# public_routes = ["/form"]      # handle() under /public/{id}/form... without sign-in

[hooks]
# Objects whose creates and updates pass through before_save.
before_save = ["contacts"]
# Objects whose committed changes reach after_save.
after_save = []

# [limits]                       # optional: hook_ms, route_ms, background_ms, memory_mib
"#;

const LIB_RS: &str = r#"//! {id}: a CRM plugin. `crm plugin pack .` builds its package; docs/plugins.md in the
//! CRM's repository walks from here to a plugin enabled in a department.

use crm_plugin_sdk::{HookError, Plugin, Record, SaveContext, Value, invalid};

pub struct {Type};

impl Plugin for {Type} {
    /// Trims the first and last name, and refuses a contact with neither an email
    /// nor a phone number.
    fn before_save(_context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        let has = |field: &str| {
            record
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.trim().is_empty())
        };
        if !has("email") && !has("phone") {
            return Err(invalid("email", "give an email or a phone number"));
        }
        let mut patch = Record::new();
        for field in ["first_name", "last_name"] {
            if let Some(name) = record.get(field).and_then(Value::as_str)
                && name.trim() != name
            {
                patch.insert(field.into(), Value::from(name.trim()));
            }
        }
        Ok((!patch.is_empty()).then_some(patch))
    }
}

crm_plugin_sdk::export_plugin!({Type});

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> SaveContext {
        SaveContext {
            object: "contacts".into(),
            operation: "create".into(),
            actor: "user".into(),
            department: None,
        }
    }

    fn record(value: Value) -> Record {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn names_are_trimmed() {
        let patch = {Type}::before_save(
            &context(),
            &record(crm_plugin_sdk::json!({"last_name": " Karimi ", "email": "l@acme.example"})),
        );
        assert_eq!(patch.unwrap().unwrap()["last_name"], "Karimi");
    }

    #[test]
    fn a_contact_needs_a_way_to_reach_it() {
        let refused = {Type}::before_save(&context(), &record(crm_plugin_sdk::json!({"last_name": "Karimi"})));
        assert!(matches!(refused, Err(HookError::Invalid(errors)) if errors[0].field == "email"));
    }
}
"#;
