//! The webhook tools' inputs and outputs (SPEC section 10): endpoints, their deliveries and
//! each delivery's attempts. A secret appears in an answer only when it was just made.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookInput {
    /// Where deliveries are POSTed: an https URL on a public address.
    pub url: String,
    /// Event names or patterns: `contact.created`, `deal.*`, `*.deleted`, `deal.stage_changed`, `*`.
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookInput {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    /// The whole new list of patterns.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// `""` clears it.
    #[serde(default)]
    pub description: Option<String>,
    /// `true` also clears why it was turned off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A new secret, answered once; the old one stays valid (both sign) for 24 hours.
    #[serde(default)]
    pub rotate_secret: Option<bool>,
    /// Make it carry your powers instead of its creator's (it delivers what you may read).
    #[serde(default)]
    pub take_over: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIdInput {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWebhookDeliveriesInput {
    /// The endpoint's id.
    pub id: String,
    /// 1 to 100, default 25.
    #[serde(default)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendWebhookDeliveryInput {
    pub delivery_id: String,
}

/// An endpoint. Fields without a value are left out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub description: Option<String>,
    pub enabled: bool,
    /// Why Rapport turned it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub failing_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub previous_secret_expires_at: Option<String>,
    /// Shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub secret: Option<String>,
    // The email of the person whose powers it carries (it delivers what they may read); the
    // tool descriptions say so, to keep the output schema small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeletedWebhook {
    /// The id deleted, with its deliveries.
    pub deleted: String,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookAttempt {
    pub at: String,
    /// The HTTP status; none when no answer came.
    pub status: Option<i64>,
    pub duration_ms: i64,
    /// What went wrong before an answer (timeout, refused address, connection).
    pub error: Option<String>,
    /// The first 1 KB of the answer.
    pub response: Option<String>,
}

/// A delivery: one event to one endpoint, sent until answered 2xx.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id` of every attempt.
    pub id: String,
    /// e.g. `deal.stage_changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub entity: String,
    pub record_id: String,
    /// `pending`, `delivered`, `failed`.
    pub state: String,
    pub created_at: String,
    /// While pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub next_attempt_at: Option<String>,
    /// Newest first.
    pub attempts: Vec<WebhookAttempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveries {
    /// Newest first.
    pub items: Vec<WebhookDelivery>,
    pub next_cursor: Option<String>,
}
