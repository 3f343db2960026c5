//! The process engine: durable, versioned, BPMN-like processes.
//!
//! - [`definition`]: what a process is (nodes and flows, as JSON) and the checks
//!   that run before a version is published;
//! - [`expr`]: the safe expression language of conditions;
//! - [`bpmn`]: BPMN 2.0 XML import and export;
//! - [`engine`]: definitions and instances in the database, and the worker that
//!   moves tokens through nodes (service tasks run plugin steps);
//! - [`routes`]: `/api/v1/processes` and `/api/v1/process-instances`.
//!
//! Every move of a token is one transaction (the token done, the next ones
//! created, variables and history written), so a host stopped at any moment
//! loses nothing: a claimed token whose host died is claimed again when its lease
//! runs out, and steps get a stable `_run` id to make a second run harmless.

pub mod bpmn;
pub mod definition;
pub mod engine;
pub mod expr;
pub mod routes;
pub mod triggers;

pub use engine::ProcessService;
