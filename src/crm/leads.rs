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
    Principal { scopes: needed.intersection(&p.user.role.scopes()), ..p.clone() }
}

pub async fn inbound(store: &Store, p: &Principal, lead: InboundLead) -> Result<LeadResult, CrmError> {
    p.require(Scope::LeadsWrite)?;
    let email = text(&lead.email).ok_or_else(|| CrmError::invalid("`email` is required: leads are matched on it"))?;
    let w = writer(p);

    // The company: by the domain given, else the email's unless it is free mail.
    let email_domain = email.rsplit_once('@').map(|(_, d)| d.to_lowercase());
    let given = super::validate::domain(&super::validate::At { list: "lead", index: 0 }, text(&lead.domain))?;
    let domain = given.or(email_domain.filter(|d| !is_free_mail(d)));
    let company_id = match (&domain, text(&lead.company)) {
        (Some(d), name) => {
            let mut company = json!({ "domain": d });
            // A name only for a new company, or one given: never overwrite one with a domain.
            let existing = store.find_by(w.org_id(), Entity::Company, "domain", std::slice::from_ref(d)).await?;
            match (name, existing.is_empty()) {
                (Some(n), _) => company["name"] = n.into(),
                (None, true) => company["name"] = d.clone().into(),
                (None, false) => {}
            }
            let r = records::upsert(store, &w, Entity::Company, vec![company]).await?;
            r.items.first().and_then(|i| i.record.as_ref()).and_then(|r| r["id"].as_str()).map(str::to_owned)
        }
        (None, _) => None,
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
    let existing = store.find_by(w.org_id(), Entity::Contact, "email", &[email.to_lowercase()]).await?;
    let mut tags: Vec<String> = existing
        .first()
        .and_then(|r| r.values.get("tags"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
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
    let mut contact = json!({ "email": email, "tags": tags });
    for (field, v) in
        [("first_name", first), ("last_name", last), ("phone", text(&lead.phone)), ("title", text(&lead.title))]
    {
        if let Some(v) = v {
            contact[field] = v.into();
        }
    }
    if let Some(c) = &company_id {
        contact["company_id"] = c.clone().into();
    }
    let r = records::upsert(store, &w, Entity::Contact, vec![contact]).await?;
    let item = r.items.into_iter().next().ok_or_else(|| CrmError::invalid("the lead could not be written"))?;
    if item.status == "ambiguous" {
        return Err(CrmError::Conflict(format!("several contacts have the email {email}; merge them first")));
    }
    let contact_id = item.record.as_ref().and_then(|r| r["id"].as_str()).map(str::to_owned).unwrap_or_default();

    let note_id = match text(&lead.message) {
        Some(body) => {
            let note = json!({ "body": body, "record": { "entity": "contact", "id": contact_id } });
            let r = records::create(store, &w, Entity::Note, vec![note]).await?;
            r.items.first().and_then(|n| n["id"].as_str()).map(str::to_owned)
        }
        None => None,
    };
    let status = if item.status == "created" { "created" } else { "updated" };
    Ok(LeadResult { status, contact_id, company_id, note_id })
}
