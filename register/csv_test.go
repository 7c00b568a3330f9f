package register

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
)

// TestCSVHeader checks the header against the JSON names of
// bildrum.ScreeningEpisode, so that a new or renamed field fails here.
func TestCSVHeader(t *testing.T) {
	typ := reflect.TypeFor[bildrum.ScreeningEpisode]()
	var want []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		want = append(want, name)
	}
	if got := CSVHeader(); !slices.Equal(got, want) {
		t.Errorf("CSVHeader() = %v, want %v", got, want)
	}
}

func date(t testing.TB, s string) bildrum.Date {
	t.Helper()
	v, err := bildrum.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCSVRecord encodes episodes of official test numbers.
func TestCSVRecord(t *testing.T) {
	d := func(s string) bildrum.Date { return date(t, s) }
	tests := []struct {
		name string
		e    bildrum.ScreeningEpisode
		want string // the record joined with '|'
	}{
		{
			name: "not attended",
			e:    bildrum.ScreeningEpisode{ID: "12-00aa", Person: "194701124622", Region: "12", Unit: "12-MAL", Round: 9, Invited: d("2015-04-01")},
			want: "12-00aa|194701124622|12|12-MAL|9|2015-04-01|0||0||||||0|||0|0|0|0||||||||0|",
		},
		{
			name: "screen-detected invasive",
			e: bildrum.ScreeningEpisode{ID: "14-ff01", Person: "195501142284", Region: "14", Unit: "14-SAH", Round: 3, Invited: d("2016-02-29"),
				Attended: true, Examined: d("2016-03-10"), TechnicalRepeat: true, Views: bildrum.StandardViews(),
				Reader1: "4", Reader2: "1", Consensus: "4", Density: "c", Recalled: true, ResultDay: d("2016-03-20"),
				Assessed: d("2016-04-01"), AdditionalImaging: true, Ultrasound: true, NeedleBiopsy: true, AssessmentBIRADS: "5",
				Outcome: bildrum.OutcomeInvasive, Detection: bildrum.DetectedAtScreen, Diagnosed: d("2016-04-08"), TumourSizeMM: 12,
				NodalStatus: bildrum.NodesNegative, Stage: "I", PreopDiagnosis: true},
			want: "14-ff01|195501142284|14|14-SAH|3|2016-02-29|1|2016-03-10|1|RCC+LCC+RMLO+LMLO|4|1|4|c|1|2016-03-20|2016-04-01|1|1|1|0|5|invasive|screen|2016-04-08|12|negative|I|1|",
		},
		{
			name: "interval cancer",
			e: bildrum.ScreeningEpisode{ID: "01-0001", Person: "196001062626", Region: "01", Unit: "01-SOS", Round: 1, Invited: d("2014-01-02"),
				Attended: true, Examined: d("2014-01-10"), Views: bildrum.StandardViews(), Reader1: "1", Reader2: "2", Consensus: "2", Density: "d",
				ResultDay: d("2014-01-20"), Outcome: bildrum.OutcomeInvasive, Detection: bildrum.DetectedInterval, Diagnosed: d("2015-03-01"),
				TumourSizeMM: 25, NodalStatus: bildrum.NodesPositive, Stage: "II", IntervalMonths: 13},
			want: "01-0001|196001062626|01|01-SOS|1|2014-01-02|1|2014-01-10|0|RCC+LCC+RMLO+LMLO|1|2|2|d|0|2014-01-20||0|0|0|0||invasive|interval|2015-03-01|25|positive|II|0|13",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := CSVRecord(tt.e)
			if len(rec) != len(CSVHeader()) {
				t.Fatalf("CSVRecord has %d fields, header %d", len(rec), len(CSVHeader()))
			}
			if got := strings.Join(rec, "|"); got != tt.want {
				t.Errorf("CSVRecord(%s) =\n%s\nwant\n%s", tt.name, got, tt.want)
			}
			// parseRow reads the record back to the same episode.
			c := newChecker(tt.e.Region, date(t, "2026-01-01").Time())
			var p problems
			var got bildrum.ScreeningEpisode
			checkRaw(rec, &p)
			c.parseRow(rec, &got, &p)
			if len(p.list) > 0 {
				t.Fatalf("parseRow(CSVRecord(%s)): %v", tt.name, p.list)
			}
			if !reflect.DeepEqual(got, tt.e) {
				t.Errorf("parseRow(CSVRecord(%s)) = %+v, want %+v", tt.name, got, tt.e)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    string // the date, or a part of the message
		wantErr bool
	}{
		{"2024-02-29", "2024-02-29", false},
		{"2021-02-30", "February 2021 has 28 days", true},
		{"2023-04-31", "April 2023 has 30 days", true},
		{"2023-13-01", "there is no month 13", true},
		{"2023-00-10", "there is no month 0", true},
		{"2023-01-00", "January 2023 has 31 days", true},
		{"15/03/2024", "not a date written YYYY-MM-DD", true},
		{"2024-3-15", "not a date written YYYY-MM-DD", true},
		{"0201-03-15", "the year 201 is not plausible", true},
		{"２０２４-03-15", "not a date written YYYY-MM-DD", true},
	}
	for _, tt := range tests {
		d, msg := parseDate(tt.in)
		switch {
		case tt.wantErr && !strings.Contains(msg, tt.want):
			t.Errorf("parseDate(%q) message = %q, want it to contain %q", tt.in, msg, tt.want)
		case !tt.wantErr && (msg != "" || d.String() != tt.want):
			t.Errorf("parseDate(%q) = %v, %q; want %s", tt.in, d, msg, tt.want)
		}
	}
}

func TestWriteCSVStopsAtSequenceError(t *testing.T) {
	boom := errors.New("boom")
	e := bildrum.ScreeningEpisode{ID: "12-1", Person: "195001182046", Region: "12", Unit: "12-MAL", Round: 1, Invited: date(t, "2020-01-01")}
	var buf bytes.Buffer
	err := WriteCSV(&buf, func(yield func(bildrum.ScreeningEpisode, error) bool) {
		if yield(e, nil) {
			yield(bildrum.ScreeningEpisode{}, boom)
		}
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteCSV = %v, want %v", err, boom)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 2 {
		t.Errorf("WriteCSV wrote %d lines before the error, want header and one row:\n%s", lines, buf.String())
	}
}
