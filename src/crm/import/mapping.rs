//! Which field each column of an import fills (SPEC 13): found from the header spellings
//! common exports use (HubSpot, Salesforce, Google and Outlook contacts, Pipedrive, Attio,
//! Twenty), changed with `COLUMN=FIELD`. A column that fills nothing is listed, never
//! dropped in silence.

use rapport_tools::{Entity, Field, FieldType};
use serde::Serialize;

use crate::store::CustomFieldDef;

/// What a column fills.
#[derive(Debug, Clone)]
pub enum Target {
    Field(&'static Field),
    /// `custom.KEY`; `new` when the import creates the field (text, labelled by the column).
    Custom {
        key: String,
        new: bool,
    },
    /// A company matched by domain or name, created when missing (contacts and deals).
    Company,
    Ignore,
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Target::Field(a), Target::Field(b)) => a.name == b.name,
            (Target::Custom { key: a, .. }, Target::Custom { key: b, .. }) => a == b,
            (Target::Company, Target::Company) | (Target::Ignore, Target::Ignore) => true,
            _ => false,
        }
    }
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Field(f) => f.name.to_owned(),
            Target::Custom { key, .. } => format!("custom.{key}"),
            Target::Company => "company".to_owned(),
            Target::Ignore => String::new(),
        }
    }
}

/// Every column with what it fills.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub columns: Vec<(String, Target)>,
}

/// How the mapping reads in a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MappedColumn {
    pub column: String,
    /// The field, `custom.KEY` or `company`; null when the column fills nothing.
    pub field: Option<String>,
    /// True when the import creates this custom field.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new_custom_field: bool,
}

impl Mapping {
    pub fn report(&self) -> Vec<MappedColumn> {
        self.columns
            .iter()
            .map(|(column, t)| MappedColumn {
                column: column.clone(),
                field: (*t != Target::Ignore).then(|| t.name()),
                new_custom_field: matches!(t, Target::Custom { new: true, .. }),
            })
            .collect()
    }

    pub fn unmapped(&self) -> Vec<String> {
        self.columns.iter().filter(|(_, t)| *t == Target::Ignore).map(|(c, _)| c.clone()).collect()
    }

    pub fn new_custom_fields(&self) -> Vec<(String, String)> {
        self.columns
            .iter()
            .filter_map(|(column, t)| match t {
                Target::Custom { key, new: true } => Some((key.clone(), column.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A header as compared: lowercase letters and digits only (`E-mail Address` is
/// `emailaddress`).
pub fn normalize(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Spellings of each field in other products' exports, normalized; a field's own name
/// always maps.
fn aliases(entity: Entity, field: &str) -> &'static [&'static str] {
    match (entity, field) {
        (_, "owner_id") => {
            &["owner", "owneremail", "contactowner", "dealowner", "companyowner", "assignedto", "assignee"]
        }
        (_, "tags") => &["tag", "labels", "label", "categories", "category"],
        (Entity::Contact, "first_name") => &["firstname", "givenname", "first", "fname", "forename", "namefirstname"],
        (Entity::Contact, "last_name") => &["lastname", "familyname", "surname", "last", "lname", "namelastname"],
        (Entity::Contact, "email") => &[
            "email",
            "emailaddress",
            "email1value",
            "emailaddress1",
            "email1",
            "primaryemail",
            "workemail",
            "businessemail",
            "mail",
            "emails",
            "emailsprimaryemail",
            "emailaddresses",
        ],
        (Entity::Contact, "phone") => &[
            "phone",
            "phonenumber",
            "phone1value",
            "phonenumbers",
            "mobile",
            "mobilephone",
            "mobilephonenumber",
            "businessphone",
            "workphone",
            "primaryphone",
            "telephone",
            "tel",
            "phones",
            "phonesprimaryphonenumber",
        ],
        (Entity::Contact, "title") => &["jobtitle", "position", "organization1title", "job", "jobposition"],
        (Entity::Company, "name") => {
            &["companyname", "company", "organization", "organizationname", "accountname", "account"]
        }
        (Entity::Company, "domain") => {
            &["website", "companydomainname", "websiteurl", "url", "web", "domainname", "domains"]
        }
        (Entity::Company, "industry") => &["sector", "vertical"],
        (Entity::Deal, "name") => &["dealname", "opportunityname", "opportunity", "title", "deal"],
        (Entity::Deal, "value") => &["amount", "dealvalue", "dealamount", "opportunityamount"],
        (Entity::Deal, "stage") => &["dealstage", "opportunitystage"],
        (Entity::Deal, "close_date") => &["closedate", "expectedclosedate", "closedat"],
        (Entity::Task, "title") => &["subject", "task", "taskname", "name"],
        (Entity::Task, "due_at") => &["duedate", "due", "dueat", "deadline"],
        (Entity::Note, "body") => &["note", "notes", "content", "text", "notebody", "description"],
        _ => &[],
    }
}

/// Spellings of a company column on contacts and deals.
const COMPANY: &[&str] = &[
    "company",
    "companyname",
    "organization",
    "organizationname",
    "organization1name",
    "account",
    "accountname",
    "employer",
    "associatedcompany",
];

/// The field a column fills unless told otherwise.
fn guess(entity: Entity, column: &str, custom: &[CustomFieldDef]) -> Target {
    let n = normalize(column);
    let def = entity.def();
    if let Some(f) = def.writable().find(|f| normalize(f.name) == n) {
        return Target::Field(f);
    }
    if let Some(f) = def.writable().find(|f| aliases(entity, f.name).contains(&n.as_str())) {
        return Target::Field(f);
    }
    if let Some(d) = custom.iter().find(|d| normalize(&d.key) == n || normalize(&d.label) == n) {
        return Target::Custom { key: d.key.clone(), new: false };
    }
    if let Some(key) = n.strip_prefix("custom")
        && let Some(d) = custom.iter().find(|d| normalize(&d.key) == key)
    {
        return Target::Custom { key: d.key.clone(), new: false };
    }
    if has_company(entity) && COMPANY.contains(&n.as_str()) {
        return Target::Company;
    }
    Target::Ignore
}

fn has_company(entity: Entity) -> bool {
    entity.def().field("company_id").is_some_and(|f| f.writable && f.ty == FieldType::Relation)
}

/// A key for a new custom field made from a column's name: `Lifecycle Stage` is
/// `lifecycle_stage`.
pub fn key_of(column: &str) -> String {
    let mut key = String::new();
    for c in column.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            key.push(c);
        } else if !key.ends_with('_') && !key.is_empty() {
            key.push('_');
        }
    }
    let key = key.trim_end_matches('_').to_owned();
    if key.starts_with(|c: char| c.is_ascii_digit()) { format!("f_{key}") } else { key }
}

/// What a column of `entity` may fill, as `(FIELD, label)` in the form `plan` takes:
/// the writable fields, `company` where the entity has one, and the custom fields.
pub fn choices(entity: Entity, custom: &[CustomFieldDef]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        entity.def().writable().map(|f| (f.name.to_owned(), f.name.to_owned())).collect();
    if has_company(entity) {
        out.push(("company".to_owned(), "company (by domain or name, created when missing)".to_owned()));
    }
    out.extend(custom.iter().map(|d| (format!("custom.{}", d.key), format!("custom.{} ({})", d.key, d.label))));
    out
}

/// The mapping for `columns`: guessed, then changed by `overrides` (`COLUMN=FIELD`; an
/// empty FIELD or `-` leaves the column out). Refuses an override that names no column or
/// no field, with what there is.
pub fn plan(
    entity: Entity,
    columns: &[String],
    custom: &[CustomFieldDef],
    overrides: &[(String, String)],
    once: bool,
) -> Result<Mapping, String> {
    let mut mapped: Vec<(String, Target)> = columns.iter().map(|c| (c.clone(), guess(entity, c, custom))).collect();
    for (column, field) in overrides {
        let i = mapped
            .iter()
            .position(|(c, _)| c == column)
            .or_else(|| mapped.iter().position(|(c, _)| normalize(c) == normalize(column)))
            .ok_or_else(|| {
                format!("`--map {column}=…` names no column of the file; its columns are: {}", columns.join(", "))
            })?;
        mapped[i].1 = target(entity, column, field.trim(), custom)?;
    }
    // One field filled by two columns would keep whichever came last: refuse it.
    for (i, (column, t)) in mapped.iter().enumerate() {
        if *t == Target::Ignore || !once {
            continue;
        }
        if let Some((other, _)) = mapped[..i].iter().find(|(_, u)| u == t) {
            return Err(format!(
                "the columns {other:?} and {column:?} both fill `{}`; leave one out with `--map {column}=`",
                t.name()
            ));
        }
    }
    Ok(Mapping { columns: mapped })
}

fn target(entity: Entity, column: &str, field: &str, custom: &[CustomFieldDef]) -> Result<Target, String> {
    let def = entity.def();
    if field.is_empty() || field == "-" {
        return Ok(Target::Ignore);
    }
    if field == "company" && has_company(entity) {
        return Ok(Target::Company);
    }
    if let Some(key) = field.strip_prefix("custom.") {
        if custom.iter().any(|d| d.key == key) {
            return Ok(Target::Custom { key: key.to_owned(), new: false });
        }
        let key = if key.is_empty() { key_of(column) } else { key.to_owned() };
        if !crate::store::query::is_safe_key(&key) || def.field(&key).is_some() {
            return Err(format!(
                "`custom.{key}` cannot be a new custom field: a key is 1 to 64 lowercase letters, digits and _, starting with a letter, and not a built-in field"
            ));
        }
        return Ok(Target::Custom { key, new: true });
    }
    match def.field(field) {
        Some(f) if f.writable => Ok(Target::Field(f)),
        _ => {
            let mut valid: Vec<&str> = def.writable().map(|f| f.name).collect();
            if has_company(entity) {
                valid.push("company");
            }
            Err(format!(
                "`{field}` is not a field of {} you can import into; use one of: {}, custom.KEY (a new custom field when KEY is new), or nothing to leave the column out",
                def.plural,
                valid.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(entity: Entity, columns: &[&str]) -> Vec<Option<String>> {
        let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        plan(entity, &columns, &[], &[], true).unwrap().report().into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn common_export_headers_map() {
        let got = names(
            Entity::Contact,
            &[
                "First Name",
                "Last Name",
                "E-mail Address",
                "Company Name",
                "Phone Number",
                "Job Title",
                "Lifecycle Stage",
                "Tags",
            ],
        );
        let want = ["first_name", "last_name", "email", "company", "phone", "title"];
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.as_deref(), Some(w));
        }
        assert_eq!(got[6], None, "no built-in field for a lifecycle stage");
        assert_eq!(got[7].as_deref(), Some("tags"));
        assert_eq!(
            names(Entity::Contact, &["Email 1 - Value", "Given Name"]),
            [Some("email".into()), Some("first_name".into())]
        );
        assert_eq!(names(Entity::Company, &["Company Name", "Website"]), [Some("name".into()), Some("domain".into())]);
    }

    #[test]
    fn overrides_change_and_create() {
        let columns = vec!["Lifecycle Stage".to_owned(), "Mail".to_owned()];
        let m = plan(
            Entity::Contact,
            &columns,
            &[],
            &[("Lifecycle Stage".into(), "custom.".into()), ("Mail".into(), "".into())],
            true,
        )
        .unwrap();
        assert_eq!(m.new_custom_fields(), vec![("lifecycle_stage".to_owned(), "Lifecycle Stage".to_owned())]);
        assert_eq!(m.unmapped(), vec!["Mail"]);
        assert!(
            plan(Entity::Contact, &columns, &[], &[("Nope".into(), "email".into())], true)
                .unwrap_err()
                .contains("no column")
        );
        assert!(
            plan(Entity::Contact, &columns, &[], &[("Mail".into(), "shoe_size".into())], true)
                .unwrap_err()
                .contains("not a field")
        );
    }
}
