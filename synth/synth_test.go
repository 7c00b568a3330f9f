package synth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
)

// generateAll runs Generate and collects the episodes.
func generateAll(t testing.TB, cfg Config) ([]bildrum.ScreeningEpisode, Metadata) {
	t.Helper()
	var eps []bildrum.ScreeningEpisode
	md, err := Generate(context.Background(), cfg, func(e bildrum.ScreeningEpisode) error {
		eps = append(eps, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return eps, md
}

// officialSet reads the embedded lists from data/ independently of the
// package's parser loop.
func officialSet(t *testing.T) map[bildrum.PersonID]bool {
	t.Helper()
	set := make(map[bildrum.PersonID]bool)
	for _, name := range []string{"skatteverket_test_personnummer.txt", "skatteverket_test_samordningsnummer.txt"} {
		b, err := os.ReadFile("data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			id, err := bildrum.ParsePersonID(line)
			if err != nil {
				t.Fatalf("data/%s: %v", name, err)
			}
			set[id] = true
		}
	}
	if len(set) < 20000 {
		t.Fatalf("official lists hold %d numbers, want more than 20000", len(set))
	}
	return set
}

func date(y int, m int, d int) bildrum.Date {
	return bildrum.Date{Year: y, Month: time.Month(m), Day: d}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the message; "" for no error
	}{
		{"zero config", Config{}, ""},
		{"all regions", Config{Regions: []string{"25", "01", "09"}}, ""},
		{"unknown region", Config{Regions: []string{"12", "02"}}, `unknown region "02"`},
		{"region twice", Config{Regions: []string{"12", "14", "12"}}, "listed twice"},
		{"period reversed", Config{From: date(2020, 1, 1), To: date(2019, 12, 31)}, "ends before it starts"},
		{"negative generate", Config{Generate: -1}, "want 0"},
		{"too many generated", Config{Generate: 10_000_000}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Women(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Women(%+v) = %v, want no error", tt.cfg, err)
				}
				return
			}
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), tt.want) {
				t.Fatalf("Women(%+v) = %v, want EINVALID containing %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestOnlyOfficialNumbers(t *testing.T) {
	official := officialSet(t)
	eps, md := generateAll(t, Config{Seed: 7})
	if md.Synthetic || md.GeneratedNumbers != 0 {
		t.Errorf("Metadata Synthetic=%v GeneratedNumbers=%d, want false, 0", md.Synthetic, md.GeneratedNumbers)
	}
	for _, e := range eps {
		if !official[e.Person] {
			t.Fatalf("episode %s: person %s is not an official test number", e.ID, e.Person)
		}
	}
}

func TestAllWomenOfScreeningAge(t *testing.T) {
	official := officialSet(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"one region, short period", Config{Seed: 3, Regions: []string{"09"}, From: date(2020, 3, 1), To: date(2021, 2, 28)}},
		{"all regions", Config{Seed: 5, Regions: allRegions()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := withDefaults(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := make(map[bildrum.PersonID]bool)
			for id := range official {
				b := id.BirthDate()
				if id.Female() && bildrum.AgeAt(b, cfg.To.Time()) >= 40 && bildrum.AgeAt(b, cfg.From.Time()) <= 74 {
					want[id] = true
				}
			}
			women, err := Women(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			assigned := make(map[bildrum.PersonID]bool)
			for _, w := range women {
				if assigned[w.ID] {
					t.Errorf("woman %s assigned twice", w.ID)
				}
				assigned[w.ID] = true
			}
			eps, md := generateAll(t, tt.cfg)
			invited := make(map[bildrum.PersonID]bool)
			for _, e := range eps {
				invited[e.Person] = true
			}
			if len(want) < 50 {
				t.Fatalf("only %d official women of screening age: test period too short", len(want))
			}
			for id := range want {
				if !assigned[id] || !invited[id] {
					t.Errorf("woman %s of screening age: assigned %v, invited %v; want both", id, assigned[id], invited[id])
				}
			}
			if len(assigned) != len(want) || len(invited) != len(want) {
				t.Errorf("%d women assigned, %d invited, want %d", len(assigned), len(invited), len(want))
			}
			total := 0
			for _, n := range md.Women {
				total += n
			}
			if total != len(want) {
				t.Errorf("Metadata.Women sums to %d, want %d", total, len(want))
			}
		})
	}
}

func TestSplitProportional(t *testing.T) {
	regions := []string{"01", "12", "14", "09"}
	women, err := Women(Config{Seed: 11, Regions: regions})
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]int)
	for _, w := range women {
		got[w.Region]++
	}
	pop := 0
	for _, r := range regions {
		pop += regionProfiles[r].population
	}
	for _, r := range regions {
		want := float64(len(women)) * float64(regionProfiles[r].population) / float64(pop)
		if d := float64(got[r]) - want; d < -1 || d > 1 {
			t.Errorf("region %s has %d women, want %.1f (±1)", r, got[r], want)
		}
	}
	if got["01"] <= got["14"] || got["14"] <= got["12"] || got["12"] <= got["09"] {
		t.Errorf("women per region %v: want 01 > 14 > 12 > 09", got)
	}
}

func TestGeneratedNumbers(t *testing.T) {
	official := officialSet(t)
	const n = 3000
	cfg := Config{Seed: 2, Generate: n}
	eps, md := generateAll(t, cfg)
	if !md.Synthetic || md.GeneratedNumbers != n || !strings.Contains(md.Source, "never") {
		t.Errorf("Metadata Synthetic=%v GeneratedNumbers=%d Source=%q, want true, %d and a warning", md.Synthetic, md.GeneratedNumbers, md.Source, n)
	}
	women, err := Women(cfg)
	if err != nil {
		t.Fatal(err)
	}
	generated := 0
	seen := make(map[bildrum.PersonID]bool)
	for _, w := range women {
		if seen[w.ID] {
			t.Fatalf("woman %s twice", w.ID)
		}
		seen[w.ID] = true
		if official[w.ID] {
			continue
		}
		generated++
		if _, err := bildrum.ParsePersonID(string(w.ID)); err != nil || !w.ID.Female() || w.ID.IsCoordinationNumber() {
			t.Errorf("generated %s: parse error %v, female %v; want a valid woman's personnummer", w.ID, err, w.ID.Female())
		}
		if serial := w.ID[8:11]; serial < "500" || serial > "598" {
			t.Errorf("generated %s: serial %s, want 500–598", w.ID, serial)
		}
	}
	if generated != n {
		t.Errorf("%d generated women, want %d", generated, n)
	}
	invited := make(map[bildrum.PersonID]bool)
	for _, e := range eps {
		invited[e.Person] = true
	}
	if len(invited) != len(women) {
		t.Errorf("%d women invited, want all %d", len(invited), len(women))
	}
}

var episodeIDPattern = regexp.MustCompile(`^\d\d-[0-9a-f]{16}$`)

// TestEpisodeInvariants checks what must hold of every episode.
func TestEpisodeInvariants(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"all regions, 2019-2021", Config{Seed: 9, Regions: allRegions(), From: date(2019, 1, 1), To: date(2021, 6, 30)}},
		{"generated", Config{Seed: 4, Regions: []string{"12"}, Generate: 5000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := withDefaults(tt.cfg)
			eps, md := generateAll(t, tt.cfg)
			ids := make(map[string]bool)
			perRegion := make(map[string]int)
			var prev bildrum.ScreeningEpisode
			for i, e := range eps {
				perRegion[e.Region]++
				checkEpisode(t, cfg, e)
				if ids[e.ID] {
					t.Errorf("episode ID %s twice", e.ID)
				}
				ids[e.ID] = true
				if i > 0 {
					checkOrder(t, prev, e)
				}
				prev = e
			}
			for _, r := range cfg.Regions {
				if perRegion[r] != md.Episodes[r] {
					t.Errorf("region %s: %d episodes, Metadata says %d", r, perRegion[r], md.Episodes[r])
				}
			}
		})
	}
}

// checkOrder checks that b follows a: regions in order, women in order,
// her invitations in order, rounds counting up, 18–24 months ± jitter apart,
// and none after a cancer. (That an interval cancer comes before the next
// invitation, which is then not emitted, TestRatesByInterval checks.)
func checkOrder(t *testing.T, a, b bildrum.ScreeningEpisode) {
	t.Helper()
	switch {
	case a.Region > b.Region:
		t.Errorf("region %s after %s", b.Region, a.Region)
	case a.Region == b.Region && a.Person > b.Person:
		t.Errorf("person %s after %s", b.Person, a.Person)
	case a.Person == b.Person:
		if b.Round != a.Round+1 {
			t.Errorf("%s: round %d after %d", b.Person, b.Round, a.Round)
		}
		if d := a.Invited.DaysUntil(b.Invited); d < 18*30-31 || d > 24*31+31 {
			t.Errorf("%s: invitations %s and %s are %d days apart, want 18–24 months", b.Person, a.Invited, b.Invited, d)
		}
		if a.Outcome == bildrum.OutcomeDCIS || a.Outcome == bildrum.OutcomeInvasive {
			t.Errorf("%s: invited again after a cancer on %s", b.Person, a.Diagnosed)
		}
	}
}

// checkEpisode checks one episode on its own.
func checkEpisode(t *testing.T, cfg Config, e bildrum.ScreeningEpisode) {
	t.Helper()
	if !episodeIDPattern.MatchString(e.ID) || !strings.HasPrefix(e.ID, e.Region+"-") || strings.Contains(e.ID, string(e.Person)[2:]) {
		t.Errorf("episode ID %q: want region-16 hex digits, without the personnummer", e.ID)
	}
	if age := e.Person.AgeAt(e.Invited.Time()); age < 40 || age > 74 {
		t.Errorf("%s: invited on %s at age %d, want 40–74", e.ID, e.Invited, age)
	}
	if e.Round < 1 {
		t.Errorf("%s: round %d", e.ID, e.Round)
	}
	if !unitOf(e.Region, e.Unit) {
		t.Errorf("%s: unit %q is not one of Units(%q)", e.ID, e.Unit, e.Region)
	}
	for _, d := range []bildrum.Date{e.Invited, e.Examined, e.ResultDay, e.Assessed, e.Diagnosed} {
		if !d.IsZero() && (cfg.To.Before(d) || d.Before(cfg.From)) {
			t.Errorf("%s: date %s outside the period %s to %s", e.ID, d, cfg.From, cfg.To)
		}
	}
	if !e.Attended {
		if notInvitationOnly(e) {
			t.Errorf("%s: not attended but has examination fields: %+v", e.ID, e)
		}
		return
	}
	if d := e.Invited.DaysUntil(e.Examined); d < 0 || d > 60 {
		t.Errorf("%s: examined %d days after the invitation, want 0–60", e.ID, d)
	}
	if strings.Join(e.Views, "+") != "RCC+LCC+RMLO+LMLO" {
		t.Errorf("%s: views %v", e.ID, e.Views)
	}
	if !e.ResultDay.IsZero() {
		if d := e.Examined.DaysUntil(e.ResultDay); d < 5 || d > 21 {
			t.Errorf("%s: result %d days after the exam, want 5–21", e.ID, d)
		}
		flags := func(b bildrum.BIRADS) bool { return b == "0" || b == "4" || b == "5" }
		if e.Recalled != flags(e.Consensus) || e.Recalled && !flags(e.Reader1) && !flags(e.Reader2) {
			t.Errorf("%s: recalled %v with readings %s/%s consensus %s", e.ID, e.Recalled, e.Reader1, e.Reader2, e.Consensus)
		}
	}
	if !e.Assessed.IsZero() {
		if d := e.Examined.DaysUntil(e.Assessed); !e.Recalled || d < 14 || d > 35+24 || !e.ResultDay.Before(e.Assessed) {
			t.Errorf("%s: assessed %d days after the exam (recalled %v, result %s)", e.ID, d, e.Recalled, e.ResultDay)
		}
	}
	checkDiagnosis(t, e)
}

// checkDiagnosis checks the outcome fields.
func checkDiagnosis(t *testing.T, e bildrum.ScreeningEpisode) {
	t.Helper()
	switch e.Outcome {
	case bildrum.OutcomeNone:
		if e.Detection != "" || !e.Diagnosed.IsZero() {
			t.Errorf("%s: no outcome but detection %q diagnosed %s", e.ID, e.Detection, e.Diagnosed)
		}
		return
	case bildrum.OutcomeBenign:
		if e.Detection != "" || !e.NeedleBiopsy && !e.OpenBiopsy {
			t.Errorf("%s: benign outcome without a biopsy, or with detection %q", e.ID, e.Detection)
		}
		return
	}
	switch e.Detection {
	case bildrum.DetectedAtScreen:
		if !e.Recalled || e.Assessed.IsZero() || e.IntervalMonths != 0 {
			t.Errorf("%s: screen-detected cancer without recall and assessment", e.ID)
		}
	case bildrum.DetectedInterval:
		if e.Recalled || e.IntervalMonths != wholeMonths(e.Examined, e.Diagnosed) || e.IntervalMonths < 1 || e.IntervalMonths > 23 {
			t.Errorf("%s: interval cancer %d months after exam %s, diagnosed %s", e.ID, e.IntervalMonths, e.Examined, e.Diagnosed)
		}
	default:
		t.Errorf("%s: cancer with detection %q", e.ID, e.Detection)
	}
	if e.Outcome == bildrum.OutcomeDCIS != (e.Stage == "0") || e.Outcome == bildrum.OutcomeDCIS != (e.TumourSizeMM == 0) {
		t.Errorf("%s: outcome %s with stage %q size %d", e.ID, e.Outcome, e.Stage, e.TumourSizeMM)
	}
}

// notInvitationOnly reports whether e holds anything beyond the invitation.
func notInvitationOnly(e bildrum.ScreeningEpisode) bool {
	inv := bildrum.ScreeningEpisode{ID: e.ID, Person: e.Person, Region: e.Region, Unit: e.Unit, Round: e.Round, Invited: e.Invited}
	return fmt.Sprint(inv) != fmt.Sprint(e)
}

func unitOf(region, code string) bool {
	for _, u := range Units(region) {
		if u.Code == code {
			return true
		}
	}
	return false
}

func allRegions() []string {
	var out []string
	for _, r := range bildrum.Regions() {
		out = append(out, r.Code)
	}
	return out
}

func TestRoundCountsFromAge40(t *testing.T) {
	eps, _ := generateAll(t, Config{})
	first := make(map[bildrum.PersonID]bildrum.ScreeningEpisode)
	for _, e := range eps {
		if _, ok := first[e.Person]; !ok {
			first[e.Person] = e
		}
	}
	checked := 0
	for id, e := range first {
		age := id.AgeAt(e.Invited.Time())
		interval := regionProfiles[e.Region].interval
		// Rounds since 40, give or take one for the jitter of the first date.
		want := 1 + (age-40)*12/interval
		if e.Round < want-1 || e.Round > want+2 {
			t.Errorf("%s: first invitation at %d in region %s is round %d, want about %d", id, age, e.Region, e.Round, want)
		}
		if age >= 56 {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no woman of 56 or more at her first invitation")
	}
}

func TestGenerateStopsOnEmitError(t *testing.T) {
	errStop := errors.New("disk full")
	calls := 0
	_, err := Generate(context.Background(), Config{}, func(bildrum.ScreeningEpisode) error {
		calls++
		if calls == 10 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || calls != 10 {
		t.Fatalf("Generate with failing emit = %v after %d calls, want %v after 10", err, calls, errStop)
	}
}

func TestGenerateStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := Generate(ctx, Config{}, func(bildrum.ScreeningEpisode) error {
		calls++
		if calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls > 30 {
		t.Fatalf("Generate cancelled = %v after %d calls, want context.Canceled soon after 10", err, calls)
	}
}

func TestHistoryIndependentOfPopulation(t *testing.T) {
	// A woman's episodes depend on the seed, her number and her region only,
	// not on who else is in the population.
	histories := func(cfg Config) map[bildrum.PersonID]string {
		eps, _ := generateAll(t, cfg)
		out := make(map[bildrum.PersonID]string)
		for _, e := range eps {
			out[e.Person] += fmt.Sprintf("%+v\n", e)
		}
		return out
	}
	small := histories(Config{Seed: 1, Regions: []string{"12"}})
	large := histories(Config{Seed: 1, Regions: []string{"12"}, Generate: 1000})
	if len(large) != len(small)+1000 {
		t.Fatalf("%d women with the generated ones, want %d", len(large), len(small)+1000)
	}
	for id, h := range small {
		if large[id] != h {
			t.Errorf("%s: history changed when others were added:\n%s\nwant\n%s", id, large[id], h)
		}
	}
}

// TestTablesCoverEveryRegion checks that every region has a profile and
// units, so that any valid Config can be generated.
func TestTablesCoverEveryRegion(t *testing.T) {
	if len(regionProfiles) != len(bildrum.Regions()) || len(regionUnits) != len(bildrum.Regions()) {
		t.Errorf("%d profiles and %d unit lists, want %d each", len(regionProfiles), len(regionUnits), len(bildrum.Regions()))
	}
	codes := make(map[string]bool)
	for _, r := range bildrum.Regions() {
		p, ok := regionProfiles[r.Code]
		if !ok || p.population <= 0 || p.attendance < 0.5 || p.attendance > 0.9 || p.interval < 18 || p.interval > 24 || p.recall < 0.02 || p.recall > 0.04 {
			t.Errorf("region %s: profile %+v out of the national ranges", r.Code, p)
		}
		units := Units(r.Code)
		if len(units) == 0 {
			t.Errorf("Units(%q) is empty", r.Code)
		}
		for _, u := range units {
			if !strings.HasPrefix(u.Code, r.Code+"-") || len(u.Code) != 6 || u.Name == "" || codes[u.Code] {
				t.Errorf("Units(%q) holds %+v: want a unique code %s-XXX and a name", r.Code, u, r.Code)
			}
			codes[u.Code] = true
		}
	}
	if Units("02") != nil {
		t.Errorf("Units(%q) = %v, want nil", "02", Units("02"))
	}
}

// TestGenerateNumbersAvoidTaken fills most of a short period's numbers and
// checks that no generated number repeats a taken one or another.
func TestGenerateNumbersAvoidTaken(t *testing.T) {
	cfg, err := withDefaults(Config{Seed: 8, From: date(2020, 1, 1), To: date(2020, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Generate = 100000
	first, err := generateNumbers(cfg, make(map[bildrum.PersonID]bool))
	if err != nil {
		t.Fatal(err)
	}
	taken := make(map[bildrum.PersonID]bool)
	for _, id := range first[:len(first)/2] {
		taken[id] = true
	}
	was := make(map[bildrum.PersonID]bool)
	for id := range taken {
		was[id] = true
	}
	second, err := generateNumbers(cfg, taken)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[bildrum.PersonID]bool)
	for _, id := range second {
		if was[id] || seen[id] {
			t.Fatalf("generated %s again", id)
		}
		seen[id] = true
		if !screeningAgeWithin(bildrum.DateOf(id.BirthDate()), cfg.From, cfg.To) {
			t.Fatalf("generated %s is not 40–74 on %s", id, cfg.From)
		}
	}
	if len(second) != cfg.Generate {
		t.Errorf("generated %d numbers, want %d", len(second), cfg.Generate)
	}
}
