//! # crm-plugin-sdk
//!
//! The SDK partners and first-party modules use to write CRM plugins as WebAssembly
//! components (`wasm32-wasip2`) against the WIT package in `wit/`.
//!
//! **Not built yet.** The plugin platform (WIT contract, bindings, typed records,
//! default exports and the export macro) is the work of the plugin-platform issue;
//! this crate exists so the workspace has its final shape. Nothing here is part of a
//! stable API yet.
