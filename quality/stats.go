package quality

import (
	"math"

	"github.com/bildrum/bildrum"
)

// The standard normal quantiles of the intervals and control limits.
const (
	z95  = 1.959963984540054 // two-sided 95 %: Φ⁻¹(0.975)
	z998 = 3.090232306167813 // two-sided 99.8 %: Φ⁻¹(0.999)
)

// Wilson returns the Wilson score interval of a binomial proportion x/n at
// the two-sided confidence level of the normal quantile z (E. B. Wilson,
// J. Am. Stat. Assoc. 22 (1927) 209–212; method 3 of R. G. Newcombe,
// Stat. Med. 17 (1998) 857–872):
//
//	p̂ = x/n,  centre = (p̂ + z²/2n) / (1 + z²/n),
//	half-width = z / (1 + z²/n) · √(p̂(1−p̂)/n + z²/4n²)
//
// Unlike the Wald interval it stays within [0, 1] and keeps close to its
// nominal coverage for the small numerators of cancer counts. ok is false
// when n is not positive or x is outside [0, n].
func Wilson(x, n int64, z float64) (lo, hi float64, ok bool) {
	if n <= 0 || x < 0 || x > n {
		return 0, 0, false
	}
	N := float64(n)
	p := float64(x) / N
	d := 1 + z*z/N
	centre := (p + z*z/(2*N)) / d
	half := z / d * math.Sqrt(p*(1-p)/N+z*z/(4*N*N))
	return max(0, centre-half), min(1, centre+half), true
}

// ratioInterval returns the 95 % interval of the ratio b:m (b/m): the Wilson
// interval of the proportion b/(b+m), each bound p turned into p/(1−p). hi
// is +Inf when m is 0; ok is false when b+m is 0.
func ratioInterval(b, m int64) (lo, hi float64, ok bool) {
	pl, pu, ok := Wilson(b, b+m, z95)
	if !ok {
		return 0, 0, false
	}
	return pl / (1 - pl), pu / (1 - pu), true
}

// medianDays returns the median of a ResultDays histogram and its
// distribution-free 95 % interval: the order statistics of ranks
// n/2 − 1.96·√n/2 and 1 + n/2 + 1.96·√n/2, rounded to the nearest integer
// (M. J. Campbell and M. J. Gardner, BMJ 296 (1988) 1454–1456). The last
// bucket stands for ResultDayBuckets-1 days or more, so a median there means
// "that many days or more". ok is false for an empty histogram.
func medianDays(h [bildrum.ResultDayBuckets]int64) (median, lo, hi float64, ok bool) {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0, 0, 0, false
	}
	r, s := medianRanks(n)
	median = float64(orderStatistic(h, (n+1)/2))
	if n%2 == 0 {
		median = (median + float64(orderStatistic(h, n/2+1))) / 2
	}
	return median, float64(orderStatistic(h, r)), float64(orderStatistic(h, s)), true
}

// medianRanks returns the 1-based ranks of the 95 % interval of a median of
// n observations, clamped to [1, n].
func medianRanks(n int64) (r, s int64) {
	N := float64(n)
	r = int64(math.Round(N/2 - z95*math.Sqrt(N)/2))
	s = int64(math.Round(1 + N/2 + z95*math.Sqrt(N)/2))
	return min(max(r, 1), n), min(max(s, 1), n)
}

// orderStatistic returns the value (bucket) of the k-th smallest observation
// (1-based) of histogram h.
func orderStatistic(h [bildrum.ResultDayBuckets]int64, k int64) int {
	for d, c := range h {
		if k <= c {
			return d
		}
		k -= c
	}
	return len(h) - 1
}

// Funnel holds the control limits of a funnel plot at one volume: the
// range in which an indicator of a unit with that denominator falls with
// 95 % and 99.8 % probability when its true rate is the national mean, in
// the indicator's unit.
type Funnel struct {
	Denominator int64   `json:"denominator"`
	Mean        float64 `json:"mean"`
	Lower95     float64 `json:"lower_95"`
	Upper95     float64 `json:"upper_95"`
	Lower998    float64 `json:"lower_99_8"`
	Upper998    float64 `json:"upper_99_8"`
}

// FunnelLimits returns the funnel-plot control limits for an indicator of
// unit (percent or per 1,000) with national mean rate mean (in that unit) at
// denominator n, by the normal approximation to the binomial
// (D. J. Spiegelhalter, Stat. Med. 24 (2005) 1185–1202, §3.1):
//
//	θ ± z · √(θ(1−θ)/n),  θ = mean / scale,  z = 1.96 (95 %) or 3.09 (99.8 %)
//
// clamped to [0, scale] and given back in the unit. The approximation is
// poor where nθ or n(1−θ) is below about 5; plot such units but read their
// limits with care. Ratios and days have no binomial funnel: an EINVALID
// error, as are a mean outside the unit's range and n below 1.
func FunnelLimits(unit Unit, mean float64, n int64) (Funnel, error) {
	scale := unit.scale()
	if scale == 0 {
		return Funnel{}, bildrum.Errorf(bildrum.EINVALID, "funnel limits for unit %q: only percent and per_1000 indicators are proportions", unit)
	}
	if n < 1 {
		return Funnel{}, bildrum.Errorf(bildrum.EINVALID, "funnel limits at denominator %d: give a denominator of 1 or more", n)
	}
	if !(mean >= 0 && mean <= scale) {
		return Funnel{}, bildrum.Errorf(bildrum.EINVALID, "funnel limits around %v %s: the mean must be between 0 and %v", mean, unit, scale)
	}
	theta := mean / scale
	sd := math.Sqrt(theta * (1 - theta) / float64(n))
	limit := func(z float64) float64 { return min(max(theta+z*sd, 0), 1) * scale }
	return Funnel{
		Denominator: n, Mean: mean,
		Lower95: limit(-z95), Upper95: limit(z95),
		Lower998: limit(-z998), Upper998: limit(z998),
	}, nil
}

// PooledMean returns the national mean of one indicator from the values of
// several regions: the sum of their numerators over the sum of their
// denominators, in the indicator's unit. Suppressed values and values
// without a denominator are left out, and counted in missing, so that the
// caller can say the mean leaves them out. ok is false when nothing is left.
func PooledMean(values []Value) (mean float64, missing int, ok bool) {
	var num, den int64
	var unit Unit
	for _, v := range values {
		if v.Suppressed || v.Numerator == nil || v.Denominator == nil || *v.Denominator == 0 {
			missing++
			continue
		}
		num += *v.Numerator
		den += *v.Denominator
		unit = v.Unit
	}
	if den == 0 || unit.scale() == 0 {
		return 0, missing, false
	}
	return float64(num) / float64(den) * unit.scale(), missing, true
}
