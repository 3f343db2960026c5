//! Pipeline definitions: ordered stages, each with a probability, a kind, the
//! fields a deal needs to be in it and the stages it may move to.

use crm_plugin_sdk::{Value, json};

/// The pipeline a deal without one goes to.
pub const DEFAULT: &str = "sales";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug)]
pub struct Stage {
    pub name: &'static str,
    pub label: &'static str,
    /// Chance to win, in percent: it becomes the deal's `probability`.
    pub probability: u8,
    pub kind: Kind,
    /// Fields a deal must have filled to be in this stage.
    pub required: &'static [&'static str],
    /// Stages a deal here may move to; `None`: any.
    pub to: Option<&'static [&'static str]>,
}

impl Stage {
    pub fn allows(&self, to: &str) -> bool {
        self.to.is_none_or(|allowed| allowed.contains(&to))
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

#[derive(Debug)]
pub struct Pipeline {
    pub name: &'static str,
    pub label: &'static str,
    pub stages: &'static [Stage],
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name).collect()
    }

    /// Where a deal without a stage starts: the won or lost stage when its status
    /// is `won` or `lost` (a deal saved before the plugin was enabled), else the
    /// first stage.
    pub fn start_for(&self, status: Option<&str>) -> &'static str {
        let kind = match status {
            Some("won") => Kind::Won,
            Some("lost") => Kind::Lost,
            _ => return self.stages[0].name,
        };
        self.stages
            .iter()
            .find(|s| s.kind == kind)
            .map_or(self.stages[0].name, |s| s.name)
    }

    /// The stages a deal in `from` may move to, in order.
    pub fn moves_from(&self, from: &Stage) -> Vec<&'static str> {
        self.stages
            .iter()
            .filter(|s| s.name != from.name && from.allows(s.name))
            .map(|s| s.name)
            .collect()
    }
}

/// Open stages may move anywhere; a won deal stays won; a lost one may only be
/// reopened at the start.
pub static PIPELINES: &[Pipeline] = &[
    Pipeline {
        name: "sales",
        label: "Sales",
        stages: &[
            Stage {
                name: "lead-in",
                label: "Lead in",
                probability: 10,
                kind: Kind::Open,
                required: &[],
                to: None,
            },
            Stage {
                name: "qualified",
                label: "Qualified",
                probability: 25,
                kind: Kind::Open,
                required: &["company"],
                to: None,
            },
            Stage {
                name: "proposal",
                label: "Proposal made",
                probability: 50,
                kind: Kind::Open,
                required: &["amount"],
                to: None,
            },
            Stage {
                name: "negotiation",
                label: "Negotiation",
                probability: 75,
                kind: Kind::Open,
                required: &["amount", "close_date"],
                to: None,
            },
            Stage {
                name: "won",
                label: "Won",
                probability: 100,
                kind: Kind::Won,
                required: &["amount", "close_date"],
                to: Some(&[]),
            },
            Stage {
                name: "lost",
                label: "Lost",
                probability: 0,
                kind: Kind::Lost,
                required: &[],
                to: Some(&["lead-in"]),
            },
        ],
    },
    Pipeline {
        name: "renewals",
        label: "Renewals",
        stages: &[
            Stage {
                name: "due",
                label: "Renewal due",
                probability: 60,
                kind: Kind::Open,
                required: &["close_date"],
                to: None,
            },
            Stage {
                name: "quoted",
                label: "Quote sent",
                probability: 80,
                kind: Kind::Open,
                required: &["amount", "close_date"],
                to: None,
            },
            Stage {
                name: "renewed",
                label: "Renewed",
                probability: 100,
                kind: Kind::Won,
                required: &["amount", "close_date"],
                to: Some(&[]),
            },
            Stage {
                name: "churned",
                label: "Churned",
                probability: 0,
                kind: Kind::Lost,
                required: &[],
                to: Some(&["due"]),
            },
        ],
    },
];

pub fn find(name: &str) -> Option<&'static Pipeline> {
    PIPELINES.iter().find(|p| p.name == name)
}

pub fn names() -> Vec<&'static str> {
    PIPELINES.iter().map(|p| p.name).collect()
}

/// The pipelines as `GET /pipelines` answers them.
pub fn describe() -> Value {
    Value::Array(
        PIPELINES
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "label": p.label,
                    "default": p.name == DEFAULT,
                    "stages": p.stages.iter().map(|s| json!({
                        "name": s.name,
                        "label": s.label,
                        "probability": s.probability,
                        "kind": s.kind.as_str(),
                        "required": s.required,
                        "moves_to": p.moves_from(s),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
