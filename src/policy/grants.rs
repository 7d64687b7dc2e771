//! Grants: which tools may run at all. Stored per tool as an override of the configured
//! default, so a tool added in a later version gets its default without a migration.

use super::tools::{Tier, ToolSpec};
use crate::store::{Store, StoreError, Table, TableId};

const GRANTED: &[u8] = b"granted";
const REVOKED: &[u8] = b"revoked";

/// The grant table.
#[derive(Clone)]
pub struct Grants {
    tree: Table,
    revoked_by_default: Vec<String>,
}

impl Grants {
    /// Uses the store's `grants` tree; tools in `revoked_by_default` start without a grant.
    pub fn new(store: &Store, revoked_by_default: Vec<String>) -> Grants {
        let tree = store.table(TableId::Grants);
        Grants {
            tree,
            revoked_by_default,
        }
    }

    /// True when `tool` may run. The policy's own controls always may.
    pub fn is_granted(&self, tool: &ToolSpec) -> Result<bool, StoreError> {
        if !tool.grantable {
            return Ok(true);
        }
        Ok(match self.tree.get(tool.name)? {
            Some(v) => v.as_ref() == GRANTED,
            None => !self.revoked_by_default.iter().any(|t| t == tool.name),
        })
    }

    /// Grants `tool`.
    pub fn grant(&self, tool: &ToolSpec) -> Result<(), StoreError> {
        self.tree.insert(tool.name, GRANTED)?;
        Ok(())
    }

    /// Revokes `tool`.
    pub fn revoke(&self, tool: &ToolSpec) -> Result<(), StoreError> {
        self.tree.insert(tool.name, REVOKED)?;
        Ok(())
    }

    /// Revokes every grantable tool above the read tier; returns their names.
    pub fn lockdown(
        &self,
        tools: impl IntoIterator<Item = &'static ToolSpec>,
    ) -> Result<Vec<&'static str>, StoreError> {
        let mut revoked = Vec::new();
        for tool in tools
            .into_iter()
            .filter(|t| t.grantable && t.tier != Tier::Read)
        {
            self.revoke(tool)?;
            revoked.push(tool.name);
        }
        Ok(revoked)
    }

    /// Every grantable tool with its current state, for `help`.
    pub fn table(
        &self,
        tools: impl IntoIterator<Item = &'static ToolSpec>,
    ) -> Result<Vec<(&'static str, bool)>, StoreError> {
        tools
            .into_iter()
            .filter(|t| t.grantable)
            .map(|t| Ok((t.name, self.is_granted(t)?)))
            .collect()
    }
}
