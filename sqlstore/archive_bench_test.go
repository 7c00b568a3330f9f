package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
)

// benchInstances returns one instance per study for n studies of n/4
// women, spread over five years.
func benchInstances(n int) []bildrum.Instance {
	out := make([]bildrum.Instance, n)
	for i := range out {
		day := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%1800)
		uid := fmt.Sprintf("2.25.%d", 1000000+i)
		out[i] = bildrum.Instance{
			Study: bildrum.Study{
				Patient:          bildrum.Patient{ID: fmt.Sprintf("P%06d", i/4), Name: fmt.Sprintf("Bench%05d^Anna", i/4), BirthDate: "19600101", Sex: "F"},
				StudyInstanceUID: uid, StudyDate: day.Format("20060102"), StudyTime: "101500", AccessionNumber: fmt.Sprintf("B%06d", i),
			},
			Series:         bildrum.Series{SeriesInstanceUID: uid + ".1", Modality: "MG"},
			SOPClassUID:    "1.2.840.10008.5.1.4.1.1.1.2",
			SOPInstanceUID: uid + ".1.1",
			Object:         bildrum.Object{Key: "k" + uid, SHA256: uid, Size: 1},
		}
	}
	return out
}

// BenchmarkSearchStudies measures the viewer's searches at two archive
// sizes: the time per search must not grow with the archive.
func BenchmarkSearchStudies(b *testing.B) {
	ctx := context.Background()
	for _, e := range engines {
		for _, size := range []int{2500, 10000} {
			b.Run(fmt.Sprintf("%s/%d", e.name, size), func(b *testing.B) {
				db, err := sqlstore.Open(ctx, e.dsn(b), sqlstore.PartNode)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				all := benchInstances(size)
				for start := 0; start < size; start += 1000 {
					if _, err := db.PutInstances(ctx, all[start:min(size, start+1000)]); err != nil {
						b.Fatal(err)
					}
				}
				queries := []bildrum.ImageQuery{
					{PatientID: "P000123"},
					{AccessionNumber: "B000777"},
					{PatientName: "BENCH0012*"},
					{StudyDate: bildrum.Range{From: "20220301", To: "20220303"}, Limit: 101},
					{PatientID: "P000321", ModalitiesInStudy: []string{"MG"}},
				}
				for _, q := range queries {
					b.Run(queryName(q), func(b *testing.B) {
						for b.Loop() {
							if _, _, err := db.SearchStudies(ctx, q); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			})
		}
	}
}

func queryName(q bildrum.ImageQuery) string {
	switch {
	case len(q.ModalitiesInStudy) > 0:
		return "PatientIDAndModality"
	case q.PatientID != "":
		return "PatientID"
	case q.AccessionNumber != "":
		return "Accession"
	case q.PatientName != "":
		return "PatientNamePrefix"
	default:
		return "StudyDateRange"
	}
}

// BenchmarkPutInstances measures indexing new instances, one study each,
// in transactions of one (a store request of one instance) and of 16 (a
// group commit of concurrent requests): ns/op is per instance.
func BenchmarkPutInstances(b *testing.B) {
	ctx := context.Background()
	for _, e := range engines {
		for _, per := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/%d", e.name, per), func(b *testing.B) {
				db, err := sqlstore.Open(ctx, e.dsn(b), sqlstore.PartNode)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				all := benchInstances(b.N + per)
				b.ResetTimer()
				for start := 0; start < b.N; start += per {
					if _, err := db.PutInstances(ctx, all[start:start+per]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
