//! Built without the SDK against the frozen `crm:plugin@0.1.0`: its imports and
//! exports carry `@0.1.0`, and a host whose bindings are a later 0.1.x must still
//! link, call and answer it (Wasmtime matches the versions by semver).

wit_bindgen::generate!({
    path: "../../../wit/crm-plugin-0.1.0",
    world: "plugin",
    generate_all,
});

use crm::plugin::types::{
    Change, HookError, HttpRequest, HttpResponse, Job, SaveContext, StepInput, StepOutcome,
    StepType,
};

struct Legacy;

impl exports::crm::plugin::hooks::Guest for Legacy {
    /// Fills an empty `description` with a mark, after reading the record back
    /// through the host (an import) when it has an id.
    fn before_save(context: SaveContext, record: String) -> Result<Option<String>, HookError> {
        crm::plugin::log::write(
            crm::plugin::log::Level::Info,
            &format!(
                "legacy before-save of a {} {}",
                context.operation, context.object
            ),
        );
        if record.contains("\"description\":\"") {
            return Ok(None);
        }
        Ok(Some(
            "{\"description\":\"checked by a crm:plugin@0.1.0 plugin\"}".to_string(),
        ))
    }

    fn after_save(_change: Change) -> Result<(), String> {
        Ok(())
    }
}

impl exports::crm::plugin::routes::Guest for Legacy {
    /// `GET /company/{id}`: the company's name, read through `records.get`.
    fn handle(request: HttpRequest) -> HttpResponse {
        let answer = |status: u16, body: String| HttpResponse {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into_bytes(),
        };
        match request.path.strip_prefix("/company/") {
            Some(id) => match crm::plugin::records::get("companies", id) {
                Ok(json) => answer(200, json),
                Err(e) => answer(404, e),
            },
            None => answer(200, "crm:plugin@0.1.0".into()),
        }
    }
}

impl exports::crm::plugin::steps::Guest for Legacy {
    fn describe() -> Vec<StepType> {
        Vec::new()
    }

    fn run(input: StepInput) -> Result<StepOutcome, String> {
        Err(format!("no step type '{}'", input.step))
    }
}

impl exports::crm::plugin::job_handler::Guest for Legacy {
    fn run(_job: Job) -> Result<(), String> {
        Ok(())
    }
}

export!(Legacy);
