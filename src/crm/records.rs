//! Reading and writing contacts and companies.

use std::collections::{HashMap, HashSet};

use rapport_tools::Scope;
use rapport_tools::inputs::*;
use rapport_tools::records::{self as wire, Entity, Record};
use serde_json::Value;

use super::cursor;
use super::filter::{Schema, like_escape};
use super::validate::{self, At};
use super::{Caller, CrmError, DEFAULT_PAGE, MAX_BATCH, MAX_PAGE};
use crate::store::query::{Predicate, Query};
use crate::store::{CompanyRow, ContactRow, CustomFieldDef, Row, Store, StoreError};
use crate::time::{self, Millis};

pub fn read_scope(e: Entity) -> Scope {
    match e {
        Entity::Contact => Scope::ContactsRead,
        Entity::Company => Scope::CompaniesRead,
    }
}

pub fn write_scope(e: Entity) -> Scope {
    match e {
        Entity::Contact => Scope::ContactsWrite,
        Entity::Company => Scope::CompaniesWrite,
    }
}

pub fn delete_scope(e: Entity) -> Scope {
    match e {
        Entity::Contact => Scope::ContactsDelete,
        Entity::Company => Scope::CompaniesDelete,
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn batch_len(list: &str, n: usize) -> Result<(), CrmError> {
    if n == 0 || n > MAX_BATCH {
        return Err(CrmError::invalid(format!("`{list}` takes 1 to {MAX_BATCH} items, got {n}; split larger batches")));
    }
    Ok(())
}

fn mentions_custom(filters: &[Value]) -> bool {
    filters.iter().any(|f| match f {
        Value::Object(o) => {
            o.get("field").and_then(Value::as_str).is_some_and(|s| s.starts_with("custom."))
                || o.get("any").and_then(Value::as_array).is_some_and(|a| mentions_custom(a))
        }
        _ => false,
    })
}

async fn custom_defs(
    store: &dyn Store,
    org_id: &str,
    entity: Entity,
    needed: bool,
) -> Result<Vec<CustomFieldDef>, CrmError> {
    Ok(if needed { store.custom_fields(org_id, entity).await? } else { Vec::new() })
}

fn filter_predicates(schema: &Schema<'_>, query: Option<&str>, filters: &[Value]) -> Result<Vec<Predicate>, CrmError> {
    let mut preds = schema.parse_filters(filters)?;
    if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().count() > 200 {
            return Err(CrmError::invalid("`query` is at most 200 characters"));
        }
        // Every word must appear somewhere in the record's text.
        for word in q.to_lowercase().split_whitespace() {
            preds.push(Predicate::Text { pattern: format!("%{}%", like_escape(word)) });
        }
    }
    Ok(preds)
}

pub async fn search(store: &dyn Store, caller: &Caller, input: SearchRecordsInput) -> Result<SearchResult, CrmError> {
    caller.require(read_scope(input.entity))?;
    let limit = match input.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=i64::from(MAX_PAGE)).contains(&n) => n as u32,
        Some(n) => return Err(CrmError::invalid(format!("`limit` is 1 to {MAX_PAGE}, got {n}"))),
    };
    let defs = custom_defs(store, &caller.org_id, input.entity, mentions_custom(&input.filters)).await?;
    let schema = Schema { entity: input.entity, custom: &defs, now: time::now_ms() };
    let filter = filter_predicates(&schema, input.query.as_deref(), &input.filters)?;
    let sort = schema.parse_sort(&input.sort)?;
    let print = cursor::fingerprint(&[
        input.entity.as_str(),
        input.query.as_deref().unwrap_or("").trim(),
        &serde_json::to_string(&input.filters).unwrap_or_default(),
        &serde_json::to_string(&input.sort).unwrap_or_default(),
    ]);
    let after = match input.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(cursor::decode(c, &sort, &print)?),
        None => None,
    };
    // One extra row tells whether another page exists.
    let query = Query { entity: input.entity, filter, sort, after, limit: limit + 1 };
    let mut rows = store.search(&caller.org_id, &query).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| cursor::encode(&query.sort, last, print))
    } else {
        None
    };
    Ok(SearchResult { items: rows.into_iter().map(to_record).collect(), next_cursor })
}

pub async fn count(store: &dyn Store, caller: &Caller, input: CountRecordsInput) -> Result<CountResult, CrmError> {
    caller.require(read_scope(input.entity))?;
    let defs = custom_defs(store, &caller.org_id, input.entity, mentions_custom(&input.filters)).await?;
    let schema = Schema { entity: input.entity, custom: &defs, now: time::now_ms() };
    let filter = filter_predicates(&schema, input.query.as_deref(), &input.filters)?;
    Ok(CountResult { count: store.count(&caller.org_id, input.entity, &filter).await? })
}

pub async fn get(store: &dyn Store, caller: &Caller, input: GetRecordsInput) -> Result<RecordsResult, CrmError> {
    batch_len("records", input.records.len())?;
    let mut by_entity: HashMap<Entity, Vec<String>> = HashMap::new();
    for r in &input.records {
        caller.require(read_scope(r.entity))?;
        by_entity.entry(r.entity).or_default().push(r.id.clone());
    }
    let mut found: HashMap<(Entity, String), Record> = HashMap::new();
    for (entity, ids) in by_entity {
        for row in store.get_rows(&caller.org_id, entity, &ids).await? {
            let record = with_relations(store, caller, row).await?;
            found.insert((entity, record.id().to_owned()), record);
        }
    }
    let missing: Vec<(Entity, String)> = input
        .records
        .iter()
        .filter(|r| !found.contains_key(&(r.entity, r.id.clone())))
        .map(|r| (r.entity, r.id.clone()))
        .collect();
    if !missing.is_empty() {
        return Err(CrmError::NotFound(missing));
    }
    let items = input.records.iter().filter_map(|r| found.get(&(r.entity, r.id.clone())).cloned()).collect();
    Ok(RecordsResult { items })
}

async fn with_relations(store: &dyn Store, caller: &Caller, row: Row) -> Result<Record, CrmError> {
    Ok(match row {
        Row::Contact(c) => {
            let company = match (&c.company_id, caller.scopes.contains(&Scope::CompaniesRead)) {
                (Some(id), true) => store
                    .get_rows(&caller.org_id, Entity::Company, std::slice::from_ref(id))
                    .await?
                    .into_iter()
                    .find_map(|r| match r {
                        Row::Company(co) => Some(wire::CompanyRef { id: co.id, name: co.name }),
                        Row::Contact(_) => None,
                    }),
                _ => None,
            };
            let mut record = contact_record(c);
            record.company = company;
            Record::Contact(record)
        }
        Row::Company(co) => {
            let mut record = company_record(co);
            if caller.scopes.contains(&Scope::ContactsRead) {
                let (n, contacts) = store.company_contacts(&caller.org_id, &record.id, 25).await?;
                record.contact_count = Some(n);
                record.contacts = Some(contacts.into_iter().map(contact_ref).collect());
            }
            Record::Company(record)
        }
    })
}

/// Ids among `ids` that are not companies of the organization.
async fn check_refs(
    store: &dyn Store,
    caller: &Caller,
    companies: HashSet<String>,
    owners: HashSet<String>,
) -> Result<(), CrmError> {
    let mut missing = Vec::new();
    if !companies.is_empty() {
        let ids: Vec<String> = companies.into_iter().collect();
        let found: HashSet<String> =
            store.get_rows(&caller.org_id, Entity::Company, &ids).await?.iter().map(|r| r.id().to_owned()).collect();
        missing.extend(ids.into_iter().filter(|i| !found.contains(i)).map(|i| (Entity::Company, i)));
    }
    if !missing.is_empty() {
        return Err(CrmError::NotFound(missing));
    }
    if !owners.is_empty() {
        let ids: Vec<String> = owners.into_iter().collect();
        let found: HashSet<String> = store.existing_users(&caller.org_id, &ids).await?.into_iter().collect();
        if let Some(bad) = ids.iter().find(|i| !found.contains(*i)) {
            return Err(CrmError::invalid(format!(
                "owner_id {bad} is not a user of this organization; get_workspace shows your own user id"
            )));
        }
    }
    Ok(())
}

fn contact_from(
    at: &At,
    defs: &[CustomFieldDef],
    mut row: ContactRow,
    c: ContactPatch,
) -> Result<ContactRow, CrmError> {
    let t = |name: &str, v: Option<Option<String>>, cur: Option<String>| -> Result<Option<String>, CrmError> {
        match v {
            None => Ok(cur),
            Some(v) => validate::text(at, name, v),
        }
    };
    row.first_name = t("first_name", c.first_name, row.first_name)?;
    row.last_name = t("last_name", c.last_name, row.last_name)?;
    row.phone = t("phone", c.phone, row.phone)?;
    row.title = t("title", c.title, row.title)?;
    if let Some(e) = c.email {
        row.email = validate::email(at, e)?;
    }
    if let Some(v) = c.company_id {
        row.company_id = v.filter(|s| !s.is_empty());
    }
    if let Some(v) = c.owner_id {
        row.owner_id = v.filter(|s| !s.is_empty());
    }
    if let Some(tags) = c.tags {
        row.tags = validate::tags(at, tags)?;
    }
    if let Some(custom) = c.custom {
        row.custom = validate::custom(at, defs, row.custom, custom)?;
    }
    if row.first_name.is_none() && row.last_name.is_none() && row.email.is_none() {
        return Err(CrmError::invalid(format!("{}[{}] needs a first_name, last_name or email", at.list, at.index)));
    }
    Ok(row)
}

fn company_from(
    at: &At,
    defs: &[CustomFieldDef],
    mut row: CompanyRow,
    c: CompanyPatch,
) -> Result<CompanyRow, CrmError> {
    if let Some(name) = c.name {
        row.name = validate::required_text(at, "name", name)?;
    }
    if let Some(d) = c.domain {
        row.domain = validate::domain(at, d)?;
    }
    if let Some(i) = c.industry {
        row.industry = validate::text(at, "industry", i)?;
    }
    if let Some(v) = c.owner_id {
        row.owner_id = v.filter(|s| !s.is_empty());
    }
    if let Some(tags) = c.tags {
        row.tags = validate::tags(at, tags)?;
    }
    if let Some(custom) = c.custom {
        row.custom = validate::custom(at, defs, row.custom, custom)?;
    }
    if row.name.trim().is_empty() {
        return Err(CrmError::invalid(format!("{} is required", at.field("name"))));
    }
    Ok(row)
}

fn new_contact_patch(c: NewContact) -> ContactPatch {
    ContactPatch {
        id: String::new(),
        first_name: Some(c.first_name),
        last_name: Some(c.last_name),
        email: Some(c.email),
        phone: Some(c.phone),
        title: Some(c.title),
        company_id: Some(c.company_id),
        owner_id: Some(c.owner_id),
        tags: Some(c.tags),
        custom: Some(c.custom),
    }
}

fn new_company_patch(c: NewCompany) -> CompanyPatch {
    CompanyPatch {
        id: String::new(),
        name: Some(c.name),
        domain: Some(c.domain),
        industry: Some(c.industry),
        owner_id: Some(c.owner_id),
        tags: Some(c.tags),
        custom: Some(c.custom),
    }
}

/// Refs and duplicate domains within one batch, checked before anything is written.
fn refs_of(rows: &[Row]) -> (HashSet<String>, HashSet<String>) {
    let mut companies = HashSet::new();
    let mut owners = HashSet::new();
    for r in rows {
        match r {
            Row::Contact(c) => {
                companies.extend(c.company_id.clone());
                owners.extend(c.owner_id.clone());
            }
            Row::Company(c) => owners.extend(c.owner_id.clone()),
        }
    }
    (companies, owners)
}

fn duplicate_domains(rows: &[Row]) -> Result<(), CrmError> {
    let mut seen = HashSet::new();
    for r in rows {
        if let Row::Company(c) = r
            && let Some(d) = &c.domain
            && !seen.insert(d.clone())
        {
            return Err(CrmError::Conflict(format!("the domain {d} appears twice in this call; a domain is unique")));
        }
    }
    Ok(())
}

fn map_conflict(e: StoreError) -> CrmError {
    match e {
        StoreError::Conflict(what) => CrmError::Conflict(format!(
            "{what} already exists in this organization; search for it and update it instead"
        )),
        other => CrmError::Store(other),
    }
}

/// What create and update need to know of a kind of record: one patch type per entity
/// (a create is a patch onto an empty row).
trait Patch: Clone {
    const ENTITY: Entity;
    /// The argument's name, for messages such as `contacts[2].email`.
    const LIST: &'static str;
    fn id(&self) -> &str;
    fn sets_custom(&self) -> bool;
    fn empty_row(id: String, now: Millis) -> Row;
    fn apply(self, at: &At, defs: &[CustomFieldDef], row: Row) -> Result<Row, CrmError>;
}

impl Patch for ContactPatch {
    const ENTITY: Entity = Entity::Contact;
    const LIST: &'static str = "contacts";
    fn id(&self) -> &str {
        &self.id
    }
    fn sets_custom(&self) -> bool {
        self.custom.as_ref().is_some_and(|m| !m.is_empty())
    }
    fn empty_row(id: String, now: Millis) -> Row {
        Row::Contact(ContactRow { id, created_at: now, updated_at: now, ..Default::default() })
    }
    fn apply(self, at: &At, defs: &[CustomFieldDef], row: Row) -> Result<Row, CrmError> {
        match row {
            Row::Contact(c) => contact_from(at, defs, c, self).map(Row::Contact),
            Row::Company(_) => unreachable!("a contact patch is applied to contacts"),
        }
    }
}

impl Patch for CompanyPatch {
    const ENTITY: Entity = Entity::Company;
    const LIST: &'static str = "companies";
    fn id(&self) -> &str {
        &self.id
    }
    fn sets_custom(&self) -> bool {
        self.custom.as_ref().is_some_and(|m| !m.is_empty())
    }
    fn empty_row(id: String, now: Millis) -> Row {
        Row::Company(CompanyRow { id, created_at: now, updated_at: now, ..Default::default() })
    }
    fn apply(self, at: &At, defs: &[CustomFieldDef], row: Row) -> Result<Row, CrmError> {
        match row {
            Row::Company(c) => company_from(at, defs, c, self).map(Row::Company),
            Row::Contact(_) => unreachable!("a company patch is applied to companies"),
        }
    }
}

pub async fn create_contacts(
    store: &dyn Store,
    caller: &Caller,
    input: CreateContactsInput,
) -> Result<RecordsResult, CrmError> {
    create(store, caller, input.contacts.into_iter().map(new_contact_patch).collect()).await
}

pub async fn create_companies(
    store: &dyn Store,
    caller: &Caller,
    input: CreateCompaniesInput,
) -> Result<RecordsResult, CrmError> {
    create(store, caller, input.companies.into_iter().map(new_company_patch).collect()).await
}

pub async fn update_contacts(
    store: &dyn Store,
    caller: &Caller,
    input: UpdateContactsInput,
) -> Result<RecordsResult, CrmError> {
    update(store, caller, input.contacts).await
}

pub async fn update_companies(
    store: &dyn Store,
    caller: &Caller,
    input: UpdateCompaniesInput,
) -> Result<RecordsResult, CrmError> {
    update(store, caller, input.companies).await
}

/// Checks every new record, then inserts all of them or none.
async fn create<P: Patch>(store: &dyn Store, caller: &Caller, patches: Vec<P>) -> Result<RecordsResult, CrmError> {
    caller.require(write_scope(P::ENTITY))?;
    batch_len(P::LIST, patches.len())?;
    let defs = custom_defs(store, &caller.org_id, P::ENTITY, patches.iter().any(P::sets_custom)).await?;
    let now = time::now_ms();
    let rows = patches
        .into_iter()
        .enumerate()
        .map(|(index, p)| p.apply(&At { list: P::LIST, index }, &defs, P::empty_row(new_id(), now)))
        .collect::<Result<Vec<_>, _>>()?;
    duplicate_domains(&rows)?;
    let (companies, owners) = refs_of(&rows);
    check_refs(store, caller, companies, owners).await?;
    store.insert_rows(&caller.org_id, &rows).await.map_err(map_conflict)?;
    Ok(RecordsResult { items: rows.into_iter().map(to_record).collect() })
}

/// Read, apply, write with an optimistic check on `updated_at`; a concurrent change to
/// the same record makes the whole batch start over, so no change is lost.
async fn update<P: Patch>(store: &dyn Store, caller: &Caller, patches: Vec<P>) -> Result<RecordsResult, CrmError> {
    caller.require(write_scope(P::ENTITY))?;
    batch_len(P::LIST, patches.len())?;
    let defs = custom_defs(store, &caller.org_id, P::ENTITY, patches.iter().any(P::sets_custom)).await?;
    let (entity, list) = (P::ENTITY, P::LIST);
    let ids: Vec<String> = patches.iter().map(|p| p.id().to_owned()).collect();
    let mut seen = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(CrmError::invalid(format!(
                "{list}[{i}] names the same id as {list}[{first}]; merge the two changes into one"
            )));
        }
    }
    for _attempt in 0..5 {
        let mut current: HashMap<String, Row> =
            store.get_rows(&caller.org_id, entity, &ids).await?.into_iter().map(|r| (r.id().to_owned(), r)).collect();
        let missing: Vec<(Entity, String)> =
            ids.iter().filter(|id| !current.contains_key(*id)).map(|id| (entity, id.clone())).collect();
        if !missing.is_empty() {
            return Err(CrmError::NotFound(missing));
        }
        let now = time::now_ms();
        let mut pairs: Vec<(Row, Millis)> = Vec::with_capacity(patches.len());
        for (index, patch) in patches.iter().enumerate() {
            let row = current.remove(&ids[index]).expect("checked above");
            let expected = row.updated_at();
            let mut next = patch.clone().apply(&At { list, index }, &defs, row)?;
            // Strictly later, so the optimistic check can tell two writes apart.
            let stamp = now.max(expected + 1);
            match &mut next {
                Row::Contact(c) => c.updated_at = stamp,
                Row::Company(c) => c.updated_at = stamp,
            }
            pairs.push((next, expected));
        }
        let rows: Vec<Row> = pairs.iter().map(|(r, _)| r.clone()).collect();
        duplicate_domains(&rows)?;
        let (companies, owners) = refs_of(&rows);
        check_refs(store, caller, companies, owners).await?;
        match store.update_rows(&caller.org_id, &pairs).await {
            Ok(()) => return Ok(RecordsResult { items: rows.into_iter().map(to_record).collect() }),
            Err(StoreError::Stale) => continue,
            Err(StoreError::NotFound) => {
                return Err(CrmError::NotFound(ids.iter().map(|id| (entity, id.clone())).collect()));
            }
            Err(e) => return Err(map_conflict(e)),
        }
    }
    Err(CrmError::Conflict("these records are being changed by someone else right now; try again".into()))
}

pub async fn delete(store: &dyn Store, caller: &Caller, input: DeleteRecordsInput) -> Result<DeleteResult, CrmError> {
    caller.require(delete_scope(input.entity))?;
    batch_len("ids", input.ids.len())?;
    let found: HashSet<String> =
        store.get_rows(&caller.org_id, input.entity, &input.ids).await?.iter().map(|r| r.id().to_owned()).collect();
    let missing: Vec<(Entity, String)> =
        input.ids.iter().filter(|id| !found.contains(*id)).map(|id| (input.entity, id.clone())).collect();
    if !missing.is_empty() {
        return Err(CrmError::NotFound(missing));
    }
    match store.delete_rows(&caller.org_id, input.entity, &input.ids).await {
        Ok(()) => {}
        // Deleted by someone else between the check and now: report it, nothing was deleted.
        Err(StoreError::NotFound) => {
            return Err(CrmError::Conflict(
                "some of these records were deleted meanwhile; nothing was deleted, search again".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let mut deleted = input.ids;
    deleted.dedup();
    Ok(DeleteResult { entity: input.entity, deleted })
}

pub fn to_record(row: Row) -> Record {
    match row {
        Row::Contact(c) => Record::Contact(contact_record(c)),
        Row::Company(c) => Record::Company(company_record(c)),
    }
}

fn contact_record(c: ContactRow) -> wire::Contact {
    wire::Contact {
        id: c.id,
        first_name: c.first_name,
        last_name: c.last_name,
        email: c.email,
        phone: c.phone,
        title: c.title,
        company_id: c.company_id,
        owner_id: c.owner_id,
        tags: c.tags,
        custom: c.custom,
        created_at: time::rfc3339(c.created_at),
        updated_at: time::rfc3339(c.updated_at),
        company: None,
    }
}

fn company_record(c: CompanyRow) -> wire::Company {
    wire::Company {
        id: c.id,
        name: c.name,
        domain: c.domain,
        industry: c.industry,
        owner_id: c.owner_id,
        tags: c.tags,
        custom: c.custom,
        created_at: time::rfc3339(c.created_at),
        updated_at: time::rfc3339(c.updated_at),
        contact_count: None,
        contacts: None,
    }
}

fn contact_ref(c: ContactRow) -> wire::ContactRef {
    let name = [c.first_name.as_deref(), c.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    wire::ContactRef {
        name: if name.is_empty() { c.email.clone().unwrap_or_default() } else { name },
        id: c.id,
        email: c.email,
    }
}
