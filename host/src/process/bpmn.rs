//! BPMN 2.0 XML: the executable subset common modelers draw, imported into a
//! [`Definition`] and exported back (with a simple diagram, so a modeler shows it).
//!
//! | BPMN | here |
//! |---|---|
//! | `startEvent` (a `timerEventDefinition` with `timeCycle` `R/P1D`: a schedule; `crm:trigger` JSON: any trigger) | `start` |
//! | `endEvent` | `end` |
//! | `userTask` (`crm:assignee`/`camunda:assignee`, `crm:role`/`camunda:candidateGroups`, `crm:department`, `crm:due`, `crm:fields`, `crm:outcomes`) | `user_task` |
//! | `serviceTask` with `crm:step` (and `crm:config` JSON) | `service_task` |
//! | `exclusiveGateway` (`default`) | `exclusive_gateway` |
//! | `parallelGateway` | `parallel_gateway` |
//! | `intermediateCatchEvent` with `timerEventDefinition` (`timeDuration`, `timeDate`) | `timer` |
//! | `intermediateCatchEvent` with `conditionalEventDefinition` | `wait_record` |
//! | `boundaryEvent` with `timerEventDefinition` (`cancelActivity`) | `boundary_timer` |
//! | `sequenceFlow` (`name`, `conditionExpression`) | a flow |
//!
//! Anything else in the process is refused by name; documentation, extension
//! elements, lanes, annotations and the diagram are ignored.

use std::collections::BTreeMap;
use std::fmt::Write;

use roxmltree::{Document, Node as Xml};
use serde_json::Value;

use super::definition::{Assignee, Definition, Flow, Node, NodeKind, Trigger};
use crate::api::error::FieldError;

/// The namespace of this CRM's extension attributes (`crm:step`, ...).
pub const CRM_NS: &str = "https://crm-platform.dev/bpmn";
const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";

/// Elements of a process that carry no behaviour here.
const IGNORED: &[&str] = &[
    "documentation",
    "extensionElements",
    "laneSet",
    "textAnnotation",
    "association",
    "group",
    "incoming",
    "outgoing",
];

fn problem(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

/// An attribute by local name, whatever its namespace prefix (`crm:step`,
/// `camunda:assignee`).
fn attr<'a>(node: Xml<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == name)
        .map(|a| a.value())
        .filter(|v| !v.trim().is_empty())
}

fn elements<'a, 'i>(node: Xml<'a, 'i>) -> impl Iterator<Item = Xml<'a, 'i>> {
    node.children().filter(|c| c.is_element())
}

fn child<'a, 'i>(node: Xml<'a, 'i>, name: &str) -> Option<Xml<'a, 'i>> {
    elements(node).find(|c| c.tag_name().name() == name)
}

fn text_of(node: Xml<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// The event definition of an event, refusing any but those listed.
fn event_definition<'a, 'i>(
    node: Xml<'a, 'i>,
    allowed: &[&str],
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Xml<'a, 'i>> {
    let mut found = None;
    for c in elements(node) {
        let name = c.tag_name().name();
        if name.ends_with("EventDefinition") {
            if allowed.contains(&name) {
                found = Some(c);
            } else {
                errors.push(problem(
                    at,
                    format!("{} with {name} is not supported", node.tag_name().name()),
                ));
            }
        }
    }
    found
}

/// Reads BPMN 2.0 XML; every problem at once.
pub fn import(xml: &str) -> Result<Definition, Vec<FieldError>> {
    let doc = Document::parse(xml)
        .map_err(|e| vec![problem("bpmn", format!("not well-formed XML: {e}"))])?;
    let root = doc.root_element();
    if root.tag_name().name() != "definitions" || root.tag_name().namespace() != Some(BPMN_NS) {
        return Err(vec![problem(
            "bpmn",
            "the document is not BPMN 2.0 (a bpmn:definitions root in the OMG BPMN namespace)",
        )]);
    }
    let processes: Vec<Xml> = elements(root)
        .filter(|c| c.tag_name().name() == "process")
        .collect();
    let process = match processes.as_slice() {
        [one] => *one,
        [] => return Err(vec![problem("bpmn", "the document has no process")]),
        _ => {
            return Err(vec![problem(
                "bpmn",
                "the document has several processes (collaborations are not supported); import one at a time",
            )]);
        }
    };
    let mut errors = Vec::new();
    let mut nodes = Vec::new();
    let mut flows = Vec::new();
    for el in elements(process) {
        let tag = el.tag_name().name();
        if IGNORED.contains(&tag) {
            continue;
        }
        let id = attr(el, "id").unwrap_or_default().to_string();
        let at = format!("{tag} {id}");
        let name = attr(el, "name").unwrap_or_default().to_string();
        let kind = match tag {
            "sequenceFlow" => {
                flows.push(Flow {
                    id,
                    from: attr(el, "sourceRef").unwrap_or_default().into(),
                    to: attr(el, "targetRef").unwrap_or_default().into(),
                    condition: child(el, "conditionExpression")
                        .map(text_of)
                        .filter(|c| !c.is_empty()),
                    name: (!name.is_empty()).then_some(name),
                });
                continue;
            }
            "startEvent" => {
                let timer = event_definition(el, &["timerEventDefinition"], &at, &mut errors);
                let trigger = match (attr(el, "trigger"), timer) {
                    (Some(json), _) => serde_json::from_str::<Trigger>(json).unwrap_or_else(|e| {
                        errors.push(problem(&at, format!("crm:trigger: {e}")));
                        Trigger::Manual
                    }),
                    (None, Some(t)) => match child(t, "timeCycle").map(text_of) {
                        Some(cycle) => Trigger::Schedule {
                            every: cycle.trim_start_matches("R/").to_string(),
                        },
                        None => {
                            errors.push(problem(
                                &at,
                                "a timer start event needs a timeCycle (R/P1D)",
                            ));
                            Trigger::Manual
                        }
                    },
                    (None, None) => Trigger::Manual,
                };
                NodeKind::Start { trigger }
            }
            "endEvent" => {
                event_definition(el, &[], &at, &mut errors);
                NodeKind::End
            }
            "userTask" => {
                let list = |name: &str| -> Vec<String> {
                    attr(el, name)
                        .map(|v| {
                            v.split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                NodeKind::UserTask {
                    assignee: Assignee {
                        user: attr(el, "assignee").map(str::to_string),
                        role: attr(el, "role")
                            .or_else(|| {
                                attr(el, "candidateGroups").and_then(|g| g.split(',').next())
                            })
                            .map(|r| r.trim().to_string()),
                        department: attr(el, "department").map(str::to_string),
                    },
                    due: attr(el, "due").map(str::to_string),
                    fields: list("fields"),
                    outcomes: list("outcomes"),
                }
            }
            "serviceTask" => {
                let Some(step) = attr(el, "step") else {
                    errors.push(problem(
                        &at,
                        "a serviceTask names its step type in crm:step (plugin/step-type)",
                    ));
                    continue;
                };
                let config = match attr(el, "config") {
                    Some(json) => serde_json::from_str(json).unwrap_or_else(|e| {
                        errors.push(problem(&at, format!("crm:config is not JSON: {e}")));
                        Value::Null
                    }),
                    None => serde_json::json!({}),
                };
                NodeKind::ServiceTask {
                    step: step.to_string(),
                    config,
                }
            }
            "exclusiveGateway" => NodeKind::ExclusiveGateway {
                default: attr(el, "default").map(str::to_string),
            },
            "parallelGateway" => NodeKind::ParallelGateway,
            "intermediateCatchEvent" => {
                match event_definition(
                    el,
                    &["timerEventDefinition", "conditionalEventDefinition"],
                    &at,
                    &mut errors,
                ) {
                    Some(d) if d.tag_name().name() == "conditionalEventDefinition" => {
                        NodeKind::WaitRecord {
                            condition: child(d, "condition").map(text_of).unwrap_or_default(),
                        }
                    }
                    Some(d) => NodeKind::Timer {
                        duration: child(d, "timeDuration").map(text_of),
                        date: child(d, "timeDate").map(text_of),
                    },
                    None => {
                        errors.push(problem(
                            &at,
                            "an intermediateCatchEvent here waits for a timer or a condition",
                        ));
                        continue;
                    }
                }
            }
            "boundaryEvent" => {
                match event_definition(el, &["timerEventDefinition"], &at, &mut errors) {
                    Some(d) => NodeKind::BoundaryTimer {
                        attached_to: attr(el, "attachedToRef").unwrap_or_default().into(),
                        duration: child(d, "timeDuration").map(text_of),
                        date: child(d, "timeDate").map(text_of),
                        interrupting: attr(el, "cancelActivity") != Some("false"),
                    },
                    None => {
                        errors.push(problem(&at, "a boundaryEvent here is a timer"));
                        continue;
                    }
                }
            }
            other => {
                errors.push(problem(
                    if id.is_empty() { other.to_string() } else { at.clone() },
                    format!("{other} is not supported (supported: startEvent, endEvent, userTask, serviceTask, exclusiveGateway, parallelGateway, intermediateCatchEvent, boundaryEvent, sequenceFlow)"),
                ));
                continue;
            }
        };
        nodes.push(Node { id, name, kind });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Definition {
        name: attr(process, "name")
            .or(attr(process, "id"))
            .unwrap_or("Imported process")
            .to_string(),
        description: child(process, "documentation")
            .map(text_of)
            .unwrap_or_default(),
        nodes,
        flows,
    })
}

/// `name="value"` pairs, skipping empty values.
fn attrs(pairs: &[(&str, Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!(" {k}=\"{}\"", crate::xml_escape(v)))
        })
        .collect()
}

/// Writes a definition as BPMN 2.0 XML with a left-to-right diagram.
pub fn export(key: &str, definition: &Definition) -> String {
    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        x,
        "<bpmn:definitions xmlns:bpmn=\"{BPMN_NS}\" xmlns:bpmndi=\"http://www.omg.org/spec/BPMN/20100524/DI\" \
         xmlns:dc=\"http://www.omg.org/spec/DD/20100524/DC\" xmlns:di=\"http://www.omg.org/spec/DD/20100524/DI\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:crm=\"{CRM_NS}\" \
         id=\"definitions-{0}\" targetNamespace=\"{CRM_NS}\">",
        crate::xml_escape(key)
    );
    let _ = writeln!(
        x,
        "  <bpmn:process id=\"{}\" name=\"{}\" isExecutable=\"true\">",
        crate::xml_escape(key),
        crate::xml_escape(&definition.name)
    );
    if !definition.description.is_empty() {
        let _ = writeln!(
            x,
            "    <bpmn:documentation>{}</bpmn:documentation>",
            crate::xml_escape(&definition.description)
        );
    }
    for node in &definition.nodes {
        let base = vec![
            ("id", Some(node.id.clone())),
            ("name", Some(node.name.clone())),
        ];
        let timer = |duration: &Option<String>, date: &Option<String>| match (duration, date) {
            (Some(d), _) => format!(
                "<bpmn:timerEventDefinition><bpmn:timeDuration xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:timeDuration></bpmn:timerEventDefinition>",
                crate::xml_escape(d)
            ),
            (_, Some(d)) => format!(
                "<bpmn:timerEventDefinition><bpmn:timeDate xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:timeDate></bpmn:timerEventDefinition>",
                crate::xml_escape(d)
            ),
            _ => String::new(),
        };
        let (tag, extra, inner) = match &node.kind {
            NodeKind::Start { trigger } => match trigger {
                Trigger::Manual => ("startEvent", vec![], String::new()),
                Trigger::Schedule { every } => (
                    "startEvent",
                    vec![],
                    format!(
                        "<bpmn:timerEventDefinition><bpmn:timeCycle xsi:type=\"bpmn:tFormalExpression\">R/{}</bpmn:timeCycle></bpmn:timerEventDefinition>",
                        crate::xml_escape(every)
                    ),
                ),
                other => (
                    "startEvent",
                    vec![("crm:trigger", serde_json::to_string(other).ok())],
                    String::new(),
                ),
            },
            NodeKind::End => ("endEvent", vec![], String::new()),
            NodeKind::ServiceTask { step, config } => (
                "serviceTask",
                vec![
                    ("crm:step", Some(step.clone())),
                    (
                        "crm:config",
                        (config != &serde_json::json!({})).then(|| config.to_string()),
                    ),
                ],
                String::new(),
            ),
            NodeKind::UserTask {
                assignee,
                due,
                fields,
                outcomes,
            } => (
                "userTask",
                vec![
                    ("crm:assignee", assignee.user.clone()),
                    ("crm:role", assignee.role.clone()),
                    ("crm:department", assignee.department.clone()),
                    ("crm:due", due.clone()),
                    ("crm:fields", Some(fields.join(","))),
                    ("crm:outcomes", Some(outcomes.join(","))),
                ],
                String::new(),
            ),
            NodeKind::ExclusiveGateway { default } => (
                "exclusiveGateway",
                vec![("default", default.clone())],
                String::new(),
            ),
            NodeKind::ParallelGateway => ("parallelGateway", vec![], String::new()),
            NodeKind::Timer { duration, date } => {
                ("intermediateCatchEvent", vec![], timer(duration, date))
            }
            NodeKind::WaitRecord { condition } => (
                "intermediateCatchEvent",
                vec![],
                format!(
                    "<bpmn:conditionalEventDefinition><bpmn:condition xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:condition></bpmn:conditionalEventDefinition>",
                    crate::xml_escape(condition)
                ),
            ),
            NodeKind::BoundaryTimer {
                attached_to,
                duration,
                date,
                interrupting,
            } => (
                "boundaryEvent",
                vec![
                    ("attachedToRef", Some(attached_to.clone())),
                    (
                        "cancelActivity",
                        (!interrupting).then(|| "false".to_string()),
                    ),
                ],
                timer(duration, date),
            ),
        };
        let all: Vec<(&str, Option<String>)> = base.into_iter().chain(extra).collect();
        if inner.is_empty() {
            let _ = writeln!(x, "    <bpmn:{tag}{} />", attrs(&all));
        } else {
            let _ = writeln!(x, "    <bpmn:{tag}{}>{inner}</bpmn:{tag}>", attrs(&all));
        }
    }
    for f in &definition.flows {
        let a = attrs(&[
            ("id", Some(f.id.clone())),
            ("name", f.name.clone()),
            ("sourceRef", Some(f.from.clone())),
            ("targetRef", Some(f.to.clone())),
        ]);
        match &f.condition {
            Some(c) => {
                let _ = writeln!(
                    x,
                    "    <bpmn:sequenceFlow{a}><bpmn:conditionExpression xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:conditionExpression></bpmn:sequenceFlow>",
                    crate::xml_escape(c)
                );
            }
            None => {
                let _ = writeln!(x, "    <bpmn:sequenceFlow{a} />");
            }
        }
    }
    let _ = writeln!(x, "  </bpmn:process>");
    diagram(&mut x, key, definition);
    let _ = writeln!(x, "</bpmn:definitions>");
    x
}

/// Shapes laid out left to right by distance from the start, edges centre to
/// centre: enough for a modeler to show and rearrange.
fn diagram(x: &mut String, key: &str, definition: &Definition) {
    let mut column: BTreeMap<&str, usize> = BTreeMap::new();
    if let Some(start) = definition.start() {
        let mut todo = std::collections::VecDeque::from([(start.id.as_str(), 0usize)]);
        while let Some((n, depth)) = todo.pop_front() {
            if column.contains_key(n) {
                continue;
            }
            column.insert(n, depth);
            for f in definition.outgoing(n) {
                todo.push_back((f.to.as_str(), depth + 1));
            }
        }
    }
    let size = |kind: &NodeKind| match kind {
        NodeKind::ServiceTask { .. } | NodeKind::UserTask { .. } => (100.0, 80.0),
        NodeKind::ExclusiveGateway { .. } | NodeKind::ParallelGateway => (50.0, 50.0),
        _ => (36.0, 36.0),
    };
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut bounds: BTreeMap<&str, (f64, f64, f64, f64)> = BTreeMap::new();
    for node in &definition.nodes {
        let (w, h) = size(&node.kind);
        let b = match &node.kind {
            NodeKind::BoundaryTimer { attached_to, .. } => match bounds.get(attached_to.as_str()) {
                Some(&(tx, ty, tw, th)) => (tx + tw - w / 2.0, ty + th - h / 2.0, w, h),
                None => (100.0, 400.0, w, h),
            },
            _ => {
                let col = column.get(node.id.as_str()).copied().unwrap_or(0);
                let row = rows.entry(col).or_insert(0);
                let b = (
                    100.0 + col as f64 * 170.0 + (100.0 - w) / 2.0,
                    100.0 + *row as f64 * 140.0 + (80.0 - h) / 2.0,
                    w,
                    h,
                );
                *row += 1;
                b
            }
        };
        bounds.insert(node.id.as_str(), b);
    }
    let _ = writeln!(
        x,
        "  <bpmndi:BPMNDiagram id=\"diagram-{0}\"><bpmndi:BPMNPlane id=\"plane-{0}\" bpmnElement=\"{0}\">",
        crate::xml_escape(key)
    );
    for (id, (bx, by, w, h)) in &bounds {
        let _ = writeln!(
            x,
            "    <bpmndi:BPMNShape id=\"shape-{0}\" bpmnElement=\"{0}\"><dc:Bounds x=\"{bx}\" y=\"{by}\" width=\"{w}\" height=\"{h}\" /></bpmndi:BPMNShape>",
            crate::xml_escape(id)
        );
    }
    for f in &definition.flows {
        let centre = |n: &str| {
            bounds
                .get(n)
                .map(|(bx, by, w, h)| (bx + w / 2.0, by + h / 2.0))
                .unwrap_or((0.0, 0.0))
        };
        let ((x1, y1), (x2, y2)) = (centre(&f.from), centre(&f.to));
        let _ = writeln!(
            x,
            "    <bpmndi:BPMNEdge id=\"edge-{0}\" bpmnElement=\"{0}\"><di:waypoint x=\"{x1}\" y=\"{y1}\" /><di:waypoint x=\"{x2}\" y=\"{y2}\" /></bpmndi:BPMNEdge>",
            crate::xml_escape(&f.id)
        );
    }
    let _ = writeln!(x, "  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a modeler saves it (namespaces, diagram, documentation and all).
    const MODELED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:crm="https://crm-platform.dev/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="Process_1" name="Qualify" isExecutable="true">
    <bpmn:documentation>From the modeler</bpmn:documentation>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="check" name="Check email" crm:step="data-quality/check-email" crm:config="{&quot;strict&quot;:true}" />
    <bpmn:exclusiveGateway id="route" default="cold" />
    <bpmn:userTask id="call" name="Call" camunda:candidateGroups="manager" crm:outcomes="won,lost" crm:due="P1D" />
    <bpmn:boundaryEvent id="late" attachedToRef="call" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT4H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end" />
    <bpmn:endEvent id="late-end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check" />
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="route" />
    <bpmn:sequenceFlow id="hot" sourceRef="route" targetRef="call"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${score &gt; 5 &amp;&amp; email_useful}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="cold" sourceRef="route" targetRef="wait" />
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="end" />
    <bpmn:sequenceFlow id="f4" sourceRef="call" targetRef="end" />
    <bpmn:sequenceFlow id="f5" sourceRef="late" targetRef="late-end" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="p" bpmnElement="Process_1" /></bpmndi:BPMNDiagram>
</bpmn:definitions>"#;

    #[test]
    fn a_modeled_process_imports_and_round_trips() {
        let d = import(MODELED).unwrap();
        assert_eq!(d.name, "Qualify");
        assert_eq!(d.description, "From the modeler");
        assert_eq!(d.nodes.len(), 8);
        match &d.node("check").unwrap().kind {
            NodeKind::ServiceTask { step, config } => {
                assert_eq!(step, "data-quality/check-email");
                assert_eq!(config["strict"], true);
            }
            other => panic!("{other:?}"),
        }
        match &d.node("call").unwrap().kind {
            NodeKind::UserTask {
                assignee,
                outcomes,
                due,
                ..
            } => {
                assert_eq!(assignee.role.as_deref(), Some("manager"));
                assert_eq!(outcomes, &["won", "lost"]);
                assert_eq!(due.as_deref(), Some("P1D"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &d.node("late").unwrap().kind,
            NodeKind::BoundaryTimer {
                interrupting: false,
                ..
            }
        ));
        let hot = d.flows.iter().find(|f| f.id == "hot").unwrap();
        assert_eq!(
            hot.condition.as_deref(),
            Some("${score > 5 && email_useful}")
        );
        super::super::expr::parse(hot.condition.as_ref().unwrap()).unwrap();

        let again = import(&export("qualify", &d)).unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&d).unwrap(),
            "export then import gives the same definition"
        );
    }

    #[test]
    fn unsupported_elements_are_refused_by_name() {
        let xml = MODELED
            .replace(
                "<bpmn:endEvent id=\"end\" />",
                "<bpmn:endEvent id=\"end\" /><bpmn:sendTask id=\"mail\" /><bpmn:subProcess id=\"sub\"></bpmn:subProcess>",
            )
            .replace(
                "<bpmn:endEvent id=\"late-end\" />",
                "<bpmn:endEvent id=\"late-end\"><bpmn:terminateEventDefinition /></bpmn:endEvent>",
            );
        let errors = import(&xml).unwrap_err();
        let text: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        let text = text.join("\n");
        assert!(
            text.contains("sendTask mail: sendTask is not supported"),
            "{text}"
        );
        assert!(
            text.contains("subProcess sub: subProcess is not supported"),
            "{text}"
        );
        assert!(
            text.contains("endEvent with terminateEventDefinition is not supported"),
            "{text}"
        );
        assert!(
            import("<nope/>").unwrap_err()[0]
                .message
                .contains("not BPMN")
        );
        assert!(
            import("<a").unwrap_err()[0]
                .message
                .contains("not well-formed")
        );
    }
}
