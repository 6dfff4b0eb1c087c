//! Interval sets over modular `u64` sequence positions (`[start, start + len)`, modulo 2^64).
//!
//! `RangeSet` answers "how many of these bytes are new?" (unique bytes, retransmissions,
//! reinjections, and per-subflow shares: the new bytes of an insert go to the subflow that
//! inserted them). It keeps its intervals sorted, disjoint and merged with their neighbours, so
//! its size follows the number of holes in the sequence space, not the number of segments.
//! In-order data only ever extends the last interval: no allocation, no search.
//!
//! Data sequence numbers are modular (RFC 8684 §3.3.1): a transfer may cross 2^64. The set
//! stores its intervals relative to a base chosen at its first insert, 2^63 below that first
//! position, so positions within 2^63 either side of it (every realistic sequence space, whose
//! values lie within 2^32 of each other) order and merge correctly across 2^64. Positions
//! farther away than that are clipped at the edge of the relative space, never a panic.

/// Relative offset of the first position inserted: the middle of the relative space.
const MIDDLE: u64 = 1 << 63;

/// A set of `u64` positions (modulo 2^64) stored as sorted, disjoint, non-adjacent relative
/// `[start, end)` intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// The position relative offset 0 stands for.
    base: u64,
    /// Relative to `base`.
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// `[start, start + len)` relative to the base: its end clipped to the relative space.
    fn relative(&self, start: u64, len: u64) -> (u64, u64) {
        let rel = start.wrapping_sub(self.base);
        (rel, rel.saturating_add(len))
    }

    /// Adds `[start, start + len)` and returns how many of its positions were not in the set
    /// before.
    pub fn insert(&mut self, start: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        if self.ranges.is_empty() {
            self.base = start.wrapping_sub(MIDDLE);
        }
        let (start, end) = self.relative(start, len);
        self.insert_relative(start, end)
    }

    fn insert_relative(&mut self, start: u64, end: u64) -> u64 {
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

    /// Removes `[start, start + len)` from the set, calling `taken(start, len)` with each
    /// removed piece (in order).
    pub fn remove(&mut self, start: u64, len: u64, mut taken: impl FnMut(u64, u64)) {
        let (start, end) = self.relative(start, len);
        if start >= end {
            return;
        }
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let past = self.ranges.partition_point(|&(s, _)| s < end);
        if first == past {
            return;
        }
        for &(s, e) in &self.ranges[first..past] {
            let piece = s.max(start);
            taken(piece.wrapping_add(self.base), e.min(end) - piece);
        }
        // What survives: a left part of the first interval and a right part of the last.
        let left = (self.ranges[first].0 < start).then(|| (self.ranges[first].0, start));
        let right = (self.ranges[past - 1].1 > end).then(|| (end, self.ranges[past - 1].1));
        self.ranges
            .splice(first..past, left.into_iter().chain(right));
    }

    /// Whether every position of `[start, start + len)` is in the set (true when `len` is 0).
    pub fn covers(&self, start: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let (start, end) = self.relative(start, len);
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

    /// The position just past the highest interval (modulo 2^64).
    pub fn end(&self) -> Option<u64> {
        self.ranges.last().map(|&(_, e)| e.wrapping_add(self.base))
    }

    /// The intervals as absolute `(start, end)` positions, in order (`end` modulo 2^64).
    #[cfg(test)]
    pub fn intervals(&self) -> Vec<(u64, u64)> {
        self.ranges
            .iter()
            .map(|&(s, e)| (s.wrapping_add(self.base), e.wrapping_add(self.base)))
            .collect()
    }

    /// Adds `delta` (modulo 2^64) to every position: used when a provisional sequence space
    /// learns its true base. Only the base moves.
    pub fn shift(&mut self, delta: u64) {
        self.base = self.base.wrapping_add(delta);
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
        for w in set.ranges.windows(2) {
            assert!(w[0].1 < w[1].0, "not sorted/merged: {:?}", set.ranges);
        }
        for &(s, e) in &set.ranges {
            assert!(s < e);
        }
    }

    #[test]
    fn insert_reports_new_positions() {
        let mut set = RangeSet::new();
        assert_eq!(set.insert(10, 10), 10);
        assert_eq!(set.insert(20, 10), 10); // adjacent: merged
        assert_eq!(set.intervals(), [(10, 30)]);
        assert_eq!(set.insert(15, 10), 0); // inside
        assert_eq!(set.insert(40, 10), 10);
        assert_eq!(set.insert(0, 5), 5);
        // [0,60) covers 0..5, 10..30, 40..50 (35 positions) → 25 new, all merged into one.
        assert_eq!(set.insert(0, 60), 25);
        assert_eq!(set.intervals(), [(0, 60)]);
        assert_eq!(set.len(), 60);
        assert_eq!(set.insert(7, 0), 0);
    }

    /// A range across 2^64 is one range: 100 positions below 2^64 and 100 from 0.
    #[test]
    fn ranges_wrap_at_2_pow_64() {
        let below = u64::MAX - 99; // 2^64 − 100
        let mut set = RangeSet::new();
        assert_eq!(set.insert(below, 200), 200);
        assert_eq!(set.intervals(), [(below, 100)]);
        assert_eq!(set.end(), Some(100));
        // In order after the wrap, then a retransmission straddling it.
        assert_eq!(set.insert(100, 50), 50);
        assert_eq!(set.insert(u64::MAX - 9, 30), 0);
        assert!(set.covers(u64::MAX, 151));
        assert!(!set.covers(u64::MAX, 152));
        // Data before the first insert (reordering) sorts below it, across nothing.
        assert_eq!(set.insert(below - 50, 50), 50);
        assert_eq!(set.len(), 300);
        let mut taken = Vec::new();
        set.remove(u64::MAX - 4, 10, |start, len| taken.push((start, len)));
        assert_eq!(taken, [(u64::MAX - 4, 10)]);
        assert_eq!(set.intervals(), [(below - 50, u64::MAX - 4), (5, 150)]);
        // Shifting moves every position, also across 2^64.
        set.shift(1000);
        assert_eq!(set.intervals(), [(850, 995), (1005, 1150)]);
    }

    #[test]
    fn randomised_against_bitmap() {
        // The same operations at positions from 0, and straddling 2^64.
        for offset in [0, u64::MAX - 1000] {
            randomised_against_bitmap_at(offset);
        }
    }

    fn randomised_against_bitmap_at(offset: u64) {
        const SPACE: u64 = 2048;
        let at = |i: u64| i.wrapping_add(offset);
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
                    set.remove(at(start), end - start, |s, len| {
                        let s = s.wrapping_sub(offset);
                        let e = s + len;
                        assert!(s >= start && e <= end && s < e && s >= last_end);
                        last_end = e;
                        for i in s..e {
                            assert!(bitmap[i as usize], "took {i}, which was not in the set");
                        }
                        taken += len;
                    });
                    let naive_taken = (start..end).filter(|&i| bitmap[i as usize]).count() as u64;
                    assert_eq!(taken, naive_taken);
                    for i in start..end {
                        bitmap[i as usize] = false;
                    }
                } else {
                    let naive_covers = (start..end).all(|i| bitmap[i as usize]);
                    assert_eq!(set.covers(at(start), end - start), naive_covers);
                    let naive_new = (start..end).filter(|&i| !bitmap[i as usize]).count() as u64;
                    for i in start..end {
                        bitmap[i as usize] = true;
                    }
                    assert_eq!(set.insert(at(start), end - start), naive_new);
                }
                check_invariants(&set);
            }
            assert_eq!(set.len(), bitmap.iter().filter(|&&b| b).count() as u64);
        }
    }
}
