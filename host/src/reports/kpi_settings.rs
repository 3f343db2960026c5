//! What the KPI figures count: the picklist values that make an activity a call or a
//! meeting, a deal won and a lead a prospect. Companies name these their own way (an
//! admin adds "closed won" to the deal statuses, or "video call" to the activity
//! kinds), so an organisation admin sets them; until then the standard values count.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::error::FieldError;
use crate::db::{self, Db};
use crate::records::metadata::FieldType;

/// The row of `settings` holding them.
const NAME: &str = "kpis";
/// Most values one list takes.
const MAX_VALUES: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiSettings {
    /// Activity `kind` values counted as calls (time on the phone is theirs).
    pub call_kinds: Vec<String>,
    /// Activity `kind` values counted as meetings.
    pub meeting_kinds: Vec<String>,
    /// Deal `status` values counted as won (against quota, new and returning
    /// customers).
    pub won_statuses: Vec<String>,
    /// Lead `status` values counted as prospects.
    pub prospect_statuses: Vec<String>,
}

impl Default for KpiSettings {
    fn default() -> Self {
        let list = |values: &[&str]| values.iter().map(|v| v.to_string()).collect();
        KpiSettings {
            call_kinds: list(&["call"]),
            meeting_kinds: list(&["meeting"]),
            won_statuses: list(&["won"]),
            prospect_statuses: list(&["qualified", "completed"]),
        }
    }
}

impl KpiSettings {
    /// The settings in force: the admin's, or the standard ones.
    pub async fn load(db: &Db) -> Result<KpiSettings, sqlx::Error> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(NAME)
                .fetch_optional(&db.pool)
                .await?;
        // Stored only after the checks below, so it reads back; should it not (an
        // older host's shape), the standard values count rather than nothing.
        Ok(stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    pub async fn save(&self, db: &Db, by: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(NAME)
        .bind(serde_json::to_string(self).expect("strings serialise"))
        .bind(db::now())
        .bind(by)
        .execute(&db.pool)
        .await?;
        Ok(())
    }

    /// Every problem, by list: each names 1 to 20 values of its field's picklist (when
    /// the field is one), none twice, and no kind counts as both a call and a meeting.
    pub fn check(&self, app: &AppState) -> Vec<FieldError> {
        let schema = app.records.schema();
        let mut errors = Vec::new();
        for (list, values, object, field) in [
            ("call_kinds", &self.call_kinds, "activities", "kind"),
            ("meeting_kinds", &self.meeting_kinds, "activities", "kind"),
            ("won_statuses", &self.won_statuses, "deals", "status"),
            (
                "prospect_statuses",
                &self.prospect_statuses,
                "leads",
                "status",
            ),
        ] {
            if values.is_empty() || values.len() > MAX_VALUES {
                errors.push(FieldError::new(
                    list,
                    format!("name 1 to {MAX_VALUES} values"),
                ));
                continue;
            }
            let allowed = schema
                .object(object)
                .and_then(|o| o.field(field))
                .filter(|f| f.kind == FieldType::Picklist)
                .map(|f| f.values.clone());
            for (i, value) in values.iter().enumerate() {
                if values[..i].contains(value) {
                    errors.push(FieldError::new(list, format!("names '{value}' twice")));
                } else if value.is_empty() || value.contains(',') {
                    // The figures filter with `[in]`, whose values are comma separated.
                    errors.push(FieldError::new(
                        list,
                        "a value is not empty and has no comma",
                    ));
                } else if let Some(allowed) = &allowed
                    && !allowed.contains(value)
                {
                    errors.push(FieldError::new(
                        list,
                        format!("'{value}' is not a value of {object}.{field}"),
                    ));
                }
            }
        }
        for both in self
            .call_kinds
            .iter()
            .filter(|k| self.meeting_kinds.contains(k))
        {
            errors.push(FieldError::new(
                "meeting_kinds",
                format!("'{both}' is counted as a call already"),
            ));
        }
        errors
    }
}
