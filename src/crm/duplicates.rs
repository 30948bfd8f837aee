//! `find_duplicates` (SPEC 5): contacts or companies that are probably one record. Exact
//! matches on keys the database keeps (a contact's email and phone digits, a company's
//! name in any case) across the whole entity, and names alike by trigram similarity among
//! a company's contacts or among the records asked about. Each group lists its records
//! oldest first, the input `merge_records` needs with the first kept.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rapport_tools::Entity;
use rapport_tools::inputs::{DuplicateGroup, DuplicatesResult, FindDuplicatesInput};

use super::{CrmError, Principal};
use crate::store::{Colleague, DuplicateKey, RecordId, SharedKey, Store};

/// Names at least this alike (trigram Jaccard) are taken for one.
const SIMILAR: f64 = 0.5;
/// Contacts read per step of the company-by-company walk.
const COLLEAGUES_PER_STEP: u32 = 5_000;
const DEFAULT_LIMIT: i64 = 25;
const MAX_IDS: usize = 100;

/// The phases of a walk, in order: each entity's exact keys, then (contacts) names at a
/// company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Key(DuplicateKey),
    Colleagues,
}

impl Phase {
    fn of(entity: Entity) -> &'static [Phase] {
        match entity {
            Entity::Contact => &[Phase::Key(DuplicateKey::Email), Phase::Key(DuplicateKey::Phone), Phase::Colleagues],
            _ => &[Phase::Key(DuplicateKey::Name)],
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Phase::Key(DuplicateKey::Email) => "same email",
            Phase::Key(DuplicateKey::Phone) => "same phone",
            Phase::Key(DuplicateKey::Name) => "same name",
            Phase::Colleagues => "similar name at the same company",
        }
    }
}

/// Where a walk stands: the phase, and the last key (or company) done in it.
fn encode(entity: Entity, phase: usize, after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{entity}\u{1f}{phase}\u{1f}{after}"))
}

fn decode(entity: Entity, cursor: &str) -> Result<(usize, String), CrmError> {
    let bad =
        || CrmError::invalid("`cursor` is not a next_cursor of find_duplicates for this entity; start without one");
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\u{1f}');
    let (Some(e), Some(phase), Some(after)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let phase: usize = phase.parse().map_err(|_| bad())?;
    if e != entity.as_str() || phase >= Phase::of(entity).len() {
        return Err(bad());
    }
    Ok((phase, after.to_owned()))
}

/// The trigrams of a name, lowercased and padded (as PostgreSQL's pg_trgm pads words).
fn trigrams(name: &str) -> BTreeSet<[char; 3]> {
    if name.trim().is_empty() {
        return BTreeSet::new();
    }
    let padded: Vec<char> =
        format!("  {} ", name.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")).chars().collect();
    padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// The share of trigrams two names have in common (0 to 1).
fn jaccard(a: &BTreeSet<[char; 3]>, b: &BTreeSet<[char; 3]>) -> f64 {
    let common = a.intersection(b).count();
    let all = a.len() + b.len() - common;
    if all == 0 { 0.0 } else { common as f64 / all as f64 }
}

/// How alike two names are (0 to 1).
pub fn similarity(a: &str, b: &str) -> f64 {
    jaccard(&trigrams(a), &trigrams(b))
}

/// Records whose names are alike, joined into groups (a ~ b and b ~ c make one group);
/// each group's score is the least alike pair that joined it. `named` is oldest first.
fn alike(named: &[(RecordId, String)], reason: &str) -> Vec<DuplicateGroup> {
    let n = named.len();
    let mut root: Vec<usize> = (0..n).collect();
    fn find(root: &mut [usize], i: usize) -> usize {
        let mut i = i;
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    let grams: Vec<_> = named.iter().map(|(_, name)| trigrams(name)).collect();
    let mut score: HashMap<usize, f64> = HashMap::new();
    for i in 0..n {
        if named[i].1.is_empty() {
            continue;
        }
        for j in i + 1..n {
            if named[j].1.is_empty() {
                continue;
            }
            let sim = jaccard(&grams[i], &grams[j]);
            if sim >= SIMILAR {
                let (ri, rj) = (find(&mut root, i), find(&mut root, j));
                let joined = score.remove(&ri).unwrap_or(1.0).min(score.remove(&rj).unwrap_or(1.0)).min(sim);
                let r = ri.min(rj);
                root[ri.max(rj)] = r;
                score.insert(r, joined);
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = find(&mut root, i);
        groups.entry(r).or_default().push(i);
    }
    let mut out: Vec<(usize, DuplicateGroup)> = groups
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(r, members)| {
            let ids = members.iter().map(|i| named[*i].0.to_string()).collect();
            let score = (score.get(&r).copied().unwrap_or(1.0) * 100.0).round() / 100.0;
            (members[0], DuplicateGroup { ids, reason: reason.to_owned(), score })
        })
        .collect();
    out.sort_by_key(|(first, _)| *first);
    out.into_iter().map(|(_, g)| g).collect()
}

fn exact(shared: SharedKey, reason: &str) -> Option<DuplicateGroup> {
    (shared.ids.len() > 1).then(|| DuplicateGroup {
        ids: shared.ids.into_iter().map(|i| i.to_string()).collect(),
        reason: reason.to_owned(),
        score: 1.0,
    })
}

pub async fn find(store: &Store, p: &Principal, input: FindDuplicatesInput) -> Result<DuplicatesResult, CrmError> {
    let entity = input.entity;
    if !matches!(entity, Entity::Contact | Entity::Company) {
        return Err(CrmError::invalid(format!(
            "find_duplicates looks at contacts or companies, not {}",
            entity.plural()
        )));
    }
    p.require(entity.def().read)?;
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=100).contains(&limit) {
        return Err(CrmError::invalid(format!("`limit` is 1 to 100, got {limit}")));
    }
    if let Some(ids) = input.ids {
        if input.cursor.is_some() {
            return Err(CrmError::invalid("`ids` answers in one page; leave out `cursor`"));
        }
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(CrmError::invalid(format!("`ids` takes 1 to {MAX_IDS} ids, got {}", ids.len())));
        }
        let ids = super::records::unique_ids(&ids);
        return Ok(DuplicatesResult { groups: of_ids(store, p, entity, &ids).await?, next_cursor: None });
    }
    let limit = limit as usize;
    let phases = Phase::of(entity);
    let (mut phase, mut after) = match &input.cursor {
        Some(c) => decode(entity, c)?,
        None => (0, String::new()),
    };
    let mut groups: Vec<DuplicateGroup> = Vec::new();
    while phase < phases.len() && groups.len() < limit {
        let want = (limit - groups.len()) as u32;
        let (found, done, last) = match phases[phase] {
            Phase::Key(key) => {
                let shared = store.shared_keys(p.org_id(), entity, key, &after, want).await?;
                let done = shared.len() < want as usize;
                let last = shared.last().map(|s| s.key.clone());
                (shared.into_iter().filter_map(|s| exact(s, phases[phase].reason())).collect(), done, last)
            }
            Phase::Colleagues => colleagues(store, p, &after, want as usize).await?,
        };
        groups.extend(found);
        if done {
            phase += 1;
            after = String::new();
        } else if let Some(last) = last {
            after = last;
        }
    }
    let next_cursor = (phase < phases.len()).then(|| encode(entity, phase, &after));
    Ok(DuplicatesResult { groups, next_cursor })
}

/// Groups of similar names among the contacts of companies after `after`, whole companies
/// only, until about `want` groups: the groups, whether the walk is over, and the last
/// company done.
async fn colleagues(
    store: &Store,
    p: &Principal,
    after: &str,
    want: usize,
) -> Result<(Vec<DuplicateGroup>, bool, Option<String>), CrmError> {
    let mut after = after.to_owned();
    let mut out = Vec::new();
    loop {
        let mut rows = store.colleagues(p.org_id(), &after, COLLEAGUES_PER_STEP).await?;
        let full = rows.len() == COLLEAGUES_PER_STEP as usize;
        if full {
            // The last company may be cut short: read it whole, unless it is the only one.
            let last = rows.last().map(|c| c.company_id.clone()).unwrap_or_default();
            rows.retain(|c| c.company_id != last);
            if rows.is_empty() {
                rows = store.colleagues_at(p.org_id(), &last).await?;
            }
        }
        if rows.is_empty() {
            return Ok((out, true, None));
        }
        let mut by_company: Vec<(String, Vec<(RecordId, String)>)> = Vec::new();
        for Colleague { company_id, id, name } in rows {
            match by_company.last_mut() {
                Some((c, list)) if *c == company_id => list.push((id, name)),
                _ => by_company.push((company_id, vec![(id, name)])),
            }
        }
        for (company, named) in by_company {
            let found = alike(&named, Phase::Colleagues.reason());
            if !out.is_empty() && out.len() + found.len() > want {
                return Ok((out, false, Some(after)));
            }
            out.extend(found);
            after = company;
            if out.len() >= want {
                return Ok((out, false, Some(after)));
            }
        }
        if !full {
            return Ok((out, true, Some(after)));
        }
    }
}

/// Duplicates of the records `ids`: the records that share a key with one of them, and
/// similar names among them.
async fn of_ids(
    store: &Store,
    p: &Principal,
    entity: Entity,
    ids: &[RecordId],
) -> Result<Vec<DuplicateGroup>, CrmError> {
    let mut out = Vec::new();
    for phase in Phase::of(entity) {
        let Phase::Key(key) = *phase else { continue };
        let mut keys: Vec<String> =
            store.keys_of(p.org_id(), entity, key, ids).await?.into_iter().map(|(_, k)| k).collect();
        keys.sort();
        keys.dedup();
        for shared in store.sharing(p.org_id(), entity, key, &keys).await? {
            out.extend(exact(shared, phase.reason()));
        }
    }
    let named = store.names_of(p.org_id(), entity, ids).await?;
    out.extend(alike(&named, "similar name"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_alike_and_not() {
        assert!(similarity("Jon Smith", "John Smith") >= SIMILAR);
        assert!(similarity("Katherine Jones", "Catherine Jones") >= SIMILAR);
        assert!(similarity("ada lovelace", "Ada  Lovelace") > 0.99);
        assert!(similarity("John Smith", "Jane Doe") < SIMILAR);
        assert!(similarity("", "") == 0.0);
    }

    #[test]
    fn alike_names_join_into_groups_oldest_first() {
        let named: Vec<(RecordId, String)> =
            [("a", "Jon Smith"), ("b", "Mary Major"), ("c", "John Smith"), ("d", "Johnny Smith")]
                .iter()
                .map(|(i, n)| (RecordId::from(*i), n.to_string()))
                .collect();
        let groups = alike(&named, "similar name");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].ids, ["a", "c", "d"]);
        assert!(groups[0].score >= SIMILAR && groups[0].score < 1.0);
    }

    #[test]
    fn a_cursor_belongs_to_its_entity() {
        let c = encode(Entity::Contact, 1, "15550100");
        assert_eq!(decode(Entity::Contact, &c).unwrap(), (1, "15550100".to_owned()));
        assert!(decode(Entity::Company, &c).is_err());
        assert!(decode(Entity::Contact, "garbage").is_err());
    }
}
