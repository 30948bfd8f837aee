use super::*;

pub static DEAL: EntityDef = EntityDef {
    name: "deal",
    plural: "deals",
    doc: "An opportunity moving through a pipeline's stages; won or lost at the end.",
    fields: &[
        ID,
        Field::new("name", FieldType::Text, "What is being sold, e.g. \"Acme renewal 2027\".").sortable().required(),
        Field::new("value", FieldType::Decimal, "Amount as an exact decimal string such as \"1234.50\".").sortable(),
        Field::new("currency", FieldType::CurrencyCode, "ISO 4217 code such as EUR; required with value."),
        Field::new("pipeline", FieldType::Text, "Pipeline name; default sales.").sortable(),
        Field::new("stage", FieldType::Text, "A stage of the pipeline; default its first stage.").sortable(),
        Field::new("status", FieldType::Select, "open, won or lost; a won or lost stage sets it.")
            .options(&["open", "won", "lost"])
            .sortable(),
        Field::new("close_date", FieldType::Date, "Expected or actual close date, YYYY-MM-DD.").sortable(),
        Field::new("company_id", FieldType::Relation, "Id of the company buying.").to(Entity::Company),
        Field::new("contact_ids", FieldType::Relations, "Ids of the contacts involved.").to(Entity::Contact).links(),
        OWNER,
        TAGS,
        LAST_ACTIVITY_AT,
        CREATED_AT,
        UPDATED_AT,
    ],
    search: &["name", "stage"],
    required_any: &[],
    upsert_key: None,
    unique: None,
    label: &["name"],
    read: Scope::DealsRead,
    write: Scope::DealsWrite,
    delete: Scope::DealsDelete,
    tools: WriteTools { create: "create_deals", update: "update_deals", upsert: None },
    rules: &[Rule::PipelineStage],
    amount: Some(("value", "currency")),
    example: r#"{"name": "Acme renewal", "value": "12000.00", "currency": "EUR", "stage": "qualified", "close_date": "2027-03-31"}"#,
};
