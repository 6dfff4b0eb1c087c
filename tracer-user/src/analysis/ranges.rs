//! Interval sets over `u64` sequence positions, half-open `[start, end)`.
//!
//! `RangeSet` answers "how many of these bytes are new?" (unique bytes, retransmissions);
//! `OwnedRangeSet` also remembers which subflow carried each byte first (per-subflow shares,
//! reinjections). Both keep their intervals sorted, disjoint and merged with their neighbours,
//! so their size follows the number of holes in the sequence space, not the number of segments.
//! In-order data only ever extends the last interval: no allocation, no search.

/// A set of `u64` positions stored as sorted, disjoint, non-adjacent `[start, end)` intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `[start, end)` and returns how many of its positions were not in the set before.
    pub fn insert(&mut self, start: u64, end: u64) -> u64 {
        if start >= end {
            return 0;
        }
        // Fast path: in-order data extends (or follows) the last interval.
        match self.ranges.last_mut() {
            None => {
                self.ranges.push((start, end));
                return end - start;
            }
            Some(last) if start > last.1 => {
                self.ranges.push((start, end));
                return end - start;
            }
            Some(last) if start >= last.0 => {
                let new = end.saturating_sub(last.1);
                last.1 = last.1.max(end);
                return new;
            }
            Some(_) => {}
        }
        // General path: [first, past) are the intervals touching or overlapping [start, end).
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let past = self.ranges.partition_point(|&(s, _)| s <= end);
        let mut covered = 0;
        for &(s, e) in &self.ranges[first..past] {
            covered += e.min(end).saturating_sub(s.max(start));
        }
        if first == past {
            self.ranges.insert(first, (start, end));
        } else {
            let merged = (
                start.min(self.ranges[first].0),
                end.max(self.ranges[past - 1].1),
            );
            self.ranges[first] = merged;
            self.ranges.drain(first + 1..past);
        }
        (end - start) - covered
    }

    /// Removes `[start, end)` from the set, calling `taken` with each removed piece (in order).
    pub fn remove(&mut self, start: u64, end: u64, mut taken: impl FnMut(u64, u64)) {
        if start >= end {
            return;
        }
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let past = self.ranges.partition_point(|&(s, _)| s < end);
        if first == past {
            return;
        }
        for &(s, e) in &self.ranges[first..past] {
            taken(s.max(start), e.min(end));
        }
        // What survives: a left part of the first interval and a right part of the last.
        let left = (self.ranges[first].0 < start).then(|| (self.ranges[first].0, start));
        let right = (self.ranges[past - 1].1 > end).then(|| (end, self.ranges[past - 1].1));
        self.ranges
            .splice(first..past, left.into_iter().chain(right));
    }

    /// Whether every position of `[start, end)` is in the set (true for an empty range).
    pub fn covers(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges
            .get(i)
            .is_some_and(|&(s, e)| s <= start && end <= e)
    }

    /// Total number of positions in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(s, e)| e - s).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// End of the highest interval.
    pub fn end(&self) -> Option<u64> {
        self.ranges.last().map(|&(_, e)| e)
    }

    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Adds `delta` (modulo 2^64) to every position: used when a provisional sequence space
    /// learns its true base. Order is kept because callers shift by multiples of 2^32 within
    /// a space much smaller than 2^63.
    pub fn shift(&mut self, delta: u64) {
        for r in &mut self.ranges {
            r.0 = r.0.wrapping_add(delta);
            r.1 = r.1.wrapping_add(delta);
        }
    }
}

/// What inserting a range into an `OwnedRangeSet` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnedInsert {
    /// Positions not covered before; they now belong to the inserting owner.
    pub new: u64,
    /// Positions already covered by the same owner.
    pub same_owner: u64,
    /// Positions already covered by another owner.
    pub other_owner: u64,
}

/// Sorted, disjoint `[start, end)` intervals, each with the owner that covered it first.
/// Adjacent intervals of the same owner are merged; positions never change owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedRangeSet {
    ranges: Vec<(u64, u64, u32)>,
    /// Reused buffer for the general insertion path (no allocation once warmed up).
    scratch: Vec<(u64, u64, u32)>,
}

impl OwnedRangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Covers `[start, end)`: the gaps go to `owner`, already covered positions keep theirs.
    pub fn insert(&mut self, start: u64, end: u64, owner: u32) -> OwnedInsert {
        let mut result = OwnedInsert::default();
        if start >= end {
            return result;
        }
        // Fast path: at or past the end of the last interval.
        match self.ranges.last_mut() {
            None => {
                self.ranges.push((start, end, owner));
                result.new = end - start;
                return result;
            }
            Some(last) if start >= last.1 => {
                if start == last.1 && last.2 == owner {
                    last.1 = end;
                } else {
                    self.ranges.push((start, end, owner));
                }
                result.new = end - start;
                return result;
            }
            Some(_) => {}
        }
        // General path. [first, past) overlap [start, end); neighbours at first-1 and past may
        // merge with what is inserted.
        let first = self.ranges.partition_point(|&(_, e, _)| e <= start);
        let past = self.ranges.partition_point(|&(s, _, _)| s < end);
        self.scratch.clear();
        let mut cursor = start;
        for &(s, e, o) in &self.ranges[first..past] {
            if s > cursor {
                self.scratch.push((cursor, s, owner));
                result.new += s - cursor;
            }
            let overlap = e.min(end) - s.max(start);
            if o == owner {
                result.same_owner += overlap;
            } else {
                result.other_owner += overlap;
            }
            self.scratch.push((s, e, o));
            cursor = e;
        }
        if cursor < end {
            self.scratch.push((cursor, end, owner));
            result.new += end - cursor;
        }
        // Widen the replaced window by one neighbour on each side so merging sees them.
        let lo = first.saturating_sub(1);
        let hi = (past + 1).min(self.ranges.len());
        let mut merged: Vec<(u64, u64, u32)> = Vec::new();
        std::mem::swap(&mut merged, &mut self.scratch);
        if lo < first {
            merged.insert(0, self.ranges[lo]);
        }
        if hi > past {
            merged.push(self.ranges[past]);
        }
        // Merge adjacent pieces of one owner in place.
        let mut w = 0;
        for r in 0..merged.len() {
            if w > 0 && merged[w - 1].1 == merged[r].0 && merged[w - 1].2 == merged[r].2 {
                merged[w - 1].1 = merged[r].1;
            } else {
                merged[w] = merged[r];
                w += 1;
            }
        }
        merged.truncate(w);
        self.ranges.splice(lo..hi, merged.drain(..));
        self.scratch = merged;
        result
    }

    /// Total number of positions covered.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(s, e, _)| e - s).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// End of the highest interval.
    pub fn end(&self) -> Option<u64> {
        self.ranges.last().map(|&(_, e, _)| e)
    }

    /// Start of the lowest interval.
    pub fn start(&self) -> Option<u64> {
        self.ranges.first().map(|&(s, _, _)| s)
    }

    pub fn intervals(&self) -> &[(u64, u64, u32)] {
        &self.ranges
    }

    /// Adds `delta` (modulo 2^64) to every position; see `RangeSet::shift`.
    pub fn shift(&mut self, delta: u64) {
        for r in &mut self.ranges {
            r.0 = r.0.wrapping_add(delta);
            r.1 = r.1.wrapping_add(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: a deterministic generator, enough to shake the interval code.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check_invariants(set: &RangeSet) {
        for w in set.intervals().windows(2) {
            assert!(w[0].1 < w[1].0, "not sorted/merged: {:?}", set.intervals());
        }
        for &(s, e) in set.intervals() {
            assert!(s < e);
        }
    }

    fn check_owned_invariants(set: &OwnedRangeSet) {
        for w in set.intervals().windows(2) {
            assert!(w[0].1 <= w[1].0, "overlap: {:?}", set.intervals());
            assert!(
                !(w[0].1 == w[1].0 && w[0].2 == w[1].2),
                "unmerged neighbours: {:?}",
                set.intervals()
            );
        }
        for &(s, e, _) in set.intervals() {
            assert!(s < e);
        }
    }

    #[test]
    fn insert_reports_new_positions() {
        let mut set = RangeSet::new();
        assert_eq!(set.insert(10, 20), 10);
        assert_eq!(set.insert(20, 30), 10); // adjacent: merged
        assert_eq!(set.intervals(), &[(10, 30)]);
        assert_eq!(set.insert(15, 25), 0); // inside
        assert_eq!(set.insert(40, 50), 10);
        assert_eq!(set.insert(0, 5), 5);
        // [0,60) covers 0..5, 10..30, 40..50 (35 positions) → 25 new, all merged into one.
        assert_eq!(set.insert(0, 60), 25);
        assert_eq!(set.intervals(), &[(0, 60)]);
        assert_eq!(set.len(), 60);
        assert_eq!(set.insert(7, 7), 0);
    }

    #[test]
    fn owned_insert_splits_by_first_owner() {
        let mut set = OwnedRangeSet::new();
        assert_eq!(set.insert(0, 100, 0).new, 100);
        assert_eq!(set.insert(100, 200, 1).new, 100);
        assert_eq!(set.insert(200, 300, 1).new, 100); // merged with the previous piece
        assert_eq!(set.intervals(), &[(0, 100, 0), (100, 300, 1)]);
        // [50, 350): 50..100 owner 0, 100..300 owner 1, 300..350 new.
        let r = set.insert(50, 350, 1);
        assert_eq!(
            r,
            OwnedInsert {
                new: 50,
                same_owner: 200,
                other_owner: 50
            }
        );
        assert_eq!(set.intervals(), &[(0, 100, 0), (100, 350, 1)]);
        // Fill a hole between two owners.
        set.insert(400, 500, 0);
        let r = set.insert(340, 410, 0);
        assert_eq!(
            r,
            OwnedInsert {
                new: 50,
                same_owner: 10,
                other_owner: 10
            }
        );
        assert_eq!(
            set.intervals(),
            &[(0, 100, 0), (100, 350, 1), (350, 500, 0)]
        );
    }

    #[test]
    fn randomised_against_bitmap() {
        const SPACE: u64 = 2048;
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut set = RangeSet::new();
            let mut owned = OwnedRangeSet::new();
            let mut bitmap = vec![false; SPACE as usize];
            let mut owners: Vec<Option<u32>> = vec![None; SPACE as usize];
            for _ in 0..300 {
                // Mostly short ranges, biased towards in-order growth like real data.
                let start = rng.below(SPACE - 1);
                let max_len = if rng.below(4) == 0 { 400 } else { 40 };
                let len = 1 + rng.below(max_len);
                let end = (start + len).min(SPACE);
                let owner = rng.below(3) as u32;
                if rng.below(5) == 0 {
                    // Remove from the plain set: the pieces taken are exactly the set bits.
                    let mut taken = 0;
                    let mut last_end = 0;
                    set.remove(start, end, |s, e| {
                        assert!(s >= start && e <= end && s < e && s >= last_end);
                        last_end = e;
                        for i in s..e {
                            assert!(bitmap[i as usize], "took {i}, which was not in the set");
                        }
                        taken += e - s;
                    });
                    let naive_taken = (start..end).filter(|&i| bitmap[i as usize]).count() as u64;
                    assert_eq!(taken, naive_taken);
                    for i in start..end {
                        bitmap[i as usize] = false;
                    }
                } else {
                    let naive_covers = (start..end).all(|i| bitmap[i as usize]);
                    assert_eq!(set.covers(start, end), naive_covers);
                    let naive_new = (start..end).filter(|&i| !bitmap[i as usize]).count() as u64;
                    for i in start..end {
                        bitmap[i as usize] = true;
                    }
                    assert_eq!(set.insert(start, end), naive_new);
                }
                // The owned set only grows.
                let (mut new, mut same, mut other) = (0, 0, 0);
                for i in start..end {
                    match owners[i as usize] {
                        None => {
                            owners[i as usize] = Some(owner);
                            new += 1;
                        }
                        Some(o) if o == owner => same += 1,
                        Some(_) => other += 1,
                    }
                }
                let r = owned.insert(start, end, owner);
                assert_eq!(
                    r,
                    OwnedInsert {
                        new,
                        same_owner: same,
                        other_owner: other
                    }
                );
                check_invariants(&set);
                check_owned_invariants(&owned);
            }
            assert_eq!(set.len(), bitmap.iter().filter(|&&b| b).count() as u64);
            // Rebuild the owner map from the intervals and compare position by position.
            let mut from_set: Vec<Option<u32>> = vec![None; SPACE as usize];
            for &(s, e, o) in owned.intervals() {
                for i in s..e {
                    from_set[i as usize] = Some(o);
                }
            }
            assert_eq!(from_set, owners);
        }
    }
}
