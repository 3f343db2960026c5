//! A form definition and what a submission of it becomes: checked values mapped to
//! a record's fields.

use crm_plugin_sdk::{Map, Value};
use serde::{Deserialize, Serialize};

/// Objects a form may fill (the manifest's `write` grants).
pub const OBJECTS: &[&str] = &["leads", "contacts"];
/// What a form is: a plain form, or a customer satisfaction (1 to 5) or Net
/// Promoter (0 to 10) survey.
pub const KINDS_OF_FORM: &[&str] = &["form", "csat", "nps"];
/// The survey answers, kept on the submission rather than the record.
pub const SCORE: &str = "score";
pub const COMMENT: &str = "comment";
/// The honeypot: a field people never see (hidden by CSS) and bots fill in.
pub const HONEYPOT: &str = "website";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    pub title: String,
    /// `form` (the default), `csat` or `nps`.
    #[serde(default = "default_form_kind")]
    pub kind: String,
    /// A survey's question (a default per kind otherwise).
    #[serde(default)]
    pub question: Option<String>,
    /// `leads` (the default) or `contacts`.
    #[serde(default = "default_object")]
    pub object: String,
    pub fields: Vec<FormField>,
    /// Fixed values every submission gets, such as `{"source": "Web"}`.
    #[serde(default)]
    pub hidden: Map<String, Value>,
    /// Fields that identify an existing record to update instead of creating one.
    #[serde(default = "default_dedupe")]
    pub dedupe_by: Vec<String>,
    #[serde(default = "default_thank_you")]
    pub thank_you: String,
    /// Where a browser goes after submitting the HTML form (instead of the thank-you).
    #[serde(default)]
    pub redirect: Option<String>,
    /// Users who take new records in turn (round robin); none: the form's.
    #[serde(default)]
    pub assign_to: Vec<String>,
    /// The department records go to: set by the host when an admin saves the form.
    #[serde(default)]
    pub department: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    /// The record field it fills.
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// `text`, `email`, `phone`, `number`, `textarea` or `select`.
    #[serde(default = "default_kind", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub help: String,
    /// Longest answer in characters (default 500).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// The choices of a `select`.
    #[serde(default)]
    pub options: Vec<String>,
    /// Shown (and so asked) only when another field has this value.
    #[serde(default)]
    pub show_if: Option<ShowIf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowIf {
    pub field: String,
    pub equals: String,
}

fn default_object() -> String {
    "leads".into()
}
fn default_form_kind() -> String {
    "form".into()
}
fn default_dedupe() -> Vec<String> {
    vec!["email".into()]
}
fn default_thank_you() -> String {
    "Thank you. We will be in touch.".into()
}
fn default_kind() -> String {
    "text".into()
}

/// Types of a form's fields.
pub const KINDS: &[&str] = &["text", "email", "phone", "number", "textarea", "select"];

/// One problem with one field.
pub type Problem = (String, String);

/// A submission's checked answers.
#[derive(Debug)]
pub struct Answer {
    /// The fields of the record it creates or updates (with the hidden values).
    pub record: Map<String, Value>,
    /// A survey's score.
    pub score: Option<i64>,
    pub comment: Option<String>,
}

impl Form {
    /// What is wrong with the definition itself.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem =
            |field: &str, message: String| problems.push((field.to_string(), message));
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            problem("title", "must be 1 to 200 characters".into());
        }
        if !OBJECTS.contains(&self.object.as_str()) {
            problem("object", format!("must be one of {}", OBJECTS.join(", ")));
        }
        if !KINDS_OF_FORM.contains(&self.kind.as_str()) {
            problem(
                "kind",
                format!("must be one of {}", KINDS_OF_FORM.join(", ")),
            );
        }
        if self.is_survey() {
            // Answers are linked to the contact who gave them.
            if self.object != "contacts" {
                problem("object", "a survey fills contacts".into());
            }
            if self.fields.len() > 50 {
                problem("fields", "a survey has at most 50 fields".into());
            }
        } else if self.fields.is_empty() || self.fields.len() > 50 {
            problem("fields", "a form has 1 to 50 fields".into());
        }
        if self.assign_to.len() > 100
            || self.assign_to.iter().any(|u| u.is_empty() || u.len() > 100)
        {
            problem("assign_to", "at most 100 user ids".into());
        }
        if self
            .question
            .as_ref()
            .is_some_and(|q| q.chars().count() > 500)
        {
            problem("question", "is at most 500 characters".into());
        }
        for (i, f) in self.fields.iter().enumerate() {
            let at = format!("fields[{i}]");
            if !KINDS.contains(&f.kind.as_str()) {
                problem(&at, format!("type must be one of {}", KINDS.join(", ")));
            }
            if f.name == HONEYPOT {
                problem(&at, format!("'{HONEYPOT}' is kept for the spam trap"));
            }
            if self.is_survey() && (f.name == SCORE || f.name == COMMENT) {
                problem(&at, format!("'{}' is the survey's own question", f.name));
            }
            if f.kind == "select" && f.options.is_empty() {
                problem(&at, "a select needs options".into());
            }
            if let Some(cond) = &f.show_if
                && !self.fields.iter().any(|o| o.name == cond.field)
            {
                problem(
                    &at,
                    format!(
                        "show_if names '{}', which is not a field of the form",
                        cond.field
                    ),
                );
            }
        }
        for d in &self.dedupe_by {
            if !self.fields.iter().any(|f| &f.name == d) {
                problem("dedupe_by", format!("'{d}' is not a field of the form"));
            }
        }
        problems
    }

    pub fn is_survey(&self) -> bool {
        self.kind != "form"
    }

    /// The questions asked: the form's fields, then a survey's score and comment.
    pub fn questions(&self) -> Vec<FormField> {
        let mut questions = self.fields.clone();
        let scale = match self.kind.as_str() {
            "csat" => 1..=5,
            "nps" => 0..=10,
            _ => return questions,
        };
        let default_question = if self.kind == "csat" {
            "How satisfied are you with us? (1: not at all, 5: very)"
        } else {
            "How likely are you to recommend us to a friend or colleague? (0: not at all, 10: extremely)"
        };
        let question = |name: &str, label: &str, kind: &str, required: bool, options| FormField {
            name: name.into(),
            label: label.into(),
            kind: kind.into(),
            required,
            help: String::new(),
            max_length: Some(2000),
            options,
            show_if: None,
        };
        questions.push(question(
            SCORE,
            self.question.as_deref().unwrap_or(default_question),
            "select",
            true,
            scale.map(|n: u8| n.to_string()).collect(),
        ));
        questions.push(question(
            COMMENT,
            "Anything you would like to tell us?",
            "textarea",
            false,
            Vec::new(),
        ));
        questions
    }

    /// What a submission gives: the record's fields and a survey's score and
    /// comment, or the problems with its answers. Fields hidden by `show_if` are
    /// neither asked nor kept.
    pub fn answer(&self, answers: &Map<String, Value>) -> Result<Answer, Vec<Problem>> {
        let mut record = self.record(answers)?;
        let score = record
            .remove(SCORE)
            .and_then(|s| s.as_str().and_then(|s| s.parse().ok()));
        let comment = record
            .remove(COMMENT)
            .and_then(|c| c.as_str().map(str::to_string));
        Ok(Answer {
            record,
            score,
            comment,
        })
    }

    fn record(&self, answers: &Map<String, Value>) -> Result<Map<String, Value>, Vec<Problem>> {
        let text = |name: &str| match answers.get(name) {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let mut record = self.hidden.clone();
        let mut problems = Vec::new();
        for f in &self.questions() {
            if let Some(cond) = &f.show_if
                && text(&cond.field).as_deref() != Some(cond.equals.as_str())
            {
                continue;
            }
            let value = match answers.get(&f.name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(_)) | Some(Value::Number(_)) => text(&f.name),
                Some(_) => {
                    problems.push((f.name.clone(), "must be text".into()));
                    continue;
                }
            };
            let Some(value) = value else {
                if f.required {
                    problems.push((f.name.clone(), "is required".into()));
                }
                continue;
            };
            match check_answer(f, &value) {
                Ok(v) => {
                    record.insert(f.name.clone(), v);
                }
                Err(e) => problems.push((f.name.clone(), e)),
            }
        }
        if problems.is_empty() {
            Ok(record)
        } else {
            Err(problems)
        }
    }
}

fn check_answer(field: &FormField, value: &str) -> Result<Value, String> {
    let max = field.max_length.unwrap_or(500);
    if value.chars().count() > max {
        return Err(format!("is at most {max} characters"));
    }
    match field.kind.as_str() {
        "email" => {
            let (local, domain) = value.split_once('@').ok_or("must be an email address")?;
            if local.is_empty() || !domain.contains('.') || value.contains(char::is_whitespace) {
                return Err("must be an email address".into());
            }
            Ok(Value::String(value.to_lowercase()))
        }
        "phone" => {
            let digits = value.chars().filter(char::is_ascii_digit).count();
            let allowed = value
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if digits < 5 || !allowed {
                return Err("must be a phone number".into());
            }
            Ok(Value::String(value.to_string()))
        }
        "number" => value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from)
            .ok_or_else(|| "must be a number".to_string()),
        "select" if !field.options.iter().any(|o| o == value) => {
            Err(format!("must be one of {}", field.options.join(", ")))
        }
        _ => Ok(Value::String(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_plugin_sdk::json;

    fn form() -> Form {
        crm_plugin_sdk::serde_json::from_value(json!({
            "title": "Contact us",
            "fields": [
                {"name": "last_name", "required": true},
                {"name": "email", "type": "email", "required": true},
                {"name": "interest", "type": "select", "options": ["demo", "pricing"]},
                {"name": "company_name", "show_if": {"field": "interest", "equals": "pricing"}, "required": true},
            ],
            "hidden": {"source": "Web"},
        }))
        .unwrap()
    }

    fn answers(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn answers_are_checked_and_mapped() {
        let f = form();
        assert!(f.check().is_empty());
        let record = f
            .record(&answers(
                json!({"last_name": " Lee ", "email": "Ana@Acme.example", "interest": "demo"}),
            ))
            .unwrap();
        assert_eq!(record["email"], "ana@acme.example");
        assert_eq!(record["last_name"], "Lee");
        assert_eq!(record["source"], "Web");
        assert!(!record.contains_key("company_name"), "hidden by show_if");
        let problems = f
            .record(&answers(json!({"email": "nope", "interest": "pricing"})))
            .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["last_name", "email", "company_name"]);
        assert!(
            f.record(&answers(json!({"last_name": "x", "email": ["a"]})))
                .is_err()
        );
    }

    #[test]
    fn surveys_ask_a_score_on_their_scale_and_keep_it_off_the_record() {
        let nps: Form = crm_plugin_sdk::serde_json::from_value(json!({
            "title": "How did we do?",
            "kind": "nps",
            "object": "contacts",
            "fields": [{"name": "email", "type": "email", "required": true}],
        }))
        .unwrap();
        assert!(nps.check().is_empty(), "{:?}", nps.check());
        let names: Vec<String> = nps.questions().into_iter().map(|q| q.name).collect();
        assert_eq!(names, ["email", "score", "comment"]);
        let answer = nps
            .answer(&answers(
                json!({"email": "a@b.example", "score": "10", "comment": "great"}),
            ))
            .unwrap();
        assert_eq!(answer.score, Some(10));
        assert_eq!(answer.comment.as_deref(), Some("great"));
        assert_eq!(
            answer.record.len(),
            1,
            "only the contact's fields: {:?}",
            answer.record
        );
        let problems = nps
            .answer(&answers(json!({"email": "a@b.example", "score": 11})))
            .unwrap_err();
        assert_eq!(problems[0].0, "score");
        assert!(
            nps.answer(&answers(json!({"email": "a@b.example"})))
                .is_err(),
            "a score is required"
        );

        let mut csat = nps.clone();
        csat.kind = "csat".into();
        assert!(
            csat.answer(&answers(json!({"email": "a@b.example", "score": 0})))
                .is_err()
        );
        csat.object = "leads".into();
        csat.fields.push(FormField {
            name: "score".into(),
            ..csat.fields[0].clone()
        });
        let problems: Vec<String> = csat.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(problems, ["object", "fields[1]"]);
    }
}
