//! A process definition: nodes joined by sequence flows, as JSON.
//!
//! ```json
//! {"name": "Qualify web leads",
//!  "nodes": [
//!    {"id": "start", "type": "start"},
//!    {"id": "check", "type": "service_task", "step": "data-quality/check-email"},
//!    {"id": "route", "type": "exclusive_gateway", "default": "to-done"},
//!    {"id": "done", "type": "end"}],
//!  "flows": [
//!    {"id": "f1", "from": "start", "to": "check"},
//!    {"id": "f2", "from": "check", "to": "route"},
//!    {"id": "to-done", "from": "route", "to": "done"}]}
//! ```
//!
//! [`Definition::check`] finds every problem before a version is published:
//! unknown node types (by name), flows to nothing, unreachable nodes, nodes with no
//! way out, gateways without a default, conditions that do not parse, cycles that
//! never wait.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::expr;
use crate::api::error::FieldError;

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub nodes: Vec<Node>,
    pub flows: Vec<Flow>,
}

/// (Not `deny_unknown_fields`: serde cannot combine it with the flattened kind.)
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Node {
    /// Unique in the definition: letters, digits, `-` and `_`.
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// What a node does. The executable set grows here; an unknown `type` is refused
/// by name.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// Where an instance begins (exactly one per definition); `trigger` says what
    /// starts one besides a manual start.
    Start {
        #[serde(default)]
        trigger: Trigger,
    },
    /// Where a path ends; the instance completes when no path is left.
    End,
    /// A step a plugin runs: `step` is `plugin/step-type`, `config` its settings.
    ServiceTask {
        step: String,
        #[serde(default = "empty_object")]
        #[schema(value_type = Object)]
        config: serde_json::Value,
    },
    /// Takes the first outgoing flow whose condition holds, else `default`.
    ExclusiveGateway {
        #[serde(default)]
        default: Option<String>,
    },
    /// A person's task: it waits in the assignee's inbox until completed with an
    /// outcome (flows out of it named after outcomes are taken by them).
    UserTask {
        /// Who does it; nobody named: the user who started the instance.
        #[serde(default)]
        assignee: Assignee,
        /// When it is due, from its creation (ISO 8601 duration).
        #[serde(default)]
        due: Option<String>,
        /// Variables the person fills in when completing it (others are refused).
        #[serde(default)]
        fields: Vec<String>,
        /// The outcomes to choose from (any when empty).
        #[serde(default)]
        outcomes: Vec<String>,
    },
    /// Waits until the instance's record matches `condition` (checked on arrival and
    /// whenever the record changes).
    WaitRecord { condition: String },
    /// A timer on a user task (`attached_to`): when it fires while the task is
    /// open, the path goes on from here; `interrupting` (the default) cancels the
    /// task, otherwise the task stays open (an escalation beside it).
    BoundaryTimer {
        attached_to: String,
        #[serde(default)]
        duration: Option<String>,
        #[serde(default)]
        date: Option<String>,
        #[serde(default = "yes")]
        interrupting: bool,
    },
    /// With several ways out, takes all of them at once (fork); with several ways
    /// in, waits until a path has arrived by each (join).
    ParallelGateway,
    /// Waits: for `duration` (ISO 8601, `PT30M`, `P2D`, `P1DT12H`) or until `date`
    /// (RFC 3339).
    Timer {
        #[serde(default)]
        duration: Option<String>,
        #[serde(default)]
        date: Option<String>,
    },
}

/// What starts an instance besides `POST .../instances`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Only a manual start.
    #[default]
    Manual,
    /// A record of `object` created or updated (`on`, default created) for which
    /// `condition` holds (over `record` and `changes`); the instance runs for it, as
    /// the user who made the change.
    Record {
        object: String,
        #[serde(default = "created")]
        on: Vec<String>,
        #[serde(default)]
        condition: Option<String>,
    },
    /// A submission of the forms plugin's form `form` (its `form_submissions`
    /// record is the instance's record).
    Form { form: String },
    /// Every `every` (ISO 8601 duration), as the admin who published the version.
    Schedule { every: String },
}

fn created() -> Vec<String> {
    vec!["created".into()]
}

fn yes() -> bool {
    true
}

/// Who a user task is for: a user, the holders of a role (in `department`, else the
/// instance's department), or any member of `department`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignee {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: String,
    pub from: String,
    pub to: String,
    /// An expression over the variables and `record` (see docs/processes.md);
    /// only on flows out of a gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The name a branching service task answers to choose this flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A node waits (for a person, a timer, a record) instead of running on at once.
/// Only these may close a cycle: a cycle without one would spin forever.
fn waits(kind: &NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::Timer { .. }
            | NodeKind::UserTask { .. }
            | NodeKind::WaitRecord { .. }
            | NodeKind::BoundaryTimer { .. }
    )
}

/// The date an ISO 8601 `duration` after `from`, or the RFC 3339 `date`.
pub fn due_after(
    duration: Option<&str>,
    date: Option<&str>,
    from: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    match (duration, date) {
        (Some(d), None) => {
            Ok(from + chrono::TimeDelta::milliseconds((duration_seconds(d)? * 1000.0) as i64))
        }
        (None, Some(d)) => chrono::DateTime::parse_from_rfc3339(d)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| format!("'{d}' is not an RFC 3339 date and time")),
        _ => Err("a timer has either a duration or a date".into()),
    }
}

/// Seconds of an ISO 8601 duration of days, hours, minutes and seconds
/// (`P2D`, `PT30M`, `P1DT12H`, `PT1.5S`); months and years are not fixed lengths
/// and are refused.
pub fn duration_seconds(text: &str) -> Result<f64, String> {
    let bad = || format!("'{text}' is not a duration such as PT30M, P2D or P1DT12H");
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let unit = units.iter().find(|(u, _)| *u == c).ok_or_else(bad)?;
            let n: f64 = number.parse().map_err(|_| bad())?;
            total += n * unit.1;
            any = true;
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    take(days, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return Err(bad());
        }
        take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any || !total.is_finite() || total > 3_650.0 * 86_400.0 {
        return Err(bad());
    }
    Ok(total)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Definition {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn start(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| matches!(n.kind, NodeKind::Start { .. }))
    }

    /// The flows leaving `node`, in definition order.
    pub fn outgoing<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Flow> + 'a {
        self.flows.iter().filter(move |f| f.from == node)
    }

    /// Whether an instance has one path at a time (no parallel gateway, no
    /// boundary timer): then the path that ends ends the instance.
    pub fn single_path(&self) -> bool {
        !self.nodes.iter().any(|n| {
            matches!(
                n.kind,
                NodeKind::ParallelGateway | NodeKind::BoundaryTimer { .. }
            )
        })
    }

    /// The flows arriving at `node`.
    pub fn incoming<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Flow> + 'a {
        self.flows.iter().filter(move |f| f.to == node)
    }

    /// Every problem at once. `step_exists` says whether a `plugin/step` is offered
    /// by a running plugin.
    /// `schedule_min` is the shortest period a schedule trigger may have.
    pub fn check(
        &self,
        step_exists: &dyn Fn(&str) -> Result<(), String>,
        schedule_min: std::time::Duration,
    ) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut error =
            |field: String, message: String| errors.push(FieldError::new(field, message));
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            error("name".into(), "must be 1 to 200 characters".into());
        }
        if self.nodes.len() > 500 || self.flows.len() > 1000 {
            error(
                "nodes".into(),
                "a process has at most 500 nodes and 1,000 flows".into(),
            );
        }
        let mut ids = BTreeSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !valid_id(&node.id) {
                error(
                    format!("nodes[{i}].id"),
                    "is 1 to 64 letters, digits, - and _".into(),
                );
            } else if !ids.insert(node.id.as_str()) {
                error(
                    format!("nodes[{i}].id"),
                    format!("'{}' is used twice", node.id),
                );
            }
        }
        let starts = self
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Start { .. }))
            .count();
        if starts != 1 {
            error(
                "nodes".into(),
                format!("a process has exactly one start, this one has {starts}"),
            );
        }
        if !self.nodes.iter().any(|n| matches!(n.kind, NodeKind::End)) {
            error("nodes".into(), "a process needs an end".into());
        }
        let mut flow_ids = BTreeSet::new();
        for (i, flow) in self.flows.iter().enumerate() {
            let at = format!("flows[{i}]");
            if !valid_id(&flow.id) {
                error(
                    format!("{at}.id"),
                    "is 1 to 64 letters, digits, - and _".into(),
                );
            } else if !flow_ids.insert(flow.id.as_str()) {
                error(format!("{at}.id"), format!("'{}' is used twice", flow.id));
            }
            for (end, node) in [("from", &flow.from), ("to", &flow.to)] {
                if self.node(node).is_none() {
                    error(format!("{at}.{end}"), format!("'{node}' is not a node"));
                }
            }
            if let Some(condition) = &flow.condition {
                let from_gateway = self
                    .node(&flow.from)
                    .is_some_and(|n| matches!(n.kind, NodeKind::ExclusiveGateway { .. }));
                if !from_gateway {
                    error(
                        format!("{at}.condition"),
                        "only flows out of an exclusive gateway have conditions".into(),
                    );
                } else if let Err(e) = expr::parse(condition) {
                    error(format!("{at}.condition"), e);
                }
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let at = format!("nodes[{i}]");
            let out: Vec<&Flow> = self.outgoing(&node.id).collect();
            let incoming = self.flows.iter().filter(|f| f.to == node.id).count();
            match &node.kind {
                NodeKind::Start { .. } if incoming > 0 => {
                    error(at.clone(), "nothing flows into the start".into());
                }
                NodeKind::BoundaryTimer { .. } if incoming > 0 => {
                    error(
                        at.clone(),
                        "nothing flows into a boundary timer: it sits on its task".into(),
                    );
                }
                NodeKind::End if !out.is_empty() => {
                    error(at.clone(), "an end has no way out".into());
                }
                NodeKind::End => {}
                _ if out.is_empty() => {
                    error(at.clone(), format!("'{}' has no way out", node.id));
                }
                _ => {}
            }
            match &node.kind {
                NodeKind::ServiceTask { step, .. } => {
                    if let Err(e) = step_exists(step) {
                        error(format!("{at}.step"), e);
                    }
                    if out.len() > 1 && out.iter().any(|f| f.name.is_none()) {
                        error(at.clone(), "a service task with several ways out names each (the step answers which)".into());
                    }
                }
                NodeKind::UserTask {
                    assignee,
                    due,
                    outcomes,
                    ..
                } => {
                    if assignee.user.is_some()
                        && (assignee.role.is_some() || assignee.department.is_some())
                    {
                        error(
                            format!("{at}.assignee"),
                            "a task goes to a user, or to a role and/or department, not both"
                                .into(),
                        );
                    }
                    if let Some(d) = due
                        && let Err(e) = duration_seconds(d)
                    {
                        error(format!("{at}.due"), e);
                    }
                    for f in &out {
                        if let Some(name) = &f.name
                            && !outcomes.is_empty()
                            && !outcomes.contains(name)
                        {
                            error(
                                format!("{at}.outcomes"),
                                format!(
                                    "the flow {} is named '{name}', which is not an outcome",
                                    f.id
                                ),
                            );
                        }
                    }
                    if out.len() > 1 && out.iter().any(|f| f.name.is_none()) {
                        error(
                            at.clone(),
                            "a task with several ways out names each after an outcome".into(),
                        );
                    }
                }
                NodeKind::Timer { duration, date } => {
                    if let Err(e) =
                        due_after(duration.as_deref(), date.as_deref(), chrono::Utc::now())
                    {
                        error(at.clone(), e);
                    }
                }
                NodeKind::BoundaryTimer {
                    attached_to,
                    duration,
                    date,
                    ..
                } => {
                    if let Err(e) =
                        due_after(duration.as_deref(), date.as_deref(), chrono::Utc::now())
                    {
                        error(at.clone(), e);
                    }
                    if !self
                        .node(attached_to)
                        .is_some_and(|n| matches!(n.kind, NodeKind::UserTask { .. }))
                    {
                        error(
                            format!("{at}.attached_to"),
                            format!("'{attached_to}' is not a user task"),
                        );
                    }
                }
                NodeKind::WaitRecord { condition } => {
                    if let Err(e) = expr::parse(condition) {
                        error(format!("{at}.condition"), e);
                    }
                }
                NodeKind::Start { trigger } => match trigger {
                    Trigger::Record { on, condition, .. } => {
                        if on.is_empty() || on.iter().any(|o| o != "created" && o != "updated") {
                            error(
                                format!("{at}.trigger.on"),
                                "is created and/or updated".into(),
                            );
                        }
                        if let Some(c) = condition
                            && let Err(e) = expr::parse(c)
                        {
                            error(format!("{at}.trigger.condition"), e);
                        }
                    }
                    Trigger::Schedule { every } => match duration_seconds(every) {
                        Ok(s) if s < schedule_min.as_secs_f64() => error(
                            format!("{at}.trigger.every"),
                            format!("is at least {} seconds", schedule_min.as_secs()),
                        ),
                        Ok(_) => {}
                        Err(e) => error(format!("{at}.trigger.every"), e),
                    },
                    Trigger::Manual | Trigger::Form { .. } => {}
                },
                NodeKind::ExclusiveGateway { default } => match default {
                    None => error(
                        format!("{at}.default"),
                        format!(
                            "the gateway '{}' needs a default flow, taken when no condition holds",
                            node.id
                        ),
                    ),
                    Some(d) if !out.iter().any(|f| &f.id == d) => {
                        error(
                            format!("{at}.default"),
                            format!("'{d}' is not a flow out of '{}'", node.id),
                        );
                    }
                    Some(_) => {}
                },
                _ => {}
            }
        }
        // Reachability from the start.
        if let Some(start) = self.start() {
            let reached = self.reachable(&start.id);
            for (i, node) in self.nodes.iter().enumerate() {
                if !reached.contains(node.id.as_str()) {
                    error(
                        format!("nodes[{i}]"),
                        format!("'{}' cannot be reached from the start", node.id),
                    );
                }
            }
        }
        if let Some(cycle) = self.cycle_without_wait() {
            error(
                "flows".into(),
                format!(
                    "the cycle {} never waits: it would run forever",
                    cycle.join(" -> ")
                ),
            );
        }
        errors
    }

    fn reachable<'a>(&'a self, from: &'a str) -> BTreeSet<&'a str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            if seen.insert(n) {
                todo.extend(self.outgoing(n).map(|f| f.to.as_str()));
                // A boundary timer is reached with the task it sits on.
                todo.extend(self.nodes.iter().filter_map(|b| match &b.kind {
                    NodeKind::BoundaryTimer { attached_to, .. } if attached_to == n => {
                        Some(b.id.as_str())
                    }
                    _ => None,
                }));
            }
        }
        seen
    }

    /// A cycle through nodes that all run on at once, if there is one.
    fn cycle_without_wait(&self) -> Option<Vec<String>> {
        let running: BTreeMap<&str, &Node> = self
            .nodes
            .iter()
            .filter(|n| !waits(&n.kind))
            .map(|n| (n.id.as_str(), n))
            .collect();
        // Depth-first search with colours: 1 on the path, 2 done.
        let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
        fn visit<'a>(
            d: &'a Definition,
            running: &BTreeMap<&str, &Node>,
            n: &'a str,
            colour: &mut BTreeMap<&'a str, u8>,
            path: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            colour.insert(n, 1);
            path.push(n);
            for f in d.outgoing(n) {
                let next = f.to.as_str();
                if !running.contains_key(next) {
                    continue;
                }
                match colour.get(next) {
                    Some(1) => {
                        let from = path.iter().position(|p| *p == next).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|s| s.to_string()).collect();
                        cycle.push(next.to_string());
                        return Some(cycle);
                    }
                    Some(_) => {}
                    None => {
                        if let Some(c) = visit(d, running, next, colour, path) {
                            return Some(c);
                        }
                    }
                }
            }
            path.pop();
            colour.insert(n, 2);
            None
        }
        for n in running.keys() {
            if !colour.contains_key(n)
                && let Some(c) = visit(self, &running, n, &mut colour, &mut Vec::new())
            {
                return Some(c);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(v: serde_json::Value) -> Definition {
        serde_json::from_value(v).unwrap()
    }

    fn problems(d: &Definition) -> Vec<String> {
        d.check(
            &|step: &str| {
                if step == "dq/check" {
                    Ok(())
                } else {
                    Err(format!("no running plugin offers '{step}'"))
                }
            },
            std::time::Duration::from_secs(60),
        )
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
    }

    #[test]
    fn a_good_definition_has_no_problems() {
        let d = definition(json!({"name": "Qualify", "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "service_task", "step": "dq/check"},
            {"id": "route", "type": "exclusive_gateway", "default": "cold"},
            {"id": "hot-end", "type": "end"},
            {"id": "end", "type": "end"}],
          "flows": [
            {"id": "f1", "from": "start", "to": "check"},
            {"id": "f2", "from": "check", "to": "route"},
            {"id": "hot", "from": "route", "to": "hot-end", "condition": "score > 5"},
            {"id": "cold", "from": "route", "to": "end"}]}));
        assert_eq!(problems(&d), Vec::<String>::new());
    }

    #[test]
    fn durations_are_days_hours_minutes_and_seconds() {
        assert_eq!(duration_seconds("PT30M").unwrap(), 1800.0);
        assert_eq!(duration_seconds("P1DT12H").unwrap(), 129_600.0);
        assert_eq!(duration_seconds("PT1.5S").unwrap(), 1.5);
        assert_eq!(duration_seconds("P1W").unwrap(), 604_800.0);
        for bad in ["", "P", "PT", "30M", "P1M", "PT5X", "P1Y", "PT1H30"] {
            assert!(duration_seconds(bad).is_err(), "{bad}");
        }
        // A cycle through a timer waits, so it is allowed.
        let d = definition(json!({"name": "Remind", "nodes": [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "timer", "duration": "P1D"},
            {"id": "again", "type": "exclusive_gateway", "default": "loop"},
            {"id": "end", "type": "end"}],
          "flows": [
            {"id": "f1", "from": "start", "to": "wait"},
            {"id": "f2", "from": "wait", "to": "again"},
            {"id": "done", "from": "again", "to": "end", "condition": "done"},
            {"id": "loop", "from": "again", "to": "wait"}]}));
        assert_eq!(problems(&d), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named_before_publishing() {
        let d = definition(json!({"name": "", "nodes": [
            {"id": "start", "type": "start"},
            {"id": "a", "type": "service_task", "step": "nope/step"},
            {"id": "g", "type": "exclusive_gateway"},
            {"id": "b", "type": "exclusive_gateway", "default": "back"},
            {"id": "island", "type": "end"},
            {"id": "a", "type": "end"}],
          "flows": [
            {"id": "f1", "from": "start", "to": "a"},
            {"id": "f2", "from": "a", "to": "g"},
            {"id": "f3", "from": "g", "to": "b", "condition": "x >"},
            {"id": "back", "from": "b", "to": "g"},
            {"id": "f4", "from": "start", "to": "ghost", "condition": "x"}]}));
        let p = problems(&d).join("\n");
        for says in [
            "name: must be",
            "nodes[5].id: 'a' is used twice",
            "flows[4].to: 'ghost' is not a node",
            "flows[4].condition: only flows out of an exclusive gateway",
            "flows[2].condition: the expression ends",
            "nodes[1].step: no running plugin offers 'nope/step'",
            "nodes[2].default: the gateway 'g' needs a default",
            "'island' cannot be reached",
            "the cycle g -> b -> g never waits",
        ] {
            assert!(p.contains(says), "missing {says:?} in\n{p}");
        }
        let unknown: Result<Definition, _> = serde_json::from_value(
            json!({"name": "x", "nodes": [{"id": "s", "type": "sendTask"}], "flows": []}),
        );
        assert!(unknown.unwrap_err().to_string().contains("sendTask"));
    }
}
