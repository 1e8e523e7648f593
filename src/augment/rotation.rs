//! Uniformly random rotations of 3-D sensor triads.

use super::Xoshiro128PlusPlus;
use crate::{SslError, SslResult};

/// A 3×3 rotation matrix (row-major: `matrix[row][column]`), applied as `v ↦ M·v`.
///
/// Built from a quaternion by [`from_quaternion`](Self::from_quaternion); uniformly
/// random (Haar on SO(3)) by [`random`](Self::random).
///
/// # Error bound
/// Let `Q` be the exact rotation of `q/|q|` and `u = 2⁻²⁴`. For `|q|² ≥ 2⁻¹⁰⁰` (every
/// [`random`](Self::random) quaternion), each diagonal entry of `M` is within `17u` of
/// `Q`'s (`s` carries `5u` of relative error, the sum of squares `2u`, the product `u`,
/// on a value ≤ 2; the subtraction from 1 another `u`) and each other entry within `8u`
/// (`s·(|x·y| + |w·z|) ≤ 1`). With `Δ = M − Q`, `‖Δ‖_F ≤ √(3·17² + 6·8²)·u < 35.4u`, so:
/// - each entry of `MᵀM − I` is within `2·√(17² + 8² + 8²)·u + ‖Δ‖²_F < 41u` and
///   `|det M − 1| < 3·20.5u` ([`ORTHONORMALITY_BOUND`](Self::ORTHONORMALITY_BOUND)
///   `= 64u` covers both);
/// - [`apply`](Self::apply) keeps a vector's norm within `‖Δ‖_F + √3·γ₃ < 41u` of
///   itself, relative (`γ₃ = 3u/(1 − 3u)` for the rounded sums), while no product
///   underflows ([`NORM_BOUND`](Self::NORM_BOUND) `= 42u`).
///
/// # Examples
/// ```
/// use simsiam::augment::{Rotation, Xoshiro128PlusPlus};
/// // A quarter turn about z: x ↦ y.
/// let half = core::f32::consts::FRAC_1_SQRT_2;
/// let quarter = Rotation::from_quaternion([half, 0.0, 0.0, half])?;
/// let [x, y, z] = quarter.apply([1.0, 0.0, 0.0]);
/// assert!(x.abs() < 1e-6 && (y - 1.0).abs() < 1e-6 && z == 0.0);
/// let random = Rotation::random(&mut Xoshiro128PlusPlus::from_seed(3));
/// let [x, y, z] = random.apply([0.6, 0.0, 0.8]);
/// assert!(((x * x + y * y + z * z).sqrt() - 1.0).abs() < 1e-5);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    /// The matrix, `matrix[row][column]`.
    pub matrix: [[f32; 3]; 3],
}

impl Rotation {
    /// The identity.
    pub const IDENTITY: Self = Self {
        matrix: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };

    /// The bound on each entry of `MᵀM − I` and on `|det M − 1|` for a matrix built
    /// from a quaternion: `64·2⁻²⁴` (see the type's documentation).
    pub const ORTHONORMALITY_BOUND: f32 = 64.0 / 16_777_216.0;

    /// The bound on `|‖M·v‖ − ‖v‖| / ‖v‖` for [`apply`](Self::apply) (and
    /// [`rotate_triads_into`](super::rotate_triads_into)) with a matrix built from a
    /// quaternion, while no product underflows: `42·2⁻²⁴` (see the type's
    /// documentation).
    pub const NORM_BOUND: f32 = 42.0 / 16_777_216.0;

    /// The smallest squared norm [`random`](Self::random) accepts for its quaternion.
    pub const MIN_QUATERNION_NORM_SQUARED: f32 = 1e-6;

    /// The rotation of the quaternion `q = [w, x, y, z]` (any non-zero length: it is
    /// normalised through `s = 2 / |q|²`).
    ///
    /// Exactly, with `n = ((w·w + x·x) + y·y) + z·z` and `s = 2 / n`:
    /// ```text
    /// [1 − s·(y·y + z·z)   s·(x·y − w·z)       s·(x·z + w·y)    ]
    /// [s·(x·y + w·z)       1 − s·(x·x + z·z)   s·(y·z − w·x)    ]
    /// [s·(x·z − w·y)       s·(y·z + w·x)       1 − s·(x·x + y·y)]
    /// ```
    /// each operation rounded to `f32`, none fused.
    ///
    /// # Errors
    /// `NonFinite` (`"quaternion"`) when a component or `|q|²` is not finite;
    /// `InvalidParameter` (`"quaternion"`) when `|q|²` is zero or subnormal (too small
    /// to normalise accurately).
    pub fn from_quaternion(q: [f32; 4]) -> SslResult<Self> {
        let norm_squared = squared_norm(q);
        if !norm_squared.is_finite() {
            return Err(SslError::NonFinite {
                location: "quaternion",
            });
        }
        if !norm_squared.is_normal() {
            return Err(SslError::InvalidParameter {
                name: "quaternion",
                reason: "its squared norm is zero or subnormal",
            });
        }
        Ok(Self::from_quaternion_unchecked(q, norm_squared))
    }

    /// [`from_quaternion`](Self::from_quaternion) with `|q|²` already computed and
    /// normal.
    fn from_quaternion_unchecked([w, x, y, z]: [f32; 4], norm_squared: f32) -> Self {
        let s = 2.0 / norm_squared;
        Self {
            matrix: [
                [
                    1.0 - s * (y * y + z * z),
                    s * (x * y - w * z),
                    s * (x * z + w * y),
                ],
                [
                    s * (x * y + w * z),
                    1.0 - s * (x * x + z * z),
                    s * (y * z - w * x),
                ],
                [
                    s * (x * z - w * y),
                    s * (y * z + w * x),
                    1.0 - s * (x * x + y * y),
                ],
            ],
        }
    }

    /// A uniformly random rotation: four standard normals `[w, x, y, z]`, drawn in that
    /// order with [`Xoshiro128PlusPlus::next_normal`], as a quaternion (uniform on the
    /// unit sphere once normalised, so the rotation is uniform on SO(3)).
    ///
    /// If `|q|² < 10⁻⁶` ([`MIN_QUATERNION_NORM_SQUARED`](Self::MIN_QUATERNION_NORM_SQUARED);
    /// probability about 10⁻¹³) all four are drawn again: the direction of a Gaussian
    /// vector is independent of its length, so the rejection keeps the rotation
    /// uniform, and it keeps `s = 2/|q|²` accurate.
    pub fn random(rng: &mut Xoshiro128PlusPlus) -> Self {
        loop {
            let q = [
                rng.next_normal(),
                rng.next_normal(),
                rng.next_normal(),
                rng.next_normal(),
            ];
            let norm_squared = squared_norm(q);
            // The normals are below 8.3 in magnitude: the sum is finite.
            if norm_squared >= Self::MIN_QUATERNION_NORM_SQUARED {
                return Self::from_quaternion_unchecked(q, norm_squared);
            }
        }
    }

    /// `M·v`, each row summed left to right: `(m₀·v₀ + m₁·v₁) + m₂·v₂`.
    #[inline]
    #[must_use]
    pub fn apply(&self, [x, y, z]: [f32; 3]) -> [f32; 3] {
        let [r0, r1, r2] = self.matrix;
        [
            r0[0] * x + r0[1] * y + r0[2] * z,
            r1[0] * x + r1[1] * y + r1[2] * z,
            r2[0] * x + r2[1] * y + r2[2] * z,
        ]
    }
}

/// `((w·w + x·x) + y·y) + z·z`.
fn squared_norm([w, x, y, z]: [f32; 4]) -> f32 {
    w * w + x * x + y * y + z * z
}
