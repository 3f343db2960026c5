//! The in-memory copy of all object metadata, shared by every request.
//!
//! Reads take an `Arc` snapshot (no lock held while a request runs). Every metadata
//! change bumps `metadata_version` in the database; each host process polls it, so
//! several `crm serve` processes behind one PostgreSQL converge within a poll period.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::Row;

use super::metadata::{Field, ObjectType};
use crate::db::Db;

/// All object types at one metadata version.
#[derive(Debug, Default)]
pub struct Schema {
    pub version: i64,
    pub objects: BTreeMap<String, Arc<ObjectType>>,
}

impl Schema {
    pub fn object(&self, name: &str) -> Option<&Arc<ObjectType>> {
        self.objects.get(name)
    }
    pub fn object_names(&self) -> Vec<&str> {
        self.objects.keys().map(String::as_str).collect()
    }
}

#[derive(Clone)]
pub struct SchemaCache {
    db: Db,
    current: Arc<RwLock<Arc<Schema>>>,
}

impl SchemaCache {
    pub async fn load(db: Db) -> Result<Self, sqlx::Error> {
        let schema = read_schema(&db).await?;
        Ok(SchemaCache {
            db,
            current: Arc::new(RwLock::new(Arc::new(schema))),
        })
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<Schema> {
        self.current.read().expect("schema lock poisoned").clone()
    }

    /// Reads the metadata again (after a change made by this process).
    pub async fn reload(&self) -> Result<(), sqlx::Error> {
        let schema = read_schema(&self.db).await?;
        *self.current.write().expect("schema lock poisoned") = Arc::new(schema);
        Ok(())
    }

    /// Reloads when another process changed the metadata.
    pub async fn refresh_if_changed(&self) -> Result<(), sqlx::Error> {
        let version: i64 = sqlx::query_scalar("SELECT version FROM metadata_version WHERE id = 1")
            .fetch_one(&self.db.pool)
            .await?;
        if version != self.get().version {
            self.reload().await?;
        }
        Ok(())
    }

    /// Polls for changes made by other processes until the runtime stops.
    pub fn spawn_refresher(&self, every: Duration) {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = cache.refresh_if_changed().await {
                    tracing::warn!(error = %e, "could not refresh object metadata");
                }
            }
        });
    }
}

async fn read_schema(db: &Db) -> Result<Schema, sqlx::Error> {
    let version: i64 = sqlx::query_scalar("SELECT version FROM metadata_version WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    let types = sqlx::query("SELECT name, label, label_plural, description, standard, created_at, updated_at FROM object_types")
        .fetch_all(&db.pool)
        .await?;
    let fields =
        sqlx::query("SELECT object, definition FROM object_fields ORDER BY object, position")
            .fetch_all(&db.pool)
            .await?;
    let mut objects: BTreeMap<String, ObjectType> = BTreeMap::new();
    for r in &types {
        let name: String = r.try_get("name")?;
        objects.insert(
            name.clone(),
            ObjectType {
                name,
                label: r.try_get("label")?,
                label_plural: r.try_get("label_plural")?,
                description: r.try_get("description")?,
                standard: r.try_get::<i64, _>("standard")? == 1,
                fields: Vec::new(),
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            },
        );
    }
    for r in &fields {
        let object: String = r.try_get("object")?;
        let definition: String = r.try_get("definition")?;
        let field: Field = serde_json::from_str(&definition).map_err(|e| {
            crate::audit::decode_error(format!("field definition of {object}: {e}"))
        })?;
        if let Some(o) = objects.get_mut(&object) {
            o.fields.push(field);
        }
    }
    Ok(Schema {
        version,
        objects: objects.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
    })
}
