// Package synth makes a synthetic mammography screening population and its
// screening register, deterministically from a seed, so that the demo, the
// tests and researchers without a data permit have plausible Swedish data to
// build against, and no record of it can name a real person.
//
// The women are Skatteverket's official test personnummer and
// samordningsnummer (embedded from data/), every woman of screening age (40–74)
// at some time in the simulated period, shuffled with the seed and split
// across the chosen regions in proportion to their populations. Each woman
// gets a screening history from 40 to 74: invitations every 18–24 months,
// attendance, double reading, recall, assessment, screen-detected and
// interval cancers, at rates documented in rates.go and docs/synth.md.
//
// Benchmarks may ask for more women than the test lists hold
// (Config.Generate). Those numbers are made up, may belong to real people,
// and are marked so in the Metadata: such a data set must never leave the
// machine it was made on.
//
// The same Config always gives the same episodes in the same order (with the
// same Go toolchain). Every woman's history is drawn from a random stream of
// her own, derived from the seed and her number, so it does not depend on
// who else is in the population.
package synth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/bildrum/bildrum"
)

// Config says what population to make. The zero Config is valid: the demo's
// three regions, 2014–2025, seed 0, official test numbers only.
type Config struct {
	// Seed selects the population: the split across regions and every
	// woman's history. Any value is valid; default 0.
	Seed int64

	// Regions are the county codes to populate, such as "01", "12", "14"
	// (see bildrum.Regions). Order does not matter; a code may appear once.
	// Default: 01 Stockholm, 12 Skåne and 14 Västra Götaland, the demo's.
	Regions []string

	// From and To bound the simulated period, inclusive: every invitation,
	// examination and diagnosis falls within it. Default 2014-01-01 and
	// 2025-12-31; From must not be after To.
	From, To bildrum.Date

	// Generate adds that many made-up women to the official test numbers,
	// for benchmark populations. Their numbers are valid personnummer that
	// Skatteverket has not reserved for testing, so they may belong to real
	// people: the Metadata marks the data set Synthetic and it must never
	// leave the machine. Default 0 (none); must not be negative.
	Generate int
}

// Metadata describes a generated data set; WriteFiles stores it as
// metadata.json beside the register files.
type Metadata struct {
	Seed     int64          `json:"seed"`
	Regions  []string       `json:"regions"` // county codes, sorted
	From     bildrum.Date   `json:"from"`
	To       bildrum.Date   `json:"to"`
	Women    map[string]int `json:"women"`    // women per region
	Episodes map[string]int `json:"episodes"` // register rows per region

	// Synthetic is true when the population holds generated numbers
	// (Config.Generate) besides Skatteverket's test numbers. Such a data set
	// must never leave the machine: a generated number may be a real
	// person's. (Every episode is simulated either way.)
	Synthetic        bool `json:"synthetic"`
	GeneratedNumbers int  `json:"generated_numbers"`

	// Source says where the identities and the rates come from.
	Source string `json:"source"`
}

// The defaults of Config.
var (
	defaultRegions = []string{"01", "12", "14"}
	defaultFrom    = bildrum.Date{Year: 2014, Month: 1, Day: 1}
	defaultTo      = bildrum.Date{Year: 2025, Month: 12, Day: 31}
)

// The Metadata.Source texts.
const (
	sourceOfficial  = "Skatteverket's official test personnummer and samordningsnummer (open data); simulated screening histories, rates in docs/synth.md"
	sourceGenerated = "Skatteverket's official test personnummer and samordningsnummer (open data) plus generated personnummer (serials 500-598) that may belong to real people: never let this data set leave the machine; simulated screening histories, rates in docs/synth.md"
)

// Generate simulates the register of every region of cfg and calls emit for
// each episode: region by region in county code order, woman by woman in
// personnummer order, each woman's episodes by invitation date. The order
// and content depend on cfg alone.
//
// A bad Config is an EINVALID error that says what to write instead. An error
// from emit, or the end of ctx, stops generation and is returned, wrapped;
// the Metadata is then zero.
func Generate(ctx context.Context, cfg Config, emit func(bildrum.ScreeningEpisode) error) (Metadata, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return Metadata{}, err
	}
	return p.run(ctx, emit, nil)
}

// Women returns the women Generate assigns to the regions of cfg, in the
// order Generate visits them (region by region, then by number), so that a
// caller can pick, say, a demo citizen who has a register history.
func Women(cfg Config) ([]bildrum.Person, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	var out []bildrum.Person
	for _, r := range p.regions {
		for _, w := range p.women[r] {
			out = append(out, bildrum.Person{ID: w.id, Region: r})
		}
	}
	return out, nil
}

// plan is a validated Config with its population split across the regions.
type plan struct {
	cfg       Config             // with defaults filled in
	regions   []string           // sorted county codes
	women     map[string][]woman // per region, sorted by number
	generated int                // how many numbers were generated
}

// woman is a member of the synthetic population.
type woman struct {
	id    bildrum.PersonID
	birth bildrum.Date
	key   [32]byte // SHA-256 of seed and number: her shuffle key and random stream
}

// newPlan validates cfg, fills in its defaults and assigns the women.
func newPlan(cfg Config) (plan, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return plan{}, err
	}
	ids, err := officialNumbers()
	if err != nil {
		return plan{}, err
	}
	taken := make(map[bildrum.PersonID]bool, len(ids))
	var pool []woman
	for _, id := range ids {
		taken[id] = true
		birth := bildrum.DateOf(id.BirthDate())
		if id.Female() && screeningAgeWithin(birth, cfg.From, cfg.To) {
			pool = append(pool, newWoman(cfg.Seed, id, birth))
		}
	}
	extra, err := generateNumbers(cfg, taken)
	if err != nil {
		return plan{}, err
	}
	for _, id := range extra {
		pool = append(pool, newWoman(cfg.Seed, id, bildrum.DateOf(id.BirthDate())))
	}
	return plan{
		cfg:       cfg,
		regions:   cfg.Regions,
		women:     split(pool, cfg.Regions),
		generated: len(extra),
	}, nil
}

// withDefaults checks cfg and fills in the defaults of its zero fields.
func withDefaults(cfg Config) (Config, error) {
	if len(cfg.Regions) == 0 {
		cfg.Regions = defaultRegions
	}
	regions := slices.Clone(cfg.Regions)
	bildrum.SortRegionCodes(regions)
	for i, code := range regions {
		if _, err := bildrum.RegionByCode(code); err != nil {
			return Config{}, err
		}
		if i > 0 && regions[i-1] == code {
			return Config{}, bildrum.Errorf(bildrum.EINVALID, "region %s is listed twice: list each county code once", code)
		}
	}
	cfg.Regions = regions
	if cfg.From.IsZero() {
		cfg.From = defaultFrom
	}
	if cfg.To.IsZero() {
		cfg.To = defaultTo
	}
	if cfg.To.Before(cfg.From) {
		return Config{}, bildrum.Errorf(bildrum.EINVALID, "period %s to %s ends before it starts: set From on or before To", cfg.From, cfg.To)
	}
	if cfg.Generate < 0 {
		return Config{}, bildrum.Errorf(bildrum.EINVALID, "generate %d: want 0 (official test numbers only) or a positive number of extra women", cfg.Generate)
	}
	return cfg, nil
}

// newWoman derives her key from the seed and her number.
func newWoman(seed int64, id bildrum.PersonID, birth bildrum.Date) woman {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte(id))
	w := woman{id: id, birth: birth}
	h.Sum(w.key[:0])
	return w
}

// split shuffles the pool by the women's keys and deals it out to the
// regions in proportion to their weights (largest remainder), each region's
// share sorted by number.
func split(pool []woman, regions []string) map[string][]woman {
	slices.SortFunc(pool, func(a, b woman) int {
		if c := slices.Compare(a.key[:], b.key[:]); c != 0 {
			return c
		}
		return compareIDs(a.id, b.id)
	})
	counts := apportion(len(pool), regions)
	out := make(map[string][]woman, len(regions))
	start := 0
	for i, r := range regions {
		share := slices.Clone(pool[start : start+counts[i]])
		slices.SortFunc(share, func(a, b woman) int { return compareIDs(a.id, b.id) })
		out[r] = share
		start += counts[i]
	}
	return out
}

// compareIDs orders numbers as strings.
func compareIDs(a, b bildrum.PersonID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// apportion divides n women among the regions in proportion to their
// populations by the largest remainder method; ties go to the earlier region.
func apportion(n int, regions []string) []int {
	total := 0
	for _, r := range regions {
		total += regionProfiles[r].population
	}
	counts := make([]int, len(regions))
	rems := make([]int, len(regions))
	given := 0
	for i, r := range regions {
		counts[i] = n * regionProfiles[r].population / total
		rems[i] = n * regionProfiles[r].population % total
		given += counts[i]
	}
	order := make([]int, len(regions))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rems[b] - rems[a] })
	for _, i := range order[:n-given] {
		counts[i]++
	}
	return counts
}

// run simulates every woman of the plan, calling emit for each episode and
// done (when not nil) after each woman, and returns the Metadata.
func (p plan) run(ctx context.Context, emit func(bildrum.ScreeningEpisode) error, done func()) (Metadata, error) {
	md := Metadata{
		Seed:             p.cfg.Seed,
		Regions:          slices.Clone(p.regions),
		From:             p.cfg.From,
		To:               p.cfg.To,
		Women:            make(map[string]int, len(p.regions)),
		Episodes:         make(map[string]int, len(p.regions)),
		Synthetic:        p.generated > 0,
		GeneratedNumbers: p.generated,
		Source:           sourceOfficial,
	}
	if md.Synthetic {
		md.Source = sourceGenerated
	}
	for _, r := range p.regions {
		sim := newSimulator(r, p.cfg.From, p.cfg.To)
		md.Women[r] = len(p.women[r])
		for _, w := range p.women[r] {
			if err := ctx.Err(); err != nil {
				return Metadata{}, fmt.Errorf("synth: %w", err)
			}
			for _, e := range sim.history(w) {
				if err := emit(e); err != nil {
					return Metadata{}, fmt.Errorf("synth: episode %s: %w", e.ID, err)
				}
				md.Episodes[r]++
			}
			if done != nil {
				done()
			}
		}
	}
	return md, nil
}

// total returns the number of women in the plan.
func (p plan) total() int {
	n := 0
	for _, ws := range p.women {
		n += len(ws)
	}
	return n
}
