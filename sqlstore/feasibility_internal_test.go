package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
)

// TestAgeKeyMatchesGo evaluates the SQL age key of both engines for
// identity numbers of every form bildrum.PersonID.BirthDate reads (a
// samordningsnummer's day + 60, its month or day 00, 29 February) on
// examination days around each birthday, against bildrum.AgeAt. The
// numbers are strings evaluated in SQL, not stored records.
func TestAgeKeyMatchesGo(t *testing.T) {
	ids := []string{
		"19500118204", "19600229123", "19640229123", // personnummer, two born on 29 February
		"19500172204", "19501289123", // samordningsnummer: day + 60
		"19500069238", "19500060238", "19501260238", "19500072238", // month 00, day 00 (60), both
	}
	var cases []struct {
		id   bildrum.PersonID
		exam bildrum.Date
	}
	for _, prefix := range ids {
		id := bildrum.WithCheckDigit(prefix)
		if _, err := bildrum.ParsePersonID(string(id)); err != nil {
			t.Fatalf("fixture %s: %v", id, err)
		}
		birth := bildrum.DateOf(id.BirthDate())
		for _, years := range []int{40, 50, 69, 70} {
			day := birth.AddMonths(12 * years)
			for _, d := range []int{-1, 0, 1} {
				cases = append(cases, struct {
					id   bildrum.PersonID
					exam bildrum.Date
				}{id, day.AddDays(d)})
			}
		}
		// A 29 February examination, and the days around it.
		for _, exam := range []bildrum.Date{{Year: 2012, Month: 2, Day: 28}, {Year: 2012, Month: 2, Day: 29}, {Year: 2012, Month: 3, Day: 1}, {Year: 2013, Month: 2, Day: 28}, {Year: 2013, Month: 3, Day: 1}} {
			cases = append(cases, struct {
				id   bildrum.PersonID
				exam bildrum.Date
			}{id, exam})
		}
	}
	engines := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "age.db") }},
		{"PostgreSQL", func(t *testing.T) string { return testenv.Postgres(t) }},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			d, err := Open(context.Background(), e.dsn(t), PartNode)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			row := `(SELECT CAST(? AS TEXT) AS person_id, CAST(? AS TEXT) AS exam_date) t`
			if d.dialect == postgresDialect {
				row = `(SELECT CAST(? AS TEXT) AS person_id, CAST(? AS DATE) AS exam_date) t`
			}
			q := d.rebind(`SELECT ` + d.ageKey() + ` FROM ` + row)
			for _, c := range cases {
				var key int
				if err := d.db.QueryRowContext(context.Background(), q, string(c.id), c.exam.String()).Scan(&key); err != nil {
					t.Fatal(err)
				}
				if got, want := key/10000, c.id.AgeAt(c.exam.Time()); got != want {
					t.Errorf("age of %s (born %s) on %s: SQL %d (key %d), Go %d", c.id, bildrum.DateOf(c.id.BirthDate()), c.exam, got, key, want)
				}
			}
		})
	}
}

// TestCountReadsOnlyItsIndex checks, on SQLite, that every kind of count
// is one scan of the covering index episodes_feasibility: the age key in
// the query is spelt as in the index, and no criterion needs the table.
func TestCountReadsOnlyItsIndex(t *testing.T) {
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "plan.db"), PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	all := bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 50, Max: 69},
		ExamDate: &bildrum.DateRange{From: bildrum.Date{Year: 2020, Month: 1, Day: 1}, To: bildrum.Date{Year: 2024, Month: 12, Day: 31}},
		Round:    bildrum.RoundSubsequent, BIRADS: []bildrum.BIRADS{"4"}, Density: []bildrum.Density{"d"},
		Outcomes:     []bildrum.Finding{bildrum.FindingScreenInvasive, bildrum.FindingInterval, bildrum.FindingBenign},
		TumourSizeMM: &bildrum.IntRange{Min: 5, Max: 20}, NodalStatus: []string{"positive"}, Views: []string{"RCC"}}
	for _, c := range []bildrum.Criteria{{Purpose: "research"}, all, {Purpose: "research", Unit: bildrum.UnitExaminations, Age: &bildrum.IntRange{Min: 40}}} {
		c, err := c.Check()
		if err != nil {
			t.Fatal(err)
		}
		q, args, err := d.countQuery(c, 10)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := d.db.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "SCAN e USING COVERING INDEX episodes_feasibility") || strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("plan of %s:\n%s\nwant one scan of the covering index episodes_feasibility, no sorting", c.Canonical(), text)
		}
	}
}

func ExampleDB_countQuery() {
	d := &DB{dialect: postgresDialect}
	c, _ := bildrum.Criteria{Purpose: "research", Age: &bildrum.IntRange{Min: 50}, Density: []bildrum.Density{"d", "c"}}.Check()
	q, args, _ := d.countQuery(c, 10)
	fmt.Println(strings.Join(strings.Fields(strings.ReplaceAll(q, postgresAgeKey, "<age key>")), " "))
	fmt.Println(args...)
	// Output:
	// SELECT CAST(COUNT(*) AS BIGINT) FROM ( SELECT e.person_id AS person_id, COUNT(*) AS n FROM episodes e WHERE e.attended AND e.exam_date IS NOT NULL AND <age key> >= $1 AND e.density IN ($2, $3) GROUP BY e.person_id ) m WHERE NOT EXISTS (SELECT 1 FROM consent_replica_optout o WHERE o.person_id = m.person_id AND o.purpose = $4)
	// 500000 c d research
}
