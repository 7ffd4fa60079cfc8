//! The crate's one source of randomness: a small seeded generator (xoshiro256++, its
//! state filled by splitmix64), written here rather than taken from `rand` because the
//! crate needs only three operations and must give the same stream for a seed forever,
//! whatever a dependency's next major version decides.
//!
//! Must never: read entropy from the OS or the clock. Every stream starts from a seed.

/// xoshiro256++ (Blackman and Vigna, 2019): 256 bits of state, period 2^256 - 1, fast and
/// statistically strong enough for resampling and permutations (not for cryptography).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// The generator for `seed`. Its state comes from four splitmix64 outputs, the
    /// seeding its authors recommend: it never yields the all-zero state, and close seeds
    /// give unrelated streams.
    pub(crate) fn new(seed: u64) -> Rng {
        let mut counter = seed;
        let state = [(); 4].map(|()| splitmix64(&mut counter));
        Rng { state }
    }

    /// An independent stream `stream_idx` under `seed`: the `stream_idx` of a purpose (a
    /// change point's confidence interval, say) picks the same numbers however many the
    /// other purposes consumed before it.
    pub(crate) fn stream(seed: u64, stream_idx: u64) -> Rng {
        // Mixed, not added: seeds that differ by splitmix's increment would otherwise give
        // the same stream shifted by one.
        let mut counter = stream_idx;
        Rng::new(seed ^ splitmix64(&mut counter))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.state;
        let out = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let shifted = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        self.state = [s0, s1, s2 ^ shifted, s3.rotate_left(45)];
        out
    }

    /// Uniform in `0..bound` without modulo bias (Lemire's multiply-and-reject: a
    /// 128-bit product, a retry only in the rare low band that would favour some values).
    /// `bound` must be at least 1.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        debug_assert!(bound > 0, "below(0) has no value to return");
        let bound = bound as u64;
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        if (product as u64) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (product as u64) < threshold {
                product = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        (product >> 64) as usize
    }

    /// Reorders `items` uniformly at random (Fisher–Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for last_idx in (1..items.len()).rev() {
            let pick_idx = self.below(last_idx + 1);
            items.swap(last_idx, pick_idx);
        }
    }
}

/// splitmix64 (Steele, Lea and Flood, 2014): advances `counter` and returns a well-mixed
/// 64-bit value of it.
fn splitmix64(counter: &mut u64) -> u64 {
    *counter = counter.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *counter;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_its_reference_outputs() {
        // Known answers for seed 1234567, computed apart with Python's big integers.
        let mut counter = 1_234_567;
        let outputs = [(); 3].map(|()| splitmix64(&mut counter));
        assert_eq!(outputs, [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]);
    }

    #[test]
    fn xoshiro256_plus_plus_matches_its_known_answers() {
        // From state [1, 2, 3, 4], computed apart with Python's big integers.
        let mut rng = Rng { state: [1, 2, 3, 4] };
        let outputs = [(); 4].map(|()| rng.next_u64());
        assert_eq!(outputs, [41_943_041, 58_720_359, 3_588_806_011_781_223, 3_591_011_842_654_386]);
    }

    #[test]
    fn equal_seeds_give_equal_streams_and_other_seeds_other_streams() {
        let draw = |mut rng: Rng| [(); 8].map(|()| rng.next_u64());
        assert_eq!(draw(Rng::new(7)), draw(Rng::new(7)));
        assert_ne!(draw(Rng::new(7)), draw(Rng::new(8)));
        assert_ne!(draw(Rng::stream(7, 0)), draw(Rng::stream(7, 1)));
        assert_eq!(draw(Rng::stream(7, 3)), draw(Rng::stream(7, 3)));
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut rng = Rng::new(1);
        let mut seen = [0usize; 7];
        for _ in 0..7_000 {
            seen[rng.below(7)] += 1;
        }
        // Each value expects 1000 hits; 800..1200 is over six standard deviations wide.
        assert!(seen.iter().all(|&n_hits| (800..1200).contains(&n_hits)), "{seen:?}");
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = Rng::new(3);
        let mut items: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
