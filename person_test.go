package bildrum_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
)

func TestParsePersonID(t *testing.T) {
	tests := []struct {
		in       string
		want     bildrum.PersonID
		wantErr  string
		female   bool
		coord    bool
		birthday string
	}{
		{in: "195001182046", want: "195001182046", female: true, birthday: "1950-01-18"},
		{in: "19500118-2046", want: "195001182046", female: true, birthday: "1950-01-18"},
		{in: "189001019802", want: "189001019802", female: true, birthday: "1890-01-01"},
		{in: "191401682396", want: "191401682396", coord: true, female: false, birthday: "1914-01-08"},
		{in: "201900772383", want: "201900772383", coord: true, female: true, birthday: "2019-01-17"},
		{in: "195001182047", wantErr: "check digit"},
		{in: "19500118204", wantErr: "want 12 digits"},
		{in: "1950011820466", wantErr: "want 12 digits"},
		{in: "19501318204x", wantErr: "only digits"},
		{in: "195013182046", wantErr: "not a valid date"},
		{in: "", wantErr: "want 12 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bildrum.ParsePersonID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(bildrum.ErrorMessage(err), tt.wantErr) || bildrum.ErrorCode(err) != bildrum.EINVALID {
					t.Fatalf("ParsePersonID(%q) = %v, %v; want EINVALID containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePersonID(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.Female() != tt.female || got.IsCoordinationNumber() != tt.coord {
				t.Errorf("%v: Female %v coordination %v, want %v %v", got, got.Female(), got.IsCoordinationNumber(), tt.female, tt.coord)
			}
			if b := bildrum.DateOf(got.BirthDate()).String(); b != tt.birthday {
				t.Errorf("%v.BirthDate() = %s, want %s", got, b, tt.birthday)
			}
		})
	}
}

// TestOfficialTestNumbersParse checks our check-digit rule against every
// number of Skatteverket's official lists.
func TestOfficialTestNumbersParse(t *testing.T) {
	for _, name := range []string{"skatteverket_test_personnummer.txt", "skatteverket_test_samordningsnummer.txt"} {
		f, err := os.Open("synth/data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if _, err := bildrum.ParsePersonID(line); err != nil {
				t.Errorf("official number %s rejected: %v", line, err)
			}
			if want := bildrum.WithCheckDigit(line[:11]); string(want) != line {
				t.Errorf("WithCheckDigit(%s) = %s, want %s", line[:11], want, line)
			}
			n++
		}
		if n < 2000 {
			t.Errorf("%s: only %d numbers read", name, n)
		}
	}
}

func TestAgeAt(t *testing.T) {
	id := bildrum.PersonID("195001182046")
	tests := []struct {
		on   string
		want int
	}{{"2000-01-17", 49}, {"2000-01-18", 50}, {"2024-12-31", 74}, {"2025-01-18", 75}}
	for _, tt := range tests {
		d, _ := time.Parse(bildrum.DateLayout, tt.on)
		if got := id.AgeAt(d); got != tt.want {
			t.Errorf("AgeAt(%s) = %d, want %d", tt.on, got, tt.want)
		}
	}
}

func FuzzParsePersonID(f *testing.F) {
	for _, s := range []string{"195001182046", "19500118-2046", "191401682396", "", "0000000000000", "1950011+2046"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := bildrum.ParsePersonID(s)
		if err != nil {
			return
		}
		again, err := bildrum.ParsePersonID(string(id))
		if err != nil || again != id {
			t.Fatalf("canonical form %q of %q does not parse to itself: %v, %v", id, s, again, err)
		}
		if id.BirthDate().IsZero() {
			t.Fatalf("valid %q has no birth date", id)
		}
	})
}
