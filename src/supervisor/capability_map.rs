//! `CapabilityMap`: the tree and what each component holds, as Mermaid,
//! Graphviz DOT or text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::status::{ChildStatus, NodeKind, Status};
use crate::caps::Capability;
use crate::channel::ChannelId;

/// One channel: who sends, who receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ChannelEnds {
    message: String,
    capacity: usize,
    senders: Vec<(String, String)>,
    receivers: Vec<(String, String)>,
}

/// A rendering-ready view of a tree's capabilities: supervisors, their
/// components, each component's directories and other capabilities, and
/// which channel endpoints connect which components.
///
/// Channels with no sending (or no receiving) component in the tree are
/// connected to an `outside` node: the granting side, or a component of
/// another tree, holds the other end.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Receiver, Sender};
/// use compartment::{Child, Context, Grant, Supervisor};
///
/// #[derive(Grant)]
/// struct Producer { out: Sender<u32> }
/// #[derive(Grant)]
/// struct Consumer { inbox: Receiver<u32> }
///
/// fn produce(_: Producer, cx: &Context) -> Result<(), compartment::Cancelled> {
///     cx.sleep(std::time::Duration::from_secs(60))
/// }
/// fn consume(_: Consumer, cx: &Context) -> Result<(), compartment::Cancelled> {
///     cx.sleep(std::time::Duration::from_secs(60))
/// }
///
/// let (out, inbox) = channel::bounded(8)?;
/// let system = Supervisor::new("app")
///     .child(Child::new("producer", produce, Producer { out }))
///     .child(Child::new("consumer", consume, Consumer { inbox }))
///     .start()?;
/// let mermaid = system.capability_map().mermaid();
/// assert!(mermaid.starts_with("flowchart LR"));
/// assert!(mermaid.contains("app_producer -->|"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CapabilityMap {
    root: ChildStatus,
    channels: BTreeMap<ChannelId, ChannelEnds>,
}

fn node_id(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `alloc::vec::Vec<my_app::Job>` → `Vec<Job>`.
fn short_type(name: &str) -> String {
    let mut out = String::new();
    let mut path_start = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(path_start);
        } else if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push(c);
            path_start = out.len();
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('"', "'")
}

impl CapabilityMap {
    /// The map of a status snapshot.
    pub fn from_status(status: &Status) -> Self {
        let mut channels: BTreeMap<ChannelId, ChannelEnds> = BTreeMap::new();
        for node in status.nodes() {
            for (field, capability) in &node.capabilities {
                match capability {
                    Capability::Sender {
                        channel,
                        message,
                        capacity,
                    } => {
                        let ends = channels.entry(*channel).or_default();
                        ends.message = short_type(message);
                        ends.capacity = *capacity;
                        ends.senders.push((node.path.clone(), field.clone()));
                    }
                    Capability::Receiver {
                        channel,
                        message,
                        capacity,
                    } => {
                        let ends = channels.entry(*channel).or_default();
                        ends.message = short_type(message);
                        ends.capacity = *capacity;
                        ends.receivers.push((node.path.clone(), field.clone()));
                    }
                    _ => {}
                }
            }
        }
        Self {
            root: status.root.clone(),
            channels,
        }
    }

    fn channel_label(id: ChannelId, ends: &ChannelEnds) -> String {
        format!("{id}: {} (capacity {})", ends.message, ends.capacity)
    }

    /// Ends of each channel, with `outside` standing in for a missing side.
    fn edges(&self) -> Vec<(String, String, String)> {
        let outside = || vec![("outside".to_owned(), String::new())];
        let mut edges = Vec::new();
        for (id, ends) in &self.channels {
            let senders = if ends.senders.is_empty() {
                outside()
            } else {
                ends.senders.clone()
            };
            let receivers = if ends.receivers.is_empty() {
                outside()
            } else {
                ends.receivers.clone()
            };
            for (from, _) in &senders {
                for (to, _) in &receivers {
                    edges.push((from.clone(), to.clone(), Self::channel_label(*id, ends)));
                }
            }
        }
        edges
    }

    fn needs_outside(&self) -> bool {
        self.channels
            .values()
            .any(|ends| ends.senders.is_empty() || ends.receivers.is_empty())
    }

    fn supervisor_label(node: &ChildStatus) -> String {
        match node.kind {
            NodeKind::Supervisor {
                strategy,
                pool: true,
            } => format!("{} (pool, {strategy})", node.name()),
            NodeKind::Supervisor { strategy, .. } => format!("{} ({strategy})", node.name()),
            NodeKind::Worker => node.name().to_owned(),
            NodeKind::Process => format!("{} (process)", node.name()),
            NodeKind::Wasm => format!("{} (wasm)", node.name()),
        }
    }

    /// Capabilities shown beside a component: everything but channel
    /// endpoints, which are edges.
    fn held(node: &ChildStatus) -> impl Iterator<Item = (usize, &String, &Capability)> {
        node.capabilities
            .iter()
            .enumerate()
            .filter(|(_, (_, c))| {
                !matches!(c, Capability::Sender { .. } | Capability::Receiver { .. })
            })
            .map(|(i, (field, capability))| (i, field, capability))
    }

    /// A Mermaid `flowchart`: supervisors as subgraphs, components as nodes,
    /// channels as labelled edges, other capabilities as attached nodes.
    pub fn mermaid(&self) -> String {
        fn walk(out: &mut String, node: &ChildStatus, depth: usize) {
            let indent = "  ".repeat(depth);
            let id = node_id(&node.path);
            if let NodeKind::Supervisor { .. } = node.kind {
                let _ = writeln!(
                    out,
                    "{indent}subgraph {id}[\"{}\"]",
                    escape(&CapabilityMap::supervisor_label(node))
                );
                for child in &node.children {
                    walk(out, child, depth + 1);
                }
                let _ = writeln!(out, "{indent}end");
            } else if node.kind == NodeKind::Process {
                // A process: Mermaid's "subroutine" shape, double-edged.
                let _ = writeln!(out, "{indent}{id}[[\"{}\"]]", escape(node.name()));
            } else if node.kind == NodeKind::Wasm {
                let _ = writeln!(out, "{indent}{id}{{{{\"{}\"}}}}", escape(node.name()));
            } else {
                let _ = writeln!(out, "{indent}{id}[\"{}\"]", escape(node.name()));
            }
        }
        let mut out = String::from("flowchart LR\n");
        walk(&mut out, &self.root, 1);
        if self.needs_outside() {
            out.push_str("  outside((\"outside\"))\n");
        }
        for node in self.root_nodes() {
            for (i, field, capability) in Self::held(node) {
                let id = node_id(&node.path);
                let _ = writeln!(
                    out,
                    "  {id} -.- {id}_cap{i}[(\"{}: {}\")]",
                    escape(field),
                    escape(&capability.to_string())
                );
            }
        }
        for (from, to, label) in self.edges() {
            let _ = writeln!(
                out,
                "  {} -->|\"{}\"| {}",
                node_id(&from),
                escape(&label),
                node_id(&to)
            );
        }
        out
    }

    /// A Graphviz `digraph`: supervisors as clusters.
    pub fn dot(&self) -> String {
        fn walk(out: &mut String, node: &ChildStatus, depth: usize) {
            let indent = "  ".repeat(depth);
            let id = node_id(&node.path);
            if let NodeKind::Supervisor { .. } = node.kind {
                let _ = writeln!(out, "{indent}subgraph cluster_{id} {{");
                let _ = writeln!(
                    out,
                    "{indent}  label=\"{}\";",
                    escape(&CapabilityMap::supervisor_label(node))
                );
                for child in &node.children {
                    walk(out, child, depth + 1);
                }
                let _ = writeln!(out, "{indent}}}");
            } else {
                let shape = match node.kind {
                    NodeKind::Process => "box3d",
                    NodeKind::Wasm => "hexagon",
                    _ => "box",
                };
                let _ = writeln!(
                    out,
                    "{indent}{id} [shape={shape}, label=\"{}\"];",
                    escape(node.name())
                );
            }
        }
        let mut out = String::from("digraph capabilities {\n  rankdir=LR;\n");
        walk(&mut out, &self.root, 1);
        if self.needs_outside() {
            out.push_str("  outside [shape=ellipse, label=\"outside\"];\n");
        }
        for node in self.root_nodes() {
            for (i, field, capability) in Self::held(node) {
                let id = node_id(&node.path);
                let _ = writeln!(
                    out,
                    "  {id}_cap{i} [shape=note, label=\"{}: {}\"];\n  {id} -> {id}_cap{i} [style=dashed, arrowhead=none];",
                    escape(field),
                    escape(&capability.to_string())
                );
            }
        }
        for (from, to, label) in self.edges() {
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"{}\"];",
                node_id(&from),
                node_id(&to),
                escape(&label)
            );
        }
        out.push_str("}\n");
        out
    }

    /// An indented text tree: each component with its capabilities, and for
    /// each channel endpoint the components at the other end.
    pub fn text(&self) -> String {
        fn walk(map: &CapabilityMap, out: &mut String, node: &ChildStatus, depth: usize) {
            let indent = "  ".repeat(depth);
            let _ = writeln!(out, "{indent}{}", CapabilityMap::supervisor_label(node));
            for (field, capability) in &node.capabilities {
                let peers = match capability {
                    Capability::Sender { channel, .. } => map.peers(*channel, false),
                    Capability::Receiver { channel, .. } => map.peers(*channel, true),
                    _ => String::new(),
                };
                let _ = writeln!(out, "{indent}  {field}: {capability}{peers}");
            }
            for child in &node.children {
                walk(map, out, child, depth + 1);
            }
        }
        let mut out = String::new();
        walk(self, &mut out, &self.root, 0);
        out
    }

    fn peers(&self, channel: ChannelId, senders: bool) -> String {
        let Some(ends) = self.channels.get(&channel) else {
            return String::new();
        };
        let (arrow, others) = if senders {
            ("←", &ends.senders)
        } else {
            ("→", &ends.receivers)
        };
        if others.is_empty() {
            format!(" {arrow} outside")
        } else {
            let names: Vec<&str> = others.iter().map(|(path, _)| path.as_str()).collect();
            format!(" {arrow} {}", names.join(", "))
        }
    }

    fn root_nodes(&self) -> Vec<&ChildStatus> {
        fn walk<'a>(node: &'a ChildStatus, out: &mut Vec<&'a ChildStatus>) {
            out.push(node);
            for child in &node.children {
                walk(child, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::short_type;

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(short_type("alloc::vec::Vec<my_app::jobs::Job>"), "Vec<Job>");
        assert_eq!(short_type("(u8, core::time::Duration)"), "(u8, Duration)");
        assert_eq!(short_type("String"), "String");
    }
}
