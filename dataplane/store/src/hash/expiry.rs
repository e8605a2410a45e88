//! Per-field expiry, as Redis 7.4 defines HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT, HTTL,
//! HPTTL, HEXPIRETIME, HPEXPIRETIME and HPERSIST. Times here are absolute Unix milliseconds;
//! the server turns relative seconds into them and checks their range.

use super::HashValue;

/// HEXPIRE's NX / XX / GT / LT. A field without an expiry counts as expiring never: GT never
/// sets one on it and LT always does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpireCondition {
    /// No condition.
    #[default]
    Always,
    /// Only fields without an expiry.
    Nx,
    /// Only fields with an expiry.
    Xx,
    /// Only when the new time is later than the current one.
    Gt,
    /// Only when the new time is earlier than the current one.
    Lt,
}

/// What HEXPIRE did to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// No such field (or it was due): -2.
    NoField,
    /// NX / XX / GT / LT refused: 0.
    ConditionNotMet,
    /// The expiry was set: 1.
    Set,
    /// The time was already due, so the field was deleted: 2.
    Deleted,
}

impl ExpireOutcome {
    /// The integer Redis replies with.
    pub fn code(self) -> i64 {
        match self {
            Self::NoField => -2,
            Self::ConditionNotMet => 0,
            Self::Set => 1,
            Self::Deleted => 2,
        }
    }
}

/// What HTTL and its kin see for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldExpiry {
    /// No such field: -2.
    NoField,
    /// The field never expires: -1.
    Persistent,
    /// The field expires at this Unix time in milliseconds.
    At(u64),
}

/// What HPERSIST did to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistOutcome {
    /// No such field: -2.
    NoField,
    /// The field had no expiry: -1.
    NoExpiry,
    /// The expiry was removed: 1.
    Persisted,
}

impl PersistOutcome {
    /// The integer Redis replies with.
    pub fn code(self) -> i64 {
        match self {
            Self::NoField => -2,
            Self::NoExpiry => -1,
            Self::Persisted => 1,
        }
    }
}

impl HashValue {
    /// HPEXPIREAT of one field: expire `name` at `at_ms` if `condition` allows. As in Redis,
    /// the condition is checked first, and a time already due (`at_ms <= now_ms`) then deletes
    /// the field.
    pub fn expire_field(
        &mut self,
        name: &[u8],
        at_ms: u64,
        condition: ExpireCondition,
        now_ms: u64,
    ) -> ExpireOutcome {
        let Some(at) = self.live_position_mut(name, now_ms) else {
            return ExpireOutcome::NoField;
        };
        let current = self.field_at(at).expire_at_ms;
        let allowed = match (condition, current) {
            (ExpireCondition::Always, _) => true,
            (ExpireCondition::Nx, current) => current.is_none(),
            (ExpireCondition::Xx, current) => current.is_some(),
            (ExpireCondition::Gt, None) => false,
            (ExpireCondition::Gt, Some(current)) => at_ms > current,
            (ExpireCondition::Lt, None) => true,
            (ExpireCondition::Lt, Some(current)) => at_ms < current,
        };
        if !allowed {
            return ExpireOutcome::ConditionNotMet;
        }
        if at_ms <= now_ms && !crate::value::expiry_suspended() {
            self.remove_at(at);
            return ExpireOutcome::Deleted;
        }
        self.set_expiry_at(at, Some(at_ms));
        ExpireOutcome::Set
    }

    /// HPEXPIRETIME of one field.
    pub fn field_expiry(&self, name: &[u8], now_ms: u64) -> FieldExpiry {
        match self.live_field(name, now_ms) {
            None => FieldExpiry::NoField,
            Some(field) => field
                .expire_at_ms
                .map_or(FieldExpiry::Persistent, FieldExpiry::At),
        }
    }

    /// HPERSIST of one field.
    pub fn persist_field(&mut self, name: &[u8], now_ms: u64) -> PersistOutcome {
        let Some(at) = self.live_position_mut(name, now_ms) else {
            return PersistOutcome::NoField;
        };
        if self.field_at(at).expire_at_ms.is_none() {
            return PersistOutcome::NoExpiry;
        }
        self.set_expiry_at(at, None);
        PersistOutcome::Persisted
    }

    /// Fields that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile_count() as usize
    }

    /// The earliest field expiry, if any field has one (O(n): for scheduling the next active
    /// pass over this key, not for every command).
    pub fn next_expire_at_ms(&self) -> Option<u64> {
        if self.volatile_count() == 0 {
            return None;
        }
        self.all_fields().filter_map(|f| f.expire_at_ms).min()
    }

    /// Active expiry: looks at no more than `fields_checked_max` fields, resuming where the
    /// last call stopped, and removes the due ones; how many it removed. Repeated calls cover
    /// every field, so a key's due fields go even if nothing reads them.
    pub fn remove_expired(&mut self, now_ms: u64, fields_checked_max: usize) -> usize {
        if self.volatile_count() == 0 {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..fields_checked_max {
            if self.is_empty() || self.volatile_count() == 0 {
                break;
            }
            if self.expiry_cursor() as usize >= self.len() {
                self.set_expiry_cursor(0);
            }
            if self.field_at(self.expiry_cursor() as usize).is_due(now_ms) {
                // Both kinds of removal put another field (or nothing) at the cursor: look
                // at the same position again.
                self.remove_at(self.expiry_cursor() as usize);
                removed += 1;
            } else {
                self.set_expiry_cursor(self.expiry_cursor() + 1);
            }
        }
        removed
    }

    /// Removes every due field (before an operation that must see only live ones, such as
    /// HRANDFIELD's sampling); how many it removed.
    pub fn remove_all_expired(&mut self, now_ms: u64) -> usize {
        let before = self.len();
        let mut at = 0;
        while self.volatile_count() > 0 && at < self.len() {
            if self.field_at(at).is_due(now_ms) {
                self.remove_at(at);
            } else {
                at += 1;
            }
        }
        before - self.len()
    }
}
