//! The briefing `initialize` and `server/discover` give an agent.

use crate::crm::{Principal, Via};

const BODY: &str = "\
Rapport is a CRM. It holds contacts (people) and companies; a contact links to its company with company_id.

Start with get_workspace (who you are, what this key may do) and describe_entity (fields, custom fields and the operators each field accepts).

Finding records: search_records takes an entity, an optional free-text `query`, `filters`, `sort`, `limit` (1-100, default 25) and `cursor`. `filters` is a list of conditions that must all hold. A condition is {\"field\": F, \"op\": OP, \"value\": V}, or {\"any\": [conditions]} when one of several must hold. Operators: eq, ne, contains, starts_with, gt, gte, lt, lte, between ([low, high]), in, not_in (lists), is_null, is_not_null (no value), in_last_days (a number), has_any, has_none (tags and relations). F is a built-in field, custom.KEY, or a relation such as company_id. Results come newest first unless you sort; pass next_cursor back as cursor for the next page. count_records counts without fetching; get_records fetches up to 100 records by id with their relations.

Changing records: create_*, update_* and delete_records take 1 to 100 records per call; a call writes all of them or none. In updates, fields you leave out are kept and fields set to null are cleared.

When a tool answers with an error, its message says what to change; fix the arguments and call again.";

pub fn general() -> String {
    BODY.to_owned()
}

pub fn for_principal(p: &Principal) -> String {
    format!(
        "You are working in the organization \"{}\" as {} ({}), {}.\n\n{BODY}",
        p.org.name,
        p.user.email,
        p.user.role,
        match &p.via {
            Via::Key { name, .. } => format!("through the API key \"{name}\""),
            Via::Cli => "from the command line".to_owned(),
        }
    )
}
