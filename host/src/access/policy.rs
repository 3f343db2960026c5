//! The policy snapshot: our tables turned into casbin rules, plus the department tree.

use std::collections::{BTreeSet, HashMap};

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use sqlx::Row;

use super::AccessError;
use super::roles::RoleRules;
use crate::db::Db;

const MODEL: &str = include_str!("model.conf");

pub fn user_subject(user_id: &str) -> String {
    format!("user:{user_id}")
}

pub fn role_subject(role: &str) -> String {
    format!("role:{role}")
}

pub fn department_domain(department: &str) -> String {
    format!("dept:{department}")
}

/// Departments by id with their parent.
#[derive(Debug, Default)]
pub struct DepartmentTree {
    parent: HashMap<String, Option<String>>,
}

impl DepartmentTree {
    pub fn exists(&self, id: &str) -> bool {
        self.parent.contains_key(id)
    }

    /// True when `department` is `ancestor` or lies below it.
    pub fn is_within(&self, department: &str, ancestor: &str) -> bool {
        let mut current = Some(department);
        // The depth bound guards against a cycle, which the service never writes.
        for _ in 0..=self.parent.len() {
            match current {
                Some(d) if d == ancestor => return true,
                Some(d) => current = self.parent.get(d).and_then(|p| p.as_deref()),
                None => return false,
            }
        }
        false
    }

    /// `department` and every department below it.
    pub fn subtree(&self, department: &str) -> BTreeSet<String> {
        self.parent
            .keys()
            .filter(|d| self.is_within(d, department))
            .cloned()
            .collect()
    }
}

/// One version of the access policy, loaded as a whole.
pub struct PolicySnapshot {
    pub version: i64,
    pub enforcer: Enforcer,
    pub departments: DepartmentTree,
    /// "object.field" names that some role has a field rule for.
    pub field_objects: BTreeSet<String>,
    memberships: HashMap<String, Vec<(String, String)>>,
}

impl PolicySnapshot {
    pub async fn load(db: &Db) -> Result<PolicySnapshot, AccessError> {
        // The version is read first: a change made while loading makes the next poll
        // reload again, never the other way round.
        let version: i64 = sqlx::query_scalar("SELECT version FROM policy_version WHERE id = 1")
            .fetch_one(&db.pool)
            .await?;
        let mut rules: Vec<Vec<String>> = Vec::new();
        let mut field_objects = BTreeSet::new();
        for row in sqlx::query("SELECT name, permissions, fields FROM roles")
            .fetch_all(&db.pool)
            .await?
        {
            let name: String = row.try_get("name")?;
            let role = RoleRules::decode(
                &row.try_get::<String, _>("permissions")?,
                &row.try_get::<String, _>("fields")?,
            )
            .map_err(|e| AccessError::Policy(format!("role {name}: {e}")))?;
            let sub = role_subject(&name);
            for (object, actions) in &role.permissions {
                for (action, scope) in actions {
                    rules.push(vec![
                        sub.clone(),
                        object.clone(),
                        action.as_str().into(),
                        scope.as_str().into(),
                    ]);
                }
            }
            for (object, fields) in &role.fields {
                for (field, access) in fields {
                    let obj = format!("{object}.{field}");
                    rules.push(vec![
                        sub.clone(),
                        obj.clone(),
                        "field".into(),
                        access.as_str().into(),
                    ]);
                    field_objects.insert(obj);
                }
            }
        }
        let mut memberships: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut links = Vec::new();
        // Only active users hold roles; the first membership is the home department.
        for row in sqlx::query(
            "SELECT m.user_id, m.department_id, m.role FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE u.active = 1 ORDER BY m.created_at, m.department_id",
        )
        .fetch_all(&db.pool)
        .await?
        {
            let user: String = row.try_get("user_id")?;
            let department: String = row.try_get("department_id")?;
            let role: String = row.try_get("role")?;
            links.push(vec![user_subject(&user), role_subject(&role), department_domain(&department)]);
            memberships.entry(user).or_default().push((department, role));
        }
        let mut departments = DepartmentTree::default();
        for row in sqlx::query("SELECT id, parent_id FROM departments")
            .fetch_all(&db.pool)
            .await?
        {
            departments
                .parent
                .insert(row.try_get("id")?, row.try_get("parent_id")?);
        }
        let policy_error = |e: casbin::Error| AccessError::Policy(e.to_string());
        let model = DefaultModel::from_str(MODEL).await.map_err(policy_error)?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .map_err(policy_error)?;
        if !rules.is_empty() {
            enforcer.add_policies(rules).await.map_err(policy_error)?;
        }
        if !links.is_empty() {
            enforcer
                .add_grouping_policies(links)
                .await
                .map_err(policy_error)?;
        }
        Ok(PolicySnapshot {
            version,
            enforcer,
            departments,
            field_objects,
            memberships,
        })
    }

    /// A user's (department, role) pairs, home department first.
    pub fn memberships_of(&self, user_id: &str) -> Vec<(String, String)> {
        self.memberships.get(user_id).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(pairs: &[(&str, Option<&str>)]) -> DepartmentTree {
        DepartmentTree {
            parent: pairs
                .iter()
                .map(|(d, p)| (d.to_string(), p.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn a_subtree_holds_the_department_and_everything_below_it() {
        let t = tree(&[
            ("org", None),
            ("sales", Some("org")),
            ("sales-north", Some("sales")),
            ("support", Some("org")),
        ]);
        assert!(t.is_within("sales-north", "sales"));
        assert!(t.is_within("sales", "sales"));
        assert!(!t.is_within("support", "sales"));
        assert!(!t.is_within("sales", "sales-north"));
        assert_eq!(
            t.subtree("sales").into_iter().collect::<Vec<_>>(),
            vec!["sales", "sales-north"]
        );
        assert_eq!(t.subtree("org").len(), 4);
    }
}
