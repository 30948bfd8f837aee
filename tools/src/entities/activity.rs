use super::*;

/// What an activity can be.
pub const KINDS: &[&str] = &["call", "meeting", "email", "message"];

/// The outcomes each kind can have (`Rule::Interaction`); the field takes their union.
pub const OUTCOMES: &[(&str, &[&str])] = &[
    ("call", &["connected", "no_answer", "voicemail", "busy", "wrong_number"]),
    ("meeting", &["held", "no_show", "rescheduled", "canceled"]),
    ("email", &["sent", "replied", "bounced"]),
    ("message", &["sent", "replied"]),
];

/// The entities an activity can be about.
pub const ABOUT: &[Entity] = &[Entity::Contact, Entity::Company, Entity::Deal];

pub static ACTIVITY: EntityDef = EntityDef {
    name: "activity",
    plural: "activities",
    doc: "A call, meeting, email or message that happened, about a contact, company or deal, with the contacts who took part.",
    fields: &[
        ID,
        Field::new("kind", FieldType::Select, "call, meeting, email or message.").options(KINDS).sortable().required(),
        Field::new("subject", FieldType::Text, "What it was about, in a line.").sortable(),
        Field::new("body", FieldType::Markdown, "What was said or agreed, in markdown, up to 100 KB.")
            .max_chars(super::note::MAX_NOTE_BYTES),
        Field::new("occurred_at", FieldType::Datetime, "When it happened, RFC 3339; default now, at most 5 minutes ahead.")
            .window(),
        Field::new("duration_minutes", FieldType::Number, "How long it took, in minutes.").sortable(),
        Field::new("direction", FieldType::Select, "inbound or outbound.").options(&["inbound", "outbound"]),
        Field::new(
            "outcome",
            FieldType::Select,
            "calls: connected, no_answer, voicemail, busy, wrong_number; meetings: held, no_show, rescheduled, canceled; emails: sent, replied, bounced; messages: sent, replied.",
        )
        .options(&[
            "connected",
            "no_answer",
            "voicemail",
            "busy",
            "wrong_number",
            "held",
            "no_show",
            "rescheduled",
            "canceled",
            "sent",
            "replied",
            "bounced",
        ]),
        Field::new("record", FieldType::RecordRef, "The contact, company or deal it is about: {\"entity\", \"id\"}."),
        Field::new("participant_ids", FieldType::Relations, "Ids of the contacts who took part.").to(Entity::Contact).links(),
        OWNER,
        TAGS,
        CREATED_AT,
        UPDATED_AT,
    ],
    search: &["subject", "body"],
    required_any: &[],
    upsert_key: None,
    unique: None,
    label: &["kind", "subject"],
    read: Scope::ActivitiesRead,
    write: Scope::ActivitiesWrite,
    delete: Scope::ActivitiesDelete,
    tools: WriteTools { create: "log_activities", update: "update_activities", upsert: None },
    rules: &[Rule::Interaction],
    amount: None,
    example: r#"{"kind": "call", "subject": "Renewal", "outcome": "connected", "duration_minutes": 15, "record": {"entity": "deal", "id": "0193a8f2-7c1e-7d3a-9b2f-5e8d4c3b2a10"}, "participant_ids": ["0193a8f2-7c1e-7d3a-9b2f-5e8d4c3b2a11"]}"#,
};
