//! The background job of an import: a blocking reader hands the file over in chunks of
//! rows (so memory stays the same for any file size); each chunk's duplicates are
//! looked up in one query on the match field's index, and its rows are written through
//! the records service, many at a time so the group commit takes them together.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Map, Value};
use sqlx::Row as _;

use super::{Import, OnDuplicate, RowError, Settings, Tally};
use crate::api::AppState;
use crate::auth::Actor;
use crate::records::RecordError;
use crate::records::metadata::{Field, FieldType, ObjectType};
use crate::records::validate::{Mode, from_text, validate};

/// Rows read and written as one stretch; a chunk's new records are committed
/// together. Large, because an indexed field with many rows per value (a last name, a
/// company) adds each new row at the end of its value's run of index entries: a
/// commit rewrites one index page per value it meets, so a commit of 1,000 rows
/// meeting 977 last names wrote nearly a page per row to SQLite's log (issue 10).
/// Small enough for every statement's parameters (two per row to look up duplicates).
const CHUNK: usize = 4_000;
/// Least time between two records of an import's progress. Each record is a commit
/// on a connection other than the writer's, and on SQLite that makes the writer read
/// its hot index pages again: recorded after every chunk, that was a thousand times
/// in an import of a million rows.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// Updates of one chunk under way at once: enough for the group commit to fill its
/// batches, few enough to stay gentle with other users' writes. (New records of a
/// chunk are written together, as one.)
const IN_FLIGHT: usize = 512;

/// Runs `import` (already marked started as run `run_id`) in the background as
/// `actor`, from row `import.rows_done` on. It stops when the import is no longer
/// this run's (cancelled, started again).
pub fn spawn(app: AppState, import: Import, actor: Actor, run_id: String) {
    tokio::spawn(async move {
        let failure = run(&app, &import, &actor, &run_id).await.err();
        if let Some(why) = &failure {
            tracing::warn!(import = %import.id, error = %why, "an import failed");
        }
        let ended = super::finish(
            &app.db,
            &import.id,
            &run_id,
            import.dry_run,
            failure.as_deref(),
        )
        .await;
        if let Err(e) = ended {
            tracing::error!(import = %import.id, error = %e, "could not record the end of an import");
        }
    });
}

/// Carries on with the imports a stopped host left under way, as the users who
/// started them.
pub async fn resume_interrupted(app: AppState) {
    let found = match super::interrupted(&app.db).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "could not look for interrupted imports");
            return;
        }
    };
    for (import, user, old_run) in found {
        let run = match super::take_over(&app.db, &import.id, old_run.as_deref()).await {
            Ok(Some(run)) => run,
            Ok(None) => continue, // another host took it
            Err(e) => {
                tracing::error!(import = %import.id, error = %e, "could not resume an import");
                continue;
            }
        };
        match crate::plugins::delivery::actor_of(&app.db, &user).await {
            Ok(actor) => {
                tracing::info!(import = %import.id, from_row = import.rows_done, "resuming an import");
                spawn(app.clone(), import, actor, run);
            }
            Err(why) => {
                let _ = super::finish(&app.db, &import.id, &run, import.dry_run, Some(&why)).await;
            }
        }
    }
}

/// How a file's columns become a record's input.
struct Plan {
    object: Arc<ObjectType>,
    /// Column index -> the field it fills.
    cells: Vec<(usize, Field)>,
    /// The fields a duplicate is found by, in `match_on` order.
    keys: Vec<Field>,
    on_duplicate: OnDuplicate,
    header_len: usize,
}

/// A row on its way: its number, its input and its duplicate key.
struct Pending {
    number: i64,
    input: Map<String, Value>,
    key: Option<String>,
}

/// A chunk of the file: each row's number and cells, or why the file cannot be read.
type Chunk = Result<Vec<(i64, Vec<String>)>, String>;

/// An existing record a row matched.
struct Existing {
    id: String,
    version: i64,
    fields: Map<String, Value>,
}

async fn run(app: &AppState, import: &Import, actor: &Actor, run_id: &str) -> Result<(), String> {
    let (object, writable) = app
        .records
        .creatable(actor, &import.object)
        .await
        .map_err(|e| e.to_string())?;
    let plan = Arc::new(
        plan(object, &writable, &import.columns, &import.settings)
            .map_err(|errors| errors.join("; "))?,
    );
    let actor = Arc::new(actor.clone());
    let path = super::file_path(&app.config.data_dir, &import.id);
    let skip = import.rows_done as usize;
    let (tx, mut chunks) = tokio::sync::mpsc::channel::<Chunk>(2);
    tokio::task::spawn_blocking(move || read_chunks(&path, skip, &tx));
    // Chunks under way at once, oldest first, so checking the next ones overlaps
    // writing one: the writer always finds another chunk waiting, also while the
    // progress of the oldest is being recorded. A row whose duplicate key an earlier
    // chunk under way holds waits until that chunk is written, so it meets the record
    // that chunk made.
    let mut under_way: VecDeque<UnderWay> = VecDeque::new();
    let mut progress = Progress::new();
    let mut number = 0usize;
    while let Some(chunk) = chunks.recv().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(unreadable) => {
                abort_all(&under_way);
                return Err(unreadable);
            }
        };
        let (rows, tally) = prepare_chunk(&plan, chunk);
        let keys: HashSet<String> = rows.iter().filter_map(|r| r.key.clone()).collect();
        let mut now = Vec::new();
        let mut held = Vec::new();
        for row in rows {
            // The newest chunk under way holding the row's key is the one to wait for.
            let blocker = row.key.as_ref().and_then(|k| {
                under_way
                    .iter()
                    .rev()
                    .find(|c| c.keys.contains(k))
                    .map(|c| c.number)
            });
            match blocker {
                Some(blocker) => held.push((blocker, row)),
                None => now.push(row),
            }
        }
        under_way.push_back(UnderWay {
            number,
            parts: vec![start(app, &actor, &plan, import.dry_run, now, tally)],
            keys,
            held,
        });
        number += 1;
        if under_way.len() >= CHUNKS_UNDER_WAY {
            finish_oldest(
                app,
                import,
                run_id,
                &actor,
                &plan,
                &mut under_way,
                &mut progress,
            )
            .await?;
        }
    }
    while !under_way.is_empty() {
        finish_oldest(
            app,
            import,
            run_id,
            &actor,
            &plan,
            &mut under_way,
            &mut progress,
        )
        .await?;
    }
    progress.record(app, import, run_id).await.map(|_| ())
}

/// The counts of the chunks written since progress was last recorded.
struct Progress {
    tally: Tally,
    recorded: std::time::Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tally: Tally::default(),
            recorded: std::time::Instant::now(),
        }
    }

    /// Adds a written chunk's counts and records them if [`PROGRESS_EVERY`] has
    /// passed; false when the run is no longer this one's (cancelled, started again).
    async fn add(
        &mut self,
        app: &AppState,
        import: &Import,
        run_id: &str,
        chunk: Tally,
    ) -> Result<bool, String> {
        self.tally.add(chunk);
        if self.recorded.elapsed() < PROGRESS_EVERY {
            return Ok(true);
        }
        self.record(app, import, run_id).await
    }

    /// Records the counts gathered so far.
    async fn record(
        &mut self,
        app: &AppState,
        import: &Import,
        run_id: &str,
    ) -> Result<bool, String> {
        let tally = std::mem::take(&mut self.tally);
        self.recorded = std::time::Instant::now();
        super::record_progress(&app.db, &import.id, run_id, &tally)
            .await
            .map_err(|e| format!("could not record progress: {e}"))
    }
}

/// Chunks being written at once (see `run`).
const CHUNKS_UNDER_WAY: usize = 3;

/// A chunk being checked and written: its parts (the rows that could go at once,
/// then those that waited), its duplicate keys, and the rows still waiting for the
/// chunk with the given number.
struct UnderWay {
    number: usize,
    parts: Vec<Running>,
    keys: HashSet<String>,
    held: Vec<(usize, Pending)>,
}

/// Waits for the oldest chunk under way and adds it to the progress, then starts the
/// rows of later chunks that waited for it. Stops every chunk when the run is no
/// longer this one's (cancelled, started again) or failed.
async fn finish_oldest(
    app: &AppState,
    import: &Import,
    run_id: &str,
    actor: &Arc<Actor>,
    plan: &Arc<Plan>,
    under_way: &mut VecDeque<UnderWay>,
    progress: &mut Progress,
) -> Result<(), String> {
    let oldest = under_way
        .pop_front()
        .expect("called with a chunk under way");
    let done = match finish_chunk(oldest.parts).await {
        Ok(tally) => progress.add(app, import, run_id, tally).await,
        Err(e) => Err(e),
    };
    if !matches!(done, Ok(true)) {
        abort_all(under_way);
        return done.map(|_| ()); // failed, or cancelled / started again
    }
    for chunk in under_way.iter_mut() {
        let (free, still): (Vec<_>, Vec<_>) = std::mem::take(&mut chunk.held)
            .into_iter()
            .partition(|(blocker, _)| *blocker == oldest.number);
        chunk.held = still;
        if !free.is_empty() {
            let rows = free.into_iter().map(|(_, row)| row).collect();
            let (dry_run, none) = (import.dry_run, Tally::default());
            chunk
                .parts
                .push(start(app, actor, plan, dry_run, rows, none));
        }
    }
    Ok(())
}

fn abort_all(under_way: &VecDeque<UnderWay>) {
    under_way
        .iter()
        .flat_map(|c| &c.parts)
        .for_each(Running::abort);
}

/// Part of a chunk being checked and written in the background (the rows that may go
/// at once, those that waited for an earlier chunk).
type Running = tokio::task::JoinHandle<Result<Tally, String>>;

/// Checks and writes rows of a chunk in the background.
fn start(
    app: &AppState,
    actor: &Arc<Actor>,
    plan: &Arc<Plan>,
    dry_run: bool,
    rows: Vec<Pending>,
    tally: Tally,
) -> Running {
    let (app, actor, plan) = (app.clone(), actor.clone(), plan.clone());
    tokio::spawn(async move { import_rows(&app, &actor, &plan, dry_run, rows, tally).await })
}

/// Waits for a chunk's parts; their counts together.
async fn finish_chunk(parts: Vec<Running>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    for part in parts {
        tally.add(
            part.await
                .map_err(|e| format!("an import task ended early: {e}"))??,
        );
    }
    Ok(tally)
}

/// Reads the file from data row `skip` on and sends it in chunks; stops when the
/// receiver is gone (the run ended).
fn read_chunks(path: &std::path::Path, skip: usize, tx: &tokio::sync::mpsc::Sender<Chunk>) {
    let reader = match std::fs::File::open(path) {
        Ok(file) => csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::with_capacity(1 << 16, file)),
        Err(e) => {
            let _ = tx.blocking_send(Err(format!("the uploaded file is gone: {e}")));
            return;
        }
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    // Row numbers as a spreadsheet shows them: the header is row 1.
    for (i, record) in reader.into_records().enumerate().skip(skip) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("the file cannot be read as CSV: {e}")));
                return;
            }
        };
        chunk.push((i as i64 + 2, record.iter().map(str::to_string).collect()));
        if chunk.len() == CHUNK
            && tx
                .blocking_send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                .is_err()
        {
            return;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
}

/// Checks settings against the file and the caller's rights; every problem at once.
pub(super) fn plan_errors(
    object: Arc<ObjectType>,
    writable: &[String],
    columns: &[String],
    settings: &Settings,
) -> Vec<String> {
    match plan(object, writable, columns, settings) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

fn plan(
    object: Arc<ObjectType>,
    writable: &[String],
    columns: &[String],
    settings: &Settings,
) -> Result<Plan, Vec<String>> {
    let mut errors = Vec::new();
    let mut cells = Vec::new();
    let mut mapped = HashSet::new();
    for (column, field) in &settings.mapping {
        let Some(index) = columns.iter().position(|c| c == column) else {
            errors.push(format!("the file has no column '{column}'"));
            continue;
        };
        let Some(f) = object.field(field) else {
            errors.push(format!("{} has no field '{field}'", object.name));
            continue;
        };
        if !writable.contains(field) {
            errors.push(format!("you may not write the field '{field}'"));
            continue;
        }
        if !mapped.insert(field.clone()) {
            errors.push(format!("more than one column is mapped to '{field}'"));
            continue;
        }
        cells.push((index, f.clone()));
    }
    if settings.mapping.is_empty() {
        errors.push("no column is mapped to a field".into());
    }
    for f in object.fields.iter().filter(|f| f.required) {
        if !mapped.contains(&f.name) && f.default.is_none() {
            errors.push(format!(
                "'{}' is required and no column is mapped to it",
                f.name
            ));
        }
    }
    let mut keys = Vec::new();
    for name in &settings.match_on {
        match object.field(name) {
            Some(f) if !super::matchable(f.kind) => errors.push(format!(
                "duplicates are found by text, email, phone, url, picklist or reference fields; '{name}' is not one"
            )),
            Some(f) if mapped.contains(name) => keys.push(f.clone()),
            Some(_) => errors.push(format!(
                "match_on names '{name}', which no column is mapped to"
            )),
            None => errors.push(format!("{} has no field '{name}'", object.name)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Plan {
        object,
        cells,
        keys,
        on_duplicate: settings.on_duplicate,
        header_len: columns.len(),
    })
}

/// Imports one chunk. Rows repeating a key seen earlier in the chunk wait for a later
/// wave, so they meet the record their first occurrence made.
async fn import_rows(
    app: &AppState,
    actor: &Arc<Actor>,
    plan: &Plan,
    dry_run: bool,
    mut pending: Vec<Pending>,
    mut tally: Tally,
) -> Result<Tally, String> {
    // Keys the dry run pretends exist (it writes nothing, yet a repeat is a duplicate).
    let mut imagined = HashSet::new();
    while !pending.is_empty() {
        let mut seen = HashSet::new();
        let (wave, later): (Vec<Pending>, Vec<Pending>) = pending
            .into_iter()
            .partition(|r| r.key.as_ref().is_none_or(|k| seen.insert(k.clone())));
        pending = later;
        let existing = find_existing(app, actor, plan, &wave)
            .await
            .map_err(|e| format!("could not look for duplicates: {e}"))?;
        let (mut creates, mut updates) = (Vec::new(), Vec::new());
        for row in wave {
            let found = row.key.as_ref().and_then(|k| existing.get(k));
            match (found, plan.on_duplicate) {
                (Some(_), OnDuplicate::Skip) => tally.unchanged += 1,
                (Some(record), OnDuplicate::Update) => {
                    match validate(&plan.object, &row.input, Mode::Update) {
                        Err(errors) => tally.errors.push(RowError {
                            row: row.number,
                            message: field_errors(&errors),
                        }),
                        Ok(valid) => {
                            let patch: Map<String, Value> = valid
                                .values
                                .into_iter()
                                .filter(|(k, v)| {
                                    !same(plan.object.field(k), record.fields.get(k), v)
                                })
                                .collect();
                            if patch.is_empty() {
                                tally.unchanged += 1;
                            } else if dry_run {
                                tally.updated += 1;
                            } else {
                                updates.push(Update(
                                    row.number,
                                    record.id.clone(),
                                    record.version,
                                    patch,
                                ));
                            }
                        }
                    }
                }
                (None, _) if dry_run => {
                    let repeat = row
                        .key
                        .as_ref()
                        .is_some_and(|k| !imagined.insert(k.clone()));
                    match validate(&plan.object, &row.input, Mode::Create) {
                        Err(errors) => tally.errors.push(RowError {
                            row: row.number,
                            message: field_errors(&errors),
                        }),
                        Ok(_) if repeat && plan.on_duplicate == OnDuplicate::Skip => {
                            tally.unchanged += 1
                        }
                        Ok(_) if repeat => tally.updated += 1,
                        Ok(_) => tally.created += 1,
                    }
                }
                (None, _) => creates.push((row.number, row.input)),
            }
        }
        // New records go in as one write (one transaction); updates, each of its own
        // record, run side by side with them.
        let (numbers, inputs): (Vec<i64>, Vec<Map<String, Value>>) = creates.into_iter().unzip();
        let object: Arc<str> = plan.object.name.as_str().into();
        let updating = futures_util::stream::iter(updates)
            .map(|update| update.apply(app.clone(), actor.clone(), object.clone()))
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>();
        let (created, updated) = tokio::join!(
            app.records.create_many(actor, &plan.object.name, &inputs),
            updating
        );
        let created = created.map_err(|e| format!("could not create records: {e}"))?;
        for (number, outcome) in numbers.into_iter().zip(created) {
            match outcome {
                Ok(_) => tally.created += 1,
                Err(e) => tally.errors.push(RowError {
                    row: number,
                    message: record_error(e),
                }),
            }
        }
        for (number, outcome) in updated {
            match outcome {
                Ok(()) => tally.updated += 1,
                Err(e) => tally.errors.push(RowError {
                    row: number,
                    message: record_error(e),
                }),
            }
        }
    }
    tally.errors.sort_by_key(|e| e.row);
    Ok(tally)
}

/// A matched row's change: row number, record id, its version when read, the
/// changed values.
struct Update(i64, String, i64, Map<String, Value>);

impl Update {
    /// Writes the change through the records service. Owns what it uses, so many can
    /// run at once on any worker thread.
    async fn apply(
        self,
        app: AppState,
        actor: Arc<Actor>,
        object: Arc<str>,
    ) -> (i64, Result<(), RecordError>) {
        let Update(number, id, version, patch) = self;
        let outcome = app
            .records
            .update(&actor, &object, &id, &patch, Some(version))
            .await
            .map(|_| ());
        (number, outcome)
    }
}

/// A chunk's rows as inputs, and its tally so far (the rows, those that could not be
/// read).
fn prepare_chunk(plan: &Plan, chunk: Vec<(i64, Vec<String>)>) -> (Vec<Pending>, Tally) {
    let mut tally = Tally {
        rows: chunk.len() as i64,
        ..Tally::default()
    };
    let mut rows = Vec::with_capacity(chunk.len());
    for (number, cells) in chunk {
        match prepare(plan, number, &cells) {
            Ok(row) => rows.push(row),
            Err(message) => tally.errors.push(RowError {
                row: number,
                message,
            }),
        }
    }
    (rows, tally)
}

/// A row's input: each mapped, non-empty cell as its field's value.
fn prepare(plan: &Plan, number: i64, cells: &[String]) -> Result<Pending, String> {
    if cells.len() != plan.header_len {
        return Err(format!(
            "the row has {} cells; the header has {}",
            cells.len(),
            plan.header_len
        ));
    }
    let mut input = Map::new();
    for (index, field) in &plan.cells {
        let raw = cells[*index].trim();
        if !raw.is_empty() {
            input.insert(field.name.clone(), from_text(field, raw));
        }
    }
    let key = key_of(&plan.keys, &input);
    Ok(Pending { number, input, key })
}

/// The duplicate key of a record's values: every match field's value, emails in lower
/// case; none when one of them is empty.
fn key_of(keys: &[Field], values: &Map<String, Value>) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let mut key = String::new();
    for f in keys {
        let text = values.get(&f.name)?.as_str()?.trim();
        if text.is_empty() {
            return None;
        }
        if !key.is_empty() {
            key.push('\u{1f}');
        }
        if f.kind == FieldType::Email {
            key.push_str(&text.to_lowercase());
        } else {
            key.push_str(text);
        }
    }
    Some(key)
}

/// The existing records the wave's keys match, by key: one query on the first match
/// field's index (emails looked up as written and in lower case), the rest compared
/// here. Of several matches the oldest wins.
async fn find_existing(
    app: &AppState,
    actor: &Actor,
    plan: &Plan,
    wave: &[Pending],
) -> Result<HashMap<String, Existing>, sqlx::Error> {
    let Some(first) = plan.keys.first() else {
        return Ok(HashMap::new());
    };
    let mut wanted: Vec<String> = Vec::new();
    let mut set = HashSet::new();
    for row in wave.iter().filter(|r| r.key.is_some()) {
        if let Some(text) = row.input.get(&first.name).and_then(Value::as_str) {
            let text = text.trim();
            for variant in [text.to_string(), text.to_lowercase()] {
                if set.insert(variant.clone()) {
                    wanted.push(variant);
                }
            }
        }
    }
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let dialect = app.db.dialect;
    let list: Vec<String> = (1..=wanted.len()).map(|n| dialect.in_order(n)).collect();
    // The object as a literal (a checked identifier), as in the field's partial index
    // `WHERE object = '<name>'`: SQLite uses a partial index only for a query whose
    // WHERE names the same literal, never a bound parameter. Without statistics its
    // planner still prefers the (object, ...) indexes for a long IN list, a scan of
    // every record of the object per chunk, so SQLite is told the index.
    let index = match dialect {
        crate::db::Dialect::Sqlite if first.indexed || first.unique => {
            format!(" INDEXED BY {}", first.index_name(&plan.object.name))
        }
        _ => String::new(),
    };
    let sql = format!(
        "SELECT id, version, owner_id, department_id, {} AS data FROM records{index} WHERE object = '{}' AND {} IN ({})",
        dialect.json_text("data"),
        plan.object.name,
        first.value_sql(),
        list.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for w in &wanted {
        query = query.bind(w);
    }
    // Only records the importer may read are matched: others are as if absent, so a
    // dry run says nothing of them (the same rule as the list and search).
    let user = app.access.user(actor);
    let rights = user.object(&plan.object.name);
    for row in query.fetch_all(&app.db.pool).await? {
        let owner: Option<String> = row.try_get("owner_id")?;
        let department: Option<String> = row.try_get("department_id")?;
        if !user.covers(
            rights.grants(crate::access::Action::Read),
            owner.as_deref(),
            department.as_deref(),
        ) {
            continue;
        }
        let data: String = row.try_get("data")?;
        let fields: Map<String, Value> = serde_json::from_str(&data).unwrap_or_default();
        if let Some(key) = key_of(&plan.keys, &fields) {
            let record = Existing {
                id: row.try_get("id")?,
                version: row.try_get("version")?,
                fields,
            };
            // Ids grow with time: the smallest is the oldest.
            match found.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if record.id < o.get().id {
                        o.insert(record);
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(record);
                }
            }
        }
    }
    Ok(found)
}

/// Whether a stored value equals a new one: numbers by value (12000 is 12000.0),
/// emails in any case (a file never rewrites only the case of the key it matched on).
fn same(field: Option<&Field>, stored: Option<&Value>, new: &Value) -> bool {
    match (stored, new) {
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Some(Value::String(a)), Value::String(b))
            if field.is_some_and(|f| f.kind == FieldType::Email) =>
        {
            a.eq_ignore_ascii_case(b)
        }
        (Some(a), b) => a == b,
        (None, b) => b.is_null(),
    }
}

fn field_errors(errors: &[crate::api::error::FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn record_error(e: RecordError) -> String {
    match e {
        RecordError::Invalid(errors) | RecordError::FieldsForbidden(errors) => {
            field_errors(&errors)
        }
        RecordError::Conflict { .. } => {
            "the matching record was changed by someone else during the import".into()
        }
        RecordError::Db(e) => {
            tracing::error!(error = %e, "an import row failed in the database");
            "the database refused the row".into()
        }
        other => other.to_string(),
    }
}
