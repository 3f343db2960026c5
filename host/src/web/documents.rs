//! The document library pages: folders and their documents, a document with its
//! versions (download, restore), check-out locks, sharing, and uploads of new
//! documents and versions (streamed, with a progress bar when the page script
//! runs); the trash (put back, delete for good). The same document service and
//! rights as `/api/v1/documents`.

use askama::Template;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::i18n::Tr;
use super::sharing::{Sharing, share_input, sharing};
use super::{FormData, Visitor, WebResult, render};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::documents::routes::{Target, download, with_body};
use crate::documents::{DocumentQuery, UploadMeta};

pub struct FolderItem {
    pub id: String,
    pub name: String,
    pub current: bool,
}

pub struct DocumentItem {
    pub id: String,
    pub href: String,
    pub title: String,
    pub file_name: String,
    pub version: String,
    pub size: String,
    pub updated: String,
    pub locked: bool,
    /// In the trash: whether the visitor may delete it for good.
    pub can_purge: bool,
}

#[derive(Template)]
#[template(path = "web/documents.html")]
struct LibraryPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    folders: Vec<FolderItem>,
    folder: String,
    /// Where the upload form posts: the folder and the CSRF token, URL-encoded.
    upload_action: String,
    search: String,
    /// The trash is shown instead of a folder.
    trash: bool,
    documents: Vec<DocumentItem>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct LibraryQuery {
    folder: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    /// `1`: the trash.
    #[serde(default)]
    trash: Option<String>,
}

/// A size in bytes as people read it.
fn size_text(tr: &Tr, bytes: i64) -> String {
    let text = match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    };
    tr.digits(&text)
}

/// `GET /documents[?folder=&q=&cursor=]`, or `?trash=1`: the deleted documents
/// the visitor may read.
pub async fn library(
    State(app): State<AppState>,
    v: Visitor,
    Query(q): Query<LibraryQuery>,
) -> WebResult {
    let folders = app
        .documents
        .folders(&v.actor)
        .await
        .map_err(|e| v.fail(e))?;
    let trash = q
        .trash
        .as_deref()
        .is_some_and(|t| !t.is_empty() && t != "0");
    let folder = match trash {
        true => String::new(),
        false => q.folder.clone().unwrap_or_default(),
    };
    let query = DocumentQuery {
        folder: Some(folder.clone()).filter(|f| !f.is_empty()),
        q: q.q.clone().filter(|s| !s.trim().is_empty()),
        trash,
        cursor: q.cursor.clone(),
        limit: Some(50),
        ..Default::default()
    };
    let page = app
        .documents
        .list(&v.actor, &query)
        .await
        .map_err(|e| v.fail(e))?;
    let tr = &v.tr;
    let next_href = page.next_cursor.as_deref().map(|c| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("folder", &folder)
            .append_pair("q", q.q.as_deref().unwrap_or_default())
            .append_pair("cursor", c);
        if trash {
            s.append_pair("trash", "1");
        }
        format!("/documents?{}", s.finish())
    });
    Ok(render(&LibraryPage {
        v: &v,
        tr,
        folders: folders
            .into_iter()
            .map(|f| FolderItem {
                current: f.id == folder,
                id: f.id,
                name: f.name,
            })
            .collect(),
        search: q.q.unwrap_or_default(),
        upload_action: {
            let mut a = form_urlencoded::Serializer::new(String::new());
            a.append_pair("folder", &folder)
                .append_pair("_csrf", &v.csrf);
            format!("/documents/upload?{}", a.finish())
        },
        documents: page
            .items
            .into_iter()
            .map(|d| DocumentItem {
                can_purge: trash && app.documents.may_purge(&v.actor, &d),
                href: format!("/documents/{}", d.id),
                title: d.title,
                file_name: d.file_name,
                version: tr.digits(&d.version.to_string()),
                size: size_text(tr, d.size),
                updated: tr.date(&d.updated_at),
                locked: d.locked_by.is_some(),
                id: d.id,
            })
            .collect(),
        folder,
        trash,
        next_href,
    }))
}

pub struct VersionItem {
    pub number: i64,
    pub shown: String,
    pub file_name: String,
    pub size: String,
    pub by: String,
    pub at: String,
    pub reason: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "web/document.html")]
struct DocumentPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    id: String,
    title: String,
    description: String,
    tags: String,
    locked_by: String,
    locked_by_me: bool,
    versions: Vec<VersionItem>,
    sharing: Sharing,
    /// The visitor may move it to the trash.
    can_trash: bool,
    error: String,
}

/// A refused change of a document (locked by someone else, over quota, no right)
/// shown on its page with the reason; a document the visitor may not read is the
/// error page's 404.
async fn refused(app: &AppState, v: &Visitor, id: &str, e: ApiError) -> WebResult {
    if e.status == StatusCode::NOT_FOUND {
        return Err(v.fail(e));
    }
    let status = e.status;
    document_page(app, v, id, status, v.fail(e).message).await
}

/// `GET /documents/{id}`.
pub async fn document(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
) -> WebResult {
    document_page(&app, &v, &id, StatusCode::OK, String::new()).await
}

async fn document_page(
    app: &AppState,
    v: &Visitor,
    id: &str,
    status: StatusCode,
    error: String,
) -> WebResult {
    let doc = app
        .documents
        .get(&v.actor, id)
        .await
        .map_err(|e| v.fail(e))?;
    let versions = app
        .documents
        .versions(&v.actor, id)
        .await
        .map_err(|e| v.fail(e))?;
    let shares = app
        .documents
        .shares(&v.actor, id)
        .await
        .map_err(|e| v.fail(e))?;
    let can_share = app.documents.may_share(&v.actor, &doc);
    let sharing = sharing(app, v, shares, can_share, format!("/documents/{id}/shares"))
        .await
        .map_err(|e| v.fail(e))?;
    let users = super::view::user_names(app).await;
    let name = |id: &Option<String>| {
        id.as_ref()
            .map(|u| users.get(u).cloned().unwrap_or_else(|| u.clone()))
            .unwrap_or_default()
    };
    let tr = &v.tr;
    let page = render(&DocumentPage {
        v,
        tr,
        id: doc.id.clone(),
        title: doc.title.clone(),
        description: doc.description.clone(),
        tags: doc.tags.join(", "),
        locked_by: name(&doc.locked_by),
        locked_by_me: doc.locked_by.as_deref() == Some(v.actor.user_id.as_str()),
        can_trash: app.documents.may_delete(&v.actor, &doc),
        versions: versions
            .into_iter()
            .map(|ver| VersionItem {
                number: ver.version,
                shown: tr.t1("record-version", "version", &ver.version.to_string()),
                current: ver.version == doc.version,
                file_name: ver.file_name,
                size: size_text(tr, ver.size),
                by: name(&ver.uploaded_by),
                at: tr.date(&ver.created_at),
                reason: ver.reason,
            })
            .collect(),
        sharing,
        error,
    });
    Ok((status, page).into_response())
}

/// The CSRF token of an upload form travels in its address: the multipart body is
/// streamed to the store and holds only the upload's own parts.
fn upload_meta(v: &Visitor, query: Option<&str>) -> Result<(UploadMeta, String), super::WebError> {
    let mut csrf = String::new();
    let mut folder = String::new();
    for (k, val) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "_csrf" => csrf = val.into_owned(),
            "folder" => folder = val.into_owned(),
            _ => {}
        }
    }
    v.check_csrf_token(&csrf)?;
    Ok((UploadMeta::default(), folder))
}

/// `POST /documents/upload?folder=&_csrf=` (multipart: title, description, tags,
/// then file): a new document, then its page.
pub async fn upload(
    State(app): State<AppState>,
    v: Visitor,
    RawQuery(query): RawQuery,
    request: Request,
) -> WebResult {
    let (meta, folder) = upload_meta(&v, query.as_deref())?;
    let doc = with_body(&app, &v.actor, Target::Folder(&folder), meta, request)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/documents/{}", doc.id)).into_response())
}

/// `POST /documents/{id}/versions?_csrf=` (multipart: reason, then file).
pub async fn new_version(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> WebResult {
    let (meta, _) = upload_meta(&v, query.as_deref())?;
    match with_body(&app, &v.actor, Target::Document(&id), meta, request).await {
        Ok(_) => Ok(Redirect::to(&format!("/documents/{id}")).into_response()),
        Err(e) => refused(&app, &v, &id, e).await,
    }
}

/// `POST /documents/folders`: a new folder (in the current one, or at the top for
/// the user's home department), then its list.
pub async fn new_folder(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let parent = form
        .get("parent")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let department = if parent.is_none() {
        app.access
            .user(&v.actor)
            .home_department()
            .map(str::to_string)
    } else {
        None
    };
    let input = crate::documents::FolderInput {
        name: form.get("name").unwrap_or_default().trim().to_string(),
        parent,
        department,
    };
    let folder = app
        .documents
        .create_folder(&v.actor, input)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/documents?folder={}", folder.id)).into_response())
}

/// `POST /documents/{id}/{action}`: restore (with `version`), lock, unlock, trash
/// (to the trash), untrash (back from it) or purge (delete it for good from the
/// trash).
pub async fn act(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, action)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let page = format!("/documents/{id}");
    let (done, next) = match action.as_str() {
        "restore" => {
            let version = form
                .get("version")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| v.error(StatusCode::BAD_REQUEST, "which version?".into()))?;
            let done = app
                .documents
                .restore_version(&v.actor, &id, version, form.get("reason"))
                .await;
            (done.map(|_| ()), page)
        }
        "lock" => (
            app.documents.lock(&v.actor, &id, None).await.map(|_| ()),
            page,
        ),
        "unlock" => (app.documents.unlock(&v.actor, &id).await.map(|_| ()), page),
        "trash" => (
            app.documents.trash(&v.actor, &id, true).await.map(|_| ()),
            "/documents?trash=1".to_string(),
        ),
        // A document in the trash has no page to come back to: a refusal is an
        // error page.
        "untrash" => {
            let done = app.documents.trash(&v.actor, &id, false).await;
            done.map_err(|e| v.fail(e))?;
            return Ok(Redirect::to(&page).into_response());
        }
        "purge" => {
            let done = app.documents.purge(&v.actor, &id).await;
            done.map_err(|e| v.fail(e))?;
            return Ok(Redirect::to("/documents?trash=1").into_response());
        }
        _ => return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found"))),
    };
    match done {
        Ok(()) => Ok(Redirect::to(&next).into_response()),
        Err(e) => refused(&app, &v, &id, e).await,
    }
}

/// `POST /documents/{id}/shares`: shares the document with `with` (`user:{id}`
/// or `department:{id}`) to `access` it (read, or write: also upload versions).
pub async fn share(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let input = share_input(&form);
    match app.documents.share(&v.actor, &id, Ok(&input)).await {
        Ok(_) => Ok(Redirect::to(&format!("/documents/{id}#sharing")).into_response()),
        Err(e) => refused(&app, &v, &id, e).await,
    }
}

/// `POST /documents/{id}/shares/{share}/delete`: stops sharing.
pub async fn unshare(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, share)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    app.documents
        .share(&v.actor, &id, Err(&share))
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/documents/{id}#sharing")).into_response())
}

/// `GET /documents/{id}/versions/{version}/content`: the file (audited).
pub async fn content(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, version)): Path<(String, i64)>,
    headers: HeaderMap,
) -> WebResult {
    download(app, v.actor.clone(), id, Some(version), headers)
        .await
        .map_err(|e| v.fail(e))
}
