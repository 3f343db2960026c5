//! Pipeline definitions: ordered stages, each with a probability, a kind, the
//! fields a deal needs to be in it and the stages it may move to. Two ship with
//! the plugin; admins add their own or replace these (kept in the plugin's kv).

use crm_plugin_sdk::{Value, json, kv};
use serde::{Deserialize, Serialize};

/// The pipeline a deal without one goes to.
pub const DEFAULT: &str = "sales";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Open,
    Won,
    Lost,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Open => "open",
            Kind::Won => "won",
            Kind::Lost => "lost",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// Chance to win, in percent: it becomes the deal's `probability`.
    pub probability: u8,
    pub kind: Kind,
    /// Fields a deal must have filled to be in this stage.
    #[serde(default)]
    pub required: Vec<String>,
    /// Stages a deal here may move to; `None`: any.
    #[serde(default)]
    pub to: Option<Vec<String>>,
}

impl Stage {
    pub fn allows(&self, to: &str) -> bool {
        self.to
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| a == to))
    }

    /// The deal `status` this stage stands for (the seeded picklist: new, in
    /// progress, won, lost).
    pub fn status(&self, pipeline: &Pipeline) -> &'static str {
        match self.kind {
            Kind::Won => "won",
            Kind::Lost => "lost",
            Kind::Open if pipeline.stages[0].name == self.name => "new",
            Kind::Open => "in progress",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Set from the path when an admin saves one.
    #[serde(default)]
    pub name: String,
    pub label: String,
    pub stages: Vec<Stage>,
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// Where a deal without a stage starts: the won or lost stage when its status
    /// is `won` or `lost` (a deal saved before the plugin was enabled), else the
    /// first stage.
    pub fn start_for(&self, status: Option<&str>) -> &str {
        let kind = match status {
            Some("won") => Kind::Won,
            Some("lost") => Kind::Lost,
            _ => return &self.stages[0].name,
        };
        self.stages
            .iter()
            .find(|s| s.kind == kind)
            .map_or(&self.stages[0].name, |s| &s.name)
    }

    /// The stages a deal in `from` may move to, in order.
    pub fn moves_from(&self, from: &Stage) -> Vec<&str> {
        self.stages
            .iter()
            .filter(|s| s.name != from.name && from.allows(&s.name))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// What is wrong with an admin's definition.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| problems.push((field, message));
        if self.label.trim().is_empty() || self.label.chars().count() > 100 {
            problem("label".into(), "must be 1 to 100 characters".into());
        }
        if self.stages.is_empty() || self.stages.len() > 20 {
            problem("stages".into(), "a pipeline has 1 to 20 stages".into());
        }
        if self.stages.first().is_some_and(|s| s.kind != Kind::Open) {
            problem("stages[0]".into(), "the first stage is an open one".into());
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let at = format!("stages[{i}]");
            if !valid_name(&stage.name) {
                problem(
                    at.clone(),
                    "a stage's name is 1 to 64 lower-case letters, digits and -".into(),
                );
            }
            if self.stages[..i].iter().any(|s| s.name == stage.name) {
                problem(at.clone(), format!("'{}' is there twice", stage.name));
            }
            if stage.probability > 100 {
                problem(at.clone(), "probability is 0 to 100".into());
            }
            for to in stage.to.iter().flatten() {
                if self.stage(to).is_none() {
                    problem(at.clone(), format!("moves to '{to}', which is not a stage"));
                }
            }
        }
        problems
    }

    /// As `GET /pipelines` shows it.
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "label": self.label,
            "default": self.name == DEFAULT,
            "stages": self.stages.iter().map(|s| json!({
                "name": s.name,
                "label": s.label,
                "probability": s.probability,
                "kind": s.kind.as_str(),
                "required": s.required,
                "moves_to": self.moves_from(s),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Lower-case letters, digits and `-`, 1 to 64: pipeline and stage names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn stage(
    name: &str,
    label: &str,
    probability: u8,
    kind: Kind,
    required: &[&str],
    to: Option<&[&str]>,
) -> Stage {
    Stage {
        name: name.into(),
        label: label.into(),
        probability,
        kind,
        required: required.iter().map(|r| r.to_string()).collect(),
        to: to.map(|t| t.iter().map(|s| s.to_string()).collect()),
    }
}

/// The pipelines that ship with the plugin: open stages may move anywhere, a won
/// deal stays won, a lost one may only be reopened at the start.
pub fn builtin() -> Vec<Pipeline> {
    use Kind::{Lost, Open, Won};
    vec![
        Pipeline {
            name: "sales".into(),
            label: "Sales".into(),
            stages: vec![
                stage("lead-in", "Lead in", 10, Open, &[], None),
                stage("qualified", "Qualified", 25, Open, &["company"], None),
                stage("proposal", "Proposal made", 50, Open, &["amount"], None),
                stage(
                    "negotiation",
                    "Negotiation",
                    75,
                    Open,
                    &["amount", "close_date"],
                    None,
                ),
                stage("won", "Won", 100, Won, &["amount", "close_date"], Some(&[])),
                stage("lost", "Lost", 0, Lost, &[], Some(&["lead-in"])),
            ],
        },
        Pipeline {
            name: "renewals".into(),
            label: "Renewals".into(),
            stages: vec![
                stage("due", "Renewal due", 60, Open, &["close_date"], None),
                stage(
                    "quoted",
                    "Quote sent",
                    80,
                    Open,
                    &["amount", "close_date"],
                    None,
                ),
                stage(
                    "renewed",
                    "Renewed",
                    100,
                    Won,
                    &["amount", "close_date"],
                    Some(&[]),
                ),
                stage("churned", "Churned", 0, Lost, &[], Some(&["due"])),
            ],
        },
    ]
}

pub fn key(name: &str) -> String {
    format!("pipeline/{name}")
}

/// A pipeline by name: an admin's definition first, then the built-in one.
pub fn find(name: &str) -> Result<Option<Pipeline>, String> {
    if !valid_name(name) {
        return Ok(None);
    }
    if let Some(mut custom) = kv::get_json::<Pipeline>(&key(name))? {
        custom.name = name.to_string();
        return Ok(Some(custom));
    }
    Ok(builtin().into_iter().find(|p| p.name == name))
}

/// Every pipeline: the built-in ones (or an admin's replacement), then the admins'.
pub fn all() -> Result<Vec<Pipeline>, String> {
    let mut pipelines = builtin();
    for k in kv::keys("pipeline/")? {
        let name = &k["pipeline/".len()..];
        let Some(mut custom) = kv::get_json::<Pipeline>(&k)? else {
            continue;
        };
        custom.name = name.to_string();
        match pipelines.iter_mut().find(|p| p.name == name) {
            Some(builtin) => *builtin = custom,
            None => pipelines.push(custom),
        }
    }
    Ok(pipelines)
}
