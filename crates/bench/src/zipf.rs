//! A Zipf sampler over ranks `1..=n` by rejection-inversion (Hörmann & Derflinger 1996), so
//! sampling is O(1) in time and memory whatever the key count (no CDF table of `n` entries).

use rand::Rng;

/// Draws ranks in `1..=n` with `P(k) ∝ 1 / k^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    /// Accept without evaluating `h_integral` when the candidate is this close (the "squeeze").
    squeeze: f64,
}

impl Zipf {
    /// `n >= 1` ranks and exponent `s > 0` (finite); `None` otherwise.
    pub fn new(n: u64, s: f64) -> Option<Zipf> {
        if n == 0 || !(s > 0.0 && s.is_finite()) {
            return None;
        }
        let n = n as f64;
        let mut zipf = Zipf {
            n,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            squeeze: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(n + 0.5);
        zipf.squeeze = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        Some(zipf)
    }

    /// One rank in `1..=n`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        // The loop accepts with probability well above 1/2 for any s, so it ends quickly; the
        // bound only guards against a broken rng (e.g. one stuck at a single value).
        for _ in 0..1_000 {
            let u = self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
        1
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// Integral of `h` (shifted so the formula is stable near `s = 1`).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    /// Pearson's chi-square statistic of `draws` samples against the exact Zipf pmf.
    fn chi_square(n: u64, s: f64, draws: u64, seed: u64) -> f64 {
        let zipf = Zipf::new(n, s).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k), "rank {k} out of 1..={n}");
            counts[(k - 1) as usize] += 1;
        }
        let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        counts
            .iter()
            .enumerate()
            .map(|(i, &observed)| {
                let expected = draws as f64 * ((i + 1) as f64).powf(-s) / norm;
                (observed as f64 - expected).powi(2) / expected
            })
            .sum()
    }

    #[test]
    fn matches_the_exact_distribution() {
        // 9 degrees of freedom: 27.88 is the 0.999 quantile. The seeds are fixed, so this is
        // deterministic; a wrong sampler (off-by-one rank, wrong exponent) lands in the hundreds.
        for (s, seed) in [(0.5, 1), (0.99, 2), (1.0, 3), (1.5, 4)] {
            let chi = chi_square(10, s, 200_000, seed);
            assert!(chi < 27.88, "s={s}: chi-square {chi}");
        }
    }

    #[test]
    fn a_wrong_exponent_is_detected() {
        // The statistic above has power: samples drawn with s=0.8 fail against the s=0.99 pmf.
        let zipf = Zipf::new(10, 0.8).unwrap();
        let mut rng = SmallRng::seed_from_u64(9);
        let mut counts = [0u64; 10];
        for _ in 0..200_000 {
            counts[(zipf.sample(&mut rng) - 1) as usize] += 1;
        }
        let norm: f64 = (1..=10).map(|k| (k as f64).powf(-0.99)).sum();
        let chi: f64 = counts
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                let e = 200_000.0 * ((i + 1) as f64).powf(-0.99) / norm;
                (o as f64 - e).powi(2) / e
            })
            .sum();
        assert!(chi > 100.0, "chi-square {chi}");
    }

    #[test]
    fn large_key_spaces_stay_in_range_and_favour_low_ranks() {
        let zipf = Zipf::new(10_000_000, 0.99).unwrap();
        let mut rng = SmallRng::seed_from_u64(5);
        let mut top_ten = 0;
        for _ in 0..100_000 {
            let k = zipf.sample(&mut rng);
            assert!((1..=10_000_000).contains(&k));
            if k <= 10 {
                top_ten += 1;
            }
        }
        // Exact share of ranks 1..=10 for n=1e7, s=0.99 is about 0.17.
        let share = top_ten as f64 / 100_000.0;
        assert!((0.15..0.19).contains(&share), "share {share}");
    }

    #[test]
    fn degenerate_parameters() {
        assert!(Zipf::new(0, 1.0).is_none());
        assert!(Zipf::new(10, 0.0).is_none());
        assert!(Zipf::new(10, f64::NAN).is_none());
        let one = Zipf::new(1, 0.99).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        assert!((0..1000).all(|_| one.sample(&mut rng) == 1));
    }
}
