//! The document library: folders per department (or shared), documents with
//! versions, content stored once per SHA-256 and streamed in both directions.
//!
//! Access reads the `documents` object of the access policy, with the folder's
//! department as the document's: roles' `*` rights (or rights on `documents`) give
//! read, create and update by scope, exactly as for records. Folders without a
//! department form the shared library: everyone signed in reads it; uploading to it
//! needs the create right somewhere; its folders are made by organisation admins.
//! Every download is written to the audit log.

pub mod routes;
pub mod sniff;
pub mod store;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};
use utoipa::ToSchema;

use crate::access::shares::{Share, ShareInput};
use crate::access::{AccessControl, Action, ObjectAccess, ShareAccess, UserAccess};
use crate::api::error::{ApiError, FieldError};
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::records::query::{Bind, SqlBuilder, bind_all, escape_like};
use store::{BlobStore, StoreError, Stored};

/// A temporary upload this old is one a stopped host left behind (uploads of the
/// largest files at slow links take far less).
pub const SWEEP_TMP_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// Content stored this long ago without a committed version is an orphan.
pub const SWEEP_BLOBS_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The access policy's object for documents.
pub const OBJECT: &str = "documents";

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Folder {
    pub id: String,
    pub parent: Option<String>,
    pub name: String,
    /// `null` for the shared library.
    pub department: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderInput {
    pub name: String,
    /// The parent folder; its department is inherited.
    #[serde(default)]
    pub parent: Option<String>,
    /// For a top-level folder: its department (`null` for the shared library).
    #[serde(default)]
    pub department: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Document {
    pub id: String,
    pub folder: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// The uploader of the first version.
    pub owner: Option<String>,
    /// The folder's department (`null` in the shared library).
    pub department: Option<String>,
    /// The current version's number (1 for a new document).
    pub version: i64,
    pub file_name: String,
    /// Sniffed from the content, never taken from the client.
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// Checked out by this user (others cannot upload versions) until `locked_until`.
    pub locked_by: Option<String>,
    pub locked_until: Option<String>,
    /// In the trash since then (`null` when not).
    pub deleted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Version {
    pub version: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: Option<String>,
    /// Why it changed (empty for the first version).
    pub reason: String,
    pub created_at: String,
}

/// What an upload says about the file besides its bytes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadMeta {
    /// The file's name, such as `offer.pdf` (with a multipart upload, the file
    /// part's file name when this is not given).
    pub name: Option<String>,
    /// Default: the file name.
    pub title: Option<String>,
    pub description: Option<String>,
    /// Comma-separated.
    pub tags: Option<String>,
    /// Why this version (new versions).
    pub reason: Option<String>,
}

/// A page of documents, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentPage {
    pub items: Vec<Document>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    /// Only this folder's documents.
    pub folder: Option<String>,
    /// Words in the title, description, file name or tags.
    pub q: Option<String>,
    /// The trash instead: deleted documents the caller may read.
    #[serde(default)]
    pub trash: bool,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only documents of these departments or of the shared library: set by the
    /// host for plugins (where they are enabled), never from a query string.
    #[serde(skip)]
    #[param(ignore)]
    pub within: Option<Vec<String>>,
}

/// A department's document quota.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Quota {
    /// `null`: no quota.
    pub max_bytes: Option<i64>,
    /// The size of every version of the department's documents (trash included).
    #[serde(default)]
    pub used_bytes: i64,
}

/// A record a document is attached to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub object: String,
    pub record_id: String,
}

#[derive(Clone)]
pub struct DocumentService {
    db: Db,
    access: AccessControl,
    records: crate::records::service::RecordService,
    store: BlobStore,
    max_bytes: u64,
}

const DOCUMENT_COLUMNS: &str = "id, folder_id, title, description, tags, owner_id, department_id, current_version, \
     file_name, content_type, size, sha256, lock_owner, lock_until, deleted_at, created_at, updated_at";
const FOLDER_COLUMNS: &str =
    "id, parent_id, name, department_id, created_by, created_at, updated_at";
const VERSION_COLUMNS: &str =
    "version, file_name, content_type, size, sha256, uploaded_by, reason, created_at";

fn document_of(r: &sqlx::any::AnyRow) -> Result<Document, sqlx::Error> {
    let tags: String = r.try_get("tags")?;
    Ok(Document {
        id: r.try_get("id")?,
        folder: r.try_get("folder_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        owner: r.try_get("owner_id")?,
        department: r.try_get("department_id")?,
        version: r.try_get("current_version")?,
        file_name: r.try_get("file_name")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        locked_by: r.try_get("lock_owner")?,
        locked_until: r.try_get("lock_until")?,
        deleted_at: r.try_get("deleted_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn version_of(r: &sqlx::any::AnyRow) -> Result<Version, sqlx::Error> {
    Ok(Version {
        version: r.try_get("version")?,
        file_name: r.try_get("file_name")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        uploaded_by: r.try_get("uploaded_by")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
    })
}

fn folder_of(r: &sqlx::any::AnyRow) -> Result<Folder, sqlx::Error> {
    Ok(Folder {
        id: r.try_get("id")?,
        parent: r.try_get("parent_id")?,
        name: r.try_get("name")?,
        department: r.try_get("department_id")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(
        "the request is not valid",
        vec![FieldError::new(field, message)],
    )
}

fn not_found() -> ApiError {
    ApiError::not_found("there is no such document")
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooLarge(max) => ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("a file is at most {max} bytes"),
            ),
            StoreError::Empty => invalid("body", "the file is empty"),
            StoreError::CutOff(why) => {
                ApiError::bad_request(format!("the upload did not arrive whole: {why}"))
            }
            StoreError::Store(e) => ApiError::internal(e),
        }
    }
}

/// Who is asking, and their rights on documents.
struct Caller<'a> {
    actor: &'a Actor,
    user: Arc<UserAccess>,
    rights: Arc<ObjectAccess>,
}

impl Caller<'_> {
    /// May the caller act on a document with this owner in this department?
    fn may(&self, action: Action, owner: Option<&str>, department: Option<&str>) -> bool {
        match department {
            // The shared library: everyone reads; writing needs the right somewhere
            // (updating: the owner, or an organisation admin).
            None => match action {
                Action::Read => true,
                Action::Create => !self.rights.grants(Action::Create).is_empty(),
                _ => owner == Some(self.actor.user_id.as_str()) || self.user.is_org_admin(),
            },
            Some(_) => self
                .user
                .covers(self.rights.grants(action), owner, department),
        }
    }
}

impl DocumentService {
    pub fn new(
        db: Db,
        access: AccessControl,
        records: crate::records::service::RecordService,
        store: BlobStore,
        max_bytes: u64,
    ) -> Self {
        DocumentService {
            db,
            access,
            records,
            store,
            max_bytes,
        }
    }

    fn caller<'a>(&self, actor: &'a Actor) -> Caller<'a> {
        let user = self.access.user(actor);
        let rights = user.object(OBJECT);
        Caller {
            actor,
            user,
            rights,
        }
    }

    async fn deny(&self, c: &Caller<'_>, action: Action, id: Option<&str>, why: &str) -> ApiError {
        self.access
            .deny(&c.actor.user_id, action.as_str(), Some(OBJECT), id, why)
            .await;
        ApiError::forbidden(format!("you may not {why}"))
    }

    async fn folder(&self, id: &str) -> Result<Folder, ApiError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FOLDER_COLUMNS} FROM doc_folders WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such folder"))?;
        Ok(folder_of(&row)?)
    }

    pub async fn create_folder(
        &self,
        actor: &Actor,
        input: FolderInput,
    ) -> Result<Folder, ApiError> {
        let c = self.caller(actor);
        sniff::check_name(&input.name).map_err(|e| invalid("name", e))?;
        let department = match &input.parent {
            Some(parent) => {
                let parent = self
                    .folder(parent)
                    .await
                    .map_err(|_| invalid("parent", "is not a folder"))?;
                if input.department.is_some() && input.department != parent.department {
                    return Err(invalid(
                        "department",
                        "a sub-folder is in its parent's department",
                    ));
                }
                parent.department
            }
            None => input.department.clone(),
        };
        let allowed = match &department {
            Some(d) => {
                if !self.access.department_tree().departments.exists(d) {
                    return Err(invalid("department", "is not a department"));
                }
                c.may(Action::Create, Some(&actor.user_id), Some(d))
            }
            None => c.user.is_org_admin(),
        };
        if !allowed {
            return Err(self
                .deny(&c, Action::Create, None, "create folders there")
                .await);
        }
        let now = db::now();
        let folder = Folder {
            id: db::new_id(),
            parent: input.parent,
            name: input.name,
            department,
            created_by: Some(actor.user_id.clone()),
            created_at: now.clone(),
            updated_at: now,
        };
        let done = sqlx::query(
            "INSERT INTO doc_folders (id, parent_id, name, department_id, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&folder.id)
        .bind(&folder.parent)
        .bind(&folder.name)
        .bind(&folder.department)
        .bind(&folder.created_by)
        .bind(&folder.created_at)
        .execute(&self.db.pool)
        .await;
        match done {
            Ok(_) => Ok(folder),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(ApiError::conflict("a folder of that name is there already"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The folders the caller sees: the shared library and its departments' (those
    /// where it may read or add documents).
    pub async fn folders(&self, actor: &Actor) -> Result<Vec<Folder>, ApiError> {
        let c = self.caller(actor);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FOLDER_COLUMNS} FROM doc_folders ORDER BY name, id"
        )))
        .fetch_all(&self.db.pool)
        .await?;
        let tree = self.access.department_tree();
        let grants: Vec<&crate::access::Grant> = [Action::Read, Action::Create]
            .into_iter()
            .flat_map(|a| c.rights.grants(a))
            .collect();
        let mut folders = Vec::new();
        for r in &rows {
            let f = folder_of(r)?;
            let sees = match f.department.as_deref() {
                None => true,
                Some(d) => grants.iter().any(|g| {
                    g.scope == crate::access::Scope::All
                        || g.department == d
                        || tree.departments.is_within(d, &g.department)
                }),
            };
            if sees {
                folders.push(f);
            }
        }
        Ok(folders)
    }

    /// Stores a new document from a stream of its bytes.
    pub async fn upload<S, E>(
        &self,
        actor: &Actor,
        folder: &str,
        meta: UploadMeta,
        body: S,
    ) -> Result<Document, ApiError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let c = self.caller(actor);
        let folder = self.folder(folder).await?;
        let (name, title, description, tags) = check_meta(&meta)?;
        if !c.may(
            Action::Create,
            Some(&actor.user_id),
            folder.department.as_deref(),
        ) {
            return Err(self
                .deny(&c, Action::Create, None, "add documents to this folder")
                .await);
        }
        let stored = self.store(body, folder.department.as_deref()).await?;
        let content_type = sniff::content_type(&stored.head, &name);
        let now = db::now();
        let id = db::new_id();
        let written = async {
            let mut tx = self.db.pool.begin().await?;
            remember_blob(&mut tx, &stored, &now).await?;
            sqlx::query(
                "INSERT INTO documents (id, folder_id, title, description, tags, owner_id, department_id, current_version, \
                 file_name, content_type, size, sha256, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11, $12, $12)",
            )
            .bind(&id)
            .bind(&folder.id)
            .bind(&title)
            .bind(&description)
            .bind(serde_json::to_string(&tags).expect("tags serialise"))
            .bind(&actor.user_id)
            .bind(&folder.department)
            .bind(&name)
            .bind(content_type)
            .bind(stored.size as i64)
            .bind(&stored.sha256)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            insert_version(
                &mut tx,
                &id,
                1,
                &name,
                content_type,
                &stored,
                &actor.user_id,
                "",
                &now,
            )
            .await?;
            hold_quota(&mut tx, folder.department.as_deref()).await?;
            Ok::<_, ApiError>(tx.commit().await?)
        }
        .await;
        self.settle(&stored, written).await?;
        self.get(actor, &id).await
    }

    /// Settles stored content after the commit that names it (`written`): its
    /// upload's temporary copy is dropped, or moved into place when the content
    /// was removed meanwhile; after a failed commit it is discarded.
    async fn settle(&self, stored: &Stored, written: Result<(), ApiError>) -> Result<(), ApiError> {
        if let Err(e) = written {
            self.store.discard(stored).await;
            return Err(e);
        }
        Ok(self.store.settle(stored).await?)
    }

    /// Stores a new current version; the caller needs the update right.
    pub async fn new_version<S, E>(
        &self,
        actor: &Actor,
        id: &str,
        meta: UploadMeta,
        body: S,
    ) -> Result<Document, ApiError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let name = meta
            .name
            .clone()
            .ok_or_else(|| invalid("name", "is required, such as ?name=offer.pdf"))?;
        sniff::check_name(&name).map_err(|e| invalid("name", e))?;
        let reason = check_reason(meta.reason.as_deref())?;
        let current = self
            .for_action(actor, id, Action::Update, "change this document")
            .await?;
        if current.deleted_at.is_some() {
            return Err(not_found());
        }
        // Checked before the bytes arrive (and again when the version is written).
        check_lock(&current, actor)?;
        let stored = self.store(body, current.department.as_deref()).await?;
        let content_type = sniff::content_type(&stored.head, &name);
        self.add_version(actor, &current, &name, content_type, &stored, &reason)
            .await
    }

    /// Makes an old version the current one again, as a new version (the history
    /// keeps everything); no content is copied.
    pub async fn restore_version(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
        reason: Option<&str>,
    ) -> Result<Document, ApiError> {
        let reason = check_reason(reason)?;
        let current = self
            .for_action(actor, id, Action::Update, "change this document")
            .await?;
        if current.deleted_at.is_some() {
            return Err(not_found());
        }
        check_lock(&current, actor)?;
        let old = self
            .version(id, version)
            .await?
            .ok_or_else(|| ApiError::not_found("the document has no such version"))?;
        let stored = Stored::existing(old.sha256.clone(), old.size as u64);
        let reason = if reason.is_empty() {
            format!("restored version {version}")
        } else {
            reason
        };
        self.add_version(
            actor,
            &current,
            &old.file_name,
            &old.content_type,
            &stored,
            &reason,
        )
        .await
    }

    /// Writes the next version and makes it current, unless someone else checked
    /// the document out meanwhile or the department's quota is full.
    async fn add_version(
        &self,
        actor: &Actor,
        current: &Document,
        name: &str,
        content_type: &str,
        stored: &Stored,
        reason: &str,
    ) -> Result<Document, ApiError> {
        let id = current.id.as_str();
        let now = db::now();
        let written = async {
            let mut tx = self.db.pool.begin().await?;
            remember_blob(&mut tx, stored, &now).await?;
            // The row lock taken by this UPDATE orders concurrent uploads: each gets
            // the next number, and both are kept.
            let updated = sqlx::query(
                "UPDATE documents SET current_version = current_version + 1, file_name = $1, content_type = $2, \
                 size = $3, sha256 = $4, updated_at = $5 WHERE id = $6 \
                 AND (lock_owner IS NULL OR lock_owner = $7 OR lock_until < $5)",
            )
            .bind(name)
            .bind(content_type)
            .bind(stored.size as i64)
            .bind(&stored.sha256)
            .bind(&now)
            .bind(id)
            .bind(&actor.user_id)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(ApiError::conflict(
                    "someone else checked the document out meanwhile; try again when it is released",
                ));
            }
            let version: i64 =
                sqlx::query_scalar("SELECT current_version FROM documents WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            insert_version(
                &mut tx,
                id,
                version,
                name,
                content_type,
                stored,
                &actor.user_id,
                reason,
                &now,
            )
            .await?;
            hold_quota(&mut tx, current.department.as_deref()).await?;
            Ok(tx.commit().await?)
        }
        .await;
        self.settle(stored, written).await?;
        self.get(actor, id).await
    }

    async fn version(&self, id: &str, version: i64) -> Result<Option<Version>, ApiError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM document_versions WHERE document_id = $1 AND version = $2"
        )))
        .bind(id)
        .bind(version)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(version_of).transpose()?)
    }

    /// Checks the document out for `minutes` (default 60, at most a day): until
    /// released or expired, only the caller uploads versions.
    pub async fn lock(
        &self,
        actor: &Actor,
        id: &str,
        minutes: Option<i64>,
    ) -> Result<Document, ApiError> {
        let minutes = minutes.unwrap_or(60);
        if !(1..=1440).contains(&minutes) {
            return Err(invalid("minutes", "must be 1 to 1,440"));
        }
        let doc = self
            .for_action(actor, id, Action::Update, "check this document out")
            .await?;
        check_lock(&doc, actor)?;
        let now = chrono::Utc::now();
        let taken = sqlx::query(
            "UPDATE documents SET lock_owner = $1, lock_until = $2 WHERE id = $3 \
             AND (lock_owner IS NULL OR lock_owner = $1 OR lock_until < $4)",
        )
        .bind(&actor.user_id)
        .bind(db::format_time(now + chrono::TimeDelta::minutes(minutes)))
        .bind(id)
        .bind(db::format_time(now))
        .execute(&self.db.pool)
        .await?;
        if taken.rows_affected() == 0 {
            return Err(ApiError::conflict(
                "someone else checked the document out meanwhile",
            ));
        }
        self.get(actor, id).await
    }

    /// Releases a check-out: its holder, or an admin of the document's department.
    pub async fn unlock(&self, actor: &Actor, id: &str) -> Result<Document, ApiError> {
        let doc = self.get(actor, id).await?;
        let c = self.caller(actor);
        let holder = doc.locked_by.as_deref() == Some(actor.user_id.as_str());
        if doc.locked_by.is_some() && !holder && !c.user.is_admin_of(doc.department.as_deref()) {
            return Err(self
                .deny(
                    &c,
                    Action::Update,
                    Some(id),
                    "release someone else's check-out",
                )
                .await);
        }
        sqlx::query("UPDATE documents SET lock_owner = NULL, lock_until = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        self.get(actor, id).await
    }

    /// Moves a document to the trash (the delete right), or back out of it.
    pub async fn trash(
        &self,
        actor: &Actor,
        id: &str,
        deleted: bool,
    ) -> Result<Document, ApiError> {
        let doc = self
            .for_action(actor, id, Action::Delete, "delete this document")
            .await?;
        if deleted {
            check_lock(&doc, actor)?;
        }
        sqlx::query(
            "UPDATE documents SET deleted_at = $1, deleted_by = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(deleted.then(db::now))
        .bind(deleted.then(|| actor.user_id.clone()))
        .bind(db::now())
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        self.readable(actor, id).await
    }

    /// Deletes a document in the trash for good, with its versions and links, and
    /// its content where no other version holds it: admins of its department.
    pub async fn purge(&self, actor: &Actor, id: &str) -> Result<(), ApiError> {
        let doc = self.readable(actor, id).await?;
        if !self.may_purge(actor, &doc) {
            let c = self.caller(actor);
            return Err(self
                .deny(&c, Action::Admin, Some(id), "purge this document")
                .await);
        }
        if doc.deleted_at.is_none() {
            return Err(ApiError::conflict(
                "only a document in the trash can be purged",
            ));
        }
        let shas: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT sha256 FROM document_versions WHERE document_id = $1",
        )
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut tx = self.db.pool.begin().await?;
        for sql in [
            "DELETE FROM document_links WHERE document_id = $1",
            "DELETE FROM document_versions WHERE document_id = $1",
            "DELETE FROM documents WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        for sha in shas {
            forget_blob(&mut tx, &self.store, &sha).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Who a document is shared with (anyone who reads it may see this).
    pub async fn shares(&self, actor: &Actor, id: &str) -> Result<Vec<Share>, ApiError> {
        self.get(actor, id).await?;
        self.access.list_shares(OBJECT, id).await
    }

    /// Whether `actor` may share `doc` and take its shares back: its owner, or an
    /// admin of its department.
    pub fn may_share(&self, actor: &Actor, doc: &Document) -> bool {
        doc.owner.as_deref() == Some(actor.user_id.as_str())
            || self
                .caller(actor)
                .user
                .is_admin_of(doc.department.as_deref())
    }

    /// Whether `actor` may move `doc` to the trash and take it back.
    pub fn may_delete(&self, actor: &Actor, doc: &Document) -> bool {
        self.caller(actor).may(
            Action::Delete,
            doc.owner.as_deref(),
            doc.department.as_deref(),
        )
    }

    /// Whether `actor` may delete `doc` for good once it is in the trash: an
    /// admin of its department.
    pub fn may_purge(&self, actor: &Actor, doc: &Document) -> bool {
        self.caller(actor)
            .user
            .is_admin_of(doc.department.as_deref())
    }

    /// Shares a document with a user or a department, or takes a share back: its
    /// owner, or an admin of its department.
    pub async fn share(
        &self,
        actor: &Actor,
        id: &str,
        change: Result<&ShareInput, &str>,
    ) -> Result<Option<Share>, ApiError> {
        let doc = self.get(actor, id).await?;
        if !self.may_share(actor, &doc) {
            let c = self.caller(actor);
            return Err(self
                .deny(
                    &c,
                    Action::Admin,
                    Some(id),
                    "share this document (its owner or an admin may)",
                )
                .await);
        }
        match change {
            Ok(input) => Ok(Some(
                self.access
                    .put_share(&actor.user_id, OBJECT, id, input)
                    .await?,
            )),
            Err(share) => {
                self.access.delete_share(OBJECT, id, share).await?;
                Ok(None)
            }
        }
    }

    /// Attaches a document to a record; the caller reads both.
    pub async fn link(&self, actor: &Actor, id: &str, link: &Link) -> Result<Vec<Link>, ApiError> {
        self.get(actor, id).await?;
        self.records
            .get(actor, &link.object, &link.record_id)
            .await?;
        sqlx::query(
            "INSERT INTO document_links (document_id, object, record_id, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (document_id, object, record_id) DO NOTHING",
        )
        .bind(id)
        .bind(&link.object)
        .bind(&link.record_id)
        .bind(&actor.user_id)
        .bind(db::now())
        .execute(&self.db.pool)
        .await?;
        self.links(actor, id).await
    }

    pub async fn unlink(&self, actor: &Actor, id: &str, link: &Link) -> Result<(), ApiError> {
        self.get(actor, id).await?;
        self.records
            .get(actor, &link.object, &link.record_id)
            .await?;
        sqlx::query(
            "DELETE FROM document_links WHERE document_id = $1 AND object = $2 AND record_id = $3",
        )
        .bind(id)
        .bind(&link.object)
        .bind(&link.record_id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// The records a document is attached to that the caller may read.
    pub async fn links(&self, actor: &Actor, id: &str) -> Result<Vec<Link>, ApiError> {
        self.get(actor, id).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT object, record_id FROM document_links WHERE document_id = $1 ORDER BY created_at, record_id LIMIT 500",
        )
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut links = Vec::new();
        for (object, record_id) in rows {
            if self.records.get(actor, &object, &record_id).await.is_ok() {
                links.push(Link { object, record_id });
            }
        }
        Ok(links)
    }

    /// The documents attached to a record, those the caller may read.
    pub async fn of_record(
        &self,
        actor: &Actor,
        object: &str,
        record_id: &str,
    ) -> Result<Vec<Document>, ApiError> {
        self.records.get(actor, object, record_id).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT document_id FROM document_links WHERE record_id = $1 AND object = $2 ORDER BY created_at LIMIT 500",
        )
        .bind(record_id)
        .bind(object)
        .fetch_all(&self.db.pool)
        .await?;
        let mut docs = Vec::new();
        for id in ids {
            if let Ok(doc) = self.get(actor, &id).await {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    /// Streams an upload to the store, within the file size limit and what is left
    /// of the department's quota.
    async fn store<S, E>(&self, body: S, department: Option<&str>) -> Result<Stored, ApiError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let quota = match department {
            Some(d) => self.quota(d).await?,
            None => Quota::default(),
        };
        let room = quota
            .max_bytes
            .map(|max| (max - quota.used_bytes).max(0) as u64);
        let limit = room.map_or(self.max_bytes, |r| r.min(self.max_bytes));
        let quota_full = |room: u64| {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the department's document quota of {} bytes has {room} bytes left",
                    quota.max_bytes.unwrap_or_default()
                ),
            )
        };
        if room == Some(0) {
            return Err(quota_full(0));
        }
        match self.store.put(body, limit).await {
            Err(StoreError::TooLarge(_)) if room.is_some_and(|r| r < self.max_bytes) => {
                Err(quota_full(room.unwrap_or_default()))
            }
            other => Ok(other?),
        }
    }

    /// A department's quota and what its documents use (every version counts).
    pub async fn quota(&self, department: &str) -> Result<Quota, ApiError> {
        let max_bytes: Option<i64> =
            sqlx::query_scalar("SELECT max_bytes FROM doc_quotas WHERE department_id = $1")
                .bind(department)
                .fetch_optional(&self.db.pool)
                .await?;
        let used: Option<i64> = sqlx::query_scalar(USED_BYTES)
            .bind(department)
            .fetch_one(&self.db.pool)
            .await?;
        Ok(Quota {
            max_bytes,
            used_bytes: used.unwrap_or(0),
        })
    }

    /// Sets (or, with `None`, removes) a department's quota: organisation admins.
    pub async fn set_quota(
        &self,
        actor: &Actor,
        department: &str,
        max_bytes: Option<i64>,
    ) -> Result<Quota, ApiError> {
        let c = self.caller(actor);
        if !c.user.is_org_admin() {
            return Err(self
                .deny(&c, Action::Admin, None, "set document quotas")
                .await);
        }
        if !self.access.department_tree().departments.exists(department) {
            return Err(ApiError::not_found("there is no such department"));
        }
        match max_bytes {
            Some(m) if m < 0 => return Err(invalid("max_bytes", "must be 0 or more")),
            Some(m) => {
                sqlx::query(
                    "INSERT INTO doc_quotas (department_id, max_bytes) VALUES ($1, $2) \
                     ON CONFLICT (department_id) DO UPDATE SET max_bytes = excluded.max_bytes",
                )
                .bind(department)
                .bind(m)
                .execute(&self.db.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM doc_quotas WHERE department_id = $1")
                    .bind(department)
                    .execute(&self.db.pool)
                    .await?;
            }
        }
        self.quota(department).await
    }

    /// A document the caller may read (404 otherwise, as for one that does not
    /// exist), not in the trash.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Document, ApiError> {
        let doc = self.readable(actor, id).await?;
        if doc.deleted_at.is_some() {
            return Err(not_found());
        }
        Ok(doc)
    }

    /// A document the caller may read, in the trash or not.
    async fn readable(&self, actor: &Actor, id: &str) -> Result<Document, ApiError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(not_found)?;
        let doc = document_of(&row)?;
        let c = self.caller(actor);
        if !c.may(
            Action::Read,
            doc.owner.as_deref(),
            doc.department.as_deref(),
        ) && self.share_of(&c, id).await?.is_none()
        {
            return Err(not_found());
        }
        Ok(doc)
    }

    /// The share of this document that reaches the caller, if any.
    async fn share_of(&self, c: &Caller<'_>, id: &str) -> Result<Option<ShareAccess>, ApiError> {
        Ok(self.access.shared_access(&c.user, OBJECT, id).await?)
    }

    /// A readable document the caller may also act on with `action` (403 and an
    /// audited denial otherwise).
    async fn for_action(
        &self,
        actor: &Actor,
        id: &str,
        action: Action,
        why: &str,
    ) -> Result<Document, ApiError> {
        let doc = self.readable(actor, id).await?;
        let c = self.caller(actor);
        let allowed = c.may(action, doc.owner.as_deref(), doc.department.as_deref())
            || (action == Action::Update
                && self.share_of(&c, id).await? == Some(ShareAccess::Write));
        if !allowed {
            return Err(self.deny(&c, action, Some(id), why).await);
        }
        Ok(doc)
    }

    /// The documents the caller may read, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        query: &DocumentQuery,
    ) -> Result<DocumentPage, ApiError> {
        let limit = query.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::bad_request("limit must be 1 to 200"));
        }
        let c = self.caller(actor);
        let mut b = SqlBuilder::default();
        let mut conditions = Vec::new();
        let scope = c.user.read_scope(&c.rights);
        // The scope holds the caller's shares too; the shared library is readable
        // by everyone.
        if let Some(readable) = scope.sql(OBJECT, &mut b) {
            conditions.push(format!("({readable} OR department_id IS NULL)"));
        }
        conditions.push(
            if query.trash {
                "deleted_at IS NOT NULL"
            } else {
                "deleted_at IS NULL"
            }
            .to_string(),
        );
        if let Some(within) = &query.within {
            let params: Vec<String> = within
                .iter()
                .map(|d| b.bind(Bind::Text(d.clone())))
                .collect();
            conditions.push(if params.is_empty() {
                "department_id IS NULL".to_string()
            } else {
                format!(
                    "(department_id IS NULL OR department_id IN ({}))",
                    params.join(", ")
                )
            });
        }
        if let Some(folder) = &query.folder {
            conditions.push(format!(
                "folder_id = {}",
                b.bind(Bind::Text(folder.clone()))
            ));
        }
        if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let escaped = escape_like(&q.to_lowercase());
            let p = b.bind(Bind::Text(format!("%{escaped}%")));
            conditions.push(format!(
                "(lower(title) LIKE {p} ESCAPE '\\' OR lower(description) LIKE {p} ESCAPE '\\' \
                 OR lower(file_name) LIKE {p} ESCAPE '\\' OR lower(tags) LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(cursor) = &query.cursor {
            conditions.push(format!("id < {}", b.bind(Bind::Text(cursor.clone()))));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents {filter} ORDER BY id DESC LIMIT {}",
            b.bind(Bind::Int(limit + 1))
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), b.binds)
            .fetch_all(&self.db.pool)
            .await?;
        let items: Vec<Document> = rows.iter().map(document_of).collect::<Result<_, _>>()?;
        let (items, next_cursor) = crate::api::cut_page(items, limit, |d| d.id.clone());
        Ok(DocumentPage { items, next_cursor })
    }

    /// Every version, newest first.
    pub async fn versions(&self, actor: &Actor, id: &str) -> Result<Vec<Version>, ApiError> {
        self.get(actor, id).await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM document_versions WHERE document_id = $1 ORDER BY version DESC"
        )))
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(version_of).collect::<Result<_, _>>()?)
    }

    /// A version (the current one when `None`) to download; the download is audited.
    pub async fn open(
        &self,
        actor: &Actor,
        id: &str,
        version: Option<i64>,
    ) -> Result<(Document, Version), ApiError> {
        let (doc, v) = self.readable_version(actor, id, version).await?;
        self.audit_download(actor, id, v.version).await?;
        Ok((doc, v))
    }

    /// A readable document and one of its versions (the current one when `None`).
    pub async fn readable_version(
        &self,
        actor: &Actor,
        id: &str,
        version: Option<i64>,
    ) -> Result<(Document, Version), ApiError> {
        let doc = self.get(actor, id).await?;
        let v = self
            .version(id, version.unwrap_or(doc.version))
            .await?
            .ok_or_else(|| ApiError::not_found("the document has no such version"))?;
        Ok((doc, v))
    }

    /// Records that `actor` read a version of the document (its history shows it).
    pub async fn audit_download(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
    ) -> Result<(), ApiError> {
        let entry = crate::audit::AuditEntry {
            id: db::new_id(),
            object: OBJECT.into(),
            record_id: id.into(),
            action: crate::audit::AuditAction::Downloaded,
            actor: Some(actor.user_id.clone()),
            version,
            at: db::now(),
            changes: serde_json::Map::new(),
        };
        let mut conn = self.db.pool.acquire().await?;
        crate::audit::insert(&mut conn, self.db.dialect, &[&entry]).await?;
        Ok(())
    }

    /// The audit trail of a document (its downloads), oldest first, for admins of
    /// its department.
    pub async fn history(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Vec<crate::audit::AuditEntry>, ApiError> {
        let doc = self.get(actor, id).await?;
        let c = self.caller(actor);
        if !c.user.is_admin_of(doc.department.as_deref()) {
            return Err(self
                .deny(&c, Action::Admin, Some(id), "read this document's history")
                .await);
        }
        Ok(crate::audit::history(&self.db, OBJECT, id, None, 1_000).await?)
    }

    /// Removes what failed uploads and failed commits left in the store:
    /// temporary uploads older than [`SWEEP_TMP_AFTER`], and blobs no
    /// `doc_blobs` row names that are older than [`SWEEP_BLOBS_AFTER`] (the
    /// window between storing content and committing its version). Answers how
    /// many objects it removed.
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        let (tmp, _) = self.store.stale(SWEEP_TMP_AFTER).await?;
        let (_, blobs) = self.store.stale(SWEEP_BLOBS_AFTER).await?;
        let mut removed = 0;
        for path in tmp {
            self.store.delete_tmp(&path).await?;
            removed += 1;
        }
        for sha in blobs {
            // Claim the name first: an upload of the same bytes committing now waits
            // for this transaction, then finds the content gone and puts its own
            // copy in place (`BlobStore::settle`).
            let mut tx = self.db.pool.begin().await?;
            let claimed = sqlx::query(
                "INSERT INTO doc_blobs (sha256, size, created_at) VALUES ($1, 0, $2) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&sha)
            .bind(db::now())
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() == 1 && forget_blob(&mut tx, &self.store, &sha).await? {
                removed += 1;
            }
            tx.commit().await?;
        }
        Ok(removed)
    }

    /// Sweeps the store now and then every [`SWEEP_EVERY`].
    pub fn spawn_sweeper(&self) {
        let documents = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                match documents.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "swept the document store"),
                    Err(e) => {
                        tracing::warn!(error = ?e.detail, "sweeping the document store failed")
                    }
                }
            }
        });
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.store
    }
}

/// Refuses an upload while someone else holds an unexpired check-out.
fn check_lock(doc: &Document, actor: &Actor) -> Result<(), ApiError> {
    match (&doc.locked_by, &doc.locked_until) {
        (Some(holder), Some(until)) if *holder != actor.user_id && *until > db::now() => {
            Err(ApiError::conflict(format!(
                "the document is checked out by {holder} until {until}"
            )))
        }
        _ => Ok(()),
    }
}

fn check_reason(reason: Option<&str>) -> Result<String, ApiError> {
    let reason = reason.unwrap_or_default().trim().to_string();
    if reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(invalid(
            "reason",
            "must be at most 500 characters without control characters",
        ));
    }
    Ok(reason)
}

/// Name, title, description and tags of an upload, checked.
fn check_meta(meta: &UploadMeta) -> Result<(String, String, String, Vec<String>), ApiError> {
    let mut errors = Vec::new();
    let name = meta.name.clone().unwrap_or_default();
    let name_ok = match (&meta.name, sniff::check_name(&name)) {
        (None, _) => {
            errors.push(FieldError::new(
                "name",
                "is required, such as ?name=offer.pdf",
            ));
            false
        }
        (Some(_), Err(e)) => {
            errors.push(FieldError::new("name", e));
            false
        }
        (Some(_), Ok(())) => true,
    };
    let title = meta.title.clone().unwrap_or_else(|| name.clone());
    // Without a title, the name stands in: a bad name's own error says enough.
    let title_bad = title.trim().is_empty()
        || title.chars().count() > 200
        || title.chars().any(char::is_control);
    if (meta.title.is_some() || name_ok) && title_bad {
        errors.push(FieldError::new(
            "title",
            "must be 1 to 200 characters without control characters",
        ));
    }
    let description = meta.description.clone().unwrap_or_default();
    if description.chars().count() > 2_000 {
        errors.push(FieldError::new(
            "description",
            "must be at most 2,000 characters",
        ));
    }
    let tags: Vec<String> = meta
        .tags
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.len() > 20 || tags.iter().any(|t| t.chars().count() > 50) {
        errors.push(FieldError::new(
            "tags",
            "at most 20 tags of at most 50 characters",
        ));
    }
    if errors.is_empty() {
        Ok((name, title, description, tags))
    } else {
        Err(ApiError::invalid("the upload is not valid", errors))
    }
}

async fn remember_blob(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    stored: &Stored,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO doc_blobs (sha256, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&stored.sha256)
    .bind(stored.size as i64)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inside a transaction: deletes content no version holds any more, its
/// `doc_blobs` row and then its bytes, before the commit. An upload of the same
/// bytes that found them stored commits its version only after this transaction
/// (its insert waits on the row), so it finds them gone and restores them from its
/// own copy. Should the commit fail after the bytes went, only content that no
/// version held is lost. Answers whether it deleted.
async fn forget_blob(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    store: &BlobStore,
    sha256: &str,
) -> Result<bool, ApiError> {
    let deleted = sqlx::query(
        "DELETE FROM doc_blobs WHERE sha256 = $1 \
         AND NOT EXISTS (SELECT 1 FROM document_versions WHERE sha256 = $1)",
    )
    .bind(sha256)
    .execute(&mut **tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    store.delete(sha256).await?;
    Ok(true)
}

/// Inside the commit of new content: holds the department's quota row (a row lock
/// on PostgreSQL, the write lock on SQLite), so uploads to one department commit
/// one at a time, and refuses the version when, with it, the department uses more
/// than its quota. The check before the upload tells the client early; this one
/// holds when uploads race for the last bytes.
async fn hold_quota(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    department: Option<&str>,
) -> Result<(), ApiError> {
    let Some(department) = department else {
        return Ok(());
    };
    let held = sqlx::query("UPDATE doc_quotas SET max_bytes = max_bytes WHERE department_id = $1")
        .bind(department)
        .execute(&mut **tx)
        .await?;
    if held.rows_affected() == 0 {
        return Ok(());
    }
    let max: i64 = sqlx::query_scalar("SELECT max_bytes FROM doc_quotas WHERE department_id = $1")
        .bind(department)
        .fetch_one(&mut **tx)
        .await?;
    let used: Option<i64> = sqlx::query_scalar(USED_BYTES)
        .bind(department)
        .fetch_one(&mut **tx)
        .await?;
    let used = used.unwrap_or(0);
    if used > max {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the department's document quota of {max} bytes is used up by uploads that finished first"
            ),
        ));
    }
    Ok(())
}

/// Bytes a department's documents use: every version counts.
const USED_BYTES: &str = "SELECT CAST(SUM(v.size) AS BIGINT) FROM document_versions v \
     JOIN documents d ON d.id = v.document_id WHERE d.department_id = $1";

#[allow(clippy::too_many_arguments)]
async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    version: i64,
    name: &str,
    content_type: &str,
    stored: &Stored,
    uploader: &str,
    reason: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO document_versions (document_id, version, file_name, content_type, size, sha256, uploaded_by, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(version)
    .bind(name)
    .bind(content_type)
    .bind(stored.size as i64)
    .bind(&stored.sha256)
    .bind(uploader)
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
