//! Children added and removed at run time, and pool members.

use crate::fault::{self, Fault, FaultKind};
use crate::supervisor::error::{ControlError, StartError};
use crate::supervisor::spec::{Node, validate_child};

use super::NodeState;

impl NodeState {
    pub(super) fn add(&mut self, node: Node) -> Result<(), ControlError> {
        let settings = node.settings().clone();
        let invalid = validate_child(&self.path, &settings, self.auto_shutdown)
            .err()
            .or_else(|| match &node {
                Node::Supervisor(nested) => nested.validate().err(),
                Node::Worker(_) => None,
            })
            .or_else(|| {
                self.index_named(&settings.name).is_some().then(|| {
                    crate::supervisor::error::SpecError::DuplicateName {
                        supervisor: self.path.clone(),
                        name: settings.name.clone(),
                    }
                })
            });
        if let Some(err) = invalid {
            let path = format!("{}/{}", self.path, settings.name);
            if let Err(caught) = fault::drop_contained(node) {
                self.report_contained(&path, 0, caught, "dropping its specification");
            }
            return Err(StartError::from(err).into());
        }
        let i = self.push_slot(node, false);
        match self.start_slot(i) {
            Ok(()) => Ok(()),
            Err(fault) => {
                let slot = self.take_slot(i);
                self.drop_slot(slot);
                Err(StartError::ChildFailed { fault }.into())
            }
        }
    }

    pub(super) fn remove(&mut self, name: &str) -> Result<(), ControlError> {
        let Some(i) = self.index_named(name) else {
            return Err(ControlError::NotFound {
                path: format!("{}/{name}", self.path),
            });
        };
        // A restart it waits for passes it over: it no longer backs off.
        let id = self.slots[i].id;
        self.stop_slot(i);
        self.retire(id);
        Ok(())
    }

    pub(super) fn add_pool_member(&mut self) -> Result<String, ControlError> {
        let Some(template) = &self.pool else {
            return Err(ControlError::NotAPool {
                path: self.path.clone(),
            });
        };
        let name = format!("{}-{}", template.name(), self.next_member);
        let failed = |kind| StartError::ChildFailed {
            fault: Box::new(Fault::new(&format!("{}/{name}", self.path), 0, kind)),
        };
        let member = match fault::contain(|| template.duplicate(name.clone())) {
            Ok(Ok(member)) => member,
            Ok(Err(err)) => {
                let message = fault::describe_contained("an error", || fault::with_sources(&err));
                return Err(failed(FaultKind::StartFailed { message }).into());
            }
            Err(caught) => return Err(failed(caught.start_failed("re-issuing its grant")).into()),
        };
        self.next_member += 1;
        self.add(Node::Worker(member))?;
        Ok(format!("{}/{name}", self.path))
    }
}
