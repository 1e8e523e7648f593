//! The augmentations' generator: xoshiro128++ and a ziggurat normal sampler.

use super::ziggurat::{
    ACCEPT, DENSITY, INV_TAIL_START, LAYERS, TAIL_START, TWO_POW_MINUS_24, WIDTH,
};
use crate::{SslError, SslResult};

/// xoshiro128++ (Blackman and Vigna, 2019), with a ziggurat standard-normal sampler.
///
/// 128 bits of state, period 2¹²⁸ − 1, 32-bit operations only (fast on a Cortex-M4F as
/// on a PC). [`next_u32`](Self::next_u32) is the reference `xoshiro128plusplus.c`;
/// [`from_seed`](Self::from_seed) expands a `u64` with SplitMix64 as `rand_xoshiro`'s
/// `seed_from_u64` does, so both crates give the same stream for the same seed.
///
/// [`next_normal`](Self::next_normal) is integer work, table look-ups and single `f32`
/// operations (`libm`'s `expf`/`logf` on the rare slow path), none fused, so a seed
/// gives the same bits on every target (x86-64 at any lane width, aarch64, thumbv7em).
///
/// The state can be saved and restored as four `u32` ([`state`](Self::state),
/// [`from_state`](Self::from_state)), so an interrupted run resumes the same stream.
///
/// # Examples
/// ```
/// use simsiam::augment::Xoshiro128PlusPlus;
/// let mut rng = Xoshiro128PlusPlus::from_seed(7);
/// let saved = rng.state();
/// let a = rng.next_normal();
/// let mut resumed = Xoshiro128PlusPlus::from_state(saved)?;
/// assert_eq!(resumed.next_normal().to_bits(), a.to_bits());
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Xoshiro128PlusPlus {
    state: [u32; 4],
}

impl Xoshiro128PlusPlus {
    /// A generator whose state is two SplitMix64 outputs from `seed` (each split into
    /// its low then high 32 bits), as `rand_xoshiro`'s `seed_from_u64` makes it.
    ///
    /// SplitMix64 never yields an all-zero state from two consecutive outputs, so
    /// every seed is valid.
    #[must_use]
    pub const fn from_seed(seed: u64) -> Self {
        const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        const fn mix(mut z: u64) -> u64 {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        let first = mix(seed.wrapping_add(GOLDEN_GAMMA));
        let second = mix(seed.wrapping_add(GOLDEN_GAMMA.wrapping_mul(2)));
        // The truncations split each u64 into its low and high halves.
        #[allow(clippy::cast_possible_truncation)]
        let state = [
            first as u32,
            (first >> 32) as u32,
            second as u32,
            (second >> 32) as u32,
        ];
        Self { state }
    }

    /// A generator resuming from a state saved with [`state`](Self::state).
    ///
    /// # Errors
    /// `InvalidParameter` for the all-zero state, the one xoshiro128++ cannot leave.
    pub const fn from_state(state: [u32; 4]) -> SslResult<Self> {
        if state[0] | state[1] | state[2] | state[3] == 0 {
            return Err(SslError::InvalidParameter {
                name: "state",
                reason: "the all-zero state is not a xoshiro128++ state",
            });
        }
        Ok(Self { state })
    }

    /// The current state, to save and resume with [`from_state`](Self::from_state).
    #[must_use]
    pub const fn state(&self) -> [u32; 4] {
        self.state
    }

    /// The next 32 random bits (one step of the reference xoshiro128++).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        let [s0, s1, s2, s3] = self.state;
        let result = s0.wrapping_add(s3).rotate_left(7).wrapping_add(s0);
        let t = s1 << 9;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        let s2 = s2 ^ t;
        let s3 = s3.rotate_left(11);
        self.state = [s0, s1, s2, s3];
        result
    }

    /// A standard normal N(0, 1) sample, by the ziggurat method with 128 layers.
    ///
    /// Exactly (this is the stream's definition, replayed bit for bit on every target):
    /// 1. draw `b = next_u32()`; layer `i = b & 127`, sign bit `b >> 7 & 1`,
    ///    `u = b >> 8` (24 bits); `x = (u as f32) · WIDTH[i]`;
    /// 2. if `u < ACCEPT[i]`, return `±x` (97.2 % of attempts: the mean of
    ///    `ACCEPT[i] / 2²⁴`);
    /// 3. else if `i = 0` (the tail, Marsaglia 1964): loop { draw `a`, then `c`, each
    ///    `((next_u32() >> 8) + 1) · 2⁻²⁴` in `(0, 1]`; `e = −logf(a) · (1/R)`,
    ///    `g = −logf(c)`; if `g + g > e · e`, return `±(R + e)` };
    /// 4. else (a wedge): draw `y = (next_u32() >> 8) · 2⁻²⁴`; if
    ///    `DENSITY[i] + y · (DENSITY[i − 1] − DENSITY[i]) < expf(−0.5 · x · x)`
    ///    return `±x`;
    /// 5. otherwise start again at 1 with a new draw.
    ///
    /// Each value uses one `next_u32` with probability 0.972, about 1.04 on average. The
    /// sign is applied by setting the sign bit, so `x = 0` gives `±0.0`. Values are
    /// multiples of `WIDTH[i]` below `R = 3.4426198`; the largest possible magnitude is
    /// `R + 24·ln 2 / R ≈ 8.27` (about 1.3·10⁻¹⁶ of the mass lies beyond).
    ///
    /// # Examples
    /// ```
    /// use simsiam::augment::Xoshiro128PlusPlus;
    /// let mut rng = Xoshiro128PlusPlus::from_seed(1);
    /// let mean = (0..10_000).map(|_| rng.next_normal()).sum::<f32>() / 10_000.0;
    /// assert!(mean.abs() < 0.05);
    /// ```
    #[inline]
    pub fn next_normal(&mut self) -> f32 {
        loop {
            let bits = self.next_u32();
            // `& (LAYERS - 1)` keeps the index below the tables' length (128).
            let layer = (bits as usize) & (LAYERS - 1);
            let sign = (bits & 0x80) << 24;
            let u = bits >> 8;
            // `u < 2²⁴`: the conversion is exact.
            #[allow(clippy::cast_precision_loss)]
            let x = u as f32 * WIDTH[layer];
            if u < ACCEPT[layer] {
                return f32::from_bits(x.to_bits() | sign);
            }
            // The slow path takes and returns the state by value: passing `self` would
            // let its address escape and keep the state in memory, not in registers,
            // in every loop that draws normals.
            let (state, magnitude) = normal_slow_path(self.state, layer, x);
            self.state = state;
            if let Some(magnitude) = magnitude {
                return f32::from_bits(magnitude.to_bits() | sign);
            }
        }
    }

    /// `((next_u32() >> 8) + 1) · 2⁻²⁴`: uniform on `(0, 1]`, 24 bits, exact.
    #[inline]
    fn next_uniform_nonzero(&mut self) -> f32 {
        // At most 2²⁴: exact in f32.
        #[allow(clippy::cast_precision_loss)]
        let numerator = ((self.next_u32() >> 8) + 1) as f32;
        numerator * TWO_POW_MINUS_24
    }

    /// Fills `out` with [`next_normal`](Self::next_normal) samples, in order.
    #[inline]
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        // A local copy: its state stays in registers through the loop.
        let mut local = self.clone();
        for value in out {
            *value = local.next_normal();
        }
        *self = local;
    }
}

/// Steps 3 and 4 of [`Xoshiro128PlusPlus::next_normal`]: the tail (`layer = 0`) or a
/// wedge, from `state`; the new state, and `None` when the wedge rejects `x`.
#[cold]
#[inline(never)]
fn normal_slow_path(state: [u32; 4], layer: usize, x: f32) -> ([u32; 4], Option<f32>) {
    let mut rng = Xoshiro128PlusPlus { state };
    if layer == 0 {
        loop {
            let a = rng.next_uniform_nonzero();
            let c = rng.next_uniform_nonzero();
            let excess = -libm::logf(a) * INV_TAIL_START;
            let g = -libm::logf(c);
            if g + g > excess * excess {
                return (rng.state, Some(TAIL_START + excess));
            }
        }
    }
    // `1 ≤ layer < LAYERS` here, so both indices are in bounds.
    let above = DENSITY[(layer - 1) & (LAYERS - 1)];
    let below = DENSITY[layer & (LAYERS - 1)];
    #[allow(clippy::cast_precision_loss)]
    let y = (rng.next_u32() >> 8) as f32 * TWO_POW_MINUS_24;
    let accepted = below + y * (above - below) < libm::expf(-0.5 * x * x);
    (rng.state, accepted.then_some(x))
}
