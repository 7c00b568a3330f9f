package query

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/google/go-cmp/cmp"
)

func TestParseCriteria(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // canonical form
	}{
		{"the issue's example",
			`{"purpose":"research","regions":["12","14"],"age":{"min":50,"max":69},"exam_date":{"from":"2020-01-01","to":"2024-12-31"},"birads":["4","5"],"density":["c","d"]}`,
			`{"purpose":"research","regions":["12","14"],"age":{"min":50,"max":69},"exam_date":{"from":"2020-01-01","to":"2024-12-31"},"birads":["4","5"],"density":["c","d"],"unit":"women"}`},
		{"only a purpose", `{"purpose":"statistics"}`, `{"purpose":"statistics","unit":"women"}`},
		{"sets sorted without duplicates",
			`{"purpose":"research","regions":["14","12","14"],"birads":["5","4","5"],"views":["RMLO","LCC"],"outcomes":["interval_cancer","benign"],"nodal_status":["positive","negative"]}`,
			`{"purpose":"research","regions":["12","14"],"birads":["4","5"],"outcomes":["benign","interval_cancer"],"nodal_status":["negative","positive"],"views":["LCC","RMLO"],"unit":"women"}`},
		{"empty criteria dropped", `{"purpose":"research","age":{},"exam_date":{"from":null,"to":null},"regions":[],"tumour_size_mm":{"min":0,"max":0}}`,
			`{"purpose":"research","unit":"women"}`},
		{"open ranges", `{"purpose":"research","age":{"min":50},"exam_date":{"to":"2019-12-31"},"tumour_size_mm":{"max":20}}`,
			`{"purpose":"research","age":{"min":50},"exam_date":{"from":null,"to":"2019-12-31"},"tumour_size_mm":{"max":20},"unit":"women"}`},
		{"every criterion",
			`{"unit":"examinations","purpose":"quality","round":"first","tumour_size_mm":{"min":10,"max":20},"outcomes":["screen_detected_invasive","screen_detected_dcis"],"views":["RCC","LCC","RMLO","LMLO"]}`,
			`{"purpose":"quality","round":"first","outcomes":["screen_detected_dcis","screen_detected_invasive"],"tumour_size_mm":{"min":10,"max":20},"views":["LCC","LMLO","RCC","RMLO"],"unit":"examinations"}`},
		{"white space", " \n{ \"purpose\" : \"innovation\" }\n ", `{"purpose":"innovation","unit":"women"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCriteria([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseCriteria(%s): %v", tt.in, err)
			}
			if got := string(c.Canonical()); got != tt.want {
				t.Errorf("ParseCriteria(%s).Canonical() =\n%s\nwant\n%s", tt.in, got, tt.want)
			}
			again, err := ParseCriteria(c.Canonical())
			if err != nil || !cmp.Equal(again, c) {
				t.Errorf("the canonical form does not parse back to the same criteria: %+v, %v", again, err)
			}
		})
	}
}

func TestParseCriteriaRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string // part of the message
	}{
		{"empty", ``, "not valid JSON"},
		{"not an object", `["research"]`, "want a JSON object"},
		{"null", `null`, "purpose: name the secondary purpose"},
		{"no purpose", `{"regions":["12"]}`, "purpose: name the secondary purpose"},
		{"unknown purpose", `{"purpose":"marketing"}`, `unknown purpose "marketing"`},
		{"care", `{"purpose":"care"}`, "care is primary use"},
		{"recruitment", `{"purpose":"recruitment"}`, "recruitment (trial contact) is opt-in"},
		{"unknown member", `{"purpose":"research","sex":"female"}`, `unknown member "sex": use purpose, regions`},
		{"member in another case", `{"Purpose":"research"}`, `unknown member "Purpose"`},
		{"unknown nested member", `{"purpose":"research","age":{"from":50}}`, `unknown member "age.from": use min, max`},
		{"unknown date member", `{"purpose":"research","exam_date":{"start":"2020-01-01"}}`, `unknown member "exam_date.start": use from, to`},
		{"age upside down", `{"purpose":"research","age":{"min":70,"max":50}}`, "age: min 70 is above max 50"},
		{"negative age", `{"purpose":"research","age":{"min":-1}}`, "age: min and max must lie between 0 and 130"},
		{"age beyond life", `{"purpose":"research","age":{"max":200}}`, "between 0 and 130"},
		{"age as text", `{"purpose":"research","age":{"min":"50"}}`, "age.min: want a whole number"},
		{"fractional age", `{"purpose":"research","age":{"min":50.5}}`, "age.min: want a whole number"},
		{"dates upside down", `{"purpose":"research","exam_date":{"from":"2024-01-01","to":"2020-01-01"}}`, "from 2024-01-01 is after to 2020-01-01"},
		{"bad date", `{"purpose":"research","exam_date":{"from":"2020-02-30"}}`, `date "2020-02-30": want YYYY-MM-DD`},
		{"date as number", `{"purpose":"research","exam_date":{"from":20200101}}`, "date: want a string"},
		{"unknown region", `{"purpose":"research","regions":["99"]}`, `unknown region "99"`},
		{"region as number", `{"purpose":"research","regions":[12]}`, "regions: want a string"},
		{"unknown round", `{"purpose":"research","round":"second"}`, `round "second": use first`},
		{"unknown birads", `{"purpose":"research","birads":["7"]}`, `birads: unknown value "7": use 0, 1, 2, 3, 4, 5, 6`},
		{"birads as number", `{"purpose":"research","birads":[4]}`, "birads: want a string"},
		{"unknown density", `{"purpose":"research","density":["e"]}`, `density: unknown value "e"`},
		{"unknown outcome", `{"purpose":"research","outcomes":["cancer"]}`, `outcomes: unknown value "cancer": use benign, interval_cancer`},
		{"unknown nodal status", `{"purpose":"research","nodal_status":["unknown"]}`, `nodal_status: unknown value "unknown"`},
		{"unknown view", `{"purpose":"research","views":["XCCL"]}`, `views: unknown value "XCCL": use RCC, LCC, RMLO, LMLO`},
		{"tumour upside down", `{"purpose":"research","tumour_size_mm":{"min":30,"max":10}}`, "tumour_size_mm: min 30 is above max 10"},
		{"unknown unit", `{"purpose":"research","unit":"persons"}`, `unit "persons": count women`},
		{"trailing data", `{"purpose":"research"} {"purpose":"research"}`, "more data after the criteria object"},
		{"too large", `{"purpose":"research","regions":[` + strings.Repeat(`"12",`, 5000) + `"12"]}`, "more than the 16384 allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCriteria([]byte(tt.in))
			if bildrum.ErrorCode(err) != bildrum.EINVALID || !strings.Contains(bildrum.ErrorMessage(err), tt.msg) {
				t.Errorf("ParseCriteria(%.80s) = %+v, %v; want EINVALID with %q", tt.in, c, err, tt.msg)
			}
		})
	}
}

// TestQueryHash: one question, one hash, whatever the order, duplicates
// or regions; another question, another hash.
func TestQueryHash(t *testing.T) {
	hash := func(s string) string {
		t.Helper()
		c, err := ParseCriteria([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c.Hash()
	}
	base := hash(`{"purpose":"research","age":{"min":50,"max":69},"density":["c","d"]}`)
	for _, same := range []string{
		`{"density":["d","c","d"],"age":{"max":69,"min":50},"purpose":"research"}`,
		`{"purpose":"research","age":{"min":50,"max":69},"density":["c","d"],"regions":["12"]}`,
		`{"purpose":"research","age":{"min":50,"max":69},"density":["c","d"],"unit":"women","birads":[]}`,
	} {
		if got := hash(same); got != base {
			t.Errorf("hash(%s) = %s, want %s as for the same question", same, got, base)
		}
	}
	for _, other := range []string{
		`{"purpose":"statistics","age":{"min":50,"max":69},"density":["c","d"]}`,
		`{"purpose":"research","age":{"min":50,"max":70},"density":["c","d"]}`,
		`{"purpose":"research","age":{"min":50,"max":69},"density":["c"]}`,
		`{"purpose":"research","age":{"min":50,"max":69},"density":["c","d"],"unit":"examinations"}`,
	} {
		if got := hash(other); got == base {
			t.Errorf("hash(%s) = %s, the hash of another question", other, got)
		}
	}
	if len(base) != 64 {
		t.Errorf("hash %q is not hex SHA-256", base)
	}
}

// FuzzParseCriteria: no input panics; every error is EINVALID; whatever
// parses has a canonical form that parses to itself, with the same hash.
func FuzzParseCriteria(f *testing.F) {
	for _, s := range []string{
		`{"purpose":"research","regions":["12","14"],"age":{"min":50,"max":69},"exam_date":{"from":"2020-01-01","to":"2024-12-31"},"birads":["4","5"],"density":["c","d"]}`,
		`{"purpose":"quality","round":"first","tumour_size_mm":{"min":10,"max":20},"outcomes":["screen_detected_invasive"],"views":["RCC"],"unit":"examinations","nodal_status":["positive"]}`,
		`{"purpose":"research","age":{"min":-5}}`,
		`{"purpose":"research","Age":{}}`,
		`{"purpose":"research","exam_date":{"from":"2020-02-29","to":null}}`,
		`{"purpose":"research'; DROP TABLE episodes; --"}`,
		`{"purpose":"research","regions":["12\u0000"]}`,
		`{"purpose":"research"}garbage`,
		`[]`, `null`, `{}`, `"research"`, `{"purpose":"research","age":{"min":1e400}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCriteria(data)
		if err != nil {
			if bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Fatalf("ParseCriteria(%q) error %v is not EINVALID", data, err)
			}
			return
		}
		canon := c.Canonical()
		again, err := ParseCriteria(canon)
		if err != nil {
			t.Fatalf("canonical form %s of %q does not parse: %v", canon, data, err)
		}
		if !bytes.Equal(again.Canonical(), canon) || again.Hash() != c.Hash() {
			t.Fatalf("canonical form of %q is not stable: %s then %s", data, canon, again.Canonical())
		}
		if c.Purpose == bildrum.PurposeCare || c.Purpose == bildrum.PurposeRecruitment || c.Unit == "" {
			t.Fatalf("ParseCriteria(%q) accepted %+v", data, c)
		}
	})
}
