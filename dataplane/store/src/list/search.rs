//! LPOS.

use super::{ListError, ListValue};
use crate::split::SplitBytes;

/// LPOS's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionQuery {
    /// RANK: skip the first `rank - 1` matches; negative searches from the tail. Never 0.
    pub rank: i64,
    /// COUNT: matches to return at most; 0 for all.
    pub count: usize,
    /// MAXLEN: elements to compare at most; 0 for all.
    pub maxlen: usize,
}

impl Default for PositionQuery {
    fn default() -> Self {
        Self {
            rank: 1,
            count: 1,
            maxlen: 0,
        }
    }
}

impl ListValue {
    /// LPOS: the indexes (from the head, whichever way the search runs) of the matches of
    /// `element` that `query` selects, in the order found.
    ///
    /// # Errors
    /// [`ListError::RankZero`] when `query.rank` is 0.
    pub fn positions(&self, element: &[u8], query: PositionQuery) -> Result<Vec<usize>, ListError> {
        if query.rank == 0 {
            return Err(ListError::RankZero);
        }
        let mut skip = query.rank.unsigned_abs() - 1;
        let wanted = if query.count == 0 {
            usize::MAX
        } else {
            query.count
        };
        let compared = if query.maxlen == 0 {
            usize::MAX
        } else {
            query.maxlen
        };
        let elements: Vec<SplitBytes<'_>> = self.elements().collect();
        let candidates: Box<dyn Iterator<Item = (usize, &SplitBytes<'_>)>> = if query.rank > 0 {
            Box::new(elements.iter().enumerate())
        } else {
            Box::new(elements.iter().enumerate().rev())
        };
        let mut found = Vec::new();
        for (index, candidate) in candidates.take(compared) {
            if *candidate != *element {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(index);
            if found.len() == wanted {
                break;
            }
        }
        Ok(found)
    }
}
