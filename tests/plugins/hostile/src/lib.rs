//! A plugin that misbehaves when a company's `name` asks it to, so the tests can show
//! that the host stops it, reports a clear error and keeps serving.

use crm_plugin_sdk::{
    Committed, HookError, HttpRequest, HttpResponse, Job, Plugin, Record, SaveContext, Value,
    documents, http, jobs, json, kv, records,
};

struct Hostile;

impl Plugin for Hostile {
    fn before_save(_context: &SaveContext, record: &Record) -> Result<Option<Record>, HookError> {
        let name = record.get("name").and_then(Value::as_str).unwrap_or("");
        match name {
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Reserved, not written: the limit is hit by growing memory, not
                    // by the time it takes to touch every page.
                    hoard.push(std::hint::black_box(Vec::with_capacity(1 << 20)));
                }
            }
            "panic" => panic!("the hostile plugin panics on purpose"),
            "recurse" => Ok(Some(deep(0))),
            "huge" => {
                let mut patch = Record::new();
                patch.insert("description".into(), Value::String("x".repeat(2 << 20)));
                Ok(Some(patch))
            }
            "flood" => {
                for _ in 0..1_000_000 {
                    crm_plugin_sdk::log::debug("flood");
                }
                Ok(None)
            }
            // Reads a record of an object outside its grants (companies) and one inside
            // (deals) and reports what it got in the description.
            n if n.starts_with("peek:") => {
                let (object, id) = n["peek:".len()..].split_once('/').unwrap_or(("", ""));
                let seen = match records::get(object, id) {
                    Ok(r) => format!(
                        "read {}",
                        r.get("name").and_then(Value::as_str).unwrap_or("?")
                    ),
                    Err(e) => format!("refused: {e}"),
                };
                let mut patch = Record::new();
                patch.insert("description".into(), Value::String(seen));
                Ok(Some(patch))
            }
            // Tries to write a record inside before-save, which the host refuses.
            "write-in-before-save" => {
                let mut deal = Record::new();
                deal.insert("name".into(), Value::from("sneaky"));
                let outcome = match records::create("deals", &deal) {
                    Ok(_) => "created".to_string(),
                    Err(e) => format!("refused: {e}"),
                };
                Ok(Some(description(outcome)))
            }
            // Lets the after-save hook accept what it refused so far.
            "forgive" => {
                kv::set("forgive", "yes").map_err(HookError::Failed)?;
                Ok(None)
            }
            // Reads a kv key (its own store only) into the description.
            n if n.starts_with("kv-peek:") => {
                let value = kv::get(&n["kv-peek:".len()..]).map_err(HookError::Failed)?;
                Ok(Some(description(format!(
                    "kv: {}",
                    value.as_deref().unwrap_or("none")
                ))))
            }
            _ => Ok(None),
        }
    }

    /// Fails for a company named `after-save-fails` until a company named `forgive`
    /// was saved; otherwise counts deliveries per record in kv.
    fn after_save(change: &Committed) -> Result<(), String> {
        let name = change
            .record
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name == "after-save-fails" && kv::get("forgive")?.is_none() {
            return Err("asked to fail".into());
        }
        let key = format!("seen/{}", change.record_id);
        let seen: u64 = kv::get_json(&key)?.unwrap_or(0);
        kv::set_json(&key, &(seen + 1))
    }

    /// Misbehaves by path; `/open/...` is public (the manifest says so) and
    /// behaves the same.
    fn handle(request: &HttpRequest) -> HttpResponse {
        let path = request.path.strip_prefix("/open").unwrap_or(&request.path);
        match path {
            "/loop" => loop {
                std::hint::black_box(0u64);
            },
            "/panic" => panic!("the hostile route panics on purpose"),
            "/huge" => HttpResponse {
                status: 200,
                headers: vec![],
                body: vec![b'x'; 2 << 20],
            },
            "/bad-status" => HttpResponse {
                status: 42,
                headers: vec![],
                body: vec![],
            },
            "/cookie" => HttpResponse {
                status: 200,
                headers: vec![
                    ("set-cookie".into(), "session=stolen".into()),
                    ("x-hostile".into(), "yes".into()),
                ],
                body: b"ok".to_vec(),
            },
            "/echo" => http::json(
                200,
                &json!({
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                    "user": request.user,
                    "body_bytes": request.body.len(),
                }),
            ),
            // Deals it can see, as whoever it acts for.
            "/deals" => match records::list("deals", "limit=100") {
                Ok((deals, _)) => http::json(
                    200,
                    &json!(deals.iter().map(|d| d["name"].clone()).collect::<Vec<_>>()),
                ),
                Err(e) => http::problem(403, &e),
            },
            // Creates a deal owned by the user in the query: it may write deals but
            // was not granted assigning them.
            "/give-deal" => {
                let mut deal = crm_plugin_sdk::Map::new();
                deal.insert("name".into(), json!("given"));
                deal.insert("owner".into(), json!(request.query));
                match records::create("deals", &deal) {
                    Ok(d) => http::json(201, &d["owner"]),
                    Err(e) => http::problem(403, &e),
                }
            }
            // `{"name": .., "seconds": ..}`: schedules a job.
            "/schedule" => {
                let body: Record = match http::body_json(request) {
                    Ok(b) => b,
                    Err(answer) => return answer,
                };
                let name = body.get("name").and_then(Value::as_str).unwrap_or("count");
                let seconds = body.get("seconds").and_then(Value::as_u64).unwrap_or(0);
                match jobs::schedule_in(name, seconds, "payload") {
                    Ok(id) => http::json(201, &json!({ "id": id })),
                    Err(e) => http::problem(422, &e),
                }
            }
            p if p.starts_with("/cancel/") => match jobs::cancel(&p["/cancel/".len()..]) {
                Ok(found) => http::json(200, &json!({ "cancelled": found })),
                Err(e) => http::problem(422, &e),
            },
            p if p.starts_with("/kv/") => match kv::get(&p["/kv/".len()..]) {
                Ok(v) => http::json(200, &json!({ "value": v })),
                Err(e) => http::problem(500, &e),
            },
            // The document library, as whoever it acts for.
            "/documents" => match documents::list(&request.query) {
                Ok((docs, next)) => http::json(
                    200,
                    &json!({
                        "ids": docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
                        "next_cursor": next,
                    }),
                ),
                Err(e) => http::problem(404, &e),
            },
            p if p.starts_with("/documents/") => {
                document(&p["/documents/".len()..], &request.query)
            }
            p if p.starts_with("/attached/deals/") => {
                match documents::of_record("deals", &p["/attached/deals/".len()..]) {
                    Ok(docs) => http::json(
                        200,
                        &json!(docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>()),
                    ),
                    Err(e) => http::problem(404, &e),
                }
            }
            _ => http::problem(404, "no such hostile route"),
        }
    }

    /// `count`: counts its runs in kv and creates a deal as the plugin itself;
    /// `fail`: fails; `loop`: never ends.
    fn run_job(job: &Job) -> Result<(), String> {
        match job.name.as_str() {
            "count" => {
                let runs: u64 = kv::get_json("jobs/count")?.unwrap_or(0);
                kv::set_json("jobs/count", &(runs + 1))?;
                let mut deal = Record::new();
                deal.insert("name".into(), Value::from(format!("from job {}", job.id)));
                records::create("deals", &deal)?;
                Ok(())
            }
            "loop" => loop {
                std::hint::black_box(0u64);
            },
            _ => Err(format!("asked to fail (attempt {})", job.attempt)),
        }
    }
}

fn description(text: String) -> Record {
    let mut patch = Record::new();
    patch.insert("description".into(), Value::String(text));
    patch
}

/// Recursion without end, on purpose: the sandbox must stop it.
#[allow(unconditional_recursion)]
fn deep(n: u64) -> Record {
    let mut r = deep(std::hint::black_box(n + 1));
    r.insert("n".into(), Value::from(n));
    r
}

crm_plugin_sdk::export_plugin!(Hostile);

/// `{id}`, `{id}/versions`, `{id}/content?version=&offset=&length=` (one read) and
/// `{id}/all` (the whole current version, read in parts: its size and byte sum).
fn document(rest: &str, query: &str) -> HttpResponse {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let bytes = |content: Vec<u8>| HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: content,
    };
    let answer = match rest.split_once('/') {
        None => documents::get(rest).map(|d| {
            http::json(
                200,
                &json!({"id": d.id, "title": d.title, "version": d.version, "department": d.department, "size": d.size}),
            )
        }),
        Some((id, "versions")) => documents::versions(id).map(|versions| {
            http::json(
                200,
                &json!(versions.iter().map(|v| v.version).collect::<Vec<_>>()),
            )
        }),
        Some((id, "content")) => documents::read(
            id,
            param("version").map(|v| v as u32),
            param("offset").unwrap_or(0),
            param("length").unwrap_or(u64::from(documents::MAX_READ)) as u32,
        )
        .map(bytes),
        // Answers are at most 1 MiB: the size and a checksum of what was read.
        Some((id, "all")) => documents::read_all(id, 8 << 20).map(|content| {
            let sum = content.iter().map(|b| u64::from(*b)).sum::<u64>();
            http::json(200, &json!({"bytes": content.len(), "sum": sum}))
        }),
        _ => return http::problem(404, "no such document route"),
    };
    answer.unwrap_or_else(|e| http::problem(404, &e))
}
