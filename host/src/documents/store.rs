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
    /// The upload's temporary copy, kept when the content was already stored:
    /// until the version naming it is committed, a purge or the sweeper may still
    /// remove that content, and [`BlobStore::settle`] then puts this copy in its
    /// place.
    pub pending: Option<Path>,
}

impl Stored {
    /// Content already in the store (a restored version): nothing to settle.
    pub fn existing(sha256: String, size: u64) -> Stored {
        Stored {
            sha256,
            size,
            head: Vec::new(),
            pending: None,
        }
    }
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
    /// The directory of a local store: uploads are written there by a thread of
    /// their own (hashing and writing beside the socket reads, without copying
    /// chunks into parts), and downloads are read ahead of the socket.
    local: Option<Arc<std::path::Path>>,
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
        Ok(BlobStore { store, local: None })
    }

    /// Files under `dir` (created when missing).
    pub fn local(dir: &std::path::Path) -> anyhow::Result<BlobStore> {
        std::fs::create_dir_all(dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(BlobStore {
            store: Arc::new(store),
            local: Some(Arc::from(dir.canonicalize()?)),
        })
    }

    /// Streams `body` into the store; 1 to `max` bytes. After the commit that
    /// names the content, call [`BlobStore::settle`]; when it fails, [`BlobStore::discard`].
    pub async fn put<S, E>(&self, body: S, max: u64) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let id = crate::db::new_id();
        let tmp = Path::from(format!("tmp/{id}"));
        let written = match &self.local {
            Some(dir) => put_local(dir.join("tmp").join(&id), body, max).await,
            None => self.put_multipart(&tmp, body, max).await,
        };
        let (sha256, size, head) = match written {
            Ok(written) => written,
            Err(e) => {
                let _ = self.store.delete(&tmp).await;
                return Err(e);
            }
        };
        // Content-addressed: a blob of this name holds these very bytes. New
        // content moves into place now; content already stored keeps its
        // temporary copy until the version is committed (see `settle`). When two
        // identical new uploads race, the second rename replaces the first with the
        // same bytes. (S3 has no conditional rename; this works on every store.)
        let target = blob(&sha256);
        let pending = match self.store.head(&target).await {
            Ok(_) => Ok(Some(tmp.clone())),
            Err(object_store::Error::NotFound { .. }) => {
                self.store.rename(&tmp, &target).await.map(|()| None)
            }
            Err(e) => Err(e),
        };
        match pending {
            Ok(pending) => Ok(Stored {
                sha256,
                size,
                head,
                pending,
            }),
            Err(e) => {
                let _ = self.store.delete(&tmp).await;
                Err(e.into())
            }
        }
    }

    /// After the version naming `stored` was committed: drops the upload's
    /// temporary copy when the content is still stored, or moves the copy into
    /// place when a purge or the sweeper removed the content meanwhile (they delete
    /// content only while holding its `doc_blobs` row, which the commit waited for).
    pub async fn settle(&self, stored: &Stored) -> Result<(), StoreError> {
        let Some(tmp) = &stored.pending else {
            return Ok(());
        };
        let target = blob(&stored.sha256);
        match self.store.head(&target).await {
            Ok(_) => Ok(self.store.delete(tmp).await?),
            Err(object_store::Error::NotFound { .. }) => {
                tracing::info!(sha256 = %stored.sha256, "content removed during an upload of the same bytes; restored from the upload");
                Ok(self.store.rename(tmp, &target).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a failed commit: drops the upload's temporary copy, if it kept one.
    pub async fn discard(&self, stored: &Stored) {
        if let Some(tmp) = &stored.pending {
            let _ = self.store.delete(tmp).await;
        }
    }

    /// Writes `body` to `tmp` through the store's multipart upload (S3): parts of
    /// [`PART_BYTES`], hashed on the way. Answers `(sha256, size, head)`.
    async fn put_multipart<S, E>(
        &self,
        tmp: &Path,
        mut body: S,
        max: u64,
    ) -> Result<(String, u64, Vec<u8>), StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self.store.put_multipart(tmp).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut hasher = Sha256::new();
        let mut received = Received::default();
        let failure = loop {
            let chunk = match received.next(&mut body, max).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            hasher.update(&chunk);
            if let Err(e) = writer.wait_for_capacity(2).await {
                break Some(e.into());
            }
            writer.write(&chunk);
        };
        if let Some(failure) = failure.or(received.empty()) {
            let _ = writer.abort().await;
            return Err(failure);
        }
        writer.finish().await?;
        Ok((crate::hex(&hasher.finalize()), received.size, received.head))
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

    /// Deletes a blob no version holds any more (one already gone is fine).
    pub async fn delete(&self, sha256: &str) -> Result<(), StoreError> {
        match self.store.delete(&blob(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
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

/// What an upload has brought so far: its size and first bytes.
#[derive(Default)]
struct Received {
    size: u64,
    head: Vec<u8>,
}

impl Received {
    /// The next chunk of `body`, counted against `max`.
    async fn next<S, E>(&mut self, body: &mut S, max: u64) -> Result<Option<Bytes>, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let chunk = match body.next().await {
            None => return Ok(None),
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(StoreError::CutOff(e.to_string())),
        };
        self.size += chunk.len() as u64;
        if self.size > max {
            return Err(StoreError::TooLarge(max));
        }
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        Ok(Some(chunk))
    }

    fn empty(&self) -> Option<StoreError> {
        (self.size == 0).then_some(StoreError::Empty)
    }
}

/// Chunks in flight between the socket and a local upload's writer thread (hyper
/// hands over up to about 400 KiB per chunk: at most twice this many are held, in
/// the channel and in the batch being written).
const CHUNKS_IN_FLIGHT: usize = 16;

/// Writes `body` to the local file `path`: this task receives chunks, a blocking
/// thread hashes them and writes them with vectored writes, so receiving, hashing
/// and writing overlap and no chunk is copied into a part buffer. Memory is bounded
/// by the chunks in flight. Answers `(sha256, size, head)`; on failure the caller
/// deletes the file.
async fn put_local<S, E>(
    path: std::path::PathBuf,
    mut body: S,
    max: u64,
) -> Result<(String, u64, Vec<u8>), StoreError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (chunks, mut inbox) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::File::create(&path)?;
        let mut hasher = Sha256::new();
        let mut batch: Vec<Bytes> = Vec::with_capacity(CHUNKS_IN_FLIGHT);
        while let Some(first) = inbox.blocking_recv() {
            batch.push(first);
            while batch.len() < CHUNKS_IN_FLIGHT {
                match inbox.try_recv() {
                    Ok(chunk) => batch.push(chunk),
                    Err(_) => break,
                }
            }
            for chunk in &batch {
                hasher.update(chunk);
            }
            let mut slices: Vec<std::io::IoSlice<'_>> =
                batch.iter().map(|c| std::io::IoSlice::new(c)).collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                let n = file.write_vectored(slices)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                std::io::IoSlice::advance_slices(&mut slices, n);
            }
            batch.clear();
        }
        Ok(crate::hex(&hasher.finalize()))
    });
    let mut received = Received::default();
    let failure = loop {
        match received.next(&mut body, max).await {
            Ok(Some(chunk)) => {
                // A closed inbox means the writer failed: its error is reported below.
                if chunks.send(chunk).await.is_err() {
                    break None;
                }
            }
            Ok(None) => break received.empty(),
            Err(e) => break Some(e),
        }
    };
    drop(chunks);
    let written = writer.await.map_err(|e| io_error(std::io::Error::other(e)));
    if let Some(failure) = failure {
        return Err(failure);
    }
    let sha256 = written?.map_err(io_error)?;
    Ok((sha256, received.size, received.head))
}

/// A local file's error as the store reports errors.
fn local_error(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "local",
        source: Box::new(e),
    }
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Store(local_error(e))
}

/// Bytes read from a local file per read, and reads kept ready ahead of the socket
/// (a download holds at most their product).
const READ_BYTES: u64 = 1 << 20;
const READS_AHEAD: usize = 4;

/// A local file's `range`, read by a blocking thread of its own ahead of the socket,
/// so reading the file and sending to the client overlap. A client that goes away
/// drops the stream, which stops the reader.
fn read_file(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> impl Stream<Item = Result<Bytes, object_store::Error>> {
    let (ready, inbox) =
        tokio::sync::mpsc::channel::<Result<Bytes, object_store::Error>>(READS_AHEAD);
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut at = range.start;
        while at < range.end {
            let want = (range.end - at).min(READ_BYTES) as usize;
            let mut buf = vec![0u8; want];
            let read = file.read_exact_at(&mut buf, at).map_err(local_error);
            let failed = read.is_err();
            if ready
                .blocking_send(read.map(|()| Bytes::from(buf)))
                .is_err()
                || failed
            {
                return;
            }
            at += want as u64;
        }
    });
    futures_util::stream::unfold(inbox, |mut inbox| async move {
        inbox.recv().await.map(|chunk| (chunk, inbox))
    })
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

    fn body(bytes: &'static [u8]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter([Ok(Bytes::from_static(bytes))])
    }

    /// An upload of content already stored keeps its copy until the commit, and
    /// puts it in place when the content was removed meanwhile (a purge or the
    /// sweeper between the upload and its commit).
    #[tokio::test]
    async fn an_upload_of_stored_content_survives_its_removal_before_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let first = store.put(body(b"same bytes"), 100).await.unwrap();
        assert!(
            first.pending.is_none(),
            "new content moves into place at once"
        );
        let blob_file = dir.path().join("blobs").join(&first.sha256);
        assert!(blob_file.exists());

        let second = store.put(body(b"same bytes"), 100).await.unwrap();
        let copy = second.pending.clone().expect("a temporary copy is kept");
        store.delete(&second.sha256).await.unwrap();
        store.settle(&second).await.unwrap();
        assert_eq!(std::fs::read(&blob_file).unwrap(), b"same bytes");
        assert!(!dir.path().join(copy.as_ref()).exists(), "the copy moved");

        let third = store.put(body(b"same bytes"), 100).await.unwrap();
        let copy = third.pending.clone().expect("a temporary copy is kept");
        store.settle(&third).await.unwrap();
        assert!(blob_file.exists());
        assert!(
            !dir.path().join(copy.as_ref()).exists(),
            "the copy is dropped"
        );

        let failed = store.put(body(b"same bytes"), 100).await.unwrap();
        let copy = failed.pending.clone().expect("a temporary copy is kept");
        store.discard(&failed).await;
        assert!(!dir.path().join(copy.as_ref()).exists());
        assert!(
            blob_file.exists(),
            "a failed commit leaves stored content alone"
        );
    }
}
