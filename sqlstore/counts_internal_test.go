package sqlstore

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCalendar checks the day arithmetic of the counts against package time,
// every day from 1800 to 2200.
func TestCalendar(t *testing.T) {
	epoch := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2200; d = d.AddDate(0, 0, 1) {
		ymd := int32(d.Year()*10000 + int(d.Month())*100 + d.Day())
		n := int64(d.Sub(epoch).Hours() / 24)
		if got := dayOf(ymd); got != n {
			t.Fatalf("dayOf(%d) = %d, want %d", ymd, got, n)
		}
		if y, m, dd := civil(n); int32(y*10000+m*100+dd) != ymd {
			t.Fatalf("civil(%d) = %d-%d-%d, want %d", n, y, m, dd, ymd)
		}
		// ymdOfDay counts from 1800-01-01 as 1, through its table.
		if got := ymdOfDay(n - dayOf(18000101) + 1); got != ymd {
			t.Fatalf("ymdOfDay of %d = %d", ymd, got)
		}
	}
	// Beyond the table, the arithmetic.
	if got := ymdOfDay(dayOf(22500315) - dayOf(18000101) + 1); got != 22500315 {
		t.Errorf("ymdOfDay beyond the table = %d, want 22500315", got)
	}
	if got := ymdOfDay(1); got != 18000101 {
		t.Errorf("ymdOfDay(1) = %d, want 18000101", got)
	}
	if got := ymdOfDay(0); got != 0 {
		t.Errorf("ymdOfDay(0) = %d, want 0 (no date)", got)
	}
}

func TestDecodeDates(t *testing.T) {
	// 1950-01-09 and 2021-05-10, 2021-06-01 and no result.
	f, err := decodeSQLiteDates(19500109*(1<<25)+20210510, 20210601*(1<<25))
	if err != nil || f != (facts{birth: 19500109, invited: 20210510, examined: 20210601}) {
		t.Errorf("decodeSQLiteDates = %+v, %v", f, err)
	}
	day := func(ymd int32) int64 { return dayOf(ymd) - dayOf(18000101) + 1 }
	f, err = decodePostgresDates(day(19500109)<<20+day(20210510), day(20210601)<<20+day(20210608))
	if err != nil || f != (facts{birth: 19500109, invited: 20210510, examined: 20210601, result: 20210608}) {
		t.Errorf("decodePostgresDates = %+v, %v", f, err)
	}
	if _, err := decodeSQLiteDates(20210510, 0); err == nil {
		t.Errorf("decodeSQLiteDates without a birth date: no error")
	}
	if _, err := decodePostgresDates(-1, 0); err == nil {
		t.Errorf("decodePostgresDates(-1): no error")
	}
}

// TestFactsQueryPlan checks that SQLite reads the facts of the counts from
// the expression indexes of migration 0007 and nothing else: the
// expressions of sqliteFactsQuery and of the migration must match exactly.
func TestFactsQueryPlan(t *testing.T) {
	d, err := Open(t.Context(), filepath.Join(t.TempDir(), "node.db"), PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqliteFactsQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	want := []string{
		"SCAN p USING COVERING INDEX persons_quality",
		"SEARCH e USING COVERING INDEX episodes_quality (person_id=?)",
	}
	if !slices.Equal(plan, want) {
		t.Errorf("plan of sqliteFactsQuery = %q, want %q: keep its expressions those of the indexes in migration 0007", plan, want)
	}
}

// BenchmarkTally measures the Go side of a count, tallying and decoding
// dates, apart from the database: 100,000 women of four episodes each.
func BenchmarkTally(b *testing.B) {
	day := func(ymd int32) int64 { return dayOf(ymd) - dayOf(18000101) + 1 }
	type row struct{ d1, d2, flags int64 }
	var rows []row
	for w := range 100000 {
		birth := int32(19400101 + (w%40)*10000 + (w%12)*100 + w%28)
		for r := range 4 {
			inv := int32(20140115 + r*20000 + (w%12)*100)
			rows = append(rows, row{day(birth)<<20 + day(inv), day(inv+14)<<20 + day(inv+21), int64(flagAttended | (w%3)*flagRecalled)})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		t := newTally()
		for i, r := range rows {
			if i%4 == 0 {
				t.endWoman()
			}
			f, err := decodePostgresDates(r.d1, r.d2)
			if err != nil {
				b.Fatal(err)
			}
			f.flags = uint32(r.flags)
			t.woman = append(t.woman, f)
		}
		t.endWoman()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/episode")
}
