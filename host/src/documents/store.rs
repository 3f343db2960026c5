//! Document content in an object store, one object per SHA-256 (`blobs/<sha256>`).
//!
//! An upload streams to `tmp/<id>` while it is hashed and measured, in chunks, so
//! memory stays constant whatever the size; only a complete upload is moved to its
//! blob (or dropped when that content is already stored). A cut-off or oversized
//! upload is aborted and its temporary data removed, so no half file is ever seen.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use sha2::{Digest, Sha256};

/// Bytes kept from the start of an upload to sniff its type.
const HEAD_BYTES: usize = 512;
/// Size of the parts written to the store (the memory one upload holds at most,
/// times the parts in flight).
const PART_BYTES: usize = 8 << 20;

/// Stored content.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
    /// The first bytes, to sniff the content type from.
    pub head: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the file is empty")]
    Empty,
    #[error("the upload was cut off: {0}")]
    CutOff(String),
    #[error("the document store failed: {0}")]
    Store(#[from] object_store::Error),
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

fn blob(sha256: &str) -> Path {
    Path::from(format!("blobs/{sha256}"))
}

impl BlobStore {
    /// The store `CRM_DOCUMENT_STORE` names: `local` (files under `data_dir`) or
    /// `s3://bucket[/prefix]`.
    pub fn open(setting: &str, data_dir: &std::path::Path) -> anyhow::Result<BlobStore> {
        if setting == "local" {
            return BlobStore::local(&data_dir.join("documents"));
        }
        let Some(rest) = setting.strip_prefix("s3://") else {
            anyhow::bail!(
                "CRM_DOCUMENT_STORE is `local` or `s3://bucket[/prefix]`, not `{setting}`"
            );
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Ok(endpoint) = std::env::var("CRM_S3_ENDPOINT") {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        let s3 = builder.build()?;
        let store: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                s3,
                prefix.trim_matches('/'),
            ))
        };
        Ok(BlobStore { store })
    }

    /// Files under `dir` (created when missing).
    pub fn local(dir: &std::path::Path) -> anyhow::Result<BlobStore> {
        std::fs::create_dir_all(dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(BlobStore {
            store: Arc::new(store),
        })
    }

    /// Streams `body` into the store; 1 to `max` bytes.
    pub async fn put<S, E>(&self, mut body: S, max: u64) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp = Path::from(format!("tmp/{}", crate::db::new_id()));
        let upload = self.store.put_multipart(&tmp).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(HEAD_BYTES);
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => break Some(StoreError::CutOff(e.to_string())),
            };
            size += chunk.len() as u64;
            if size > max {
                break Some(StoreError::TooLarge(max));
            }
            if head.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            if let Err(e) = writer.wait_for_capacity(2).await {
                break Some(e.into());
            }
            writer.write(&chunk);
        };
        let failure = failure.or((size == 0).then_some(StoreError::Empty));
        if let Some(failure) = failure {
            let _ = writer.abort().await;
            let _ = self.store.delete(&tmp).await;
            return Err(failure);
        }
        writer.finish().await?;
        let sha256 = crate::hex(&hasher.finalize());
        // Content-addressed: a blob of this name holds these very bytes, so when it
        // exists the upload is dropped, and when two identical uploads race, the
        // second rename replaces the first with the same content. (S3 has no
        // conditional rename; this works on every store.)
        let target = blob(&sha256);
        let stored = match self.store.head(&target).await {
            Ok(_) => self.store.delete(&tmp).await,
            Err(object_store::Error::NotFound { .. }) => self.store.rename(&tmp, &target).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            let _ = self.store.delete(&tmp).await;
            return Err(e.into());
        }
        Ok(Stored { sha256, size, head })
    }

    /// Temporary uploads and blobs last written more than `older_than` ago:
    /// `(temporary paths, blob hashes)`, for the sweeper to check and remove.
    pub async fn stale(
        &self,
        older_than: std::time::Duration,
    ) -> Result<(Vec<Path>, Vec<String>), StoreError> {
        let cutoff = chrono::Utc::now()
            - chrono::TimeDelta::from_std(older_than).unwrap_or(chrono::TimeDelta::MAX);
        let mut tmp = Vec::new();
        let mut listed = self.store.list(Some(&Path::from("tmp")));
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            if meta.last_modified <= cutoff {
                tmp.push(meta.location);
            }
        }
        let mut blobs = Vec::new();
        let mut listed = self.store.list(Some(&Path::from("blobs")));
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            if meta.last_modified <= cutoff
                && let Some(sha) = meta.location.filename()
            {
                blobs.push(sha.to_string());
            }
        }
        Ok((tmp, blobs))
    }

    /// Deletes a temporary upload left behind (a host stopped mid-upload).
    pub async fn delete_tmp(&self, path: &Path) -> Result<(), StoreError> {
        Ok(self.store.delete(path).await?)
    }

    /// Deletes a blob no version holds any more.
    pub async fn delete(&self, sha256: &str) -> Result<(), StoreError> {
        Ok(self.store.delete(&blob(sha256)).await?)
    }

    /// The content of a blob, or the byte range `range` of it.
    pub async fn get(
        &self,
        sha256: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, StoreError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&blob(sha256), options).await?;
        let range = result.range.clone();
        match result.payload {
            // Local files are read in large chunks: the store's own stream reads
            // 8 KiB per blocking call, which capped downloads near 170 MB/s.
            GetResultPayload::File(file, _) => Ok(read_file(file, range).boxed()),
            GetResultPayload::Stream(stream) => Ok(stream),
        }
    }
}

/// Bytes read from a local file per blocking call.
const READ_BYTES: u64 = 1 << 20;

fn read_file(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> impl Stream<Item = Result<Bytes, object_store::Error>> {
    let io_error = |e: std::io::Error| object_store::Error::Generic {
        store: "local",
        source: Box::new(e),
    };
    futures_util::stream::try_unfold(
        (Some(file), range.start, range.end),
        move |(file, at, end)| async move {
            let Some(file) = file.filter(|_| at < end) else {
                return Ok(None);
            };
            let want = (end - at).min(READ_BYTES) as usize;
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                file.read_exact_at(&mut buf, at).map(|()| (file, buf))
            })
            .await
            .map_err(|e| io_error(std::io::Error::other(e)))?
            .map_err(io_error)?;
            Ok(Some((
                Bytes::from(chunk),
                (Some(file), at + want as u64, end),
            )))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_lists_old_temporary_uploads_and_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let body =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"hello"))]);
        let stored = store.put(body, 100).await.unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/left-behind"), b"half").unwrap();
        let (tmp, blobs) = store.stale(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(blobs, vec![stored.sha256.clone()]);
        assert_eq!(tmp.len(), 1);
        let (tmp, blobs) = store
            .stale(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(
            tmp.is_empty() && blobs.is_empty(),
            "nothing is an hour old yet"
        );
        store.delete(&stored.sha256).await.unwrap();
        store
            .delete_tmp(&Path::from("tmp/left-behind"))
            .await
            .unwrap();
        assert_eq!(
            store
                .stale(std::time::Duration::ZERO)
                .await
                .unwrap()
                .0
                .len(),
            0
        );
    }
}
