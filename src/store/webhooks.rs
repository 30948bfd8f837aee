//! Webhook endpoints, the delivery outbox and its attempts (SPEC section 10).
//!
//! Deliveries are queued by `Tx::append_changes`, in the transaction of the change they
//! announce. Any number of processes drain them: a claim leases due deliveries (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL; SQLite has one writer), and only the oldest pending delivery
//! of an endpoint and record is due, so each record's events arrive in order.

use super::db::{DbRow, Tx};
use super::*;
use crate::secrets::WebhookSecret as Secret;
use crate::time::Millis;
use rapport_tools::Scopes;

/// An endpoint as stored, secrets included: only `webhooks::` reads those.
#[derive(Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub org_id: OrgId,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub secret: Secret,
    /// The secret before the last rotation, valid until `old_secret_until`.
    pub old_secret: Option<Secret>,
    pub old_secret_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub failing_since: Option<Millis>,
    pub disabled_reason: Option<String>,
    /// Whose powers the endpoint carries (SPEC section 10): the person who made it or took
    /// it over, the key they acted through, and that key's scopes then (`None`: their role's).
    pub created_by: Option<UserId>,
    pub created_by_key: Option<KeyId>,
    pub scopes: Option<rapport_tools::Scopes>,
}

impl Endpoint {
    /// What the endpoint may deliver: its scopes within its creator's role now, given as
    /// `Some` only while the creator is active; nothing otherwise.
    pub fn powers(&self, creator_role: Option<rapport_tools::Role>) -> rapport_tools::Scopes {
        Self::powers_of(self.scopes, creator_role)
    }

    fn powers_of(scopes: Option<Scopes>, creator_role: Option<rapport_tools::Role>) -> Scopes {
        match creator_role {
            Some(role) => scopes.unwrap_or_else(Scopes::all).intersection(&role.scopes()),
            None => Scopes::empty(),
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

const ENDPOINT_COLS: &str = "id, org_id, url, events, description, enabled, secret, old_secret, old_secret_until, \
     created_at, updated_at, failing_since, disabled_reason, created_by, created_by_key, scopes";

/// `ENDPOINT_COLS` of `webhook_endpoints e`, each named `e_…`, for a join.
fn endpoint_join_cols() -> String {
    ENDPOINT_COLS.split(", ").map(|c| format!("e.{c} AS e_{c}")).collect::<Vec<_>>().join(", ")
}

fn endpoint(mut r: DbRow) -> StoreResult<Endpoint> {
    endpoint_as(&mut r, "")
}

/// An endpoint from `ENDPOINT_COLS`, each name starting with `prefix`.
fn endpoint_as(r: &mut DbRow, prefix: &str) -> StoreResult<Endpoint> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Endpoint {
        id: r.need_text(&c("id"))?.into(),
        org_id: r.need_text(&c("org_id"))?.into(),
        url: r.need_text(&c("url"))?,
        events: parse_json(&r.need_text(&c("events"))?, "events")?,
        description: r.text(&c("description"))?,
        enabled: r.bool(&c("enabled"))?,
        secret: secret(r.need_text(&c("secret"))?)?,
        old_secret: r.text(&c("old_secret"))?.map(secret).transpose()?,
        old_secret_until: r.int(&c("old_secret_until"))?,
        created_at: r.need_int(&c("created_at"))?,
        updated_at: r.need_int(&c("updated_at"))?,
        failing_since: r.int(&c("failing_since"))?,
        disabled_reason: r.text(&c("disabled_reason"))?,
        created_by: r.text(&c("created_by"))?.map(UserId::from),
        created_by_key: r.text(&c("created_by_key"))?.map(KeyId::from),
        scopes: scopes(r.text(&c("scopes"))?)?,
    })
}

/// An endpoint's stored scopes. A scope a later release renames or drops is skipped, as keys
/// skip it: the endpoint carries less, and no write of the organization fails on it.
fn scopes(stored: Option<String>) -> StoreResult<Option<Scopes>> {
    Ok(stored
        .map(|s| parse_json::<Vec<String>>(&s, "scopes"))
        .transpose()?
        .map(|names| names.iter().filter_map(|n| n.parse::<rapport_tools::Scope>().ok()).collect()))
}

fn secret(s: String) -> StoreResult<Secret> {
    Secret::parse(&s).ok_or_else(|| StoreError::Corrupt("a webhook secret is not whsec_ and base64".into()))
}

/// A delivery as the API lists it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: EndpointId,
    pub event_type: String,
    pub entity: String,
    pub record_id: String,
    pub created_at: Millis,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_status: Option<i64>,
    pub finished_at: Option<Millis>,
}

const DELIVERY_COLS: &str = "d.id, d.endpoint_id, d.event_type, d.entity, d.record_id, d.created_at, d.state, \
     d.attempts, d.next_attempt_at, d.last_status, d.finished_at";

fn delivery(r: &mut DbRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.need_text("id")?,
        endpoint_id: r.need_text("endpoint_id")?.into(),
        event_type: r.need_text("event_type")?,
        entity: r.need_text("entity")?,
        record_id: r.need_text("record_id")?,
        created_at: r.need_int("created_at")?,
        state: r.need_text("state")?,
        attempts: r.need_int("attempts")?,
        next_attempt_at: r.need_int("next_attempt_at")?,
        last_status: r.int("last_status")?,
        finished_at: r.int("finished_at")?,
    })
}

/// One attempt at a delivery.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Millis,
    pub status: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// The first kilobyte of the answer.
    pub response: Option<String>,
}

/// A delivery with its attempts, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub org_id: OrgId,
    /// The body, fixed when the change was written.
    pub payload: String,
    pub endpoint: Endpoint,
    /// The claim's lease end: a token, so that only the claimer records the attempt.
    pub lease: Millis,
    /// What the endpoint may deliver now: its creator's powers as they are at the claim.
    pub powers: Scopes,
}

/// Whether an earlier pending delivery of the same endpoint and record exists (earlier by
/// the change's time, then by id): such a delivery goes first. Read through
/// `webhook_deliveries_waiting` (migration 0016).
const WAITS_ITS_TURN: &str = "EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.endpoint_id = d.endpoint_id \
     AND o.record_id = d.record_id AND o.state = 'pending' \
     AND (o.created_at < d.created_at OR (o.created_at = d.created_at AND o.id < d.id)))";

/// What the store needs to queue events: what they announce, and a cache of each
/// organization's endpoints, which every announced write reads.
pub struct Outbox {
    pub(super) announcer: std::sync::Arc<dyn Announcer>,
    /// By organization: the endpoints as of an authentication generation (they move it when
    /// they change, as keys and users do), so a write reads them from the database only
    /// when something changed (issue 26: the read cost a sixth of a write's throughput).
    targets: std::sync::Mutex<std::collections::HashMap<OrgId, (u64, Targets)>>,
}

/// An organization's enabled endpoints, shared by the writes that read them.
type Targets = std::sync::Arc<[Target]>;

impl Outbox {
    pub fn new(announcer: std::sync::Arc<dyn Announcer>) -> Self {
        Outbox { announcer, targets: Default::default() }
    }

    fn cached(&self, org_id: &OrgId, generation: u64) -> Option<Targets> {
        let targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        targets.get(org_id).filter(|(g, _)| *g == generation).map(|(_, t)| t.clone())
    }

    fn keep(&self, org_id: &OrgId, generation: u64, found: Targets) {
        let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        targets.insert(org_id.clone(), (generation, found));
    }
}

/// An enabled endpoint as a write sees it: what it takes, and what it may deliver (its
/// creator's powers as they were read).
#[derive(Debug, Clone)]
pub(super) struct Target {
    id: EndpointId,
    events: Vec<String>,
    powers: Scopes,
}

/// The id of the delivery of a queued event to its `index`th endpoint (of at most 50), known
/// before it is fanned out, so that the listing shows it under the id it is sent with: the
/// event's UUIDv7 with its last byte the index. It has the shape of every delivery id
/// (`msg_` and 32 hex digits) and sorts by the event's time.
fn delivery_id(event_id: &str, index: usize) -> String {
    let hex = event_id.strip_prefix("evt_").unwrap_or(event_id);
    format!("msg_{}{:02x}", &hex[..hex.len().saturating_sub(2)], index % 256)
}

/// The advisory lock one PostgreSQL process holds while it fans events out.
const FAN_OUT_LOCK: i64 = 0x7261_7070_6f72_7466;

/// An event to queue: its body, stored once, and the endpoints it goes to.
struct NewEvent<'a> {
    org_id: &'a OrgId,
    /// The change (or other event) it announces.
    source: &'a str,
    entity: &'a str,
    record_id: &'a str,
    at: Millis,
    event_type: String,
    body: String,
    to: Vec<&'a EndpointId>,
}

/// What one attempt came to, and what follows.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub attempt: Attempt,
    /// `delivered`, `failed`, or `pending` again at `next_attempt_at`.
    pub state: &'static str,
    pub next_attempt_at: Millis,
    /// The endpoint succeeded (its failure run ends) or failed.
    pub success: bool,
}

/// An event that is no record change, with its body made by the layer that owns it.
#[derive(Debug, Clone)]
pub struct OrgEvent {
    pub org_id: OrgId,
    /// Unique per event (it stands where a change's id does).
    pub id: String,
    pub event_type: String,
    pub entity: String,
    pub record_id: String,
    pub at: Millis,
    pub body: String,
    /// What an endpoint's creator must hold to receive it.
    pub needs: rapport_tools::Scope,
}

impl Tx {
    /// Queues each change's events for every enabled endpoint of its organization
    /// subscribed to them. No read at all when nothing is subscribed and nothing changed.
    /// `written` holds records as this transaction leaves them: their events' bodies need not
    /// read them back (in debug builds they are, and must agree).
    pub(super) async fn queue_webhooks(&mut self, changes: &[Change], written: &[&Record]) -> StoreResult<()> {
        let announcer = self.outbox.announcer.clone();
        let Some(first) = changes.iter().find(|c| !announcer.types(c).is_empty()) else { return Ok(()) };
        let endpoints = self.targets(&first.org_id).await?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let mut events = Vec::new();
        for c in changes.iter().filter(|c| c.org_id == first.org_id) {
            let mut record = None;
            let Some(entity) = c.entity.record() else { continue };
            for ty in announcer.types(c) {
                let to: Vec<&EndpointId> = endpoints
                    .iter()
                    .filter(|e| e.powers.contains(&entity.def().read) && announcer.subscribed(&e.events, &ty))
                    .map(|e| &e.id)
                    .collect();
                if to.is_empty() {
                    continue;
                }
                if record.is_none() {
                    // Once per change: the record as this transaction leaves it.
                    let held = written.iter().find(|r| r.entity == entity && r.id == c.record_id.as_str());
                    record = Some(match held {
                        Some(r) if !cfg!(debug_assertions) => announcer.record(Some((*r).clone())),
                        _ => {
                            let read = announcer.record(self.record_any(&c.org_id, entity, &c.record_id).await?);
                            if let Some(r) = held {
                                debug_assert_eq!(announcer.record(Some((*r).clone())), read, "{entity} as written");
                            }
                            read
                        }
                    });
                }
                let body = announcer.body(c, &ty, record.as_ref().expect("read above"));
                events.push(NewEvent {
                    org_id: &c.org_id,
                    source: &c.id,
                    entity: c.entity.as_str(),
                    record_id: &c.record_id,
                    at: c.at,
                    event_type: ty,
                    body,
                    to,
                });
            }
        }
        self.queue(&events).await
    }

    /// Stores each event once with the endpoints it goes to: one row a write, however many
    /// endpoints there are. The sender fans it out into deliveries (`Store::fan_out`).
    async fn queue(&mut self, events: &[NewEvent<'_>]) -> StoreResult<()> {
        let rows: Vec<[SqlValue; 9]> = events
            .iter()
            .filter(|ev| !ev.to.is_empty())
            .map(|ev| {
                [
                    format!("evt_{}", uuid::Uuid::now_v7().simple()).into(),
                    ev.org_id.into(),
                    ev.record_id.into(),
                    ev.body.as_str().into(),
                    ev.at.into(),
                    json_text(&ev.to.iter().map(|e| e.as_str()).collect::<Vec<_>>()).into(),
                    ev.source.into(),
                    ev.event_type.as_str().into(),
                    ev.entity.into(),
                ]
            })
            .collect();
        self.insert_rows(
            "INSERT INTO webhook_events (id, org_id, record_id, body, created_at, targets, source, event_type, entity)",
            &rows,
        )
        .await
    }

    /// The organization's enabled endpoints, each with what it may deliver: its creator's
    /// powers as they are now, cached while the authentication generation holds. The
    /// generation is read before the endpoints, so a change committed meanwhile is read
    /// again next time. An event names endpoints without a foreign key: one deleted before
    /// the fan-out is skipped there.
    async fn targets(&mut self, org_id: &OrgId) -> StoreResult<Targets> {
        let generation = self.auth_generation();
        if let Some(found) = generation.and_then(|g| self.outbox.cached(org_id, g)) {
            return Ok(found);
        }
        let sql = "SELECT e.id, e.events, e.scopes, u.role FROM webhook_endpoints e \
                   LEFT JOIN users u ON u.id = e.created_by AND u.active = $2 WHERE e.org_id = $1 AND e.enabled = $2";
        let found: Targets = self
            .fetch(sql, &[org_id.into(), true.into()])
            .await?
            .into_iter()
            .map(|mut r| {
                let role = r.text("role")?.map(|s| super::users::parse_role(&s)).transpose()?;
                Ok(Target {
                    id: r.need_text("id")?.into(),
                    events: parse_json(&r.need_text("events")?, "events")?,
                    powers: Endpoint::powers_of(scopes(r.text("scopes")?)?, role),
                })
            })
            .collect::<StoreResult<_>>()?;
        if let Some(g) = generation {
            self.outbox.keep(org_id, g, found.clone());
        }
        Ok(found)
    }

    /// Queues an event that is no record change (an approval's) for every endpoint
    /// subscribed to it whose creator holds `event.needs`.
    pub async fn queue_event(&mut self, event: &OrgEvent) -> StoreResult<()> {
        let announcer = self.outbox.announcer.clone();
        let endpoints = self.targets(&event.org_id).await?;
        let to = endpoints
            .iter()
            .filter(|e| e.powers.contains(&event.needs) && announcer.subscribed(&e.events, &event.event_type))
            .map(|e| &e.id)
            .collect();
        let queued = NewEvent {
            org_id: &event.org_id,
            source: &event.id,
            entity: &event.entity,
            record_id: &event.record_id,
            at: event.at,
            event_type: event.event_type.clone(),
            body: event.body.clone(),
            to,
        };
        self.queue(&[queued]).await
    }

    /// Inserts rows of `N` values each, a few to a statement (`Tx::insert_many`).
    async fn insert_rows<const N: usize>(&mut self, head: &str, rows: &[[SqlValue; N]]) -> StoreResult<()> {
        self.insert_many(head, rows.iter().map(|r| r.to_vec()).collect()).await
    }

    /// The organization's endpoints; on PostgreSQL its row is locked first, so that
    /// concurrent creates count one after the other.
    pub async fn count_endpoints(&mut self, org_id: &OrgId) -> StoreResult<i64> {
        if self.dialect() == Dialect::Postgres {
            self.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", &[org_id.into()]).await?;
        }
        self.scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE org_id = $1", &[org_id.into()]).await
    }

    pub async fn insert_endpoint(&mut self, e: &Endpoint) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        self.execute(&sql, &endpoint_values(e)).await?;
        self.auth_changed();
        Ok(())
    }

    /// Writes every field of `e` over the stored endpoint.
    pub async fn save_endpoint(&mut self, e: &Endpoint) -> StoreResult<()> {
        let sql = "UPDATE webhook_endpoints SET url = $3, events = $4, description = $5, enabled = $6, secret = $7, \
                   old_secret = $8, old_secret_until = $9, created_at = $10, updated_at = $11, failing_since = $12, \
                   disabled_reason = $13, created_by = $14, created_by_key = $15, scopes = $16 \
                   WHERE id = $1 AND org_id = $2";
        if self.execute(sql, &endpoint_values(e)).await? == 0 {
            return Err(StoreError::NotFound);
        }
        self.auth_changed();
        Ok(())
    }

    /// Deletes an endpoint; its deliveries and their attempts go with it (`ON DELETE
    /// CASCADE`, foreign keys being on in both dialects).
    pub async fn delete_endpoint(&mut self, org_id: &OrgId, id: &EndpointId) -> StoreResult<()> {
        if self
            .execute("DELETE FROM webhook_endpoints WHERE id = $1 AND org_id = $2", &[id.into(), org_id.into()])
            .await?
            == 0
        {
            return Err(StoreError::NotFound);
        }
        self.auth_changed();
        Ok(())
    }

    /// Turns off every enabled endpoint `user_id` made, because they were deactivated: what
    /// an endpoint delivers is its creator's to read. Answers the endpoints turned off.
    pub async fn disable_endpoints_of(
        &mut self,
        org_id: &OrgId,
        user_id: &UserId,
        reason: &str,
        at: Millis,
    ) -> StoreResult<Vec<Endpoint>> {
        let sql = format!(
            "UPDATE webhook_endpoints SET enabled = $3, disabled_reason = $4, updated_at = $5 \
             WHERE org_id = $1 AND created_by = $2 AND enabled = $6 RETURNING {ENDPOINT_COLS}"
        );
        let binds = [org_id.into(), user_id.into(), false.into(), reason.into(), at.into(), true.into()];
        self.auth_changed();
        self.fetch(&sql, &binds).await?.into_iter().map(endpoint).collect()
    }

    /// An endpoint, its row locked until the transaction ends on PostgreSQL.
    pub async fn endpoint_for_update(&mut self, org_id: &OrgId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let lock = if self.dialect() == Dialect::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1 AND org_id = $2{lock}");
        self.fetch_one(&sql, &[id.into(), org_id.into()]).await?.map(endpoint).transpose()
    }
}

fn endpoint_values(e: &Endpoint) -> Vec<SqlValue> {
    vec![
        (&e.id).into(),
        (&e.org_id).into(),
        (&e.url).into(),
        json_text(&serde_json::json!(e.events)).into(),
        (&e.description).into(),
        e.enabled.into(),
        e.secret.expose().into(),
        e.old_secret.as_ref().map(Secret::expose).into(),
        e.old_secret_until.into(),
        e.created_at.into(),
        e.updated_at.into(),
        e.failing_since.into(),
        (&e.disabled_reason).into(),
        (&e.created_by).into(),
        (&e.created_by_key).into(),
        e.scopes.map(|s| json_text(&s.iter().collect::<Vec<_>>())).into(),
    ]
}

impl Store {
    pub async fn endpoints(&self, org_id: &OrgId) -> StoreResult<Vec<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY created_at, id");
        self.db.fetch(&sql, &[org_id.into()]).await?.into_iter().map(endpoint).collect()
    }

    pub async fn endpoint(&self, org_id: &OrgId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1 AND org_id = $2");
        self.db.fetch_one(&sql, &[id.into(), org_id.into()]).await?.map(endpoint).transpose()
    }

    /// Fans queued events out, oldest first and up to `limit` of them in one transaction,
    /// into one delivery for each endpoint an event names that still exists; answers how
    /// many events. On PostgreSQL one process fans out at a time (the others find nothing
    /// to do), so that a record's deliveries are made in the order of its events.
    pub async fn fan_out(&self, limit: i64) -> StoreResult<usize> {
        const QUEUED: &str = "FROM webhook_events WHERE targets IS NOT NULL";
        // A read first: an idle sender never takes SQLite's write lock.
        if self.db.fetch_one(&format!("SELECT 1 {QUEUED} LIMIT 1"), &[]).await?.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        if self.dialect() == Dialect::Postgres {
            let got = tx.fetch_one("SELECT pg_try_advisory_xact_lock($1) AS got", &[FAN_OUT_LOCK.into()]).await?;
            if !got.map(|mut r| r.bool("got")).transpose()?.unwrap_or(false) {
                tx.commit().await?;
                return Ok(0);
            }
        }
        let sql = format!(
            "SELECT id, org_id, record_id, created_at, targets, source, event_type, entity {QUEUED} \
             ORDER BY created_at, id LIMIT $1"
        );
        /// A queued event as the fan-out reads it.
        struct Queued {
            id: String,
            org_id: String,
            record_id: String,
            at: Millis,
            targets: Vec<String>,
            source: String,
            event_type: String,
            entity: String,
        }
        let mut events = Vec::new();
        for mut r in tx.fetch(&sql, &[limit.into()]).await? {
            events.push(Queued {
                targets: parse_json(&r.need_text("targets")?, "targets")?,
                id: r.need_text("id")?,
                org_id: r.need_text("org_id")?,
                record_id: r.need_text("record_id")?,
                at: r.need_int("created_at")?,
                source: r.need_text("source")?,
                event_type: r.need_text("event_type")?,
                entity: r.need_text("entity")?,
            });
        }
        let mut named: Vec<&str> = events.iter().flat_map(|e| e.targets.iter().map(String::as_str)).collect();
        named.sort_unstable();
        named.dedup();
        let mut existing = std::collections::HashSet::new();
        if !named.is_empty() {
            let mut sql = super::query::Sql::new(self.dialect());
            sql.push("SELECT id FROM webhook_endpoints WHERE id IN ");
            sql.bind_list(named.iter().map(|id| SqlValue::from(*id)));
            if self.dialect() == Dialect::Postgres {
                // Held until the deliveries are in: one deleted meanwhile waits for them.
                sql.push(" FOR KEY SHARE");
            }
            for mut r in tx.fetch(&sql.text, &sql.binds).await? {
                existing.insert(r.need_text("id")?);
            }
        }
        let mut deliveries: Vec<[SqlValue; 10]> = Vec::new();
        for ev in &events {
            for (i, endpoint) in ev.targets.iter().enumerate().filter(|(_, t)| existing.contains(*t)) {
                deliveries.push([
                    delivery_id(&ev.id, i).into(),
                    ev.org_id.as_str().into(),
                    endpoint.into(),
                    ev.source.as_str().into(),
                    ev.event_type.as_str().into(),
                    ev.entity.as_str().into(),
                    ev.record_id.as_str().into(),
                    ev.at.into(),
                    ev.at.into(),
                    ev.id.as_str().into(),
                ]);
            }
        }
        tx.insert_rows(
            "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, change_id, event_type, entity, record_id, \
             created_at, next_attempt_at, event_id)",
            &deliveries,
        )
        .await?;
        if !events.is_empty() {
            let mut done = super::query::Sql::new(self.dialect());
            done.push("UPDATE webhook_events SET targets = NULL WHERE id IN ");
            done.bind_list(events.iter().map(|e| SqlValue::from(e.id.as_str())));
            tx.execute(&done.text, &done.binds).await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// Whether a delivery of an enabled endpoint is due and its turn: a read, so an idle
    /// sender never takes SQLite's write lock.
    pub async fn deliveries_due(&self, now: Millis) -> StoreResult<bool> {
        let sql = format!(
            "SELECT 1 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.lease_until IS NULL OR d.lease_until < $1) AND e.enabled = $2 AND NOT {WAITS_ITS_TURN} LIMIT 1"
        );
        Ok(self.db.fetch_one(&sql, &[now.into(), true.into()]).await?.is_some())
    }

    /// Leases up to `limit` due deliveries until `lease_until`: the oldest pending one of
    /// each endpoint and record, of enabled endpoints other than `busy` only.
    pub async fn claim_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: i64,
        busy: &[&str],
    ) -> StoreResult<Vec<DueDelivery>> {
        let mut claim = super::query::Sql::new(self.dialect());
        claim.push("UPDATE webhook_deliveries SET lease_until = ");
        claim.bind(lease_until.into());
        claim.push(
            " WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= ",
        );
        claim.bind(now.into());
        claim.push(" AND (d.lease_until IS NULL OR d.lease_until < ");
        claim.bind(now.into());
        claim.push(") AND e.enabled = ");
        claim.bind(true.into());
        claim.push(&format!(" AND NOT {WAITS_ITS_TURN}"));
        if !busy.is_empty() {
            claim.push(" AND d.endpoint_id NOT IN ");
            claim.bind_list(busy.iter().map(|b| SqlValue::from(*b)));
        }
        claim.push(" ORDER BY d.next_attempt_at LIMIT ");
        claim.bind(limit.into());
        if self.dialect() == Dialect::Postgres {
            claim.push(" FOR UPDATE OF d SKIP LOCKED");
        }
        claim.push(") RETURNING id");
        let mut tx = self.begin().await?;
        let ids: Vec<String> = tx
            .fetch(&claim.text, &claim.binds)
            .await?
            .into_iter()
            .map(|mut r| r.need_text("id"))
            .collect::<StoreResult<_>>()?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut sql = super::query::Sql::new(self.dialect());
        sql.push(&format!(
            "SELECT {DELIVERY_COLS}, d.org_id, COALESCE(d.payload, ev.body) AS payload, {}, u.role \
             FROM webhook_deliveries d LEFT JOIN webhook_events ev ON ev.id = d.event_id \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id LEFT JOIN users u ON u.id = e.created_by AND u.active = ",
            endpoint_join_cols()
        ));
        sql.bind(true.into());
        sql.push(" WHERE d.id IN ");
        sql.bind_list(ids.iter().map(SqlValue::from));
        let rows = tx.fetch(&sql.text, &sql.binds).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|mut r| {
                let delivery = delivery(&mut r)?;
                let (org_id, payload) = (r.need_text("org_id")?.into(), r.need_text("payload")?);
                let role = r.text("role")?.map(|s| super::users::parse_role(&s)).transpose()?;
                let endpoint = endpoint_as(&mut r, "e_")?;
                let powers = endpoint.powers(role);
                Ok(DueDelivery { delivery, org_id, payload, endpoint, lease: lease_until, powers })
            })
            .collect()
    }

    /// Ends claimed deliveries unsent, each with an attempt that says `why`: its endpoint no
    /// longer carries the powers to read what they hold. The endpoint's failure run is left
    /// as it is: it did not fail.
    pub async fn withhold_deliveries(&self, claimed: &[DueDelivery], why: &str, at: Millis) -> StoreResult<()> {
        if claimed.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for d in claimed {
            let held = tx
                .execute(
                    "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, lease_until = NULL, \
                     finished_at = $3 WHERE id = $1 AND lease_until = $2",
                    &[(&d.delivery.id).into(), d.lease.into(), at.into()],
                )
                .await?;
            if held > 0 {
                tx.execute(
                    "INSERT INTO webhook_attempts (id, delivery_id, at, status, duration_ms, error, response) \
                     VALUES ($1, $2, $3, NULL, 0, $4, NULL)",
                    &[uuid::Uuid::now_v7().to_string().into(), (&d.delivery.id).into(), at.into(), why.into()],
                )
                .await?;
            }
        }
        tx.commit().await
    }

    /// Gives back claimed deliveries unsent (their endpoint has enough in flight), to be
    /// claimed again at once.
    pub async fn release_deliveries(&self, claimed: &[DueDelivery]) -> StoreResult<()> {
        if claimed.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for d in claimed {
            tx.execute(
                "UPDATE webhook_deliveries SET lease_until = NULL WHERE id = $1 AND lease_until = $2",
                &[(&d.delivery.id).into(), d.lease.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Records attempts and what follows each, in one transaction: the attempts in one
    /// insert, each delivery's state, and each endpoint's failure run, which its latest
    /// success ends and the first failure after that starts. An attempt whose claim no longer
    /// holds (its delivery deleted with its endpoint, resent, or its lease run out and taken
    /// by another process) is not recorded. Answers, for each attempt, `None` when it was
    /// not recorded, else when its endpoint's failure run started.
    pub async fn finish_attempts(&self, done: &[(DueDelivery, Outcome)]) -> StoreResult<Vec<Option<Option<Millis>>>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut sql = super::query::Sql::new(self.dialect());
        sql.push("SELECT id, lease_until FROM webhook_deliveries WHERE id IN ");
        sql.bind_list(done.iter().map(|(d, _)| SqlValue::from(&d.delivery.id)));
        if self.dialect() == Dialect::Postgres {
            sql.push(" FOR UPDATE");
        }
        let mut held = std::collections::HashMap::new();
        for mut r in tx.fetch(&sql.text, &sql.binds).await? {
            held.insert(r.need_text("id")?, r.int("lease_until")?);
        }
        let holds = |d: &DueDelivery| held.get(&d.delivery.id).is_some_and(|l| *l == Some(d.lease));
        let all = done;
        let done: Vec<&(DueDelivery, Outcome)> = all.iter().filter(|(d, _)| holds(d)).collect();
        let attempts: Vec<[SqlValue; 7]> = done
            .iter()
            .map(|(due, o)| {
                let a = &o.attempt;
                [
                    uuid::Uuid::now_v7().to_string().into(),
                    (&due.delivery.id).into(),
                    a.at.into(),
                    a.status.into(),
                    a.duration_ms.into(),
                    (&a.error).into(),
                    (&a.response).into(),
                ]
            })
            .collect();
        tx.insert_rows(
            "INSERT INTO webhook_attempts (id, delivery_id, at, status, duration_ms, error, response)",
            &attempts,
        )
        .await?;
        for (due, o) in done.iter().copied() {
            let a = &o.attempt;
            let finished = (o.state != "pending").then_some(a.at);
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $2, next_attempt_at = $3, \
                 lease_until = NULL, last_status = $4, finished_at = $5 WHERE id = $1",
                &[
                    (&due.delivery.id).into(),
                    o.state.into(),
                    o.next_attempt_at.into(),
                    a.status.into(),
                    finished.into(),
                ],
            )
            .await?;
        }
        let mut runs: std::collections::BTreeMap<&str, Option<Millis>> = std::collections::BTreeMap::new();
        let endpoints: std::collections::BTreeSet<&str> = done.iter().map(|(d, _)| d.endpoint.id.as_str()).collect();
        for id in endpoints {
            let mine = || done.iter().filter(move |(d, _)| d.endpoint.id.as_str() == id).map(|(_, o)| o);
            let last_success = mine().filter(|o| o.success).map(|o| o.attempt.at).max();
            let first_failure = mine()
                .filter(|o| !o.success && last_success.is_none_or(|s| o.attempt.at > s))
                .map(|o| o.attempt.at)
                .min();
            let since = match (last_success, first_failure) {
                (_, None) => {
                    tx.execute(
                        "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                        &[id.into()],
                    )
                    .await?;
                    None
                }
                // A success in this batch ended the run; a later failure starts a new one.
                (Some(_), Some(at)) => {
                    tx.execute(
                        "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1",
                        &[id.into(), at.into()],
                    )
                    .await?;
                    Some(at)
                }
                (None, Some(at)) => {
                    let mut r = tx
                        .fetch_one(
                            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1 \
                             RETURNING failing_since",
                            &[id.into(), at.into()],
                        )
                        .await?;
                    r.as_mut().map(|r| r.int("failing_since")).transpose()?.flatten()
                }
            };
            runs.insert(id, since);
        }
        tx.commit().await?;
        Ok(all.iter().map(|(d, _)| holds(d).then(|| runs.get(d.endpoint.id.as_str()).copied().flatten())).collect())
    }

    /// Turns an endpoint off for `reason` (it answered 410, or failed for 5 days), with the
    /// audit entry that says so, unless it is off already. Answers whether it was on.
    pub async fn disable_endpoint(
        &self,
        org_id: &OrgId,
        id: &EndpointId,
        reason: &str,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE webhook_endpoints SET enabled = $3, disabled_reason = $4, updated_at = $5 \
                 WHERE id = $1 AND org_id = $2 AND enabled = $6",
                &[id.into(), org_id.into(), false.into(), reason.into(), audit.at.into(), true.into()],
            )
            .await?;
        if n > 0 {
            tx.insert_audit(audit).await?;
            tx.auth_changed();
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// An endpoint's deliveries of `visible` entities, newest first, each with its attempts
    /// (newest first), read in one statement so that states and attempts agree; `before` is
    /// the id of the last delivery of the previous page.
    pub async fn deliveries(
        &self,
        org_id: &OrgId,
        endpoint_id: &EndpointId,
        visible: &[&str],
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryView>> {
        let mut sql = super::query::Sql::new(self.dialect());
        sql.push(&format!("SELECT {DELIVERY_COLS}, a.at, a.status, a.duration_ms, a.error, a.response FROM ("));
        sql.push("SELECT * FROM webhook_deliveries WHERE org_id = ");
        sql.bind(org_id.into());
        sql.push(" AND endpoint_id = ");
        sql.bind(endpoint_id.into());
        sql.and_in("entity", visible);
        if let Some(b) = before {
            sql.push(" AND id < ");
            sql.bind(b.into());
        }
        sql.push(" ORDER BY id DESC LIMIT ");
        sql.bind(i64::from(limit).into());
        sql.push(") d LEFT JOIN webhook_attempts a ON a.delivery_id = d.id ORDER BY d.id DESC, a.at DESC, a.id DESC");
        // Queued events first: one fanned out between the two reads is then in both, and
        // its delivery row wins below, where the other order would lose it from both.
        let queued = self.queued_deliveries(org_id, endpoint_id, visible, before).await?;
        let mut out: Vec<DeliveryView> = Vec::new();
        for mut r in self.db.fetch(&sql.text, &sql.binds).await? {
            let d = delivery(&mut r)?;
            let attempt = match r.int("at")? {
                Some(at) => Some(Attempt {
                    at,
                    status: r.int("status")?,
                    duration_ms: r.need_int("duration_ms")?,
                    error: r.text("error")?,
                    response: r.text("response")?,
                }),
                None => None,
            };
            if out.last().is_none_or(|v| v.delivery.id != d.id) {
                out.push(DeliveryView { delivery: d, attempts: Vec::new() });
            }
            out.last_mut().expect("pushed above").attempts.extend(attempt);
        }
        let made: std::collections::HashSet<&str> = out.iter().map(|v| v.delivery.id.as_str()).collect();
        let queued: Vec<DeliveryView> = queued.into_iter().filter(|q| !made.contains(q.delivery.id.as_str())).collect();
        out.extend(queued);
        // Queued events not fanned out yet are newer than every delivery made.
        out.sort_by(|a, b| b.delivery.id.cmp(&a.delivery.id));
        out.truncate(limit as usize);
        Ok(out)
    }

    /// The deliveries to `endpoint_id` of events queued and not fanned out yet, as they will
    /// be made: pending, due at once, under the id they will have.
    async fn queued_deliveries(
        &self,
        org_id: &OrgId,
        endpoint_id: &EndpointId,
        visible: &[&str],
        before: Option<&str>,
    ) -> StoreResult<Vec<DeliveryView>> {
        let mut sql = super::query::Sql::new(self.dialect());
        sql.push("SELECT id, record_id, created_at, targets, event_type, entity FROM webhook_events WHERE targets IS NOT NULL AND org_id = ");
        sql.bind(org_id.into());
        sql.push(" AND targets LIKE ");
        sql.bind(format!("%\"{endpoint_id}\"%").into());
        sql.and_in("entity", visible);
        let mut out = Vec::new();
        for mut r in self.db.fetch(&sql.text, &sql.binds).await? {
            let targets: Vec<String> = parse_json(&r.need_text("targets")?, "targets")?;
            let Some(i) = targets.iter().position(|t| t == endpoint_id.as_str()) else { continue };
            let id = delivery_id(&r.need_text("id")?, i);
            if before.is_some_and(|b| id.as_str() >= b) {
                continue;
            }
            let created_at = r.need_int("created_at")?;
            let delivery = Delivery {
                id,
                endpoint_id: endpoint_id.clone(),
                event_type: r.need_text("event_type")?,
                entity: r.need_text("entity")?,
                record_id: r.need_text("record_id")?,
                created_at,
                state: "pending".into(),
                attempts: 0,
                next_attempt_at: created_at,
                last_status: None,
                finished_at: None,
            };
            out.push(DeliveryView { delivery, attempts: Vec::new() });
        }
        Ok(out)
    }

    /// Forgets deliveries that ended (delivered or failed) before `before`, with their
    /// attempts; answers how many.
    pub async fn prune_deliveries(&self, before: Millis) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        // Their attempts go with them (ON DELETE CASCADE).
        let n = tx
            .execute("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1", &[before.into()])
            .await?;
        // And the events fanned out that no delivery names any more.
        tx.execute(
            "DELETE FROM webhook_events WHERE created_at < $1 AND targets IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
            &[before.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// The endpoint a delivery belongs to.
    pub async fn delivery_endpoint(&self, org_id: &OrgId, id: &str) -> StoreResult<Option<EndpointId>> {
        let sql = "SELECT endpoint_id FROM webhook_deliveries WHERE id = $1 AND org_id = $2";
        self.db
            .fetch_one(sql, &[id.into(), org_id.into()])
            .await?
            .map(|mut r| r.need_text("endpoint_id").map(EndpointId::from))
            .transpose()
    }

    /// Queues a delivery again, now, under its own id (its `webhook-id`), with a fresh
    /// retry schedule and the audit entry that says who asked. `Conflict` while it is being
    /// sent; `None` when the organization has no such delivery.
    pub async fn resend_delivery(
        &self,
        org_id: &OrgId,
        id: &str,
        now: Millis,
        audit: &AuditEntry,
    ) -> StoreResult<Option<Delivery>> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3, \
                 lease_until = NULL, finished_at = NULL \
                 WHERE id = $1 AND org_id = $2 AND (lease_until IS NULL OR lease_until < $3)",
                &[id.into(), org_id.into(), now.into()],
            )
            .await?;
        let sql = format!("SELECT {DELIVERY_COLS} FROM webhook_deliveries d WHERE d.id = $1 AND d.org_id = $2");
        let row = tx.fetch_one(&sql, &[id.into(), org_id.into()]).await?;
        if row.is_some() && n == 0 {
            return Err(StoreError::Conflict("a send of this delivery in progress".into()));
        }
        if row.is_some() {
            tx.insert_audit(audit).await?;
        }
        tx.commit().await?;
        row.map(|mut r| delivery(&mut r)).transpose()
    }
}
