package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fixtureInstance returns an instance of a mammography study for fixtures;
// content names the bytes it stands for.
func fixtureInstance(patient bildrum.PersonID, study, series, sop, content string) bildrum.Instance {
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	return bildrum.Instance{
		Study: bildrum.Study{
			Patient:          bildrum.Patient{ID: string(patient), Name: "Testsson^Anna", BirthDate: string(patient[:8]), Sex: "F"},
			StudyInstanceUID: study, StudyDate: "20240115", StudyTime: "101500", AccessionNumber: "ACC-" + study[len(study)-3:],
			StudyID: "1", StudyDescription: "Mammografi screening", ReferringPhysicianName: "Läkare^Lena",
		},
		Series:         bildrum.Series{SeriesInstanceUID: series, Modality: "MG", SeriesNumber: "1", SeriesDescription: "screening", BodyPartExamined: "BREAST"},
		SOPClassUID:    "1.2.840.10008.5.1.4.1.1.1.2",
		SOPInstanceUID: sop, InstanceNumber: "1", Rows: 256, Columns: 208, BitsAllocated: 16, NumberOfFrames: 1,
		ImageLaterality: "R", ViewPosition: "CC", TransferSyntaxUID: "1.2.840.10008.1.2.1",
		Object: bildrum.Object{Key: "sha256/" + h[:2] + "/" + h, Size: int64(len(content)), SHA256: h,
			Received: time.Date(2024, 1, 15, 10, 20, 0, 0, time.UTC)},
	}
}

func putAll(t *testing.T, s bildrum.ImageIndex, instances ...bildrum.Instance) {
	t.Helper()
	errs, err := s.PutInstances(context.Background(), instances)
	if err != nil {
		t.Fatalf("PutInstances: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutInstances: instance %d (%s): %v", i, instances[i].SOPInstanceUID, err)
		}
	}
}

// ignoreCounts leaves out what searches derive, to compare an instance as put.
var ignoreCounts = cmpopts.IgnoreFields(bildrum.Study{}, "ModalitiesInStudy", "NumberOfSeries", "NumberOfInstances")
var ignoreSeriesCount = cmpopts.IgnoreFields(bildrum.Series{}, "NumberOfInstances")

// ImageIndex runs the conformance suite of bildrum.ImageIndex. open must
// return an empty index for every call.
func ImageIndex(t *testing.T, open func(t *testing.T) bildrum.ImageIndex) {
	ctx := context.Background()
	anna, berit := testWomen[0], testWomen[1]

	t.Run("PutAndRead", func(t *testing.T) {
		s := open(t)
		a := fixtureInstance(anna, "1.2.3.100", "1.2.3.100.1", "1.2.3.100.1.1", "a")
		b := fixtureInstance(anna, "1.2.3.100", "1.2.3.100.1", "1.2.3.100.1.2", "b")
		c := fixtureInstance(anna, "1.2.3.100", "1.2.3.100.2", "1.2.3.100.2.1", "c")
		c.Series.Modality, c.Series.SeriesNumber = "SR", "2"
		putAll(t, s, a, b, c)
		got, err := s.Instance(ctx, b.SOPInstanceUID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(b, got, ignoreCounts, ignoreSeriesCount); diff != "" {
			t.Errorf("Instance(%s) mismatch (-want +got):\n%s", b.SOPInstanceUID, diff)
		}
		if got.Study.NumberOfSeries != 2 || got.Study.NumberOfInstances != 3 || !cmp.Equal(got.Study.ModalitiesInStudy, []string{"MG", "SR"}) {
			t.Errorf("Instance(%s).Study counts = %d series, %d instances, modalities %v; want 2, 3, [MG SR]",
				b.SOPInstanceUID, got.Study.NumberOfSeries, got.Study.NumberOfInstances, got.Study.ModalitiesInStudy)
		}
		all, err := s.Instances(ctx, a.Study.StudyInstanceUID, "")
		if err != nil || len(all) != 3 {
			t.Fatalf("Instances(study) = %d instances, %v; want 3", len(all), err)
		}
		for i, want := range []string{a.SOPInstanceUID, b.SOPInstanceUID, c.SOPInstanceUID} {
			if all[i].SOPInstanceUID != want {
				t.Errorf("Instances(study)[%d] = %s, want %s (in series and insertion order)", i, all[i].SOPInstanceUID, want)
			}
		}
		one, err := s.Instances(ctx, a.Study.StudyInstanceUID, c.Series.SeriesInstanceUID)
		if err != nil || len(one) != 1 || one[0].SOPInstanceUID != c.SOPInstanceUID {
			t.Errorf("Instances(study, series) = %v, %v; want only %s", one, err, c.SOPInstanceUID)
		}
		for _, uids := range [][2]string{{"9.9.9", ""}, {a.Study.StudyInstanceUID, "9.9.9"}} {
			if _, err := s.Instances(ctx, uids[0], uids[1]); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
				t.Errorf("Instances(%q, %q) error = %v, want ENOTFOUND", uids[0], uids[1], err)
			}
		}
		if _, err := s.Instance(ctx, "9.9.9"); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
			t.Errorf("Instance(unknown) error = %v, want ENOTFOUND", err)
		}
		for key, want := range map[string]bool{a.Object.Key: true, "sha256/00/00": false} {
			if got, err := s.ObjectReferenced(ctx, key); err != nil || got != want {
				t.Errorf("ObjectReferenced(%s) = %v, %v; want %v", key, got, err, want)
			}
		}
	})

	t.Run("IdempotentAndConflicts", func(t *testing.T) {
		s := open(t)
		a := fixtureInstance(anna, "1.2.3.200", "1.2.3.200.1", "1.2.3.200.1.1", "a")
		putAll(t, s, a)
		changed := fixtureInstance(anna, "1.2.3.200", "1.2.3.200.1", "1.2.3.200.1.1", "a, edited")
		otherPatient := fixtureInstance(berit, "1.2.3.200", "1.2.3.200.9", "1.2.3.200.9.1", "x")
		seriesElsewhere := fixtureInstance(anna, "1.2.3.201", "1.2.3.200.1", "1.2.3.201.1.1", "y")
		noUID := fixtureInstance(anna, "1.2.3.202", "1.2.3.202.1", "", "z")
		fine := fixtureInstance(anna, "1.2.3.200", "1.2.3.200.1", "1.2.3.200.1.2", "b")
		batch := []bildrum.Instance{a, changed, otherPatient, seriesElsewhere, noUID, fine}
		errs, err := s.PutInstances(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"", bildrum.ECONFLICT, bildrum.ECONFLICT, bildrum.ECONFLICT, bildrum.EINVALID, ""}
		for i := range batch {
			if got := bildrum.ErrorCode(errs[i]); got != want[i] {
				t.Errorf("PutInstances: instance %d error = %v, want code %q", i, errs[i], want[i])
			}
		}
		got, err := s.Instance(ctx, a.SOPInstanceUID)
		if err != nil || got.Object.SHA256 != a.Object.SHA256 {
			t.Errorf("after a conflicting put, Instance = %v, %v; want the first content kept", got.Object, err)
		}
		if got.Study.NumberOfInstances != 2 || got.Study.NumberOfSeries != 1 {
			t.Errorf("study counts = %d instances, %d series; want 2 and 1 (repeats and failures not counted)", got.Study.NumberOfInstances, got.Study.NumberOfSeries)
		}
		for _, uid := range []string{"1.2.3.200.9.1", "1.2.3.201.1.1"} {
			if _, err := s.Instance(ctx, uid); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
				t.Errorf("failed instance %s was indexed: %v", uid, err)
			}
		}
		if st, _, _ := s.SearchStudies(ctx, bildrum.ImageQuery{StudyInstanceUIDs: []string{"1.2.3.201"}}); len(st) != 0 {
			t.Errorf("a study whose only instance failed was indexed: %v", st)
		}
	})

	t.Run("CancelledPutStoresNothing", func(t *testing.T) {
		s := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.PutInstances(cctx, []bildrum.Instance{fixtureInstance(anna, "1.2.3.300", "1.2.3.300.1", "1.2.3.300.1.1", "a")}); err == nil {
			t.Error("PutInstances with a cancelled context succeeded")
		}
		if _, err := s.Instance(ctx, "1.2.3.300.1.1"); bildrum.ErrorCode(err) != bildrum.ENOTFOUND {
			t.Errorf("after a failed put, Instance error = %v, want ENOTFOUND", err)
		}
	})

	t.Run("Search", func(t *testing.T) {
		s := open(t)
		var all []bildrum.Instance
		mk := func(p bildrum.PersonID, name, date, acc, study string, mods ...string) {
			for i, m := range mods {
				in := fixtureInstance(p, study, fmt.Sprintf("%s.%d", study, i+1), fmt.Sprintf("%s.%d.1", study, i+1), study+m)
				in.Study.Patient.Name, in.Study.StudyDate, in.Study.AccessionNumber = name, date, acc
				in.Series.Modality = m
				all = append(all, in)
			}
		}
		mk(anna, "Andersson^Anna", "20230101", "A_1", "1.2.9.1", "MG")
		mk(anna, "Andersson^Anna", "20240101", "A%2", "1.2.9.2", "MG", "SR")
		mk(berit, "Björk^Berit", "20240301", "B[3]", "1.2.9.3", "US")
		mk(berit, "Björk^Berit", "", "B4", "1.2.9.4", "MG")
		putAll(t, s, all...)

		studies := func(q bildrum.ImageQuery) []string {
			t.Helper()
			got, _, err := s.SearchStudies(ctx, q)
			if err != nil {
				t.Fatalf("SearchStudies(%+v): %v", q, err)
			}
			var uids []string
			for _, st := range got {
				uids = append(uids, st.StudyInstanceUID)
			}
			return uids
		}
		tests := []struct {
			name string
			q    bildrum.ImageQuery
			want []string
		}{
			{"all", bildrum.ImageQuery{}, []string{"1.2.9.1", "1.2.9.2", "1.2.9.3", "1.2.9.4"}},
			{"patient id", bildrum.ImageQuery{PatientID: string(berit)}, []string{"1.2.9.3", "1.2.9.4"}},
			{"patient id wildcard", bildrum.ImageQuery{PatientID: string(anna)[:6] + "*"}, []string{"1.2.9.1", "1.2.9.2"}},
			{"patient id only star", bildrum.ImageQuery{PatientID: "*"}, []string{"1.2.9.1", "1.2.9.2", "1.2.9.3", "1.2.9.4"}},
			{"name any case", bildrum.ImageQuery{PatientName: "björk*"}, []string{"1.2.9.3", "1.2.9.4"}},
			{"name question mark", bildrum.ImageQuery{PatientName: "ANDERSSO?^*"}, []string{"1.2.9.1", "1.2.9.2"}},
			{"name exact", bildrum.ImageQuery{PatientName: "Andersson^Anna"}, []string{"1.2.9.1", "1.2.9.2"}},
			{"name no match", bildrum.ImageQuery{PatientName: "Andersson"}, nil},
			{"date single", bildrum.ImageQuery{StudyDate: bildrum.Range{From: "20240101", To: "20240101"}}, []string{"1.2.9.2"}},
			{"date range", bildrum.ImageQuery{StudyDate: bildrum.Range{From: "20231231", To: "20240301"}}, []string{"1.2.9.2", "1.2.9.3"}},
			{"date open start", bildrum.ImageQuery{StudyDate: bildrum.Range{To: "20231231"}}, []string{"1.2.9.1"}},
			{"date open end", bildrum.ImageQuery{StudyDate: bildrum.Range{From: "20240102"}}, []string{"1.2.9.3"}},
			{"accession percent is literal", bildrum.ImageQuery{AccessionNumber: "A%*"}, []string{"1.2.9.2"}},
			{"accession underscore is literal", bildrum.ImageQuery{AccessionNumber: "A_?"}, []string{"1.2.9.1"}},
			{"accession bracket is literal", bildrum.ImageQuery{AccessionNumber: "B[*"}, []string{"1.2.9.3"}},
			{"accession case-sensitive", bildrum.ImageQuery{AccessionNumber: "b*"}, nil},
			{"modalities", bildrum.ImageQuery{ModalitiesInStudy: []string{"SR"}}, []string{"1.2.9.2"}},
			{"modalities list", bildrum.ImageQuery{ModalitiesInStudy: []string{"US", "SR"}}, []string{"1.2.9.2", "1.2.9.3"}},
			{"uid list", bildrum.ImageQuery{StudyInstanceUIDs: []string{"1.2.9.4", "1.2.9.1", "7.7"}}, []string{"1.2.9.1", "1.2.9.4"}},
			{"series uid", bildrum.ImageQuery{SeriesInstanceUIDs: []string{"1.2.9.2.2"}}, []string{"1.2.9.2"}},
			{"sop uid", bildrum.ImageQuery{SOPInstanceUIDs: []string{"1.2.9.3.1.1"}}, []string{"1.2.9.3"}},
			{"combined", bildrum.ImageQuery{PatientID: string(anna), ModalitiesInStudy: []string{"MG"}, StudyDate: bildrum.Range{From: "20240101"}}, []string{"1.2.9.2"}},
			{"limit", bildrum.ImageQuery{Limit: 2}, []string{"1.2.9.1", "1.2.9.2"}},
			{"offset", bildrum.ImageQuery{Limit: 2, Offset: 3}, []string{"1.2.9.4"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := studies(tt.q); !cmp.Equal(got, tt.want) {
					t.Errorf("SearchStudies(%+v) = %v, want %v", tt.q, got, tt.want)
				}
			})
		}

		_, more, err := s.SearchStudies(ctx, bildrum.ImageQuery{Limit: 3})
		if err != nil || !more {
			t.Errorf("SearchStudies(limit 3 of 4) more = %v, %v; want true", more, err)
		}
		_, more, err = s.SearchStudies(ctx, bildrum.ImageQuery{Limit: 4})
		if err != nil || more {
			t.Errorf("SearchStudies(limit 4 of 4) more = %v, %v; want false", more, err)
		}
		got, _, err := s.SearchStudies(ctx, bildrum.ImageQuery{StudyInstanceUIDs: []string{"1.2.9.2"}})
		if err != nil || len(got) != 1 {
			t.Fatalf("SearchStudies(1.2.9.2) = %v, %v", got, err)
		}
		if st := got[0]; st.NumberOfSeries != 2 || st.NumberOfInstances != 2 || !cmp.Equal(st.ModalitiesInStudy, []string{"MG", "SR"}) ||
			st.Patient != all[1].Study.Patient || st.AccessionNumber != "A%2" {
			t.Errorf("SearchStudies(1.2.9.2) = %+v, want Anna's study with 2 series, 2 instances, MG and SR", st)
		}

		series, _, err := s.SearchSeries(ctx, bildrum.ImageQuery{Modalities: []string{"MG"}, PatientID: string(berit)})
		if err != nil || len(series) != 1 || series[0].Series.SeriesInstanceUID != "1.2.9.4.1" || series[0].Study.StudyInstanceUID != "1.2.9.4" ||
			series[0].Series.NumberOfInstances != 1 {
			t.Errorf("SearchSeries(MG of Berit) = %+v, %v; want series 1.2.9.4.1 of study 1.2.9.4 with 1 instance", series, err)
		}
		series, _, err = s.SearchSeries(ctx, bildrum.ImageQuery{StudyInstanceUIDs: []string{"1.2.9.2"}})
		if err != nil || len(series) != 2 {
			t.Errorf("SearchSeries(study 1.2.9.2) = %d series, %v; want 2", len(series), err)
		}
		inst, _, err := s.SearchInstances(ctx, bildrum.ImageQuery{StudyInstanceUIDs: []string{"1.2.9.2"}, SeriesInstanceUIDs: []string{"1.2.9.2.2"}})
		if err != nil || len(inst) != 1 || inst[0].SOPInstanceUID != "1.2.9.2.2.1" || inst[0].Series.Modality != "SR" {
			t.Errorf("SearchInstances(series 1.2.9.2.2) = %+v, %v; want its one SR instance", inst, err)
		}
		inst, _, err = s.SearchInstances(ctx, bildrum.ImageQuery{SOPClassUIDs: []string{"1.2.840.10008.5.1.4.1.1.1.2"}, Limit: 1, Offset: 4})
		if err != nil || len(inst) != 1 || inst[0].SOPInstanceUID != "1.2.9.4.1.1" {
			t.Errorf("SearchInstances(class, offset 4) = %+v, %v; want the fifth instance 1.2.9.4.1.1", inst, err)
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errc := make(chan error, 16)
		for w := range 4 {
			wg.Go(func() {
				for i := range 4 {
					// Every writer puts into the same new study and
					// series, and repeats one shared instance.
					batch := []bildrum.Instance{
						fixtureInstance(anna, "1.2.3.400", "1.2.3.400.1", fmt.Sprintf("1.2.3.400.1.%d.%d", w, i), fmt.Sprint(w, i)),
						fixtureInstance(anna, "1.2.3.400", "1.2.3.400.1", "1.2.3.400.1.0", "shared"),
					}
					errs, err := s.PutInstances(ctx, batch)
					if err == nil {
						err = errs[0]
						if err == nil {
							err = errs[1]
						}
					}
					if err != nil {
						errc <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("concurrent PutInstances: %v", err)
		}
		got, _, err := s.SearchStudies(ctx, bildrum.ImageQuery{})
		if err != nil || len(got) != 1 || got[0].NumberOfInstances != 17 || got[0].NumberOfSeries != 1 {
			t.Errorf("after concurrent puts: studies = %+v, %v; want one study with 1 series and 17 instances", got, err)
		}
	})
}

// ObjectHolder is an image index that keeps the bytes of objects given
// with their instances (bildrum.Object.Data) until they are released, as
// the archive's small objects use it.
type ObjectHolder interface {
	bildrum.ImageIndex
	HeldObjects(ctx context.Context, fn func(key string, data []byte) error) error
	ReleaseHeldObjects(ctx context.Context, keys []string) error
}

// HeldObjects runs the conformance suite of ObjectHolder: the bytes given
// with a newly indexed instance are held in the same transaction, those of
// a repeated or refused one are not, and a release forgets them, ignoring
// keys not held. open must return an empty index for every call.
func HeldObjects(t *testing.T, open func(t *testing.T) ObjectHolder) {
	ctx := context.Background()
	anna := testWomen[0]
	s := open(t)
	held := func() map[string]string {
		t.Helper()
		got := map[string]string{}
		if err := s.HeldObjects(ctx, func(key string, data []byte) error {
			got[key] = string(data)
			return nil
		}); err != nil {
			t.Fatalf("HeldObjects: %v", err)
		}
		return got
	}
	withData := func(in bildrum.Instance, data string) bildrum.Instance {
		in.Object.Data = []byte(data)
		return in
	}
	a := withData(fixtureInstance(anna, "1.2.3.300", "1.2.3.300.1", "1.2.3.300.1.1", "a"), "a")
	b := withData(fixtureInstance(anna, "1.2.3.300", "1.2.3.300.1", "1.2.3.300.1.2", "b"), "b")
	plain := fixtureInstance(anna, "1.2.3.300", "1.2.3.300.1", "1.2.3.300.1.3", "c")
	putAll(t, s, a, b, plain)
	if got, want := held(), map[string]string{a.Object.Key: "a", b.Object.Key: "b"}; !cmp.Equal(got, want) {
		t.Errorf("HeldObjects after a put = %v, want %v (only the instances given with their bytes)", got, want)
	}

	// A repeat of a stored instance, a refused one and a failed
	// transaction hold nothing.
	if err := s.ReleaseHeldObjects(ctx, []string{a.Object.Key, b.Object.Key, "sha256/00/not-held"}); err != nil {
		t.Fatalf("ReleaseHeldObjects: %v", err)
	}
	if got := held(); len(got) != 0 {
		t.Errorf("HeldObjects after releasing all = %v, want none", got)
	}
	repeat := a
	conflict := withData(fixtureInstance(anna, "1.2.3.300", "1.2.3.300.1", "1.2.3.300.1.1", "a, edited"), "a, edited")
	errs, err := s.PutInstances(ctx, []bildrum.Instance{repeat, conflict})
	if err != nil || errs[0] != nil || bildrum.ErrorCode(errs[1]) != bildrum.ECONFLICT {
		t.Fatalf("PutInstances(repeat, conflict) = %v, %v; want nil and ECONFLICT", errs, err)
	}
	if got := held(); len(got) != 0 {
		t.Errorf("HeldObjects after a repeat and a refusal = %v, want none", got)
	}
	if g, ok := s.(interface {
		PutInstancesGated(context.Context, []bildrum.Instance, func() ([]bildrum.Instance, error)) ([]error, func() error, error)
	}); ok {
		d := withData(fixtureInstance(anna, "1.2.3.301", "1.2.3.301.1", "1.2.3.301.1.1", "d"), "d")
		_, _, err := g.PutInstancesGated(ctx, []bildrum.Instance{d}, func() ([]bildrum.Instance, error) { return nil, fmt.Errorf("disk full") })
		if err == nil {
			t.Fatal("PutInstancesGated with a failing gate = nil error")
		}
		if got := held(); len(got) != 0 {
			t.Errorf("HeldObjects after a rolled back put = %v, want none", got)
		}
	}
}
