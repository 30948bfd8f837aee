//! The briefing `initialize` and `server/discover` give an agent.

use rapport_tools::Profile;

use crate::crm::{Acting, Principal};

const HEAD: &str = "\
Rapport is a CRM. It holds contacts (people), companies, deals (opportunities moving through a pipeline's stages, won or lost at the end), tasks, notes and activities (calls, meetings, emails and messages that happened). A contact links to its company with company_id; a deal to a company and its contacts (company_id, contact_ids); a task or a note to any record (record: {\"entity\", \"id\"}); an activity to the contact, company or deal it is about (record) and the contacts who took part (participant_ids). Contacts, companies and deals carry last_activity_at, the time of their newest activity: filter it (lt, in_last_days, is_null) to find who has not been spoken to.

Start with get_workspace (who you are, what this key may do) and describe_entity (fields, custom fields, the operators each field accepts; for deals the pipelines and their stages).

Finding records: search_records takes an entity, an optional free-text `query`, `filters`, `sort`, `limit` (1-100, default 25), `cursor` and `fields`. A condition is {\"field\": F, \"op\": OP, \"value\": V}, or {\"any\": [conditions]} when one of several must hold; all conditions must hold. Operators: eq, ne, contains, starts_with, gt, gte, lt, lte, between ([low, high]), in, not_in, is_null, is_not_null, in_last_days (a number), has_any, has_none (lists and relations). Results come newest first unless you sort; pass next_cursor back as cursor for the next page. search_all looks in every entity at once; count_records counts, with group_by per value (deals also sum their value per currency); get_records fetches up to 100 records by id with their relations and newest notes; get_timeline tells what happened to a record and who did it.

";

/// How records change, per profile.
const CHANGING_LEAN: &str = "Changing records: write_records takes an entity, a mode (create, update, or upsert matching contacts on email and companies on domain) and 1 to 100 items, with the fields describe_entity lists; it writes all of them or none. link_records and merge_records work the same way. manage_custom_fields, manage_pipelines and manage_webhooks take an action.";

const CHANGING_FULL: &str = "Changing records: create_*, update_*, upsert_* (match on email or domain), add_notes, log_activities, link_records and merge_records take 1 to 100 items and write all of them or none.";

const WRITING: &str = "In updates, fields you leave out are kept and null clears a field. delete_records moves records to a trash that restore_records empties for 30 days. Pass an idempotency_key when you create, so that a retry after a timeout does not create twice; pass if_updated_at in an update to refuse it when someone changed the record since you read it. Every tool that writes takes dry_run: true, which answers what the call would do and the change entries it would write, and changes nothing: use it to check a large or destructive call before you make it.\n\n";

const TAIL: &str =
    "When a tool answers with an error, its message says what to change; fix the arguments and call again.";

/// The briefing for `profile`: what the tools are, and the first call to make.
fn body(profile: Profile) -> String {
    let (changing, note) = match profile {
        Profile::Lean => (
            CHANGING_LEAN,
            "These are the tools of the lean profile: records' fields are in describe_entity, not in the tool schemas, and searches answer each record's label fields (ask for more with `fields`; get_records gives the whole record). The typed tools of the full profile (create_contacts, update_deals, …) can be called as well.",
        ),
        Profile::Full => {
            (CHANGING_FULL, "These are the tools of the full profile: one typed tool per entity and action.")
        }
    };
    format!("{HEAD}{changing} {WRITING}{TAIL}\n\n{note}")
}

pub fn general() -> String {
    body(Profile::default())
}

pub fn for_principal(p: &Principal, profile: Profile) -> String {
    let who = p.user().map_or_else(|| "the command line".to_owned(), |u| format!("{} ({})", u.email, u.role));
    let held = p.approval_policy().map_or_else(String::new, |policy| {
        format!(
            "\n\nThis key's calls of these kinds wait for a person's approval: {}. Such a call changes nothing yet and answers {{\"status\": \"pending_approval\", \"approval_id\", \"summary\", \"changes\", \"expires_at\"}}; tell the user, and check later with get_approval (approved calls carry their result; denied ones the reason). A dry run says which calls would wait (needs_approval).",
            policy.words()
        )
    });
    format!(
        "You are working in the organization \"{}\" as {who}, {}.\n\n{}{held}",
        p.org.name,
        match &p.acting {
            Acting::Key { name, .. } => format!("through the API key \"{name}\""),
            Acting::Person(_) => "from the web console".to_owned(),
            Acting::Cli | Acting::System => "from the command line".to_owned(),
        },
        body(profile)
    )
}
