//! Inbound leads (SPEC section 7): what a web form, Zapier or Make posts. The contact is
//! upserted by email, the company by domain (given, or the email's unless it is a free-mail
//! domain) and linked, a message becomes a note, and the contact is tagged `inbound`. Each
//! write goes through the same upserts and creates as the tools, so the rules, validation and
//! change log are theirs; a key needs only `leads:write` for it.

use rapport_tools::{Entity, Scope, Scopes};
use serde::Serialize;
use serde_json::{Value, json};

use super::{CrmError, Principal, records};
use crate::store::Store;

/// A lead as posted: JSON, or a form's fields (tags comma-separated).
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundLead {
    /// Required: the contact is matched on it.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// Split into first and last name when those are absent.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The company's name.
    #[serde(default)]
    pub company: Option<String>,
    /// The company's domain; default: the email's, unless it is a free-mail domain.
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// Becomes a note on the contact.
    #[serde(default)]
    pub message: Option<String>,
    /// Tagged as `source:VALUE`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub tags: Option<Tags>,
}

/// Tags as a JSON list, or one string of comma-separated tags (forms).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Tags {
    List(Vec<String>),
    Text(String),
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LeadResult {
    /// `created` when the contact is new, else `updated` (also when nothing changed).
    pub status: &'static str,
    pub contact_id: String,
    pub company_id: Option<String>,
    pub note_id: Option<String>,
}

/// Mail providers whose domain says nothing about the sender's company.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "yahoo.de",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "t-online.de",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "qq.com",
    "163.com",
    "126.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "mail.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "libero.it",
    "seznam.cz",
    "naver.com",
];

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(&domain)
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// What the lead's writes may do: the record scopes they need, within the key owner's role.
fn writer(p: &Principal) -> Principal {
    let needed: Scopes =
        [Scope::ContactsRead, Scope::ContactsWrite, Scope::CompaniesRead, Scope::CompaniesWrite, Scope::NotesWrite]
            .into_iter()
            .collect();
    let role = p.user().map_or(Scopes::all(), |u| u.role.scopes());
    Principal { scopes: needed.intersection(&role), ..p.clone() }
}

/// What a lead gave that the records already hold differently: kept for a person to judge,
/// in the lead's note, never written over what is known.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    fn note(&mut self, what: &str, given: &str) {
        self.0.push(format!("- {what}: {given}"));
    }
}

/// Whether `have` (a record's value) and `given` say the same, ignoring case and spacing.
fn same(have: &str, given: &str) -> bool {
    have.trim().eq_ignore_ascii_case(given.trim())
}

fn first_id(r: &rapport_tools::inputs::RecordsResult) -> Option<String> {
    r.items.first().and_then(|i| i["id"].as_str()).map(str::to_owned)
}

/// The lead's company: found by domain, else created. An existing one is never renamed; a
/// name that is only its domain (a placeholder an earlier lead left) counts as empty.
async fn company(
    store: &Store,
    w: &Principal,
    domain: &str,
    name: Option<String>,
    differs: &mut Differences,
) -> Result<String, CrmError> {
    let existing = store.find_by(w.org_id(), Entity::Company, "domain", &[domain.to_owned()]).await?;
    let Some(found) = existing.first() else {
        let company = json!({ "domain": domain, "name": name.as_deref().unwrap_or(domain) });
        let r = records::create(store, w, Entity::Company, vec![company]).await?;
        return first_id(&r).ok_or_else(|| CrmError::invalid("the lead's company could not be written"));
    };
    if let Some(n) = name {
        match found.text("name") {
            Some(have) if !have.is_empty() && have != domain => {
                if !same(have, &n) {
                    differs.note("company", &n);
                }
            }
            _ => {
                records::update(store, w, Entity::Company, vec![json!({ "id": found.id.as_str(), "name": n })]).await?;
            }
        }
    }
    Ok(found.id.as_str().to_owned())
}

pub async fn inbound(store: &Store, p: &Principal, lead: InboundLead) -> Result<LeadResult, CrmError> {
    p.require(Scope::LeadsWrite)?;
    let email = text(&lead.email).ok_or_else(|| CrmError::invalid("`email` is required: leads are matched on it"))?;
    let email = super::validate::email(&super::validate::At { list: "lead", index: 0 }, Some(email))?
        .ok_or_else(|| CrmError::invalid("`email` is required: leads are matched on it"))?;
    let w = writer(p);
    // The key sits in public HTML: a lead adds what is missing and never overwrites what is
    // known (SPEC 7); what it says differently goes into its note.
    let mut differs = Differences::default();

    // The company: by the domain given, else the email's unless it is free mail.
    let at = super::validate::At { list: "lead", index: 0 };
    let email_domain = email.rsplit_once('@').map(|(_, d)| d.to_owned()).filter(|d| !is_free_mail(d));
    let domain = super::validate::domain(&at, text(&lead.domain).or(email_domain))?;
    let company_name = text(&lead.company);
    let company_id = match &domain {
        Some(d) => Some(company(store, &w, d, company_name, &mut differs).await?),
        None => {
            if let Some(n) = company_name {
                differs.note("company (no domain to find it by)", &n);
            }
            None
        }
    };

    // The contact, tagged `inbound` (and its source) on top of the tags it has.
    let (mut first, mut last) = (text(&lead.first_name), text(&lead.last_name));
    if first.is_none()
        && last.is_none()
        && let Some(name) = text(&lead.name)
    {
        let mut parts = name.splitn(2, char::is_whitespace);
        first = parts.next().map(str::to_owned);
        last = parts.next().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    }
    let existing = store.find_by(w.org_id(), Entity::Contact, "email", std::slice::from_ref(&email)).await?;
    if existing.len() > 1 {
        return Err(CrmError::Conflict(format!("several contacts have the email {email}; merge them first")));
    }
    let known = existing.first();
    let mut tags: Vec<String> = known
        .and_then(|r| r.values.get("tags"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let had_tags = tags.len();
    let given = match lead.tags {
        Some(Tags::List(l)) => l,
        Some(Tags::Text(t)) => t.split(',').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let source = text(&lead.source).map(|s| format!("source:{s}"));
    for t in given.into_iter().chain(["inbound".to_owned()]).chain(source) {
        let t = t.trim().to_owned();
        if !t.is_empty() && !tags.contains(&t) {
            tags.push(t);
        }
    }
    let mut fields = serde_json::Map::new();
    let given_fields =
        [("first_name", first), ("last_name", last), ("phone", text(&lead.phone)), ("title", text(&lead.title))];
    for (field, v) in given_fields {
        let Some(v) = v else { continue };
        match known.and_then(|r| r.text(field)).filter(|have| !have.is_empty()) {
            Some(have) if !same(have, &v) => differs.note(field, &v),
            Some(_) => {}
            None => {
                fields.insert(field.to_owned(), v.into());
            }
        }
    }
    if let Some(c) = &company_id {
        match known.and_then(|r| r.text("company_id")).filter(|have| !have.is_empty()) {
            // Linked to another company already: it stays there.
            Some(have) if have != c => differs.note("company_id", c),
            Some(_) => {}
            None => {
                fields.insert("company_id".into(), c.clone().into());
            }
        }
    }
    let (status, contact_id) = match known {
        None => {
            fields.insert("email".into(), email.clone().into());
            fields.insert("tags".into(), json!(tags));
            let r = records::create(store, &w, Entity::Contact, vec![Value::Object(fields)]).await?;
            ("created", first_id(&r).ok_or_else(|| CrmError::invalid("the lead could not be written"))?)
        }
        Some(r) => {
            if tags.len() > had_tags {
                fields.insert("tags".into(), json!(tags));
            }
            if !fields.is_empty() {
                fields.insert("id".into(), r.id.as_str().into());
                records::update(store, &w, Entity::Contact, vec![Value::Object(fields)]).await?;
            }
            ("updated", r.id.as_str().to_owned())
        }
    };

    let message = text(&lead.message);
    let body = match (message, differs.0.is_empty()) {
        (None, true) => None,
        (m, true) => m,
        (m, false) => {
            let lines = differs.0.join("\n");
            let part =
                format!("This lead gave values that differ from what Rapport holds; they were not applied:\n{lines}");
            Some(match m {
                Some(m) => format!("{m}\n\n{part}"),
                None => part,
            })
        }
    };
    let note_id = match body {
        Some(body) => {
            let note = json!({ "body": body, "record": { "entity": "contact", "id": contact_id } });
            first_id(&records::create(store, &w, Entity::Note, vec![note]).await?)
        }
        None => None,
    };
    Ok(LeadResult { status, contact_id, company_id, note_id })
}
