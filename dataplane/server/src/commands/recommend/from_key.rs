//! RECOMMEND ... FROM key: the candidate ids are the members of a set (in the set's order, which
//! is no particular one) or of a sorted set (lowest score first), read on the key's owning shard.

use std::borrow::Cow;
use std::rc::Rc;

use ember_store::{Entry, Value};

use super::args::CANDIDATES_MAX;
use crate::commands::{errors, CommandError};
use crate::shard::{Shard, ShardReply, ShardRequest};

/// The reply when the FROM key does not exist (or has expired).
pub const MISSING: &str = "ERR no candidates: FROM key does not exist";

/// The candidate ids held by `key` in database `db`.
///
/// # Errors
/// [`MISSING`] when there is no such key, WRONGTYPE when it is not a set or sorted set, and the
/// candidate bound when it holds more than [`CANDIDATES_MAX`] members.
pub async fn candidates(
    shard: &Rc<Shard>,
    db: usize,
    key: &[u8],
    now_ms: u64,
) -> Result<Vec<Vec<u8>>, CommandError> {
    let owner = shard.owner_of(key);
    if owner == shard.index {
        let keyspace = shard.keyspace.borrow();
        return members_of(keyspace.peek(db, key, now_ms));
    }
    // The owner sends a copy of the whole entry: at most CANDIDATES_MAX members are used, and a
    // larger collection is refused below after one copy, which bounds the work per request.
    let request = ShardRequest::Fetch {
        db,
        keys: vec![key.to_vec()],
    };
    match shard.call(owner, request).await {
        ShardReply::Entries(mut entries) => members_of(entries.pop().flatten().as_ref()),
        other => panic!("Fetch answered with {other:?}"),
    }
}

/// The members of a set, sorted set or list entry, as candidate ids.
fn members_of(entry: Option<&Entry>) -> Result<Vec<Vec<u8>>, CommandError> {
    let entry = entry.ok_or(CommandError::from(MISSING))?;
    let len = match &entry.value {
        Value::Set(set) => set.len(),
        Value::ZSet(zset) => zset.len(),
        Value::List(list) => list.len(),
        _ => return Err(errors::WRONGTYPE.into()),
    };
    if len > CANDIDATES_MAX {
        return Err(format!(
            "ERR at most {CANDIDATES_MAX} candidates per RECOMMEND (the FROM key holds {len})"
        )
        .into());
    }
    Ok(match &entry.value {
        Value::Set(set) => set.iter().map(<[u8]>::to_vec).collect(),
        Value::ZSet(zset) => zset.iter().map(|(member, _)| member.to_vec()).collect(),
        Value::List(list) => list.iter().map(Cow::into_owned).collect(),
        _ => unreachable!("checked above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_store::zset::AddOptions;
    use ember_store::{SetValue, SortedSet};

    fn entry(value: Value) -> Entry {
        Entry::new(value, None, 0, 0)
    }

    #[test]
    fn members_of_each_type() {
        let mut zset = SortedSet::for_members(3, 1);
        for (score, member) in [(3.0, "c"), (1.0, "a"), (2.0, "b")] {
            zset.add(member.as_bytes(), score, AddOptions::default())
                .unwrap();
        }
        assert_eq!(
            members_of(Some(&entry(Value::ZSet(zset)))),
            Ok(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        );
        let mut set = SetValue::for_members(b"x", 2);
        set.insert(b"x");
        set.insert(b"y");
        let mut members = members_of(Some(&entry(Value::Set(Box::new(set))))).unwrap();
        members.sort();
        assert_eq!(members, vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(
            members_of(Some(&entry(Value::from_bytes(b"s")))),
            Err(errors::WRONGTYPE.into())
        );
        assert_eq!(members_of(None), Err(MISSING.into()));
    }

    #[test]
    fn too_many_members() {
        let mut set = SetValue::for_members(b"0", CANDIDATES_MAX + 1);
        for id in 0..=CANDIDATES_MAX {
            set.insert(id.to_string().as_bytes());
        }
        let error = members_of(Some(&entry(Value::Set(Box::new(set))))).unwrap_err();
        assert!(
            error.0.starts_with("ERR at most 65536 candidates"),
            "{error:?}"
        );
    }
}
