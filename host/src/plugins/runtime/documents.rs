//! `crm:plugin/documents`: the document library, read as the user the plugin acts
//! for, through the same [`DocumentService`] the REST API uses (rights, shares,
//! download audit), and only where the plugin is enabled.

use std::sync::Arc;

use futures_util::StreamExt;

use super::v0_1::crm::plugin::documents::Host;
use super::{CallState, describe};
use crate::api::error::ApiError;
use crate::auth::Actor;
use crate::documents::{Document, DocumentQuery, DocumentService};
use crate::records::service::RecordService;

/// The refusal for a document outside what the plugin may see, worded as the
/// library words a missing one (a plugin cannot tell the two apart).
const NOT_FOUND: &str = "there is no such document";

/// A refusal of the document library in words a plugin author can act on.
fn describe_api(e: ApiError) -> String {
    if e.errors.is_empty() {
        return e.detail;
    }
    let fields: Vec<String> = e
        .errors
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect();
    format!("{}: {}", e.detail, fields.join("; "))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("documents serialise")
}

/// What a documents call needs of the call state, owned: the state itself is not
/// `Sync`, so it is not held across the library's awaits.
struct Reader {
    library: DocumentService,
    records: RecordService,
    actor: Actor,
    departments: Arc<Vec<String>>,
    grants: Arc<crate::plugins::manifest::Capabilities>,
    max_payload_bytes: usize,
}

impl CallState {
    /// The library as the plugin reads it, when the plugin was granted it.
    fn reader(&self) -> Result<Reader, String> {
        if !self.host.grants.documents {
            return Err("the plugin was not granted documents".into());
        }
        let library = self
            .host
            .documents
            .clone()
            .ok_or("the document library is not available here")?;
        Ok(Reader {
            library,
            records: self.host.records.clone(),
            actor: self.host.actor.clone(),
            departments: self.host.departments.clone(),
            grants: self.host.grants.clone(),
            max_payload_bytes: self.max_payload_bytes,
        })
    }
}

impl Reader {
    fn in_reach(&self, department: Option<&str>) -> bool {
        department.is_none_or(|d| self.departments.iter().any(|e| e == d))
    }

    /// A document the plugin may see: readable by whom it acts for, and in a
    /// department where it is enabled or in the shared library.
    async fn visible(&self, id: &str) -> Result<Document, String> {
        let doc = self
            .library
            .get(&self.actor, id)
            .await
            .map_err(describe_api)?;
        if !self.in_reach(doc.department.as_deref()) {
            return Err(NOT_FOUND.into());
        }
        Ok(doc)
    }

    async fn document_json(&self, id: &str) -> Result<String, String> {
        Ok(json(&self.visible(id).await?))
    }

    async fn documents_page(&self, query: &str) -> Result<String, String> {
        let uri: axum::http::Uri = format!("/?{query}")
            .parse()
            .map_err(|_| format!("'{query}' is not a query string"))?;
        let axum::extract::Query(mut query) =
            axum::extract::Query::<DocumentQuery>::try_from_uri(&uri)
                .map_err(|e| format!("the query is not valid: {}", e.body_text()))?;
        query.within = Some(self.departments.to_vec());
        let page = self
            .library
            .list(&self.actor, &query)
            .await
            .map_err(describe_api)?;
        Ok(json(&page))
    }

    async fn versions_json(&self, id: &str) -> Result<String, String> {
        self.visible(id).await?;
        let versions = self
            .library
            .versions(&self.actor, id)
            .await
            .map_err(describe_api)?;
        Ok(json(&versions))
    }

    async fn of_record_json(&self, object: &str, id: &str) -> Result<String, String> {
        if !self.grants.read.iter().any(|o| o == object) {
            return Err(format!("the plugin was not granted reading {object}"));
        }
        let record = self
            .records
            .get(&self.actor, object, id)
            .await
            .map_err(describe)?;
        if !self.in_reach(record.department.as_deref()) {
            return Err(describe(crate::records::RecordError::NotFound));
        }
        let docs = self
            .library
            .of_record(&self.actor, object, id)
            .await
            .map_err(describe_api)?;
        let docs: Vec<Document> = docs
            .into_iter()
            .filter(|d| self.in_reach(d.department.as_deref()))
            .collect();
        Ok(json(&docs))
    }

    async fn read_content(
        &self,
        id: &str,
        version: Option<u32>,
        offset: u64,
        length: u32,
    ) -> Result<Vec<u8>, String> {
        let max = self.max_payload_bytes;
        if length as usize > max {
            return Err(format!("a read is at most {max} bytes; read in parts"));
        }
        self.visible(id).await?;
        let (_, v) = self
            .library
            .readable_version(&self.actor, id, version.map(i64::from))
            .await
            .map_err(describe_api)?;
        let size = v.size as u64;
        let end = offset.saturating_add(u64::from(length)).min(size);
        if offset >= end {
            return Ok(Vec::new());
        }
        // Reading from the start is a download; the parts after it are not
        // audited again.
        if offset == 0 {
            self.library
                .audit_download(&self.actor, id, v.version)
                .await
                .map_err(describe_api)?;
        }
        let mut stream = self
            .library
            .blobs()
            .get(&v.sha256, Some(offset..end))
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = Vec::with_capacity((end - offset) as usize);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        Ok(bytes)
    }
}

impl Host for CallState {
    async fn get(&mut self, id: String) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        Ok(match self.reader() {
            Ok(reader) => reader.document_json(&id).await,
            Err(e) => Err(e),
        })
    }

    async fn list(&mut self, query: String) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        Ok(match self.reader() {
            Ok(reader) => reader.documents_page(&query).await,
            Err(e) => Err(e),
        })
    }

    async fn versions(&mut self, id: String) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        Ok(match self.reader() {
            Ok(reader) => reader.versions_json(&id).await,
            Err(e) => Err(e),
        })
    }

    async fn of_record(
        &mut self,
        object: String,
        id: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        Ok(match self.reader() {
            Ok(reader) => reader.of_record_json(&object, &id).await,
            Err(e) => Err(e),
        })
    }

    async fn read(
        &mut self,
        id: String,
        version: Option<u32>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        self.count_host_call()?;
        Ok(match self.reader() {
            Ok(reader) => reader.read_content(&id, version, offset, length).await,
            Err(e) => Err(e),
        })
    }
}
