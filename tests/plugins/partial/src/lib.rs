//! Built without the SDK against a world that exports only `hooks`: the component
//! lacks `routes`, `steps` and `job-handler`, so the host must refuse to install it
//! and say which export is missing.

wit_bindgen::generate!({
    inline: "
        package test:partial;
        world partial {
            export crm:plugin/hooks@0.1.0;
        }
    ",
    path: "../../../wit/crm-plugin-0.1.0",
    world: "test:partial/partial",
    generate_all,
});

struct Partial;

impl exports::crm::plugin::hooks::Guest for Partial {
    fn before_save(
        _context: crm::plugin::types::SaveContext,
        _record: String,
    ) -> Result<Option<String>, crm::plugin::types::HookError> {
        Ok(None)
    }

    fn after_save(_change: crm::plugin::types::Change) -> Result<(), String> {
        Ok(())
    }
}

export!(Partial);
