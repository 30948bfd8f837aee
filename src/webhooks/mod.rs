//! Webhooks (SPEC section 10): which changes announce which events, and to whom.

pub mod deliver;
pub mod endpoints;
pub mod events;
pub mod guard;
pub mod payload;
pub mod sign;
