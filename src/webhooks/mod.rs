//! Webhooks (SPEC section 10): which changes announce which events, and to whom.

pub mod events;
pub mod guard;
pub mod sign;
