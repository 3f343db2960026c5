//! # crm-plugin-sdk
//!
//! Write a CRM plugin as a WebAssembly component (`wasm32-wasip2`) against the WIT
//! package `crm:plugin@0.1.0` in `wit/`. Implement [`Plugin`] for a type (every hook
//! has a default that lets the write through) and export it with
//! [`export_plugin!`]:
//!
//! ```no_run
//! use crm_plugin_sdk::{Plugin, Record, SaveContext, HookError, invalid};
//!
//! struct NoShouting;
//!
//! impl Plugin for NoShouting {
//!     fn before_save(_ctx: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
//!         match record.get("name").and_then(|v| v.as_str()) {
//!             Some(name) if name.len() > 3 && name == name.to_uppercase() => {
//!                 Err(invalid("name", "please do not shout"))
//!             }
//!             _ => Ok(None),
//!         }
//!     }
//! }
//!
//! crm_plugin_sdk::export_plugin!(NoShouting);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm` file is
//! already a component. `docs/plugins.md` walks from an empty crate to a plugin
//! enabled in a department.

/// The raw bindings generated from the WIT package (for what the typed API below does
/// not cover yet).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/crm-plugin-0.1.0",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "crm_plugin_sdk::bindings",
    });
}

pub use bindings::crm::plugin::types::{FieldError, HookError, SaveContext};
pub use serde_json::{self, Map, Value, json};

/// A record's fields and envelope (`id`, `object`, `version`, `owner`, `department`).
pub type Record = Map<String, Value>;

/// What a plugin does. Every method has a default, so a plugin implements only what
/// it needs. A fresh instance serves each call: keep no state in statics.
pub trait Plugin {
    /// Before a create or update of a subscribed object is written. `Ok(None)` lets
    /// it through, `Ok(Some(patch))` sets the patch's fields first (they are
    /// validated like the client's), an error refuses the write.
    fn before_save(context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        let _ = (context, record);
        Ok(None)
    }
}

/// A refusal naming one field.
pub fn invalid(field: &str, message: &str) -> HookError {
    HookError::Invalid(vec![FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }])
}

/// Messages to the host's log, tagged with the plugin's id and version.
pub mod log {
    use crate::bindings::crm::plugin::log::{Level, write};

    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// Records, read with the rights of the user the plugin acts for, within the
/// plugin's grants.
pub mod records {
    use crate::Record;

    /// One record; `Err("not found")` when it does not exist or may not be read.
    pub fn get(object: &str, id: &str) -> Result<Record, String> {
        let text = crate::bindings::crm::plugin::records::get(object, id)?;
        serde_json::from_str(&text)
            .map_err(|e| format!("the host sent a record that is not JSON: {e}"))
    }
}

/// Glue between the generated bindings and [`Plugin`]; used by [`export_plugin!`].
#[doc(hidden)]
pub fn __before_save<P: Plugin>(
    context: SaveContext,
    record: String,
) -> Result<Option<String>, HookError> {
    let record: Record = serde_json::from_str(&record)
        .map_err(|e| HookError::Failed(format!("the record is not a JSON object: {e}")))?;
    P::before_save(&context, &record).map(|patch| patch.map(|p| Value::Object(p).to_string()))
}

/// Exports a type implementing [`Plugin`] as the component's hooks.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        struct __CrmPluginExports;

        impl $crate::bindings::exports::crm::plugin::hooks::Guest for __CrmPluginExports {
            fn before_save(
                context: $crate::SaveContext,
                record: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::option::Option<::std::string::String>,
                $crate::HookError,
            > {
                $crate::__before_save::<$plugin>(context, record)
            }
        }

        $crate::bindings::export!(__CrmPluginExports with_types_in $crate::bindings);
    };
}
