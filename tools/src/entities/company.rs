use super::*;

pub static COMPANY: EntityDef = EntityDef {
    name: "company",
    plural: "companies",
    doc: "An organization you deal with; contacts link to it with company_id.",
    fields: &[
        ID,
        Field::new("name", FieldType::Text, "The company's name.").sortable().required(),
        Field::new("domain", FieldType::Domain, "Web domain such as acme.com, unique in the organization.").sortable(),
        Field::new("industry", FieldType::Text, "Industry, free text.").sortable(),
        OWNER,
        TAGS,
        Field::reverse("contact_ids", Entity::Contact, "company_id", "Its contacts (filter with has_any / has_none)."),
        CREATED_AT,
        UPDATED_AT,
    ],
    search: &["name", "domain", "industry"],
    required_any: &[],
    upsert_key: Some("domain"),
    unique: Some("domain"),
    label: &["name"],
    read: Scope::CompaniesRead,
    write: Scope::CompaniesWrite,
    delete: Scope::CompaniesDelete,
    toolset: Toolset::Companies,
    tools: WriteTools { create: "create_companies", update: "update_companies", upsert: Some("upsert_companies") },
    example: r#"{"name": "Acme", "domain": "acme.com", "industry": "Manufacturing"}"#,
};
