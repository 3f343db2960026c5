//! Changes to object metadata: object types and their fields.
//!
//! A change that could make stored data invalid is checked against the data first and
//! refused with the reason (how many records are in the way); everything a change does
//! (definition, expression index, metadata version) happens in one transaction.

use sqlx::AssertSqlSafe;
use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::RecordError;
use super::metadata::{Field, FieldType, ObjectType, check_name, humanise};
use super::schema::SchemaCache;
use crate::api::error::FieldError;
use crate::db::{self, Db};

/// A new object type, optionally with its first fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObjectType {
    /// API name, plural by convention: `projects`.
    pub name: String,
    /// Singular display name: `Project`.
    #[serde(default)]
    pub label: Option<String>,
    /// Plural display name: `Projects`.
    #[serde(default)]
    pub label_plural: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// Display properties of an object type; the name cannot change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectTypeChange {
    pub label: Option<String>,
    pub label_plural: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone)]
pub struct MetadataService {
    db: Db,
    schema: SchemaCache,
}

impl MetadataService {
    pub fn new(db: Db, schema: SchemaCache) -> Self {
        MetadataService { db, schema }
    }

    pub fn object(&self, name: &str) -> Result<Arc<ObjectType>, RecordError> {
        self.schema
            .get()
            .object(name)
            .cloned()
            .ok_or_else(|| RecordError::UnknownObject(name.into()))
    }

    /// The current metadata snapshot.
    pub fn schema(&self) -> Arc<super::schema::Schema> {
        self.schema.get()
    }

    pub fn object_names(&self) -> Vec<String> {
        self.schema.get().objects.keys().cloned().collect()
    }

    pub async fn create_object(&self, new: NewObjectType) -> Result<Arc<ObjectType>, RecordError> {
        let schema = self.schema.get();
        let mut errors = Vec::new();
        if let Err(m) = check_name(&new.name) {
            errors.push(FieldError::new("name", m));
        } else if schema.object(&new.name).is_some() {
            errors.push(FieldError::new(
                "name",
                format!("an object named '{}' already exists", new.name),
            ));
        }
        let label = new
            .label
            .clone()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| humanise(&new.name));
        let label_plural = new
            .label_plural
            .clone()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| humanise(&new.name));
        check_labels(
            &mut errors,
            &label,
            &label_plural,
            new.description.as_deref().unwrap_or(""),
        );
        let mut targets = schema.object_names();
        targets.push(&new.name);
        let mut fields = new.fields;
        for (i, field) in fields.iter_mut().enumerate() {
            field.normalise();
            for e in field.check_definition(&targets) {
                errors.push(FieldError::new(
                    format!("fields[{i}].{}", e.field),
                    e.message,
                ));
            }
        }
        for (i, field) in fields.iter().enumerate() {
            if fields[..i].iter().any(|f| f.name == field.name) {
                errors.push(FieldError::new(
                    format!("fields[{i}].name"),
                    format!("'{}' is used twice", field.name),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(RecordError::Invalid(errors));
        }
        let object = ObjectType {
            name: new.name,
            label,
            label_plural,
            description: new.description.unwrap_or_default(),
            standard: false,
            fields,
            created_at: db::now(),
            updated_at: db::now(),
        };
        let mut tx = self.db.pool.begin().await?;
        insert_object(&mut tx, &object).await?;
        bump_version(&mut tx).await?;
        tx.commit()
            .await
            .map_err(|e| unique_to_conflict(e, "an object with this name already exists"))?;
        self.reloaded(&object.name).await
    }

    pub async fn update_object(
        &self,
        name: &str,
        change: ObjectTypeChange,
    ) -> Result<Arc<ObjectType>, RecordError> {
        let current = self.object(name)?;
        let label = change.label.unwrap_or_else(|| current.label.clone());
        let label_plural = change
            .label_plural
            .unwrap_or_else(|| current.label_plural.clone());
        let description = change
            .description
            .unwrap_or_else(|| current.description.clone());
        let mut errors = Vec::new();
        check_labels(&mut errors, &label, &label_plural, &description);
        if !errors.is_empty() {
            return Err(RecordError::Invalid(errors));
        }
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("UPDATE object_types SET label = $1, label_plural = $2, description = $3, updated_at = $4 WHERE name = $5")
            .bind(label.trim())
            .bind(label_plural.trim())
            .bind(&description)
            .bind(db::now())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        bump_version(&mut tx).await?;
        tx.commit().await?;
        self.reloaded(name).await
    }

    /// Removes a custom object type that holds no records and that no field refers to.
    pub async fn delete_object(&self, name: &str) -> Result<(), RecordError> {
        let current = self.object(name)?;
        if current.standard {
            return Err(RecordError::Refused(format!(
                "{name} is a standard object; it can be extended but not removed"
            )));
        }
        let schema = self.schema.get();
        let referrers: Vec<String> = schema
            .objects
            .values()
            .flat_map(|o| {
                o.fields
                    .iter()
                    .filter(|f| f.target.as_deref() == Some(name))
                    .map(|f| format!("{}.{}", o.name, f.name))
            })
            .filter(|r| !r.starts_with(&format!("{name}.")))
            .collect();
        if !referrers.is_empty() {
            return Err(RecordError::Refused(format!(
                "fields refer to {name}: {}; remove them first",
                referrers.join(", ")
            )));
        }
        let mut tx = self.db.pool.begin().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE object = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if count > 0 {
            return Err(RecordError::Refused(format!(
                "{name} holds {count} records; delete them first"
            )));
        }
        for field in &current.fields {
            drop_index(&mut tx, name, field).await?;
        }
        sqlx::query("DELETE FROM object_fields WHERE object = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM object_types WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        bump_version(&mut tx).await?;
        tx.commit().await?;
        self.schema.reload().await?;
        Ok(())
    }

    pub async fn add_field(
        &self,
        object: &str,
        mut field: Field,
    ) -> Result<Arc<ObjectType>, RecordError> {
        let current = self.object(object)?;
        field.normalise();
        let schema = self.schema.get();
        let mut errors = field.check_definition(&schema.object_names());
        if current.field(&field.name).is_some() {
            errors.push(FieldError::new(
                "name",
                format!("{object} already has a field named '{}'", field.name),
            ));
        }
        if !errors.is_empty() {
            return Err(RecordError::Invalid(errors));
        }
        let mut tx = self.db.pool.begin().await?;
        let position: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM object_fields WHERE object = $1",
        )
        .bind(object)
        .fetch_one(&mut *tx)
        .await?;
        insert_field(&mut tx, object, position, &field).await?;
        create_index(&mut tx, object, &field).await?;
        touch_object(&mut tx, object).await?;
        tx.commit()
            .await
            .map_err(|e| unique_to_conflict(e, "a field with this name already exists"))?;
        self.reloaded(object).await
    }

    /// Applies a partial field definition (`null` resets an option). Renames are refused;
    /// a change that existing values may not fit is checked against the data.
    pub async fn update_field(
        &self,
        object: &str,
        name: &str,
        patch: Map<String, Value>,
    ) -> Result<Arc<ObjectType>, RecordError> {
        let current = self.object(object)?;
        let old = current
            .field(name)
            .ok_or_else(|| RecordError::UnknownField(object.into(), name.into()))?
            .clone();
        let mut merged = match serde_json::to_value(&old) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(RecordError::Refused(
                    "field definition is not an object".into(),
                ));
            }
        };
        for (k, v) in patch {
            if v.is_null() {
                merged.remove(&k)
            } else {
                merged.insert(k, v)
            };
        }
        let mut new: Field = serde_json::from_value(Value::Object(merged))
            .map_err(|e| RecordError::Invalid(vec![FieldError::new("field", e.to_string())]))?;
        new.normalise();
        if new.name != old.name {
            return Err(RecordError::Refused(
                "a field cannot be renamed; change its label instead".into(),
            ));
        }
        let errors = new.check_definition(&self.schema.get().object_names());
        if !errors.is_empty() {
            return Err(RecordError::Invalid(errors));
        }
        let mut tx = self.db.pool.begin().await?;
        for (condition, reason) in data_checks(&old, &new) {
            let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM records WHERE object = $1 AND ({condition})"
            )))
            .bind(object)
            .fetch_one(&mut *tx)
            .await?;
            if count > 0 {
                return Err(RecordError::Refused(format!(
                    "{count} {object} records are in the way: {reason}"
                )));
            }
        }
        let index_changed = (old.indexed || old.unique) != (new.indexed || new.unique)
            || old.unique != new.unique
            || old.kind != new.kind;
        if index_changed {
            drop_index(&mut tx, object, &old).await?;
            create_index(&mut tx, object, &new)
                .await
                .map_err(|e| match e {
                    RecordError::Db(ref d) if db::violated_constraint(d).is_some() => {
                        RecordError::Refused(format!(
                            "some {object} records share a value of {name}, so it cannot be unique"
                        ))
                    }
                    e => e,
                })?;
        }
        let definition = serde_json::to_string(&new).expect("a field serialises");
        sqlx::query("UPDATE object_fields SET definition = $1 WHERE object = $2 AND name = $3")
            .bind(definition)
            .bind(object)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        touch_object(&mut tx, object).await?;
        tx.commit().await?;
        self.reloaded(object).await
    }

    /// Removes a field that no record holds a value for.
    pub async fn delete_field(
        &self,
        object: &str,
        name: &str,
    ) -> Result<Arc<ObjectType>, RecordError> {
        let current = self.object(object)?;
        let field = current
            .field(name)
            .ok_or_else(|| RecordError::UnknownField(object.into(), name.into()))?
            .clone();
        let mut tx = self.db.pool.begin().await?;
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM records WHERE object = $1 AND (data->>'{name}') IS NOT NULL"
        )))
        .bind(object)
        .fetch_one(&mut *tx)
        .await?;
        if count > 0 {
            return Err(RecordError::Refused(format!(
                "{count} {object} records hold a value of {name}; clear those values before removing the field"
            )));
        }
        drop_index(&mut tx, object, &field).await?;
        sqlx::query("DELETE FROM object_fields WHERE object = $1 AND name = $2")
            .bind(object)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        touch_object(&mut tx, object).await?;
        tx.commit().await?;
        self.reloaded(object).await
    }

    /// Inserts the standard objects that are not there yet (first start) and the
    /// standard fields an existing one lacks (an upgrade); answers how many of both.
    pub async fn seed_standard_objects(
        &self,
        objects: Vec<ObjectType>,
    ) -> Result<usize, RecordError> {
        let existing = self.schema.get();
        let seeded: HashSet<(String, String)> =
            sqlx::query_as("SELECT object, name FROM seeded_fields")
                .fetch_all(&self.db.pool)
                .await?
                .into_iter()
                .collect();
        let unrecorded: Vec<(String, String)> = objects
            .iter()
            .flat_map(|o| o.fields.iter().map(|f| (o.name.clone(), f.name.clone())))
            .filter(|key| !seeded.contains(key))
            .collect();
        // Standard fields a newer host brings to objects an older one seeded; not one
        // an admin removed (recorded as seeded), nor over an admin's own field.
        let mut added = Vec::new();
        for object in &objects {
            if let Some(have) = existing.object(&object.name) {
                added.extend(
                    object
                        .fields
                        .iter()
                        .filter(|f| have.field(&f.name).is_none())
                        .filter(|f| !seeded.contains(&(object.name.clone(), f.name.clone())))
                        .map(|f| (object.name.clone(), f.clone())),
                );
            }
        }
        let missing: Vec<_> = objects
            .into_iter()
            .filter(|o| existing.object(&o.name).is_none())
            .collect();
        if missing.is_empty() && added.is_empty() && unrecorded.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.pool.begin().await?;
        for object in &missing {
            insert_object(&mut tx, object).await?;
        }
        for (object, field) in &added {
            let position: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM object_fields WHERE object = $1",
            )
            .bind(object)
            .fetch_one(&mut *tx)
            .await?;
            insert_field(&mut tx, object, position, field).await?;
            create_index(&mut tx, object, field).await?;
        }
        for (object, name) in &unrecorded {
            // Two hosts upgrading at once: the second finds the rows made.
            sqlx::query(
                "INSERT INTO seeded_fields (object, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(object)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        bump_version(&mut tx).await?;
        tx.commit().await?;
        self.schema.reload().await?;
        Ok(missing.len() + added.len())
    }

    /// Brings the field indexes to the current form: creates any that are missing and
    /// drops those of the first format (`ix_`/`ux_`, over every object's rows).
    pub async fn upgrade_indexes(&self) -> Result<(), RecordError> {
        let schema = self.schema.get();
        let mut tx = self.db.pool.begin().await?;
        for object in schema.objects.values() {
            for field in object.fields.iter().filter(|f| f.indexed || f.unique) {
                let prefix = if field.unique { "ux" } else { "ix" };
                sqlx::query(AssertSqlSafe(format!(
                    "DROP INDEX IF EXISTS {prefix}_{}__{}",
                    object.name, field.name
                )))
                .execute(&mut *tx)
                .await?;
                create_index(&mut tx, &object.name, field).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn reloaded(&self, name: &str) -> Result<Arc<ObjectType>, RecordError> {
        self.schema.reload().await?;
        self.object(name)
    }
}

fn check_labels(errors: &mut Vec<FieldError>, label: &str, label_plural: &str, description: &str) {
    for (key, value) in [("label", label), ("label_plural", label_plural)] {
        if value.trim().is_empty() || value.chars().count() > 100 {
            errors.push(FieldError::new(key, "must be 1 to 100 characters"));
        }
    }
    if description.chars().count() > 2000 {
        errors.push(FieldError::new(
            "description",
            "must be at most 2000 characters",
        ));
    }
}

/// Conditions that find records whose stored value would not fit the new definition,
/// each with the reason shown when some do.
fn data_checks(old: &Field, new: &Field) -> Vec<(String, String)> {
    let raw = format!("(data->>'{}')", new.name);
    let mut checks = Vec::new();
    let safe_kind_change = matches!(
        (old.kind, new.kind),
        (FieldType::Text, FieldType::LongText) | (FieldType::Integer, FieldType::Decimal)
    );
    if old.kind != new.kind && !safe_kind_change {
        checks.push((
            format!("{raw} IS NOT NULL"),
            format!(
                "their values of {} may not fit type {:?}; clear them or add a new field",
                new.name, new.kind
            ),
        ));
        return checks;
    }
    if old.target != new.target {
        checks.push((
            format!("{raw} IS NOT NULL"),
            format!(
                "they refer to {:?} records",
                old.target.as_deref().unwrap_or("")
            ),
        ));
    }
    if new.required && !old.required {
        checks.push((
            format!("{raw} IS NULL"),
            format!(
                "they have no value of {}, which would become required",
                new.name
            ),
        ));
    }
    if let (Some(max), old_max) = (new.max_chars(), old.max_chars())
        && old_max.is_none_or(|o| max < o)
    {
        checks.push((
            format!("length({raw}) > {max}"),
            format!("their {} is longer than {max} characters", new.name),
        ));
    }
    let value = new.value_sql();
    if let Some(min) = new.min
        && old.min.is_none_or(|o| min > o)
    {
        checks.push((
            format!("{value} < {min:?}"),
            format!("their {} is below {min}", new.name),
        ));
    }
    if let Some(max) = new.max
        && old.max.is_none_or(|o| max < o)
    {
        checks.push((
            format!("{value} > {max:?}"),
            format!("their {} is above {max}", new.name),
        ));
    }
    if new
        .decimal_places()
        .is_some_and(|n| old.decimal_places().is_none_or(|o| n < o))
    {
        checks.push((
            format!("{raw} IS NOT NULL"),
            format!(
                "their {} may have more decimal places than {}",
                new.name,
                new.scale.unwrap_or(0)
            ),
        ));
    }
    let removed: Vec<&String> = old
        .values
        .iter()
        .filter(|v| !new.values.contains(v))
        .collect();
    if !removed.is_empty() {
        let list = removed
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let condition = match new.kind {
            FieldType::MultiPicklist => format!("{raw} IS NOT NULL"),
            _ => format!("{raw} IN ({list})"),
        };
        checks.push((
            condition,
            format!(
                "they use the values being removed from {}: {list}",
                new.name
            ),
        ));
    }
    checks
}

async fn insert_object(conn: &mut AnyConnection, o: &ObjectType) -> Result<(), RecordError> {
    sqlx::query(
        "INSERT INTO object_types (name, label, label_plural, description, standard, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&o.name)
    .bind(&o.label)
    .bind(&o.label_plural)
    .bind(&o.description)
    .bind(o.standard as i64)
    .bind(&o.created_at)
    .execute(&mut *conn)
    .await?;
    for (position, field) in o.fields.iter().enumerate() {
        insert_field(conn, &o.name, position as i64, field).await?;
        create_index(conn, &o.name, field).await?;
    }
    Ok(())
}

async fn insert_field(
    conn: &mut AnyConnection,
    object: &str,
    position: i64,
    field: &Field,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO object_fields (object, name, position, definition) VALUES ($1, $2, $3, $4)",
    )
    .bind(object)
    .bind(&field.name)
    .bind(position)
    .bind(serde_json::to_string(field).expect("a field serialises"))
    .execute(conn)
    .await?;
    Ok(())
}

/// The expression index behind `indexed` and `unique`. Names are checked identifiers,
/// so formatting them into DDL is safe.
async fn create_index(
    conn: &mut AnyConnection,
    object: &str,
    field: &Field,
) -> Result<(), RecordError> {
    if !(field.indexed || field.unique) {
        return Ok(());
    }
    sqlx::query(AssertSqlSafe(index_sql(object, field)))
        .execute(conn)
        .await?;
    Ok(())
}

impl MetadataService {
    /// A covering index over `fields` of `object` for aggregates and reports (a
    /// plugin's manifest declares it): the fields' values as queries compare and
    /// sum them, then `department_id` and `owner_id` so a read scope is answered
    /// from the index too. `name` is a checked identifier.
    pub async fn ensure_covering_index(
        &self,
        name: &str,
        object: &str,
        fields: &[String],
    ) -> Result<(), RecordError> {
        let current = self.object(object)?;
        let mut columns = Vec::new();
        for name in fields {
            let field = current.field(name).ok_or_else(|| {
                RecordError::BadQuery(format!("{object} has no field named '{name}'"))
            })?;
            columns.push(field.value_sql());
        }
        columns.extend(["department_id".to_string(), "owner_id".to_string()]);
        let sql = format!(
            "CREATE INDEX IF NOT EXISTS {name} ON records ({}) WHERE object = '{object}'",
            columns.join(", ")
        );
        sqlx::query(AssertSqlSafe(sql))
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

/// A partial index per object: only that object's rows are indexed (so a write pays
/// only for its own object's indexes), and `id` follows the value so a filtered list
/// comes out in page order without a sort. Queries name the object as a literal, as
/// both planners need to match a partial index.
fn index_sql(object: &str, field: &Field) -> String {
    let (unique, columns) = if field.unique {
        ("UNIQUE ", format!("({})", field.value_sql()))
    } else {
        ("", format!("({}), id", field.value_sql()))
    };
    format!(
        "CREATE {unique}INDEX IF NOT EXISTS {} ON records ({columns}) WHERE object = '{object}'",
        field.index_name(object)
    )
}

async fn drop_index(
    conn: &mut AnyConnection,
    object: &str,
    field: &Field,
) -> Result<(), sqlx::Error> {
    if field.indexed || field.unique {
        sqlx::query(AssertSqlSafe(format!(
            "DROP INDEX IF EXISTS {}",
            field.index_name(object)
        )))
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn touch_object(conn: &mut AnyConnection, object: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE object_types SET updated_at = $1 WHERE name = $2")
        .bind(db::now())
        .bind(object)
        .execute(&mut *conn)
        .await?;
    bump_version(conn).await
}

async fn bump_version(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE metadata_version SET version = version + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

fn unique_to_conflict(e: sqlx::Error, message: &str) -> RecordError {
    if e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
    {
        RecordError::Refused(message.into())
    } else {
        e.into()
    }
}
