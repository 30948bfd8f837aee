//! Approvals (SPEC 12): the kinds of call a key's policy may hold for a person, the policy
//! itself, and what a held call and `get_approval` answer.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::inputs::ChangeEntry;

/// A kind of call that may need a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Deleting, merging, deleting a custom field or a webhook.
    Delete,
    /// A call whose changes touch more than `bulk_limit` distinct records.
    Bulk,
    /// Custom fields and pipelines.
    Schema,
    /// Webhook endpoints.
    Webhooks,
}

impl ApprovalKind {
    pub const ALL: [ApprovalKind; 4] =
        [ApprovalKind::Delete, ApprovalKind::Bulk, ApprovalKind::Schema, ApprovalKind::Webhooks];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Delete => "delete",
            ApprovalKind::Bulk => "bulk",
            ApprovalKind::Schema => "schema",
            ApprovalKind::Webhooks => "webhooks",
        }
    }

    pub fn parse(s: &str) -> Result<ApprovalKind, String> {
        ApprovalKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| format!("`{}` is not a kind of call: use delete, bulk, schema or webhooks", s.trim()))
    }
}

impl std::fmt::Display for ApprovalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bulk limit when a policy names none.
pub const DEFAULT_BULK_LIMIT: u32 = 25;

/// A key's approval policy: the kinds of call that wait for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalPolicy {
    pub kinds: BTreeSet<ApprovalKind>,
    /// With `bulk`: a call touching more distinct records than this waits.
    pub bulk_limit: u32,
}

impl ApprovalPolicy {
    /// A policy from its parts; `None` when it holds nothing.
    pub fn new(kinds: impl IntoIterator<Item = ApprovalKind>, bulk_limit: Option<u32>) -> Result<Option<Self>, String> {
        let kinds: BTreeSet<ApprovalKind> = kinds.into_iter().collect();
        let bulk_limit = bulk_limit.unwrap_or(DEFAULT_BULK_LIMIT);
        if !(1..=10_000).contains(&bulk_limit) {
            return Err(format!("`bulk_limit` is 1 to 10000, got {bulk_limit}"));
        }
        Ok((!kinds.is_empty()).then_some(ApprovalPolicy { kinds, bulk_limit }))
    }

    /// Whether `self` holds at least what `other` holds (every kind, and a bulk limit no
    /// higher).
    pub fn at_least(this: Option<&Self>, other: Option<&Self>) -> bool {
        match (this, other) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => {
                b.kinds.is_subset(&a.kinds) && (!b.kinds.contains(&ApprovalKind::Bulk) || a.bulk_limit <= b.bulk_limit)
            }
        }
    }

    /// The union of two policies: every kind of both, the lower bulk limit.
    pub fn union(a: Option<&Self>, b: Option<&Self>) -> Option<Self> {
        match (a, b) {
            (None, None) => None,
            (Some(p), None) | (None, Some(p)) => Some(p.clone()),
            (Some(a), Some(b)) => Some(ApprovalPolicy {
                kinds: a.kinds.union(&b.kinds).copied().collect(),
                bulk_limit: a.bulk_limit.min(b.bulk_limit),
            }),
        }
    }

    /// `delete, bulk (over 25)`.
    pub fn words(&self) -> String {
        let parts: Vec<String> = self
            .kinds
            .iter()
            .map(|k| match k {
                ApprovalKind::Bulk => format!("bulk (over {} records)", self.bulk_limit),
                k => k.as_str().to_owned(),
            })
            .collect();
        parts.join(", ")
    }
}

/// `get_approval`'s input.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetApprovalInput {
    /// As the held call answered it.
    pub approval_id: String,
}

/// An approval as `get_approval`, the REST API and webhooks show it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalView {
    pub id: String,
    /// `pending`, `approved`, `denied`, `stale` or `expired`.
    pub status: String,
    /// The tool the key called.
    pub tool: String,
    /// Why it waits: delete, bulk, schema, webhooks.
    pub kinds: Vec<ApprovalKind>,
    pub summary: String,
    pub key_id: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// Who decided: a person's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Why it was denied, or why it went stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When approved: what the call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub result: Option<Value>,
    /// The change entries the call would make, as a dry run showed them when it asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<Map<String, Value>>")]
    pub changes: Vec<ChangeEntry>,
}
