//! `plugin.toml`: who a plugin is, which API it was built against, what it asks to do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::FieldError;
use crate::records::metadata::Field;
use crate::records::schema::Schema;

/// WIT package versions this host runs plugins for.
pub const SUPPORTED_APIS: &[&str] = &["0.1.0", "0.1.1", "0.1.2"];
/// The newest of them: what the SDK builds against and `crm plugin new` writes.
pub const CURRENT_API: &str = "0.1.2";

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lower-case letters, digits and `-`; unique in the CRM.
    pub id: String,
    pub name: String,
    /// MAJOR.MINOR.PATCH.
    pub version: String,
    /// The `crm:plugin` WIT version the component is built against.
    pub api: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Custom objects the plugin keeps its records in (`[[objects]]` with `name`,
    /// `label`, `label_plural`, `description`; their fields as `[[fields.<name>]]`):
    /// created when an admin approves the plugin unless they exist. They are
    /// ordinary objects: roles, lists, exports and events apply as to any other.
    #[serde(default)]
    pub objects: Vec<ObjectDecl>,
    /// Fields the plugin adds to objects, by object (`[[fields.deals]]` tables with
    /// the keys of `POST /api/v1/objects/{object}/fields`): created when an admin
    /// approves the plugin, unless the object already has them with the same type.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, Vec<Field>>,
    /// Covering indexes the plugin's reports need, by object (`[[indexes.deals]]`
    /// with `fields = ["pipeline", "stage", "amount"]`): created on approval, so an
    /// aggregate grouping, filtering and summing those fields reads only the index.
    #[serde(default)]
    pub indexes: std::collections::BTreeMap<String, Vec<IndexDecl>>,
    /// Pages the plugin adds to the web interface's menu (`[[menu]]` with `label`
    /// and `view`, a path of its routes answering a declarative view as JSON, which
    /// the host renders: docs/web.md). Needs `capabilities.routes`.
    #[serde(default)]
    pub menu: Vec<MenuEntry>,
}

/// A page of the plugin in the web interface's menu.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuEntry {
    /// What the menu shows, such as "Pipeline board".
    pub label: String,
    /// The plugin route answering the view, such as `/views/board`.
    pub view: String,
}

/// Menu entries a plugin may add.
pub const MAX_MENU_ENTRIES: usize = 10;

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectDecl {
    /// As an admin-made object's name: `form_submissions`.
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub label_plural: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexDecl {
    /// 1 to 4 fields, in the order queries filter, group and sum them.
    pub fields: Vec<String>,
}

impl Manifest {
    /// The name of the `i`-th index the manifest declares on `object`.
    pub fn index_name(&self, object: &str, i: usize) -> String {
        format!("px_{}_{object}_{i}", self.id.replace('-', "_"))
    }
}

/// Limits a plugin asks for (times in milliseconds), within the host's ceilings
/// ([`MAX_HOOK_MS`], [`MAX_BACKGROUND_MS`], [`MAX_MEMORY_MIB`]); unset means the
/// host's default.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    /// Before-save hooks (they hold up a user's save): default 100.
    pub hook_ms: Option<u64>,
    /// Routes: default 5,000.
    pub route_ms: Option<u64>,
    /// After-save hooks, jobs and process steps: default 5,000.
    pub background_ms: Option<u64>,
    /// Memory in MiB: default and most 64.
    pub memory_mib: Option<u64>,
}

/// Ceilings of [`ManifestLimits`].
pub const MAX_HOOK_MS: u64 = 1_000;
pub const MAX_BACKGROUND_MS: u64 = 60_000;
pub const MAX_MEMORY_MIB: u64 = 64;

/// What the plugin asks to be allowed; an admin approves it as a whole.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Objects the plugin may read through the records interface.
    #[serde(default)]
    pub read: Vec<String>,
    /// Objects the plugin may create and update records of (outside before-save).
    #[serde(default)]
    pub write: Vec<String>,
    /// Objects (among `write`) whose records the plugin may give an owner: a user
    /// who belongs to the record's department (or one below it), as lead routing
    /// does.
    #[serde(default)]
    pub assign: Vec<String>,
    /// Private key-value storage.
    #[serde(default)]
    pub kv: bool,
    /// Sending notifications to users.
    #[serde(default)]
    pub notify: bool,
    /// Scheduling jobs (durable callbacks).
    #[serde(default)]
    pub jobs: bool,
    /// Reading the document library (api 0.1.1 and later).
    #[serde(default)]
    pub documents: bool,
    /// Routes under `/api/v1/x/{plugin}/...` for signed-in users.
    #[serde(default)]
    pub routes: bool,
    /// Path prefixes served without sign-in under `/public/{plugin}/...`, such as
    /// `/forms/`; the plugin acts as itself there.
    #[serde(default)]
    pub public_routes: Vec<String>,
}

impl Capabilities {
    /// True when `self` asks for nothing beyond `approved` (an upgrade keeps its
    /// approval only then).
    pub fn within(&self, approved: &Capabilities) -> bool {
        subset(&self.read, &approved.read)
            && subset(&self.write, &approved.write)
            && subset(&self.assign, &approved.assign)
            && (!self.kv || approved.kv)
            && (!self.notify || approved.notify)
            && (!self.jobs || approved.jobs)
            && (!self.documents || approved.documents)
            && (!self.routes || approved.routes)
            && subset(&self.public_routes, &approved.public_routes)
    }

    /// True when a public path (below `/public/{plugin}`) is one the manifest
    /// declares: the prefix itself, or below it on a segment boundary (`/form`
    /// covers `/form` and `/form/x`, not `/formadmin`).
    pub fn is_public(&self, path: &str) -> bool {
        self.public_routes.iter().any(|p| {
            let p = p.trim_end_matches('/');
            path == p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

impl Hooks {
    pub fn within(&self, approved: &Hooks) -> bool {
        subset(&self.before_save, &approved.before_save)
            && subset(&self.after_save, &approved.after_save)
    }
}

impl Manifest {
    /// True when the objects and fields asked for are all among `approved`'s (an
    /// upgrade that adds one waits for approval again).
    pub fn fields_within(&self, approved: &Manifest) -> bool {
        let objects_within = self
            .objects
            .iter()
            .all(|o| approved.objects.iter().any(|a| a.name == o.name));
        objects_within
            && self.fields.iter().all(|(object, fields)| {
                fields.iter().all(|f| {
                    approved
                        .fields
                        .get(object)
                        .is_some_and(|old| old.iter().any(|o| o.name == f.name && o.kind == f.kind))
                })
            })
    }
}

fn subset(new: &[String], old: &[String]) -> bool {
    new.iter().all(|n| old.contains(n))
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Objects whose creates and updates pass through the plugin's before-save hook.
    #[serde(default)]
    pub before_save: Vec<String>,
    /// Objects whose committed changes are delivered to the plugin's after-save hook.
    #[serde(default)]
    pub after_save: Vec<String>,
}

impl Manifest {
    /// Parses `plugin.toml`; an unknown key (such as a capability this host does not
    /// know) is refused by name.
    pub fn parse(text: &str) -> Result<Manifest, Vec<FieldError>> {
        toml::from_str(text)
            .map_err(|e| vec![FieldError::new("plugin.toml", e.message().to_string())])
    }

    /// Every problem at once, against the objects this CRM has.
    pub fn validate(&self, schema: &Schema) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 63
            && self.id.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            errors.push(FieldError::new(
                "id",
                "must start with a lower-case letter and hold only a-z, 0-9 and - (at most 63)",
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            errors.push(FieldError::new("name", "must be 1 to 100 characters"));
        }
        let semver = self.version.split('.').collect::<Vec<_>>();
        if semver.len() != 3
            || semver
                .iter()
                .any(|p| p.is_empty() || p.parse::<u64>().is_err())
        {
            errors.push(FieldError::new(
                "version",
                "must be MAJOR.MINOR.PATCH, such as 1.2.0",
            ));
        }
        if !SUPPORTED_APIS.contains(&self.api.as_str()) {
            errors.push(FieldError::new(
                "api",
                format!(
                    "crm:plugin@{} is not supported by this host; it supports {}",
                    self.api,
                    SUPPORTED_APIS.join(", ")
                ),
            ));
        }
        if self.capabilities.documents && self.api == "0.1.0" {
            errors.push(FieldError::new(
                "capabilities.documents",
                "the documents interface arrived in crm:plugin@0.1.1; build against it and set api = \"0.1.1\"",
            ));
        }
        // Objects this CRM has, and those the plugin brings.
        let declared = |object: &str| self.objects.iter().any(|o| o.name == object);
        let known = |object: &str| schema.object(object).is_some() || declared(object);
        let mut object_names = schema.object_names();
        object_names.extend(self.objects.iter().map(|o| o.name.as_str()));
        for (i, object) in self.objects.iter().enumerate() {
            let key = format!("objects[{i}]");
            if let Err(m) = crate::records::metadata::check_name(&object.name) {
                errors.push(FieldError::new(&key, m));
            }
            if self.objects[..i].iter().any(|o| o.name == object.name) {
                errors.push(FieldError::new(
                    &key,
                    format!("'{}' is declared twice", object.name),
                ));
            }
            if schema.object(&object.name).is_some_and(|o| o.standard) {
                errors.push(FieldError::new(
                    &key,
                    format!("'{}' is a standard object", object.name),
                ));
            }
        }
        for (key, objects) in [
            ("capabilities.read", &self.capabilities.read),
            ("capabilities.write", &self.capabilities.write),
            ("capabilities.assign", &self.capabilities.assign),
            ("hooks.before_save", &self.hooks.before_save),
            ("hooks.after_save", &self.hooks.after_save),
        ] {
            for object in objects {
                if !known(object) {
                    errors.push(FieldError::new(key, format!("'{object}' is not an object")));
                }
            }
        }
        for object in &self.capabilities.assign {
            if !self.capabilities.write.contains(object) {
                errors.push(FieldError::new(
                    "capabilities.assign",
                    format!("assigning {object} records needs writing them (capabilities.write)"),
                ));
            }
        }
        for (object, fields) in &self.fields {
            if !known(object) {
                errors.push(FieldError::new(
                    "fields",
                    format!("'{object}' is not an object"),
                ));
                continue;
            }
            for field in fields {
                let mut field = field.clone();
                field.normalise();
                for e in field.check_definition(&object_names) {
                    errors.push(FieldError::new(
                        format!("fields.{object}.{}", field.name),
                        format!("{}: {}", e.field, e.message),
                    ));
                }
            }
        }
        if self.menu.len() > MAX_MENU_ENTRIES {
            errors.push(FieldError::new(
                "menu",
                format!("at most {MAX_MENU_ENTRIES} entries"),
            ));
        }
        if !self.menu.is_empty() && !self.capabilities.routes {
            errors.push(FieldError::new(
                "menu",
                "views are served by the plugin's routes: set capabilities.routes = true",
            ));
        }
        for (i, entry) in self.menu.iter().enumerate() {
            if entry.label.trim().is_empty() || entry.label.chars().count() > 60 {
                errors.push(FieldError::new(
                    format!("menu[{i}].label"),
                    "must be 1 to 60 characters",
                ));
            }
            let path_ok = entry.view.starts_with('/')
                && entry.view.len() <= 200
                && !entry.view.contains(['?', '#', '\\'])
                && !entry.view.split('/').any(|s| s == "..");
            if !path_ok {
                errors.push(FieldError::new(
                    format!("menu[{i}].view"),
                    "must be a path of the plugin's routes, such as /views/board",
                ));
            }
        }
        for (object, indexes) in &self.indexes {
            if !known(object) {
                errors.push(FieldError::new(
                    "indexes",
                    format!("'{object}' is not an object"),
                ));
                continue;
            }
            let current = schema.object(object);
            for (i, index) in indexes.iter().enumerate() {
                let key = format!("indexes.{object}[{i}]");
                if index.fields.is_empty() || index.fields.len() > 4 {
                    errors.push(FieldError::new(&key, "an index has 1 to 4 fields"));
                }
                for name in &index.fields {
                    let kind = current
                        .and_then(|o| o.field(name))
                        .map(|f| f.kind)
                        .or_else(|| {
                            self.fields
                                .get(object)
                                .and_then(|fs| fs.iter().find(|f| &f.name == name))
                                .map(|f| f.kind)
                        });
                    match kind {
                        Some(kind) if kind.indexable() => {}
                        Some(_) => errors
                            .push(FieldError::new(&key, format!("'{name}' cannot be indexed"))),
                        None => errors.push(FieldError::new(
                            &key,
                            format!("'{name}' is not a field of {object}"),
                        )),
                    }
                }
            }
        }
        for p in &self.capabilities.public_routes {
            let clean = p.starts_with('/')
                && p.len() > 1
                && p.len() <= 200
                && !p.contains(['%', '?', '#', '\\'])
                && !p.split('/').any(|s| s == "." || s == "..");
            if !clean {
                errors.push(FieldError::new(
                    "capabilities.public_routes",
                    format!("'{p}' must be a path below / without ., .., %, ?, # or \\ (at most 200 characters)"),
                ));
            }
        }
        for (key, value, max) in [
            ("limits.hook_ms", self.limits.hook_ms, MAX_HOOK_MS),
            ("limits.route_ms", self.limits.route_ms, MAX_BACKGROUND_MS),
            (
                "limits.background_ms",
                self.limits.background_ms,
                MAX_BACKGROUND_MS,
            ),
        ] {
            if value.is_some_and(|v| v == 0 || v > max) {
                errors.push(FieldError::new(key, format!("must be 1 to {max}")));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// Released WIT versions and the SHA-256 of their files: plugins built against
    /// them must keep loading, so their contract never changes.
    const FROZEN: &[(&str, &str)] = &[
        (
            "crm-plugin-0.1.0/plugin.wit",
            "bcb39fb8f30962491c1abb0e26ff0e1a9eceef549b962bf464b0dfae05a94514",
        ),
        (
            "crm-plugin-0.1.1/plugin.wit",
            "1b72867492f1df797ceb701ed17009c829e0fe3759a0f82c31936dfe40d048ad",
        ),
        (
            "crm-plugin-0.1.2/plugin.wit",
            "0a373f933454d4a2393e986392afb874f179bb64e1ae8f1abee7fcb1f2c82abc",
        ),
    ];

    #[test]
    fn released_wit_versions_are_frozen() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        for (file, sha) in FROZEN {
            let text = std::fs::read(wit.join(file)).expect("the WIT file");
            let now = crate::hex(&Sha256::digest(&text));
            assert_eq!(
                &now, sha,
                "wit/{file} is released and frozen: put changes in a new version folder \
                 with a host adapter (docs/plugins.md, How versions evolve)"
            );
        }
    }

    #[test]
    fn the_sdk_builds_against_the_current_api() {
        let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk/src/lib.rs");
        let text = std::fs::read_to_string(sdk).expect("the SDK's source");
        let folder = format!("\"../wit/crm-plugin-{}\"", super::CURRENT_API);
        assert!(
            text.contains(&folder),
            "the SDK should generate its bindings from {folder}"
        );
        assert_eq!(super::SUPPORTED_APIS.last(), Some(&super::CURRENT_API));
    }

    #[test]
    fn every_supported_api_has_a_frozen_wit_folder() {
        for api in super::SUPPORTED_APIS {
            assert!(
                FROZEN
                    .iter()
                    .any(|(file, _)| file.starts_with(&format!("crm-plugin-{api}/"))),
                "{api} is supported but not frozen"
            );
        }
    }
}
