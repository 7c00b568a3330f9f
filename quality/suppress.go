package quality

import (
	"slices"

	"github.com/bildrum/bildrum"
)

// The small-cell rule of DESIGN.md: a count below the threshold is never
// released, it reads "fewer than N". The threshold is configuration.
const (
	DefaultThreshold = 10 // the strictest common one (i2b2 ≤ 3, OpenSAFELY ≤ 7, TriNetX ≤ 10)
	MinThreshold     = 5  // configuration may not go lower
)

// CheckThreshold returns an EINVALID error for a small-cell threshold below
// MinThreshold.
func CheckThreshold(threshold int) error {
	if threshold < MinThreshold {
		return bildrum.Errorf(bildrum.EINVALID, "small-cell threshold %d: it must be at least %d (default %d)", threshold, MinThreshold, DefaultThreshold)
	}
	return nil
}

// Suppress applies the small-cell rule to v: when its numerator or its
// denominator is below threshold, or, for a proportion (percent or per
// 1,000), the complement, denominator less numerator (95 node-negative of
// 100 gives away 5 node-positive), it returns v with numerator,
// denominator, rate and interval blanked (null in JSON), Suppressed set and
// the status StatusNoData, so that nothing about the small count can be
// read from it. Zero is below every threshold: 0 of 500 and 500 of 500 are
// both suppressed. A median has no numerator; its denominator alone
// decides. A ratio's numerator and denominator count different people
// (benign and malignant biopsies), so it has no complement. A threshold
// below MinThreshold is an EINVALID error.
//
// Suppress judges one value alone; Reports and Lattice also suppress what
// could be had by subtraction from the other values they release (see
// protect).
func (v Value) Suppress(threshold int) (Value, error) {
	if err := CheckThreshold(threshold); err != nil {
		return Value{}, err
	}
	if v.small(int64(threshold)) {
		return v.hide(), nil
	}
	return v, nil
}

// small reports whether a count that v releases is below t: see Suppress.
func (v Value) small(t int64) bool {
	switch {
	case v.Denominator != nil && *v.Denominator < t, v.Numerator != nil && *v.Numerator < t:
		return true
	case v.Unit.scale() != 0 && v.Numerator != nil && v.Denominator != nil:
		return *v.Denominator-*v.Numerator < t
	}
	return false
}

// hide returns v blanked as Suppress blanks it.
func (v Value) hide() Value {
	v.Numerator, v.Denominator, v.Rate, v.Interval = nil, nil, nil, nil
	v.Suppressed = true
	v.Status, v.Target = StatusNoData, ""
	return v
}

// cellSum says that one cell is the sum of others, tally by tally: "all"
// ages of its bands, a year of its quarters, the whole register of its
// years. Indexes are of the cells given to protect.
type cellSum struct {
	sum   int
	parts []int
}

// protect applies the small-cell rule to reports, one per cell, whose values
// (in Definitions order) are not yet suppressed; counts[i] are the tallies
// of reports[i], and sums say which cells add up to which.
//
// A tally is small when it is above 0 and below threshold (zero describes
// nobody). No small tally may be released, nor follow from the released
// ones by subtraction. First each value is judged on its own (Suppress).
// Then the tallies that released values show, together with every zero
// tally (taken as known, whatever is released), are closed under the sums:
// those of the lattice (the bands and "all" ages, the quarters and their
// year, the years and the whole register), applied to every tally, and
// those within a cell (initial and subsequent screens, invasive and DCIS,
// and each tally as the sum of a part and its difference, see
// differences). Wherever all terms of a sum but one are known, that one is
// known too. When a small tally becomes known so, the sum that gave it away
// gets another protected term: of its other terms, none protected, the
// smallest that is not 0 (then the first). A protected tally is kept like
// a small one: every value that shows it is suppressed, and it must not
// follow from the released ones either. This repeats until no protected
// tally follows from the released ones; since each round protects at least
// one more tally, it ends.
//
// Each round protects the small tallies that became known in the order the
// closure found them, and passes over one whose giving-away sum already
// holds another protected term (it may be safe once that one is dealt
// with): the next round tells.
//
// When no sum gives a protected tally away, alone or through a chain, all
// the sums are solved at once as one linear system over the tallies not
// known (solve), which finds what only several sums together determine (a
// rectangle of hidden cells with one more hidden beside it). A protected
// tally determined so gets another protected term (nearest), and the
// rounds go on.
//
// So the released values determine no small tally, by any sum or
// difference of them. They may still bound one (a hidden 7 between 0 and
// the sum of it and its hidden partner), and only the sums given are
// known to protect: docs/quality.md says what is left open.
func protect(reports []Report, counts [][numTallies]int64, sums []cellSum, threshold int) {
	t := int64(threshold)
	s := newSystem(len(reports), sums)
	value := func(n int32) int64 { return counts[int(n)/int(numTallies)][int(n)%int(numTallies)] }

	// released[i][k]: value k of report i is still released.
	released := make([][]bool, len(reports))
	for i, r := range reports {
		released[i] = make([]bool, len(r.Indicators))
		for k, v := range r.Indicators {
			released[i][k] = !v.small(t)
		}
	}
	protected := make([]bool, s.nodes)
	for n := range protected {
		v := value(int32(n))
		protected[n] = v > 0 && v < t
	}
	known := make([]bool, s.nodes)
	reason := make([]int32, s.nodes)
	touched := make([]bool, s.equations())
	for {
		// Suppress every value that shows a protected tally; the tallies
		// of the others are known.
		for n := range known {
			known[n] = value(int32(n)) == 0
		}
		for i, r := range reports {
			base := int32(i) * int32(numTallies)
			for k := range r.Indicators {
				if !released[i][k] {
					continue
				}
				d := definitions[k]
				num, den := base+int32(d.den), base+int32(d.den)
				if d.num != noTally {
					num = base + int32(d.num)
				}
				if protected[num] || protected[den] {
					released[i][k] = false
					continue
				}
				known[num], known[den] = true, true
			}
		}
		derived := s.close(known, reason)
		clear(touched)
		added := false
		for _, n := range derived {
			if !protected[n] || touched[reason[n]] {
				continue
			}
			if m := s.complement(reason[n], n, protected, value); m >= 0 {
				protected[m], added = true, true
				for _, f := range s.equationsOf(m) {
					touched[f] = true
				}
			}
		}
		if !added {
			// No sum gives a protected tally away on its own, nor a chain
			// of them: solve all the sums at once.
			for _, n := range s.solve(known) {
				if !protected[n] || slices.ContainsFunc(s.equationsOf(n), func(e int32) bool { return touched[e] }) {
					continue
				}
				if m := s.nearest(n, known, protected, value); m >= 0 {
					protected[m], added = true, true
					for _, f := range s.equationsOf(m) {
						touched[f] = true
					}
				}
			}
		}
		if !added {
			break
		}
	}
	for i := range reports {
		for k, ok := range released[i] {
			if !ok {
				reports[i].Indicators[k] = reports[i].Indicators[k].hide()
			}
		}
	}
}

// complement returns the term of equation e to protect so that e no
// longer gives away the protected node n: the smallest term other than 0,
// then the first, among the others when none of them is protected; -1
// when another term is protected already, or when the others are all 0
// (then the counts of the cell do not add up, and e gives nothing away).
func (s *system) complement(e, n int32, protected []bool, value func(int32) int64) int32 {
	best := int32(-1)
	for _, m := range s.terms(e) {
		switch {
		case m == n:
		case protected[m]:
			return -1
		case value(m) == 0:
		case best < 0 || abs(value(m)) < abs(value(best)):
			best = m
		}
	}
	return best
}

// nearest returns the tally to protect when the sums together, though none
// alone, give away the protected node n: the smallest known term other
// than 0 of the sums of n, or else of the sums of the unknown terms of
// those, and so on outwards; -1 if there is none (the counts do not add
// up).
func (s *system) nearest(n int32, known, protected []bool, value func(int32) int64) int32 {
	seen := map[int32]bool{n: true}
	done := map[int32]bool{}
	for layer := []int32{n}; len(layer) > 0; {
		best := int32(-1)
		var next []int32
		for _, x := range layer {
			for _, e := range s.equationsOf(x) {
				if done[e] {
					continue
				}
				done[e] = true
				for _, m := range s.terms(e) {
					switch {
					case seen[m]:
					case !known[m]:
						seen[m] = true
						next = append(next, m)
					case protected[m] || value(m) == 0:
					case best < 0 || abs(value(m)) < abs(value(best)):
						best = m
					}
				}
			}
		}
		if best >= 0 {
			return best
		}
		layer = next
	}
	return -1
}

// prime is the modulus of solve. Solving modulo a large prime finds every
// unknown that the sums determine over the integers, except when the prime
// divides a minor of the system: with coefficients of ±1 and a prime near
// 2³¹, a chance too small to weigh.
const prime = 2147483647

// solve returns the unknown nodes (not known) that the sums determine
// together, as a linear system over the unknowns (the known terms moved to
// the other side): those whose unit vector lies in the span of the rows,
// found by Gauss–Jordan elimination modulo prime. The first term of each
// sum counts +1, its parts −1.
func (s *system) solve(known []bool) []int32 {
	type row = map[int32]int64
	var rows []row // in elimination order; rows[i] has pivot pivots[i], coefficient 1
	var pivots []int32
	pivotOf := make([]int32, s.nodes) // the row of a pivot column, -1 for none
	for n := range pivotOf {
		pivotOf[n] = -1
	}
	// subtract takes a times row p from r.
	subtract := func(r, p row, a int64) {
		for c, b := range p {
			if r[c] = (r[c] + prime - a*b%prime) % prime; r[c] == 0 {
				delete(r, c)
			}
		}
	}
	for e := 0; e < s.equations(); e++ {
		r := make(row)
		for j, n := range s.terms(int32(e)) {
			if known[n] {
				continue
			}
			if j == 0 {
				r[n] = 1
			} else {
				r[n] = prime - 1
			}
		}
		if len(r) < 2 {
			continue // nothing unknown, or closed already
		}
		// Reduce by the rows so far: a row holds no pivot of an earlier
		// row, so each step moves to later rows, and this ends.
		var queue []int32
		for c := range r {
			if pivotOf[c] >= 0 {
				queue = append(queue, c)
			}
		}
		for len(queue) > 0 {
			c := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			a, ok := r[c]
			if !ok {
				continue
			}
			p := rows[pivotOf[c]]
			for cc := range p {
				if _, had := r[cc]; !had && cc != c && pivotOf[cc] >= 0 {
					queue = append(queue, cc)
				}
			}
			subtract(r, p, a)
		}
		if len(r) == 0 {
			continue
		}
		c := int32(-1)
		for cc := range r {
			if c < 0 || cc < c {
				c = cc
			}
		}
		inv := modInverse(r[c])
		for cc := range r {
			r[cc] = r[cc] * inv % prime
		}
		pivotOf[c] = int32(len(rows))
		rows = append(rows, r)
		pivots = append(pivots, c)
	}
	// Back substitution, last row first: each later row is free of every
	// pivot but its own by then.
	var out []int32
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		var later []int32
		for c := range r {
			if c != pivots[i] && pivotOf[c] >= 0 {
				later = append(later, c)
			}
		}
		for _, c := range later {
			subtract(r, rows[pivotOf[c]], r[c])
		}
		if len(r) == 1 {
			out = append(out, pivots[i])
		}
	}
	slices.Sort(out)
	return out
}

// modInverse returns the inverse of x modulo prime (x not 0), by Fermat.
func modInverse(x int64) int64 {
	r := int64(1)
	for e := int64(prime - 2); e > 0; e >>= 1 {
		if e&1 == 1 {
			r = r * x % prime
		}
		x = x * x % prime
	}
	return r
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// system holds the sums over the tallies of a lattice of cells: node n is
// tally n % numTallies of cell n / numTallies; each equation is a sum and
// its parts (for closing, which term is the sum does not matter).
type system struct {
	nodes     int
	start     []int32 // equation e is terms[start[e]:start[e+1]]
	termList  []int32
	nodeEqs   []int32 // the equations of node n are nodeEqs[nodeStart[n]:nodeStart[n+1]]
	nodeStart []int32
}

// newSystem builds the sums of cells cells: those within each cell
// (cellEquations) and, tally by tally, those of sums.
func newSystem(cells int, sums []cellSum) *system {
	s := &system{nodes: cells * int(numTallies), start: []int32{0}}
	add := func(terms ...int32) {
		s.termList = append(s.termList, terms...)
		s.start = append(s.start, int32(len(s.termList)))
	}
	within := cellEquations()
	for c := 0; c < cells; c++ {
		base := int32(c) * int32(numTallies)
		for _, eq := range within {
			terms := make([]int32, len(eq))
			for j, tl := range eq {
				terms[j] = base + int32(tl)
			}
			add(terms...)
		}
	}
	for _, cs := range sums {
		for tl := tally(0); tl < numTallies; tl++ {
			terms := make([]int32, 0, 1+len(cs.parts))
			terms = append(terms, int32(cs.sum)*int32(numTallies)+int32(tl))
			for _, p := range cs.parts {
				terms = append(terms, int32(p)*int32(numTallies)+int32(tl))
			}
			add(terms...)
		}
	}
	count := make([]int32, s.nodes+1)
	for _, n := range s.termList {
		count[n+1]++
	}
	for n := 1; n <= s.nodes; n++ {
		count[n] += count[n-1]
	}
	s.nodeStart = slices.Clone(count)
	s.nodeEqs = make([]int32, len(s.termList))
	for e := 0; e < s.equations(); e++ {
		for _, n := range s.terms(int32(e)) {
			s.nodeEqs[count[n]] = int32(e)
			count[n]++
		}
	}
	return s
}

func (s *system) equations() int              { return len(s.start) - 1 }
func (s *system) terms(e int32) []int32       { return s.termList[s.start[e]:s.start[e+1]] }
func (s *system) equationsOf(n int32) []int32 { return s.nodeEqs[s.nodeStart[n]:s.nodeStart[n+1]] }

// close extends known by every node that a sum gives away: whenever all
// terms of an equation but one are known, that one becomes known, with the
// equation as its reason. It returns the nodes it made known, in order.
func (s *system) close(known []bool, reason []int32) []int32 {
	unknown := make([]int32, s.equations())
	var queue []int32
	for e := range unknown {
		for _, n := range s.terms(int32(e)) {
			if !known[n] {
				unknown[e]++
			}
		}
		if unknown[e] == 1 {
			queue = append(queue, int32(e))
		}
	}
	var derived []int32
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if unknown[e] != 1 {
			continue
		}
		for _, n := range s.terms(e) {
			if known[n] {
				continue
			}
			known[n], reason[n] = true, e
			derived = append(derived, n)
			for _, f := range s.equationsOf(n) {
				if unknown[f]--; unknown[f] == 1 {
					queue = append(queue, f)
				}
			}
			break
		}
	}
	return derived
}
