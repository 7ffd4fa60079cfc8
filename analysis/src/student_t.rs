//! The upper tail of Student's t distribution with a whole number of degrees of freedom,
//! for the check of the latest runs in [`crate::regressions`]. For whole ν the
//! distribution function has a closed form (Abramowitz and Stegun, 26.7.3 and 26.7.4):
//! with θ = atan(|t| / √ν), P(|T| ≤ t) is a finite sum of powers of cos θ — for odd ν,
//! (2/π)(θ + sin θ (cos θ + (2/3) cos³θ + … up to cos^(ν−2)θ)); for even ν,
//! sin θ (1 + (1/2) cos²θ + (1·3)/(2·4) cos⁴θ + … up to cos^(ν−2)θ). The sums have ν/2
//! terms, so this is exact up to rounding and costs nothing for the degrees of freedom a
//! series of runs has. Like `normal`, one function does not justify a dependency.
//!
//! Must never: return a probability outside [0, 1].

/// P(T ≥ t) for Student's T with `dof` degrees of freedom; `dof` ≥ 1.
pub(crate) fn upper_tail(t: f64, dof: usize) -> f64 {
    debug_assert!(dof >= 1, "a t distribution needs at least one degree of freedom");
    if t.is_nan() {
        return 1.0;
    }
    let nu = dof.max(1) as f64;
    let theta = (t.abs() / nu.sqrt()).atan();
    let (sin, cos) = theta.sin_cos();
    let cos2 = cos * cos;
    let within = if dof % 2 == 1 {
        // Terms cos θ, (2/3) cos³θ, (2·4)/(3·5) cos⁵θ, …: each the last times cos²θ (k−1)/k.
        let mut sum = 0.0;
        if dof > 1 {
            let mut term = cos;
            sum = cos;
            for k in (3..dof.saturating_sub(1)).step_by(2) {
                term *= cos2 * (k - 1) as f64 / k as f64;
                sum += term;
            }
        }
        std::f64::consts::FRAC_2_PI * (theta + sin * sum)
    } else {
        // Terms 1, (1/2) cos²θ, (1·3)/(2·4) cos⁴θ, …
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in (2..dof.saturating_sub(1)).step_by(2) {
            term *= cos2 * (k - 1) as f64 / k as f64;
            sum += term;
        }
        sin * sum
    };
    let tail = ((1.0 - within) / 2.0).clamp(0.0, 0.5);
    if t >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    #[test]
    fn small_degrees_of_freedom_match_their_closed_forms() {
        // ν = 1 is Cauchy: P(T ≥ t) = 1/2 − atan(t)/π.
        for t in [0.0f64, 0.5, 1.0, 3.0, 100.0] {
            let want = 0.5 - t.atan() / std::f64::consts::PI;
            assert!(close(upper_tail(t, 1), want, 1e-12), "t {t}");
        }
        // ν = 2: P(T ≥ t) = 1/2 − t / (2 √(t² + 2)).
        for t in [0.0f64, 0.5, 1.0, 3.0, 100.0] {
            let want = 0.5 - t / (2.0 * (t * t + 2.0).sqrt());
            assert!((upper_tail(t, 2) - want).abs() < 1e-12, "t {t}");
        }
    }

    #[test]
    fn table_quantiles_give_their_tail() {
        // One-sided quantiles from the standard table: (ν, t, upper tail).
        let table = [
            (3, 5.841, 0.005),
            (7, 4.785, 0.001),
            (8, 4.501, 0.001),
            (10, 2.228, 0.025),
            (11, 4.025, 0.001),
            (19, 3.579, 0.001),
            (30, 1.697, 0.05),
        ];
        for (dof, t, tail) in table {
            assert!(close(upper_tail(t, dof), tail, 2e-3), "ν {dof}: {} vs {tail}", upper_tail(t, dof));
        }
    }

    #[test]
    fn the_tail_is_symmetric_and_tends_to_the_normal() {
        for dof in 1..40 {
            for t in [0.1, 1.0, 2.5] {
                assert!(close(upper_tail(-t, dof), 1.0 - upper_tail(t, dof), 1e-12));
            }
        }
        // With many degrees of freedom, P(T ≥ 1.959964) tends to 2.5 %.
        assert!(close(upper_tail(1.959964, 4000), 0.025, 2e-3), "{}", upper_tail(1.959964, 4000));
        assert_eq!(upper_tail(0.0, 9), 0.5);
        assert_eq!(upper_tail(f64::INFINITY, 9), 0.0);
        assert_eq!(upper_tail(f64::NEG_INFINITY, 9), 1.0);
        assert_eq!(upper_tail(f64::NAN, 9), 1.0);
    }
}
