package synth

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/bildrum/bildrum"
)

// Skatteverket's official test numbers, open data; see data/README.md.
var (
	//go:embed data/skatteverket_test_personnummer.txt
	testPersonnummer string
	//go:embed data/skatteverket_test_samordningsnummer.txt
	testSamordningsnummer string
)

// officialNumbers parses both embedded lists: every number, men too, so that
// generated numbers can avoid them all.
func officialNumbers() ([]bildrum.PersonID, error) {
	var ids []bildrum.PersonID
	for _, list := range []string{testPersonnummer, testSamordningsnummer} {
		for line := range strings.Lines(list) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			id, err := bildrum.ParsePersonID(line)
			if err != nil {
				return nil, fmt.Errorf("synth: embedded test numbers: %w", err)
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// birthday returns the date she turns age: for a birth on 29 February, 1
// March in years without one, as bildrum.AgeAt counts.
func birthday(birth bildrum.Date, age int) bildrum.Date {
	return birth.AddMonths(12 * age)
}

// The screening ages: invited from the 40th birthday until the 75th.
const (
	firstAge = 40
	lastAge  = 74
)

// screeningAgeWithin reports whether a woman born on birth is 40–74 on some
// day from from to to: she turns 40 by to and 75 after from.
func screeningAgeWithin(birth, from, to bildrum.Date) bool {
	return !to.Before(birthday(birth, firstAge)) && from.Before(birthday(birth, lastAge+1))
}

// Generated numbers are personnummer YYYYMMDD5XYC with an even Y (a woman's),
// serials 500–598, checked against the official lists and each other.
const (
	generatedSerialBase  = 500
	generatedSerialCount = 50 // 500, 502, … 598
)

// generateNumbers makes cfg.Generate distinct women's personnummer, born so
// that they are of screening age within the period, none of them in taken
// (which it extends).
func generateNumbers(cfg Config, taken map[bildrum.PersonID]bool) ([]bildrum.PersonID, error) {
	if cfg.Generate == 0 {
		return nil, nil
	}
	earliest := birthday(cfg.From, -(lastAge + 1)) // born after this
	latest := birthday(cfg.To, -firstAge)          // born on or before this
	days := earliest.DaysUntil(latest)
	if capacity := days * generatedSerialCount / 2; cfg.Generate > capacity {
		return nil, bildrum.Errorf(bildrum.EINVALID, "generate %d: at most %d women fit this period: ask for fewer or a longer period", cfg.Generate, capacity)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x67656e6572617465)) // "generate"
	out := make([]bildrum.PersonID, 0, cfg.Generate)
	for len(out) < cfg.Generate {
		birth := earliest.AddDays(1 + rng.IntN(days))
		serial := generatedSerialBase + 2*rng.IntN(generatedSerialCount)
		id := bildrum.WithCheckDigit(fmt.Sprintf("%04d%02d%02d%03d", birth.Year, birth.Month, birth.Day, serial))
		if taken[id] || !screeningAgeWithin(birth, cfg.From, cfg.To) {
			continue
		}
		taken[id] = true
		out = append(out, id)
	}
	return out, nil
}
