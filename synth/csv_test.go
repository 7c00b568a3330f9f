package synth

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bildrum/bildrum"
)

// TestEpisodeCSVHeader checks the header against the JSON names of
// bildrum.ScreeningEpisode, so that a new or renamed field fails here.
func TestEpisodeCSVHeader(t *testing.T) {
	typ := reflect.TypeFor[bildrum.ScreeningEpisode]()
	var want []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		want = append(want, name)
	}
	if got := EpisodeCSVHeader(); !slices.Equal(got, want) {
		t.Errorf("EpisodeCSVHeader() = %v, want %v", got, want)
	}
}

// TestEpisodeCSVRecord encodes episodes of official test numbers.
func TestEpisodeCSVRecord(t *testing.T) {
	d := func(s string) bildrum.Date {
		v, err := bildrum.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
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
			rec := EpisodeCSVRecord(tt.e)
			if len(rec) != len(EpisodeCSVHeader()) {
				t.Fatalf("EpisodeCSVRecord has %d fields, header %d", len(rec), len(EpisodeCSVHeader()))
			}
			if got := strings.Join(rec, "|"); got != tt.want {
				t.Errorf("EpisodeCSVRecord(%s) =\n%s\nwant\n%s", tt.name, got, tt.want)
			}
		})
	}
}

// BenchmarkGenerate measures episodes per second, official numbers only and
// with a benchmark population.
func BenchmarkGenerate(b *testing.B) {
	benchmarks := []struct {
		name string
		cfg  Config
	}{
		{"official", Config{}},
		{"generate-20000", Config{Generate: 20000}},
	}
	for _, bb := range benchmarks {
		b.Run(bb.name, func(b *testing.B) {
			episodes := 0
			for b.Loop() {
				_, err := Generate(context.Background(), bb.cfg, func(bildrum.ScreeningEpisode) error {
					episodes++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(episodes)/b.Elapsed().Seconds(), "episodes/s")
		})
	}
}
