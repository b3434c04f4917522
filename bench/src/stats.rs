//! Medians, ranges and the rule that turns repeated rounds into a verdict.
//!
//! A figure measured in R rounds is shown as its median with its min-max.
//! Two front-ends are compared round by round (paired: both ran back to back
//! in the same round), and the per-round ratios are summarised the same way.
//! The rule, after Go's benchstat: a difference is claimed only when **every**
//! round agrees on its direction **and** the whole range of ratios clears
//! the noise floor, the spread of a front-end against itself (an A/A twin in
//! the same run). Anything else is "no clear difference", with the range.

/// Fewest rounds a verdict rests on: with one or two, "every round agrees"
/// says little.
pub const MIN_ROUNDS: usize = 3;

/// The noise floor assumed when a run has no A/A twin to measure it: a 5 %
/// difference (per round) is within what drift alone does on a busy machine.
pub const ASSUMED_FLOOR: f64 = 0.05;

/// Median and range of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Spread {
    /// The spread of `xs` (None when empty; NaNs are left out).
    pub fn of(xs: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// What is known of a per-round ratio a/b when either side may be a lower
/// bound (a percentile reached by requests that got no reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Both sides exact.
    Exact,
    /// Only `a` is a lower bound: the true ratio is at least this.
    AtLeast,
    /// Only `b` is a lower bound: the true ratio is at most this.
    AtMost,
    /// Both are lower bounds: the ratio says nothing.
    Unknown,
}

impl Known {
    /// From whether each side is a lower bound.
    pub fn of(a_lower_bound: bool, b_lower_bound: bool) -> Known {
        match (a_lower_bound, b_lower_bound) {
            (false, false) => Known::Exact,
            (true, false) => Known::AtLeast,
            (false, true) => Known::AtMost,
            (true, true) => Known::Unknown,
        }
    }
}

/// One round's ratio a/b.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundRatio {
    /// a / b as measured.
    pub value: f64,
    /// Whether it is exact or a bound.
    pub known: Known,
}

/// The outcome of comparing a with b.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// a is higher in every round, beyond the noise floor.
    Higher,
    /// a is lower in every round, beyond the noise floor.
    Lower,
    /// The rounds disagree, or the range does not clear the floor.
    NoClearDifference,
    /// Fewer than [`MIN_ROUNDS`] paired rounds.
    TooFewRounds,
}

/// a compared with b over paired rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The per-round ratios a/b.
    pub rounds: Vec<RoundRatio>,
    /// Median and range of the ratios.
    pub ratio: Spread,
    /// The noise floor applied, as a fraction (0.05: 5 %).
    pub floor: f64,
    /// The verdict.
    pub verdict: Verdict,
}

impl Comparison {
    /// Compares over `rounds` (a/b per round) with noise floor `floor`;
    /// None when no round has a ratio. A claim that a is higher needs every
    /// round above 1 + floor with a ratio that is exact or a lower bound; a
    /// claim that it is lower needs every round below 1 / (1 + floor) with
    /// a ratio that is exact or an upper bound.
    pub fn of(rounds: Vec<RoundRatio>, floor: f64) -> Option<Comparison> {
        let values: Vec<f64> = rounds.iter().map(|r| r.value).collect();
        let ratio = Spread::of(&values)?;
        let up = 1.0 + floor;
        let verdict = if rounds.len() < MIN_ROUNDS {
            Verdict::TooFewRounds
        } else if rounds
            .iter()
            .all(|r| r.value > up && matches!(r.known, Known::Exact | Known::AtLeast))
        {
            Verdict::Higher
        } else if rounds
            .iter()
            .all(|r| r.value < 1.0 / up && matches!(r.known, Known::Exact | Known::AtMost))
        {
            Verdict::Lower
        } else {
            Verdict::NoClearDifference
        };
        Some(Comparison {
            rounds,
            ratio,
            floor,
            verdict,
        })
    }

    /// The ratio as "1.4x (1.2-1.6)": as many decimals as the range
    /// supports; "≥" or "≤" when every round's ratio is such a bound.
    pub fn ratio_text(&self) -> String {
        let mark = if self.rounds.iter().all(|r| r.known == Known::AtLeast) {
            "\u{2265}"
        } else if self.rounds.iter().all(|r| r.known == Known::AtMost) {
            "\u{2264}"
        } else {
            ""
        };
        format!("{mark}{}", ratio_text(&self.ratio))
    }
}

/// Decimals a value deserves when it is known to within `width`.
pub fn decimals_for(width: f64, n: usize) -> usize {
    if n < 2 {
        2
    } else if width >= 1.0 {
        0
    } else if width >= 0.1 {
        1
    } else if width >= 0.01 {
        2
    } else {
        3
    }
}

/// A ratio's spread as "1.4x (1.2-1.6)", or "1.42x" for a single round.
pub fn ratio_text(s: &Spread) -> String {
    let d = decimals_for(s.max - s.min, s.n);
    if s.n < 2 {
        format!("{:.d$}x", s.median)
    } else {
        format!("{:.d$}x ({:.d$}-{:.d$})", s.median, s.min, s.max)
    }
}

/// The noise floor from A/A ratios (twin / original, one per round and
/// point): the largest deviation from 1 either way, as a fraction; None
/// when there are none.
pub fn noise_floor(aa_ratios: &[f64]) -> Option<f64> {
    aa_ratios
        .iter()
        .filter(|r| r.is_finite() && **r > 0.0)
        .map(|r| r.ln().abs().exp_m1())
        .max_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(vs: &[f64]) -> Vec<RoundRatio> {
        vs.iter()
            .map(|&value| RoundRatio {
                value,
                known: Known::Exact,
            })
            .collect()
    }

    #[test]
    fn spreads() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[1.0, 2.0, 3.0, 10.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn every_round_must_agree_and_clear_the_floor() {
        let c = Comparison::of(exact(&[1.3, 1.5, 1.4]), 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::Higher);
        assert_eq!(c.ratio_text(), "1.4x (1.3-1.5)");
        // One round the other way: no verdict.
        let c = Comparison::of(exact(&[1.3, 0.9, 1.4]), 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::NoClearDifference);
        // All agree, but one within the floor.
        let c = Comparison::of(exact(&[1.03, 1.2, 1.3]), 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::NoClearDifference);
        let c = Comparison::of(exact(&[0.5, 0.6, 0.55]), 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::Lower);
        let c = Comparison::of(exact(&[0.5, 0.6]), 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::TooFewRounds);
    }

    #[test]
    fn a_lower_bound_never_makes_its_side_lower() {
        // a's p99 is a lower bound below b's: the true ratio may be anything
        // above, so "a is lower" cannot be claimed.
        let r = |value, known| RoundRatio { value, known };
        let c = Comparison::of(vec![r(0.5, Known::AtLeast); 3], 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::NoClearDifference);
        // A lower bound above b's exact value: a is higher, certainly.
        let c = Comparison::of(vec![r(40.0, Known::AtLeast); 3], 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::Higher);
        assert!(c.ratio_text().starts_with('\u{2265}'));
        let c = Comparison::of(vec![r(40.0, Known::Unknown); 3], 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::NoClearDifference);
        let c = Comparison::of(vec![r(0.1, Known::AtMost); 3], 0.05).unwrap();
        assert_eq!(c.verdict, Verdict::Lower);
    }

    #[test]
    fn precision_follows_the_range() {
        let t = |v: &[f64]| ratio_text(&Spread::of(v).unwrap());
        assert_eq!(t(&[1.0, 1.5, 2.0]), "2x (1-2)");
        assert_eq!(t(&[1.21, 1.25, 1.4]), "1.2x (1.2-1.4)");
        assert_eq!(t(&[1.021, 1.03, 1.04]), "1.03x (1.02-1.04)");
        assert_eq!(t(&[1.0211, 1.0215, 1.0219]), "1.022x (1.021-1.022)");
        assert_eq!(t(&[1.23456]), "1.23x");
    }

    #[test]
    fn floors() {
        let f = noise_floor(&[1.02, 0.9, 1.05]).unwrap();
        assert!((f - (1.0 / 0.9 - 1.0)).abs() < 1e-9, "{f}");
        assert!(noise_floor(&[]).is_none());
    }
}
