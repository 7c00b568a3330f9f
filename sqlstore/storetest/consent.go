package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/google/go-cmp/cmp"
)

// ConsentStore runs the conformance suite of bildrum.ConsentStore.
func ConsentStore(t *testing.T, open func(t *testing.T) bildrum.ConsentStore) {
	ctx := context.Background()
	s := open(t)
	anna, berit := testWomen[0], testWomen[1]

	rec, err := s.Consent(ctx, anna)
	if err != nil || rec.Version != 0 || len(rec.Choices.OptOuts) != 0 || rec.Choices.TrialContact.OptIn {
		t.Fatalf("Consent of a woman without choices = %+v, %v; want version 0, everything allowed, no trial contact", rec, err)
	}

	first, err := s.PutConsent(ctx, anna, bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{"research", "innovation", "research"}}, "citizen")
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(first.Choices.OptOuts, []bildrum.Purpose{"innovation", "research"}) || first.Version < 1 || first.ChangedBy != "citizen" {
		t.Errorf("PutConsent = %+v, want sorted unique opt-outs at a new version", first)
	}
	mid, _ := s.PutConsent(ctx, berit, bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{OptIn: true, Email: "berit@example.se"}}, "citizen")
	second, err := s.PutConsent(ctx, anna, bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{"research"}, CareBlocks: []string{"14"}}, "citizen")
	if err != nil {
		t.Fatal(err)
	}
	if !(first.Version < mid.Version && mid.Version < second.Version) {
		t.Errorf("versions %d, %d, %d: want increasing across the register", first.Version, mid.Version, second.Version)
	}
	cur, _ := s.Consent(ctx, anna)
	if diff := cmp.Diff(second, cur); diff != "" {
		t.Errorf("Consent after two changes (-want +got):\n%s", diff)
	}
	hist, _ := s.ConsentHistory(ctx, anna)
	if len(hist) != 2 || hist[0].Version != first.Version || hist[1].Version != second.Version {
		t.Errorf("ConsentHistory = %+v, want her two versions oldest first", hist)
	}

	tests := []struct {
		name  string
		since int64
		want  []int64
	}{
		{"everything", 0, []int64{mid.Version, second.Version}},
		{"after anna's first", first.Version, []int64{mid.Version, second.Version}},
		{"after berit", mid.Version, []int64{second.Version}},
		{"up to date", second.Version, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, current, err := s.ConsentChanges(ctx, tt.since, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range recs {
				got = append(got, r.Version)
			}
			if !cmp.Equal(got, tt.want) || current != second.Version {
				t.Errorf("ConsentChanges(%d) = %v (current %d), want %v (current %d)", tt.since, got, current, tt.want, second.Version)
			}
		})
	}

	bad := []bildrum.ConsentChoices{
		{OptOuts: []bildrum.Purpose{"marketing"}},
		{OptOuts: []bildrum.Purpose{"care"}},
		{CareBlocks: []string{"99"}},
		{TrialContact: bildrum.TrialContact{OptIn: true}},
	}
	for _, c := range bad {
		if _, err := s.PutConsent(ctx, anna, c, "citizen"); bildrum.ErrorCode(err) != bildrum.EINVALID {
			t.Errorf("PutConsent(%+v) error = %v, want EINVALID", c, err)
		}
	}
	if _, err := s.PutConsent(ctx, "195001182047", bildrum.ConsentChoices{}, "citizen"); bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Errorf("PutConsent for a bad personnummer: %v, want EINVALID", err)
	}
}

// ConsentReplica runs the conformance suite of bildrum.ConsentReplica.
func ConsentReplica(t *testing.T, open func(t *testing.T) bildrum.ConsentReplica) {
	ctx := context.Background()
	s := open(t)
	st, err := s.ReplicaState(ctx)
	if err != nil || st.Version != 0 || !st.SyncedAt.IsZero() {
		t.Fatalf("ReplicaState of a new replica = %+v, %v; want version 0, never synced", st, err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	r1 := bildrum.ConsentRecord{Person: testWomen[0], Version: 3, ChangedAt: at, ChangedBy: "citizen",
		Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{"research"}, CareBlocks: []string{}}}
	r2 := bildrum.ConsentRecord{Person: testWomen[1], Version: 5, ChangedAt: at, ChangedBy: "citizen",
		Choices: bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{}, CareBlocks: []string{}, TrialContact: bildrum.TrialContact{OptIn: true, Phone: "+46 70 000 00 00"}}}
	if err := s.ApplyConsentChanges(ctx, []bildrum.ConsentRecord{r1, r2}, 6, at); err != nil {
		t.Fatal(err)
	}
	got, _ := s.ReplicaConsent(ctx, testWomen[0])
	if diff := cmp.Diff(r1, got); diff != "" {
		t.Errorf("ReplicaConsent (-want +got):\n%s", diff)
	}
	st, _ = s.ReplicaState(ctx)
	if st.Version != 6 || !st.SyncedAt.Equal(at) {
		t.Errorf("ReplicaState = %+v, want version 6 synced at %v", st, at)
	}
	// An older record for her never replaces a newer one.
	older := r1
	older.Version, older.Choices.OptOuts = 2, []bildrum.Purpose{}
	if err := s.ApplyConsentChanges(ctx, []bildrum.ConsentRecord{older}, 6, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ReplicaConsent(ctx, testWomen[0]); got.Version != 3 {
		t.Errorf("after an older record the replica holds version %d, want 3", got.Version)
	}
	// An empty sync still confirms the replica current.
	later := at.Add(time.Hour)
	if err := s.ApplyConsentChanges(ctx, nil, 6, later); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.ReplicaState(ctx); !st.SyncedAt.Equal(later) {
		t.Errorf("after an empty sync SyncedAt = %v, want %v", st.SyncedAt, later)
	}
	if err := s.ApplyConsentChanges(ctx, nil, 4, later); bildrum.ErrorCode(err) != bildrum.ECONFLICT {
		t.Errorf("going back to version 4: %v, want ECONFLICT", err)
	}
	if got, _ := s.ReplicaConsent(ctx, testWomen[2]); got.Version != 0 || len(got.Choices.OptOuts) != 0 {
		t.Errorf("ReplicaConsent of a woman without choices = %+v, want version 0", got)
	}
}

// TrialContactRegister is a consent register that also reads the
// trial-contact choices of many women at once, as the recruitment broker
// asks for them (sqlstore.DB.TrialContacts).
type TrialContactRegister interface {
	bildrum.ConsentStore
	TrialContacts(ctx context.Context, persons []bildrum.PersonID) (map[bildrum.PersonID]bildrum.TrialContact, error)
}

// TrialContacts runs the conformance suite of TrialContacts: it returns
// the current choice of exactly the women who opt in now, as Consent
// gives it, whatever the number asked about at once.
func TrialContacts(t *testing.T, open func(t *testing.T) TrialContactRegister) {
	ctx := context.Background()
	s := open(t)
	anna, berit, cecilia, doris := testWomen[0], testWomen[1], testWomen[2], testWomen[3]
	put := func(p bildrum.PersonID, tc bildrum.TrialContact) {
		t.Helper()
		if _, err := s.PutConsent(ctx, p, bildrum.ConsentChoices{TrialContact: tc}, "citizen"); err != nil {
			t.Fatal(err)
		}
	}
	put(anna, bildrum.TrialContact{OptIn: true, Email: "anna@example.se"})
	put(berit, bildrum.TrialContact{OptIn: true, Email: "berit@example.se"})
	put(doris, bildrum.TrialContact{})
	put(anna, bildrum.TrialContact{}) // anna withdraws
	put(doris, bildrum.TrialContact{OptIn: true, Phone: "+46 70 000 00 00"})
	// Cecilia never chose.

	// many asks about more women than one statement holds, most unknown,
	// with the known ones at both ends and repeated.
	many := []bildrum.PersonID{doris, berit}
	for i := range 1200 {
		many = append(many, bildrum.PersonID(fmt.Sprintf("19500101%04d", i)))
	}
	many = append(many, anna, cecilia, berit, doris)

	opted := map[bildrum.PersonID]bildrum.TrialContact{
		berit: {OptIn: true, Email: "berit@example.se"},
		doris: {OptIn: true, Phone: "+46 70 000 00 00"},
	}
	tests := []struct {
		name    string
		persons []bildrum.PersonID
		want    map[bildrum.PersonID]bildrum.TrialContact
	}{
		{"none", nil, map[bildrum.PersonID]bildrum.TrialContact{}},
		{"withdrawn and never chose", []bildrum.PersonID{anna, cecilia}, map[bildrum.PersonID]bildrum.TrialContact{}},
		{"opted in, newest choice", []bildrum.PersonID{berit, doris, anna}, opted},
		{"many, repeated", many, opted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.TrialContacts(ctx, tt.persons)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("TrialContacts(%d women) mismatch (-want +got):\n%s", len(tt.persons), diff)
			}
			for p, tc := range got {
				if rec, _ := s.Consent(ctx, p); rec.Choices.TrialContact != tc {
					t.Errorf("TrialContacts gives %s %+v, Consent %+v", p, tc, rec.Choices.TrialContact)
				}
			}
		})
	}
}
