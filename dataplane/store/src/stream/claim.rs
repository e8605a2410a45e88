//! XPENDING, XCLAIM and XAUTOCLAIM.

use super::group::{AutoClaim, ClaimOptions, PendingInfo, PendingSummary};
use super::{StreamEntry, StreamError, StreamId, StreamValue};

impl StreamValue {
    /// XPENDING key group (the summary).
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn pending_summary(&self, group: &[u8]) -> Result<PendingSummary, StreamError> {
        let group = self.groups.get(group).ok_or(StreamError::NoGroup)?;
        let bounds = group
            .pending
            .first_key_value()
            .zip(group.pending.last_key_value())
            .map(|((&first, _), (&last, _))| (first, last));
        let consumers = group
            .consumers
            .iter()
            .filter(|(_, consumer)| !consumer.pending.is_empty())
            .map(|(name, consumer)| (name.clone(), consumer.pending.len()))
            .collect();
        Ok(PendingSummary {
            count: group.pending.len(),
            bounds,
            consumers,
        })
    }

    /// `XPENDING key group [IDLE min] start end count [consumer]`.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    #[allow(clippy::too_many_arguments)]
    pub fn pending_range(
        &self,
        group: &[u8],
        start: StreamId,
        end: StreamId,
        count: usize,
        consumer: Option<&[u8]>,
        min_idle_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<PendingInfo>, StreamError> {
        let group = self.groups.get(group).ok_or(StreamError::NoGroup)?;
        if start > end {
            return Ok(Vec::new());
        }
        let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
            None => Box::new(group.pending.range(start..=end).map(|(&id, _)| id)),
            Some(name) => match group.consumers.get(name) {
                None => return Ok(Vec::new()),
                Some(consumer) => Box::new(consumer.pending.range(start..=end).copied()),
            },
        };
        Ok(ids
            .map(|id| {
                let pending = &group.pending[&id];
                PendingInfo {
                    id,
                    consumer: pending.consumer.clone(),
                    idle_ms: now_ms.saturating_sub(pending.delivery_time_ms),
                    delivery_count: pending.delivery_count,
                }
            })
            .filter(|info| info.idle_ms >= min_idle_ms)
            .take(count)
            .collect())
    }

    /// `XCLAIM key group consumer min-idle-time id... [options]`: the entries claimed (fields left
    /// empty with JUSTID). Pending IDs no longer in the stream are dropped from the PEL.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    pub fn claim(
        &mut self,
        group_name: &[u8],
        consumer: &[u8],
        min_idle_ms: u64,
        ids: &[StreamId],
        options: ClaimOptions,
        now_ms: u64,
    ) -> Result<Vec<StreamEntry>, StreamError> {
        let group = self.group_mut(group_name)?;
        if let Some(last_id) = options.last_id {
            group.last_id = group.last_id.max(last_id);
        }
        let delivery_time_ms = match options.delivery_time_ms {
            Some(time) if time >= 0 && (time as u64) <= now_ms => time as u64,
            _ => now_ms,
        };
        let mut claimed = Vec::new();
        for &id in ids {
            let entry = if options.just_id {
                self.contains(id).then(|| StreamEntry {
                    id,
                    fields: Vec::new(),
                })
            } else {
                self.get(id)
            };
            let group = self.groups.get_mut(group_name).expect("checked above");
            let Some(entry) = entry else {
                group.forget(id);
                continue;
            };
            let current = group.pending.get(&id).cloned();
            let count_before = match (&current, options.force) {
                (Some(pending), _) => {
                    if min_idle_ms > 0
                        && now_ms.saturating_sub(pending.delivery_time_ms) < min_idle_ms
                    {
                        continue;
                    }
                    pending.delivery_count
                }
                // Redis creates the forced PEL entry with one delivery, then counts this one.
                (None, true) => 1,
                (None, false) => continue,
            };
            let delivery_count = match options.retry_count {
                Some(retry_count) => retry_count,
                None if options.just_id => count_before,
                None => count_before + 1,
            };
            group.consumer_mut(consumer, now_ms).active_time_ms = Some(now_ms);
            group.assign(id, consumer, delivery_time_ms, delivery_count);
            claimed.push(entry);
        }
        Ok(claimed)
    }

    /// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`: claims up to
    /// `count` entries idle for `min_idle_ms`, looking at no more than ten times `count` PEL
    /// entries, as Redis bounds the work. Pending entries found deleted from the stream are
    /// dropped from the PEL and count towards `count`, as in Redis 7.0.15.
    ///
    /// # Errors
    /// [`StreamError::NoGroup`].
    #[allow(clippy::too_many_arguments)]
    pub fn auto_claim(
        &mut self,
        group_name: &[u8],
        consumer: &[u8],
        min_idle_ms: u64,
        start: StreamId,
        count: usize,
        just_id: bool,
        now_ms: u64,
    ) -> Result<AutoClaim, StreamError> {
        let group = self.groups.get(group_name).ok_or(StreamError::NoGroup)?;
        let mut attempts = count.saturating_mul(10);
        let mut left = count;
        let mut cursor = group
            .pending
            .range(start..)
            .map(|(&id, _)| id)
            .collect::<Vec<_>>()
            .into_iter();
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        while attempts > 0 && left > 0 {
            attempts -= 1;
            let Some(id) = cursor.next() else {
                break;
            };
            let entry = if just_id {
                self.contains(id).then(|| StreamEntry {
                    id,
                    fields: Vec::new(),
                })
            } else {
                self.get(id)
            };
            let group = self.groups.get_mut(group_name).expect("checked above");
            let Some(entry) = entry else {
                group.forget(id);
                deleted.push(id);
                // Redis counts a deleted entry against COUNT too (its reply has room for
                // COUNT IDs of each kind).
                left -= 1;
                continue;
            };
            let pending = &group.pending[&id];
            if min_idle_ms > 0 && now_ms.saturating_sub(pending.delivery_time_ms) < min_idle_ms {
                continue;
            }
            let delivery_count = pending.delivery_count + u64::from(!just_id);
            group.consumer_mut(consumer, now_ms).active_time_ms = Some(now_ms);
            group.assign(id, consumer, now_ms, delivery_count);
            claimed.push(entry);
            left -= 1;
        }
        // The cursor is the first PEL entry not looked at (none once the walk ran off the end).
        let next = cursor.next().unwrap_or(StreamId::MIN);
        Ok(AutoClaim {
            next,
            claimed,
            deleted,
        })
    }
}
