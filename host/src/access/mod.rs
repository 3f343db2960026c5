//! Access control: who may do what to which records and fields.
//!
//! casbin decides. The policy lives in our tables (roles, memberships, departments),
//! is turned into casbin rules by [`policy`], and evaluated against
//! [`model.conf`](model.conf). Every host process keeps one enforcer snapshot and
//! reloads it when `policy_version` moves, so a change applies without a restart.
//!
//! A caller's rights on one object are asked of casbin once per policy version and
//! kept as an [`ObjectAccess`]: for each action, the scopes granted through each of
//! the caller's departments, and the fields it may not see or not write. The records
//! service turns those into a SQL predicate for lists and a check for single records;
//! nothing else makes access decisions.

pub mod departments;
pub mod policy;
pub mod roles;
pub mod routes;
pub mod shares;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use casbin::CoreApi;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::records::query::{Bind, SqlBuilder};
use policy::PolicySnapshot;

/// The department every organisation has: the root of the tree.
pub const ROOT_DEPARTMENT: &str = "00000000-0000-0000-0000-000000000001";

/// The casbin object for administration of users, departments, roles and metadata.
const ORG: &str = "org";

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Export,
    Admin,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Export,
        Action::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Export => "export",
            Action::Admin => "admin",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How far a granted action reaches.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Records the user owns.
    Own,
    /// Records of the department the role is held in.
    Department,
    /// Records of that department and every department below it.
    Subtree,
    /// Every record.
    All,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Own, Scope::Department, Scope::Subtree, Scope::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Own => "own",
            Scope::Department => "department",
            Scope::Subtree => "subtree",
            Scope::All => "all",
        }
    }
}

/// What a caller may do with one field.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FieldAccess {
    Hidden,
    Read,
    Write,
}

impl FieldAccess {
    pub const ALL: [FieldAccess; 3] = [FieldAccess::Hidden, FieldAccess::Read, FieldAccess::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldAccess::Hidden => "hidden",
            FieldAccess::Read => "read",
            FieldAccess::Write => "write",
        }
    }
}

/// One action granted through one membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    /// The department the role is held in.
    pub department: String,
}

/// A caller's rights on one object.
#[derive(Debug, Default)]
pub struct ObjectAccess {
    grants: [Vec<Grant>; 6],
    /// Fields the caller may not write (absent: write); `Hidden` ones it may not see.
    restricted: HashMap<String, FieldAccess>,
}

impl ObjectAccess {
    pub fn grants(&self, action: Action) -> &[Grant] {
        &self.grants[action.index()]
    }

    pub fn field(&self, name: &str) -> FieldAccess {
        self.restricted
            .get(name)
            .copied()
            .unwrap_or(FieldAccess::Write)
    }

    pub fn hidden_fields(&self) -> impl Iterator<Item = &str> {
        self.restricted
            .iter()
            .filter(|(_, a)| **a == FieldAccess::Hidden)
            .map(|(f, _)| f.as_str())
    }
}

/// What a share gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareAccess {
    Read,
    Write,
}

/// The caller's view of the policy: its memberships and, per object, its rights.
pub struct UserAccess {
    pub user_id: String,
    snapshot: Arc<PolicySnapshot>,
    /// (department, role) pairs.
    memberships: Vec<(String, String)>,
    objects: Mutex<HashMap<String, Arc<ObjectAccess>>>,
}

impl UserAccess {
    pub fn memberships(&self) -> &[(String, String)] {
        &self.memberships
    }

    /// The departments the user belongs to (shares with them reach the user).
    pub fn departments(&self) -> impl Iterator<Item = &str> {
        self.memberships.iter().map(|(d, _)| d.as_str())
    }

    fn enforce(&self, department: &str, obj: &str, act: &str, scope: &str) -> bool {
        let sub = policy::user_subject(&self.user_id);
        let dom = policy::department_domain(department);
        self.snapshot
            .enforcer
            .enforce((sub.as_str(), dom.as_str(), obj, act, scope))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "casbin could not evaluate a request; denying");
                false
            })
    }

    /// The caller's rights on `object`, asked of casbin once per policy version.
    pub fn object(&self, object: &str) -> Arc<ObjectAccess> {
        if let Some(found) = self.objects.lock().expect("lock").get(object) {
            return found.clone();
        }
        let mut access = ObjectAccess::default();
        for (department, _) in &self.memberships {
            for action in Action::ALL {
                // The widest scope granted through this membership is enough.
                if let Some(scope) = Scope::ALL
                    .into_iter()
                    .rev()
                    .find(|s| self.enforce(department, object, action.as_str(), s.as_str()))
                {
                    access.grants[action.index()].push(Grant {
                        scope,
                        department: department.clone(),
                    });
                }
            }
        }
        // A field right is the widest any membership gives; a membership without a rule
        // for the field leaves it writable (its object rights still apply).
        let prefix = format!("{object}.");
        for field_obj in &self.snapshot.field_objects {
            let Some(field) = field_obj.strip_prefix(&prefix) else {
                continue;
            };
            let widest = self
                .memberships
                .iter()
                .map(|(department, _)| {
                    FieldAccess::ALL
                        .into_iter()
                        .rev()
                        .find(|a| self.enforce(department, field_obj, "field", a.as_str()))
                        .unwrap_or(FieldAccess::Write)
                })
                .max()
                .unwrap_or(FieldAccess::Write);
            if widest != FieldAccess::Write {
                access.restricted.insert(field.to_string(), widest);
            }
        }
        let access = Arc::new(access);
        self.objects
            .lock()
            .expect("lock")
            .insert(object.to_string(), access.clone());
        access
    }

    /// True when one of the grants reaches a record with this owner and department.
    pub fn covers(&self, grants: &[Grant], owner: Option<&str>, department: Option<&str>) -> bool {
        grants.iter().any(|g| match g.scope {
            Scope::All => true,
            Scope::Own => owner == Some(self.user_id.as_str()),
            Scope::Department => department == Some(g.department.as_str()),
            Scope::Subtree => {
                department.is_some_and(|d| self.snapshot.departments.is_within(d, &g.department))
            }
        })
    }

    /// The records of an object the caller may read, as a SQL condition.
    pub fn read_scope(&self, access: &ObjectAccess) -> ReadScope {
        self.scope(access, Action::Read)
    }

    /// The records of an object the caller may act on with `action`, as a SQL
    /// condition. Shares reach only reads (and, record by record, updates).
    pub fn scope(&self, access: &ObjectAccess, action: Action) -> ReadScope {
        let grants = access.grants(action);
        if grants.iter().any(|g| g.scope == Scope::All) {
            return ReadScope::All;
        }
        let mut departments = BTreeSet::new();
        let mut own = false;
        for g in grants {
            match g.scope {
                Scope::Own => own = true,
                Scope::Department => {
                    departments.insert(g.department.clone());
                }
                Scope::Subtree => {
                    departments.extend(self.snapshot.departments.subtree(&g.department));
                }
                Scope::All => unreachable!("handled above"),
            }
        }
        ReadScope::Some {
            user: self.user_id.clone(),
            own,
            departments: departments.into_iter().collect(),
            shared: action == Action::Read,
            member_of: self.departments().map(str::to_string).collect(),
        }
    }

    /// May the caller administer the organisation (users, departments, roles,
    /// metadata)? With `department`, a department admin of it (or above it) may too.
    pub fn is_admin_of(&self, department: Option<&str>) -> bool {
        self.memberships.iter().any(|(d, _)| {
            self.enforce(d, ORG, "admin", "all")
                || department.is_some_and(|target| {
                    self.enforce(d, ORG, "admin", "subtree")
                        && self.snapshot.departments.is_within(target, d)
                })
        })
    }

    pub fn is_org_admin(&self) -> bool {
        self.is_admin_of(None)
    }

    /// The department a new record goes to when the request names none.
    pub fn home_department(&self) -> Option<&str> {
        self.memberships.first().map(|(d, _)| d.as_str())
    }
}

/// The read condition of a list.
#[derive(Clone, Debug)]
pub enum ReadScope {
    All,
    Some {
        user: String,
        own: bool,
        departments: Vec<String>,
        /// Records shared with the user or its departments count too.
        shared: bool,
        /// Departments whose shares reach the user.
        member_of: Vec<String>,
    },
}

/// Above this many departments a list reads them with one `IN` instead of one
/// branch each (a branch per department keeps each on its index, in order).
const MAX_DEPARTMENT_BRANCHES: usize = 16;

impl ReadScope {
    /// `None` when every record is readable; otherwise one condition on `records`
    /// (for point lookups, where an OR costs nothing).
    pub fn sql(&self, object: &str, b: &mut SqlBuilder) -> Option<String> {
        self.branches(object, b)
            .map(|branches| format!("({})", branches.join(" OR ")))
    }

    /// `None` when every record is readable; otherwise the conditions whose union is
    /// readable, each one answerable from a single index (`(object, department_id,
    /// id)`, `(object, owner_id, id)` or the shares), so a list can take the first
    /// page of each branch in index order and merge them, instead of walking every
    /// record of the object through an OR.
    pub fn branches(&self, object: &str, b: &mut SqlBuilder) -> Option<Vec<String>> {
        let ReadScope::Some {
            user,
            own,
            departments,
            shared,
            member_of,
        } = self
        else {
            return None;
        };
        let mut branches = Vec::new();
        // Bound only when used: PostgreSQL wants a type for every parameter.
        let user_param = (*own || *shared).then(|| b.bind(Bind::Text(user.clone())));
        if let (true, Some(user_param)) = (*own, &user_param) {
            branches.push(format!("owner_id = {user_param}"));
        }
        if departments.len() <= MAX_DEPARTMENT_BRANCHES {
            for d in departments {
                branches.push(format!("department_id = {}", b.bind(Bind::Text(d.clone()))));
            }
        } else {
            let params: Vec<String> = departments
                .iter()
                .map(|d| b.bind(Bind::Text(d.clone())))
                .collect();
            branches.push(format!("department_id IN ({})", params.join(", ")));
        }
        let Some(user_param) = user_param.filter(|_| *shared) else {
            // Nothing at all when no grant reaches any record.
            if branches.is_empty() {
                branches.push("1 = 0".to_string());
            }
            return Some(branches);
        };
        let object_param = b.bind(Bind::Text(object.to_string()));
        let mut sharees = vec![format!("s.user_id = {user_param}")];
        if !member_of.is_empty() {
            let params: Vec<String> = member_of
                .iter()
                .map(|d| b.bind(Bind::Text(d.clone())))
                .collect();
            sharees.push(format!("s.department_id IN ({})", params.join(", ")));
        }
        branches.push(format!(
            "id IN (SELECT s.record_id FROM record_shares s WHERE s.object = {object_param} AND ({}))",
            sharees.join(" OR ")
        ));
        Some(branches)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the access policy could not be loaded: {0}")]
    Policy(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Db(e) => e.into(),
            AccessError::Policy(m) => ApiError::internal(m),
        }
    }
}

/// The access control service: the enforcer snapshot and each caller's rights.
#[derive(Clone)]
pub struct AccessControl {
    db: Db,
    snapshot: Arc<RwLock<Arc<PolicySnapshot>>>,
    users: Arc<Mutex<HashMap<String, Arc<UserAccess>>>>,
}

impl AccessControl {
    pub async fn load(db: Db) -> Result<Self, AccessError> {
        let snapshot = PolicySnapshot::load(&db).await?;
        Ok(AccessControl {
            db,
            snapshot: Arc::new(RwLock::new(Arc::new(snapshot))),
            users: Arc::default(),
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn current(&self) -> Arc<PolicySnapshot> {
        self.snapshot.read().expect("policy lock").clone()
    }

    /// The rights of `actor` under the current policy.
    pub fn user(&self, actor: &Actor) -> Arc<UserAccess> {
        self.user_by_id(&actor.user_id)
    }

    pub fn user_by_id(&self, user_id: &str) -> Arc<UserAccess> {
        let snapshot = self.current();
        let mut users = self.users.lock().expect("lock");
        if let Some(u) = users.get(user_id)
            && Arc::ptr_eq(&u.snapshot, &snapshot)
        {
            return u.clone();
        }
        let access = Arc::new(UserAccess {
            user_id: user_id.to_string(),
            memberships: snapshot.memberships_of(user_id),
            snapshot,
            objects: Mutex::default(),
        });
        users.insert(user_id.to_string(), access.clone());
        access
    }

    /// Departments and their parents, as of the current policy.
    pub fn department_tree(&self) -> Arc<PolicySnapshot> {
        self.current()
    }

    /// Reads the policy again (after a change made by this process).
    pub async fn reload(&self) -> Result<(), AccessError> {
        let snapshot = PolicySnapshot::load(&self.db).await?;
        *self.snapshot.write().expect("policy lock") = Arc::new(snapshot);
        self.users.lock().expect("lock").clear();
        Ok(())
    }

    /// Polls for policy changes made by other processes until the runtime stops.
    pub fn spawn_refresher(&self, every: Duration) {
        let access = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let version: Result<i64, _> =
                    sqlx::query_scalar("SELECT version FROM policy_version WHERE id = 1")
                        .fetch_one(&access.db.pool)
                        .await;
                match version {
                    Ok(v) if v != access.current().version => {
                        if let Err(e) = access.reload().await {
                            tracing::warn!(error = %e, "could not reload the access policy");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not check the access policy"),
                }
            }
        });
    }

    /// Refuses unless the caller administers the organisation (or, with
    /// `department`, that department); the refusal is audited.
    pub async fn require_admin(
        &self,
        actor: &Actor,
        department: Option<&str>,
        what: &str,
    ) -> Result<Arc<UserAccess>, ApiError> {
        let user = self.user(actor);
        if user.is_admin_of(department) {
            return Ok(user);
        }
        self.deny(&actor.user_id, "admin", None, None, what).await;
        Err(ApiError::forbidden(format!("only an admin may {what}")))
    }

    /// Refuses unless the caller may give `role` in `department`: an admin of that
    /// department, and an organisation admin for a role that reaches beyond a
    /// department (scope all, or organisation administration).
    pub async fn require_grant_right(
        &self,
        actor: &Actor,
        department: &str,
        role: &str,
    ) -> Result<(), ApiError> {
        let user = self
            .require_admin(actor, Some(department), "give roles in this department")
            .await?;
        let role = self.get_role(role).await.map_err(|_| {
            ApiError::invalid(
                "the membership is not valid",
                vec![crate::api::error::FieldError::new(
                    "role",
                    format!("there is no role named '{role}'"),
                )],
            )
        })?;
        let org_wide = role.permissions.contains_key(ORG)
            || role
                .permissions
                .values()
                .any(|actions| actions.values().any(|s| *s == Scope::All));
        if org_wide && !user.is_org_admin() {
            let what = format!("give the organisation-wide role {}", role.name);
            self.deny(&actor.user_id, "admin", None, None, &what).await;
            return Err(ApiError::forbidden(format!(
                "only an organisation admin may {what}"
            )));
        }
        Ok(())
    }

    /// The share that reaches the caller for one record, if any (the widest).
    pub async fn shared_access(
        &self,
        user: &UserAccess,
        object: &str,
        record_id: &str,
    ) -> Result<Option<ShareAccess>, sqlx::Error> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT access, user_id, department_id FROM record_shares WHERE record_id = $1 AND object = $2",
        )
        .bind(record_id)
        .bind(object)
        .fetch_all(&self.db.pool)
        .await?;
        let member_of: BTreeSet<&str> = user.departments().collect();
        Ok(rows
            .iter()
            .filter(|(_, u, d)| {
                u.as_deref() == Some(user.user_id.as_str())
                    || d.as_deref().is_some_and(|d| member_of.contains(d))
            })
            .map(|(a, _, _)| {
                if a == "write" {
                    ShareAccess::Write
                } else {
                    ShareAccess::Read
                }
            })
            .max())
    }

    /// Records a refused access. A failure to record it is logged, never hidden.
    pub async fn deny(
        &self,
        actor_id: &str,
        action: &str,
        object: Option<&str>,
        record_id: Option<&str>,
        reason: &str,
    ) {
        tracing::info!(
            actor = actor_id,
            action,
            object,
            record_id,
            reason,
            "access denied"
        );
        let written = sqlx::query(
            "INSERT INTO access_denials (id, actor_id, action, object, record_id, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(db::new_id())
        .bind(actor_id)
        .bind(action)
        .bind(object)
        .bind(record_id)
        .bind(reason)
        .bind(db::now())
        .execute(&self.db.pool)
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, actor = actor_id, action, "could not audit an access denial");
        }
    }

    /// Commits a change of roles, memberships or departments together with a bump of
    /// the policy version (so other processes reload), then reloads this one.
    pub(crate) async fn commit_policy_change(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<(), AccessError> {
        bump_policy_version(&mut tx).await?;
        tx.commit().await?;
        self.reload().await
    }
}

/// Marks the access policy as changed, inside the caller's transaction, so every host
/// process reloads it (memberships and active users are part of the policy).
pub async fn bump_policy_version(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE policy_version SET version = version + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}
