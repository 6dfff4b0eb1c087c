//! Exact nearest-rank percentiles of many values in bounded memory: the values go to a
//! temporary file as they come, and each percentile is found by narrowing passes over it — a
//! histogram of the range that holds the wanted rank, then of the bucket that holds it, until
//! a bucket holds few enough values to sort (or one value). Each pass divides the range by the
//! number of buckets, so a 64-bit range takes a handful of passes, all percentiles of all keys
//! at once; memory is the histograms and one sorted bucket per wanted percentile.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
};

use super::tempfile::TempFile;

/// How much memory a narrowing may use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// A range holding at most this many values is read and sorted.
    pub sort_at_most: usize,
    pub buckets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sort_at_most: 1 << 16,
            buckets: 1 << 12,
        }
    }
}

/// The count, smallest and largest value of one key.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyStats {
    pub count: u64,
    pub min: i64,
    pub max: i64,
}

/// `(key, value)` records of 12 bytes, little-endian.
const RECORD: usize = 12;

pub(crate) struct SpilledValues {
    file: TempFile,
    writer: Option<BufWriter<File>>,
    keys: Vec<KeyStats>,
    limits: Limits,
}

/// One wanted percentile while it is being narrowed down: the rank among the key's values in
/// `[lo, hi]`.
struct Query {
    key: u32,
    rank: u64,
    lo: i64,
    hi: i64,
    state: State,
}

enum State {
    Histogram(Vec<u64>),
    Sort(Vec<i64>),
    Done(i64),
}

impl SpilledValues {
    pub fn create(limits: Limits) -> io::Result<Self> {
        let (file, writer) = TempFile::create("values")?;
        Ok(SpilledValues {
            file,
            writer: Some(BufWriter::new(writer)),
            keys: Vec::new(),
            limits,
        })
    }

    pub fn add(&mut self, key: u32, value: i64) -> io::Result<()> {
        let at = key as usize;
        if self.keys.len() <= at {
            self.keys.resize(at + 1, KeyStats::default());
        }
        let stats = &mut self.keys[at];
        if stats.count == 0 {
            (stats.min, stats.max) = (value, value);
        }
        stats.count += 1;
        stats.min = stats.min.min(value);
        stats.max = stats.max.max(value);
        let Some(writer) = &mut self.writer else {
            return Err(io::Error::other("values added after reading them"));
        };
        writer.write_all(&key.to_le_bytes())?;
        writer.write_all(&value.to_le_bytes())
    }

    pub fn stats(&self, key: u32) -> KeyStats {
        self.keys.get(key as usize).copied().unwrap_or_default()
    }

    /// For every key, the `percents`-th percentiles by nearest rank (the ⌈p·n/100⌉-th
    /// smallest value), `None` for a key without values. Ends the adding.
    pub fn percentiles(&mut self, percents: &[u64]) -> io::Result<Vec<Vec<Option<i64>>>> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush()?;
        }
        let mut queries = Vec::new();
        for (key, stats) in self.keys.iter().enumerate() {
            for &p in percents.iter().filter(|_| stats.count > 0) {
                let rank = (p * stats.count).div_ceil(100).clamp(1, stats.count);
                let mut query = Query {
                    key: key as u32,
                    rank,
                    lo: stats.min,
                    hi: stats.max,
                    state: State::Done(stats.min),
                };
                query.state = next_state(&query, stats.count, self.limits);
                queries.push(query);
            }
        }
        while queries.iter().any(|q| !matches!(q.state, State::Done(_))) {
            self.pass(&mut queries)?;
            for query in &mut queries {
                narrow(query, self.limits);
            }
        }
        let mut answers = vec![vec![None; percents.len()]; self.keys.len()];
        let mut queries = queries.into_iter();
        for (key, stats) in self.keys.iter().enumerate() {
            for answer in answers[key].iter_mut().filter(|_| stats.count > 0) {
                if let Some(Query {
                    state: State::Done(value),
                    ..
                }) = queries.next()
                {
                    *answer = Some(value);
                }
            }
        }
        Ok(answers)
    }

    /// Reads every value once, counting or keeping those of each query's range.
    fn pass(&self, queries: &mut [Query]) -> io::Result<()> {
        let mut reader = BufReader::new(File::open(self.file.path())?);
        let mut record = [0u8; RECORD];
        loop {
            match reader.read_exact(&mut record) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            let key = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
            let mut value = [0u8; 8];
            value.copy_from_slice(&record[4..]);
            let value = i64::from_le_bytes(value);
            for q in queries.iter_mut() {
                if q.key != key || value < q.lo || value > q.hi {
                    continue;
                }
                match &mut q.state {
                    State::Histogram(counts) => {
                        let bucket = bucket_of(value, q.lo, width(q.lo, q.hi, counts.len()));
                        if let Some(count) = counts.get_mut(bucket) {
                            *count += 1;
                        }
                    }
                    State::Sort(values) => values.push(value),
                    State::Done(_) => {}
                }
            }
        }
    }
}

/// Values per bucket when `[lo, hi]` is cut into `buckets`.
fn width(lo: i64, hi: i64, buckets: usize) -> u128 {
    let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
    span.div_ceil(buckets.max(2) as u128).max(1)
}

fn bucket_of(value: i64, lo: i64, width: u128) -> usize {
    ((i128::from(value) - i128::from(lo)) as u128 / width) as usize
}

/// What to do next with a query whose range holds `count` values.
fn next_state(q: &Query, count: u64, limits: Limits) -> State {
    if q.lo == q.hi {
        State::Done(q.lo)
    } else if count <= limits.sort_at_most as u64 {
        State::Sort(Vec::with_capacity(count as usize))
    } else {
        State::Histogram(vec![0; limits.buckets.max(2)])
    }
}

/// After a pass: the bucket holding the rank becomes the range, or the sorted values give it.
fn narrow(q: &mut Query, limits: Limits) {
    match std::mem::replace(&mut q.state, State::Done(q.lo)) {
        State::Histogram(counts) => {
            let width = width(q.lo, q.hi, counts.len());
            let mut below = 0;
            for (bucket, &count) in counts.iter().enumerate() {
                if below + count >= q.rank {
                    let lo = i128::from(q.lo) + (bucket as u128 * width) as i128;
                    let hi = (lo + width as i128 - 1).min(i128::from(q.hi));
                    (q.lo, q.hi) = (lo as i64, hi as i64);
                    q.rank -= below;
                    q.state = next_state(q, count, limits);
                    return;
                }
                below += count;
            }
        }
        State::Sort(mut values) => {
            values.sort_unstable();
            let at = usize::try_from(q.rank - 1).unwrap_or(usize::MAX);
            q.state = State::Done(values.get(at).copied().unwrap_or(q.hi));
        }
        done @ State::Done(_) => q.state = done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `percent`-th percentile of `sorted` by nearest rank: the ⌈percent·n/100⌉-th
    /// smallest.
    fn nearest_rank<T>(sorted: &[T], percent: usize) -> Option<&T> {
        let rank = (percent * sorted.len()).div_ceil(100).max(1);
        sorted.get(rank - 1)
    }

    #[test]
    fn nearest_rank_by_hand() {
        // Twenty values 1..=20: the 95th percentile is the 19th, the median the 10th.
        let sorted: Vec<u32> = (1..=20).collect();
        assert_eq!(nearest_rank(&sorted, 95), Some(&19));
        assert_eq!(nearest_rank(&sorted, 50), Some(&10));
        assert_eq!(nearest_rank(&sorted[..1], 95), Some(&1));
        assert_eq!(nearest_rank::<u32>(&[], 50), None);
    }

    /// Pseudo-random values (a linear congruential generator) in three keys — wide and
    /// negative, many duplicates, a single value — against sorting them all, with limits small
    /// enough to need several narrowing passes.
    #[test]
    fn percentiles_equal_sorting() {
        let limits = Limits {
            sort_at_most: 16,
            buckets: 4,
        };
        let mut spilled = SpilledValues::create(limits).expect("temp file");
        let mut all: [Vec<i64>; 4] = Default::default();
        let mut x: u64 = 12345;
        for i in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (key, value) = match i % 3 {
                0 => (0, (x >> 1) as i64 - (1 << 62)),
                1 => (1, (x >> 60) as i64 * 1000),
                _ => (3, 42),
            };
            spilled.add(key, value).expect("write");
            all[key as usize].push(value);
        }
        let percents = [0, 1, 50, 95, 100];
        let got = spilled.percentiles(&percents).expect("read");
        for (key, values) in all.iter_mut().enumerate() {
            values.sort_unstable();
            let want: Vec<_> = percents
                .iter()
                .map(|&p| nearest_rank(values, p as usize).copied())
                .collect();
            assert_eq!(got[key], want, "key {key}");
        }
        assert_eq!(spilled.stats(2).count, 0);
        assert_eq!((spilled.stats(1).min, spilled.stats(1).max), (0, 15_000));
    }
}
