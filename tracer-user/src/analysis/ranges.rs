//! Interval sets over `u64` sequence positions, half-open `[start, end)`.
//!
//! `RangeSet` answers "how many of these bytes are new?" (unique bytes, retransmissions,
//! reinjections, and per-subflow shares: the new bytes of an insert go to the subflow that
//! inserted them). It keeps its intervals sorted, disjoint and merged with their neighbours, so
//! its size follows the number of holes in the sequence space, not the number of segments.
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
    fn randomised_against_bitmap() {
        const SPACE: u64 = 2048;
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut set = RangeSet::new();
            let mut bitmap = vec![false; SPACE as usize];
            for _ in 0..300 {
                // Mostly short ranges, biased towards in-order growth like real data.
                let start = rng.below(SPACE - 1);
                let max_len = if rng.below(4) == 0 { 400 } else { 40 };
                let len = 1 + rng.below(max_len);
                let end = (start + len).min(SPACE);
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
                check_invariants(&set);
            }
            assert_eq!(set.len(), bitmap.iter().filter(|&&b| b).count() as u64);
        }
    }
}
