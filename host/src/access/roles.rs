//! Roles: named sets of object rights and field rights, granted per department.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{AccessControl, Action, FieldAccess, Scope};
use crate::api::error::{ApiError, FieldError};
use crate::db;
use crate::records::schema::Schema;

/// Object name (or `*`, or `org` for administration) -> action -> scope.
pub type Permissions = BTreeMap<String, BTreeMap<Action, Scope>>;
/// Object name -> field name -> access.
pub type FieldRules = BTreeMap<String, BTreeMap<String, FieldAccess>>;

/// The rules of a role, as stored.
#[derive(Debug, Default)]
pub struct RoleRules {
    pub permissions: Permissions,
    pub fields: FieldRules,
}

impl RoleRules {
    pub fn decode(permissions: &str, fields: &str) -> Result<Self, serde_json::Error> {
        Ok(RoleRules {
            permissions: serde_json::from_str(permissions)?,
            fields: serde_json::from_str(fields)?,
        })
    }
}

/// A role as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Role {
    pub name: String,
    pub label: String,
    pub description: String,
    /// Built-in roles cannot be changed or deleted.
    pub builtin: bool,
    /// Object (or `*` for every object, `org` for administration) -> action -> scope.
    #[schema(value_type = Object, example = json!({"contacts": {"read": "department", "update": "department"}, "deals": {"read": "department"}}))]
    pub permissions: Permissions,
    /// Object -> field -> `hidden`, `read` or `write`.
    #[schema(value_type = Object, example = json!({"deals": {"amount": "read"}}))]
    pub fields: FieldRules,
    pub created_at: String,
    pub updated_at: String,
}

/// A role to create, or the new state of one.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// Lower-case letters, digits and `_`; fixed once created (ignored on update).
    #[serde(default)]
    pub name: Option<String>,
    pub label: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub permissions: Permissions,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: FieldRules,
}

impl RoleInput {
    /// Every error at once: unknown objects and fields, `org` with anything but admin.
    pub fn validate(&self, schema: &Schema, name: &str) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let valid_name = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            errors.push(FieldError::new(
                "name",
                "must start with a lower-case letter and hold only a-z, 0-9 and _ (at most 63)",
            ));
        }
        if self.label.trim().is_empty() || self.label.chars().count() > 100 {
            errors.push(FieldError::new("label", "must be 1 to 100 characters"));
        }
        for (object, actions) in &self.permissions {
            if object == "org" {
                if actions.keys().any(|a| *a != Action::Admin) {
                    errors.push(FieldError::new(
                        format!("permissions.{object}"),
                        "org takes only the admin action",
                    ));
                }
                if actions
                    .values()
                    .any(|s| !matches!(s, Scope::All | Scope::Subtree))
                {
                    errors.push(FieldError::new(
                        format!("permissions.{object}"),
                        "org admin is granted with scope all or subtree",
                    ));
                }
            } else if object != "*" && schema.object(object).is_none() {
                errors.push(FieldError::new(
                    format!("permissions.{object}"),
                    "is not an object",
                ));
            }
        }
        for (object, fields) in &self.fields {
            match schema.object(object) {
                None => errors.push(FieldError::new(
                    format!("fields.{object}"),
                    "is not an object",
                )),
                Some(o) => {
                    for field in fields.keys() {
                        if o.field(field).is_none() {
                            errors.push(FieldError::new(
                                format!("fields.{object}.{field}"),
                                format!("is not a field of {object}"),
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                format!("{} problem(s) with the role", errors.len()),
                errors,
            ))
        }
    }
}

const COLUMNS: &str =
    "name, label, description, builtin, permissions, fields, created_at, updated_at";

fn role_from_row(row: &sqlx::any::AnyRow) -> Result<Role, ApiError> {
    let name: String = row.try_get("name")?;
    let rules = RoleRules::decode(
        &row.try_get::<String, _>("permissions")?,
        &row.try_get::<String, _>("fields")?,
    )
    .map_err(|e| ApiError::internal(format!("role {name} is not readable: {e}")))?;
    Ok(Role {
        label: row.try_get("label")?,
        description: row.try_get("description")?,
        builtin: row.try_get::<i64, _>("builtin")? == 1,
        permissions: rules.permissions,
        fields: rules.fields,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        name,
    })
}

impl AccessControl {
    pub async fn list_roles(&self) -> Result<Vec<Role>, ApiError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM roles ORDER BY builtin DESC, name"
        )))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(role_from_row).collect()
    }

    pub async fn get_role(&self, name: &str) -> Result<Role, ApiError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM roles WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no role named '{name}'")))?;
        role_from_row(&row)
    }

    pub async fn create_role(&self, schema: &Schema, input: RoleInput) -> Result<Role, ApiError> {
        let name = input.name.clone().unwrap_or_default();
        input.validate(schema, &name)?;
        let now = db::now();
        let mut tx = self.db.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO roles (name, label, description, builtin, permissions, fields, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $5, $6, $6)",
        )
        .bind(&name)
        .bind(input.label.trim())
        .bind(&input.description)
        .bind(serde_json::to_string(&input.permissions).expect("serialisable"))
        .bind(serde_json::to_string(&input.fields).expect("serialisable"))
        .bind(&now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if db::violated_constraint(&e).is_some() => {
                return Err(ApiError::invalid(
                    "the role is not valid",
                    vec![FieldError::new("name", "is already taken by another role")],
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.commit_policy_change(tx).await?;
        self.get_role(&name).await
    }

    pub async fn update_role(
        &self,
        schema: &Schema,
        name: &str,
        input: RoleInput,
    ) -> Result<Role, ApiError> {
        let existing = self.get_role(name).await?;
        if existing.builtin {
            return Err(ApiError::conflict(format!(
                "{name} is a built-in role and cannot be changed; create a role of your own"
            )));
        }
        input.validate(schema, name)?;
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            "UPDATE roles SET label = $1, description = $2, permissions = $3, fields = $4, updated_at = $5 WHERE name = $6",
        )
        .bind(input.label.trim())
        .bind(&input.description)
        .bind(serde_json::to_string(&input.permissions).expect("serialisable"))
        .bind(serde_json::to_string(&input.fields).expect("serialisable"))
        .bind(db::now())
        .bind(name)
        .execute(&mut *tx)
        .await?;
        self.commit_policy_change(tx).await?;
        self.get_role(name).await
    }

    /// Deletes a role nobody holds.
    pub async fn delete_role(&self, name: &str) -> Result<(), ApiError> {
        let existing = self.get_role(name).await?;
        if existing.builtin {
            return Err(ApiError::conflict(format!(
                "{name} is a built-in role and cannot be deleted"
            )));
        }
        let mut tx = self.db.pool.begin().await?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE role = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if held > 0 {
            return Err(ApiError::conflict(format!(
                "{name} is held in {held} membership(s); give those members another role first"
            )));
        }
        sqlx::query("DELETE FROM roles WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.commit_policy_change(tx).await?;
        Ok(())
    }
}
