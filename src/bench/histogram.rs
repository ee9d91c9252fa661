//! A fixed-precision latency histogram (HDR-like): exact below 128, then 64 buckets per power
//! of two, so any recorded value is known to within 1/64 (1.6 %). Recording is an index
//! computation and an increment; the bucket array grows only when a larger value first
//! appears. Each client task owns one; they are merged once at the end.

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// log2 of the buckets per power of two above `LINEAR`.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    min: u64,
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= 7
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) - SUB; // 0..SUB
    (LINEAR + u64::from(msb - 7) * SUB + sub) as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let octave = (i - LINEAR) / SUB;
    let sub = (i - LINEAR) % SUB;
    let shift = octave as u32 + 7 - SUB_BITS;
    let low = (SUB + sub) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    #[cfg(test)]
    pub fn new() -> Histogram {
        Histogram::default()
    }

    pub fn record(&mut self, v: u64) {
        let i = index(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        if self.total == 0 || v < self.min {
            self.min = v;
        }
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        if self.total == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    #[cfg(test)]
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The value at quantile `q` (0..=1): the smallest bucket bound with at least `q` of the
    /// values at or below it, never above the largest value recorded. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        let mut prev = None;
        for v in (0..1_000_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(v <= upper(i), "{v} above its bucket's bound {}", upper(i));
            if let Some((pv, pi)) = prev {
                if v == pv + 1 {
                    assert!(i == pi || i == pi + 1, "bucket skipped at {v}");
                }
            }
            // Width of the bucket relative to its values: at most 1/64.
            if v >= LINEAR {
                assert!((upper(i) - v) * SUB <= v, "bucket of {v} too wide");
            }
            prev = Some((v, i));
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in [3, 1, 2, 2, 5] {
            h.record(v);
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.quantile(0.5), 2);
        assert_eq!(h.quantile(0.8), 3);
        assert_eq!(h.quantile(1.0), 5);
        assert_eq!((h.min(), h.max()), (1, 5));
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - want).abs() / want < 0.02,
                "p{q}: {got}, want {want} within 2 %"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(Histogram::new().quantile(0.99), 0);
    }

    #[test]
    fn merged_equals_recorded_together() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..5000u64 {
            let x = v * v % 77_777;
            if v % 3 == 0 { &mut a } else { &mut b }.record(x);
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        for q in [0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert_eq!((a.min(), a.max()), (all.min(), all.max()));
    }
}
