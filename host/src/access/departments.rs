//! Departments (a tree) and memberships (a user's role in a department).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{AccessControl, ROOT_DEPARTMENT};
use crate::api::error::{ApiError, FieldError};
use crate::db;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Department {
    pub id: String,
    pub name: String,
    /// The department above this one; `null` for the organisation itself.
    pub parent: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInput {
    pub name: String,
    /// Defaults to the organisation (the root department).
    #[serde(default)]
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
}

/// A user's role in a department.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    pub user: String,
    pub department: String,
    pub role: String,
}

fn department_from_row(r: &sqlx::any::AnyRow) -> Result<Department, sqlx::Error> {
    Ok(Department {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        parent: r.try_get("parent_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "the department is not valid",
            vec![FieldError::new(
                "name",
                "must be 1 to 100 characters without control characters",
            )],
        ));
    }
    Ok(name.to_string())
}

fn name_taken(e: &sqlx::Error) -> Option<ApiError> {
    db::violated_constraint(e).map(|_| {
        ApiError::invalid(
            "the department is not valid",
            vec![FieldError::new(
                "name",
                "is already used by another department",
            )],
        )
    })
}

impl AccessControl {
    pub async fn list_departments(&self) -> Result<Vec<Department>, ApiError> {
        let rows = sqlx::query(
            "SELECT id, name, parent_id, created_at, updated_at FROM departments ORDER BY name",
        )
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .iter()
            .map(department_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn get_department(&self, id: &str) -> Result<Department, ApiError> {
        let row = sqlx::query(
            "SELECT id, name, parent_id, created_at, updated_at FROM departments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such department"))?;
        Ok(department_from_row(&row)?)
    }

    fn require_department(&self, field: &str, id: &str) -> Result<(), ApiError> {
        if self.current().departments.exists(id) {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "the request is not valid",
                vec![FieldError::new(field, "is not a department")],
            ))
        }
    }

    pub async fn create_department(&self, input: DepartmentInput) -> Result<Department, ApiError> {
        let name = check_name(&input.name)?;
        let parent = input.parent.unwrap_or_else(|| ROOT_DEPARTMENT.to_string());
        self.require_department("parent", &parent)?;
        let id = db::new_id();
        let now = db::now();
        let mut tx = self.db.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO departments (id, name, parent_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&parent)
        .bind(&now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(name_taken(&e).unwrap_or_else(|| e.into()));
        }
        self.commit_policy_change(tx).await?;
        self.get_department(&id).await
    }

    /// Renames or moves a department; a move under itself or its own sub-department
    /// is refused, and the organisation stays the root.
    pub async fn update_department(
        &self,
        id: &str,
        patch: DepartmentPatch,
    ) -> Result<Department, ApiError> {
        let current = self.get_department(id).await?;
        let name = match &patch.name {
            Some(n) => check_name(n)?,
            None => current.name.clone(),
        };
        let parent = match patch.parent {
            Some(p) if id == ROOT_DEPARTMENT => {
                return Err(ApiError::invalid(
                    "the department is not valid",
                    vec![FieldError::new(
                        "parent",
                        format!("the organisation is the root and has no parent, not {p}"),
                    )],
                ));
            }
            Some(p) => {
                self.require_department("parent", &p)?;
                if self.current().departments.is_within(&p, id) {
                    return Err(ApiError::invalid(
                        "the department is not valid",
                        vec![FieldError::new(
                            "parent",
                            "cannot be the department itself or one below it",
                        )],
                    ));
                }
                Some(p)
            }
            None => current.parent.clone(),
        };
        let mut tx = self.db.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE departments SET name = $1, parent_id = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&name)
        .bind(&parent)
        .bind(db::now())
        .bind(id)
        .execute(&mut *tx)
        .await;
        if let Err(e) = updated {
            return Err(name_taken(&e).unwrap_or_else(|| e.into()));
        }
        self.commit_policy_change(tx).await?;
        self.get_department(id).await
    }

    /// Deletes an empty department: no sub-departments, members, records or shares.
    pub async fn delete_department(&self, id: &str) -> Result<(), ApiError> {
        self.get_department(id).await?;
        if id == ROOT_DEPARTMENT {
            return Err(ApiError::conflict(
                "the organisation itself cannot be deleted",
            ));
        }
        let mut tx = self.db.pool.begin().await?;
        for (what, sql) in [
            (
                "sub-departments",
                "SELECT COUNT(*) FROM departments WHERE parent_id = $1",
            ),
            (
                "members",
                "SELECT COUNT(*) FROM memberships WHERE department_id = $1",
            ),
            (
                "records",
                "SELECT COUNT(*) FROM records WHERE department_id = $1",
            ),
            (
                "shares",
                "SELECT COUNT(*) FROM record_shares WHERE department_id = $1",
            ),
        ] {
            let n: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(&mut *tx).await?;
            if n > 0 {
                return Err(ApiError::conflict(format!(
                    "the department still has {n} {what}; move or remove them first"
                )));
            }
        }
        sqlx::query("DELETE FROM departments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit_policy_change(tx).await?;
        Ok(())
    }

    pub async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<Membership>, ApiError> {
        self.memberships_where("m.user_id = $1", user_id).await
    }

    pub async fn members_of_department(&self, id: &str) -> Result<Vec<Membership>, ApiError> {
        self.get_department(id).await?;
        self.memberships_where("m.department_id = $1", id).await
    }

    async fn memberships_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Vec<Membership>, ApiError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT m.user_id, m.department_id, m.role FROM memberships m WHERE {condition} \
             ORDER BY m.created_at, m.department_id"
        )))
        .bind(value)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    user: r.try_get("user_id")?,
                    department: r.try_get("department_id")?,
                    role: r.try_get("role")?,
                })
            })
            .collect()
    }

    /// Gives `user` the role `role` in `department` (replacing its role there).
    /// The caller's right to do so is checked by the route.
    pub async fn set_membership(
        &self,
        user_id: &str,
        department: &str,
        role: &str,
    ) -> Result<Membership, ApiError> {
        refuse_plugin_identity(user_id)?;
        self.require_department("department", department)?;
        let mut tx = self.db.pool.begin().await?;
        let role_exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM roles WHERE name = $1")
            .bind(role)
            .fetch_optional(&mut *tx)
            .await?;
        if role_exists.is_none() {
            return Err(ApiError::invalid(
                "the membership is not valid",
                vec![FieldError::new(
                    "role",
                    format!("there is no role named '{role}'"),
                )],
            ));
        }
        let user_exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user_exists.is_none() {
            return Err(ApiError::not_found("there is no such user"));
        }
        let changed = sqlx::query(
            "UPDATE memberships SET role = $1 WHERE user_id = $2 AND department_id = $3",
        )
        .bind(role)
        .bind(user_id)
        .bind(department)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO memberships (user_id, department_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(department)
            .bind(role)
            .bind(db::now())
            .execute(&mut *tx)
            .await?;
        }
        self.commit_policy_change(tx).await?;
        Ok(Membership {
            user: user_id.to_string(),
            department: department.to_string(),
            role: role.to_string(),
        })
    }

    pub async fn remove_membership(&self, user_id: &str, department: &str) -> Result<(), ApiError> {
        refuse_plugin_identity(user_id)?;
        let mut tx = self.db.pool.begin().await?;
        let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND department_id = $2")
            .bind(user_id)
            .bind(department)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(
                "the user is not a member of that department",
            ));
        }
        self.commit_policy_change(tx).await?;
        Ok(())
    }
}

/// A plugin's identity holds exactly the memberships its enablements give it.
fn refuse_plugin_identity(user_id: &str) -> Result<(), ApiError> {
    if crate::plugins::is_identity(user_id) {
        return Err(ApiError::conflict(
            "this user is a plugin's own identity; enable or disable the plugin instead",
        ));
    }
    Ok(())
}
