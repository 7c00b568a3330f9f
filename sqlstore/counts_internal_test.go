package sqlstore

import (
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
