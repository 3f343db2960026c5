//! crm-host: the trusted core of the CRM.
//!
//! One folder per capability, each owning its tables, its service and its routes:
//! - [`records`]: object metadata, record validation and the one write path
//!   ([`records::service::RecordService`]) every change goes through;
//! - [`audit`] and [`events`]: the audit trail and the event outbox, written in the
//!   same transaction as the record;
//! - [`access`]: departments, roles, memberships, shares; casbin decides who may do
//!   what, and the records service asks it on every path;
//! - [`auth`]: users, password hashes, sessions and API tokens;
//! - [`plugins`]: plugin packages, their lifecycle, and the Wasmtime sandbox their
//!   hooks, routes, jobs and steps run in;
//! - [`documents`]: the document library (folders, versions, content storage);
//! - [`mail`]: the email outbox, delivered by SMTP when configured;
//! - [`process`]: the process engine (versioned definitions, durable instances, the
//!   worker that runs their steps);
//! - [`api`]: shared HTTP plumbing (errors, extractors, OpenAPI, the router);
//! - [`db`]: the database handle that serves SQLite and PostgreSQL with one code path.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod calendar_feeds;
pub mod calendar_import;
pub mod calls;
pub mod config;
pub mod db;
pub mod documents;
pub mod events;
pub mod feed;
pub mod imports;
pub mod mail;
pub mod notifications;
pub mod plugins;
pub mod process;
pub mod records;
pub mod reports;
pub mod server;
pub mod web;
pub mod webhooks;
pub mod xlsx;

/// Lower-case hex of bytes, as SHA-256 digests are stored and shown.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text safe inside an XML element or quoted attribute (workbooks, charts, BPMN);
/// characters XML 1.0 does not allow are left out.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `n` random bytes as hex: a secret (a webhook's signing key, a feed's token).
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}
