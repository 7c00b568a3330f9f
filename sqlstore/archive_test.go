package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
)

func TestImageIndex(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			storetest.ImageIndex(t, func(t *testing.T) bildrum.ImageIndex { return open(t, e.dsn(t), sqlstore.PartNode) })
		})
	}
}

func TestHeldObjects(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			storetest.HeldObjects(t, func(t *testing.T) storetest.ObjectHolder { return open(t, e.dsn(t), sqlstore.PartNode) })
		})
	}
}

// TestPutInstancesGated checks that PutInstancesGated calls its gate after
// the statements, with nothing visible to any other reader yet; indexes
// the instances the gate adds in the same transaction, with their own
// results; commits only when the gate returns neither more nor an error;
// and that its sync then succeeds.
func TestPutInstancesGated(t *testing.T) {
	ctx := context.Background()
	instance := func(n string) bildrum.Instance {
		return bildrum.Instance{
			Study:          bildrum.Study{Patient: bildrum.Patient{ID: "195001182046"}, StudyInstanceUID: "2.25.1" + n},
			Series:         bildrum.Series{SeriesInstanceUID: "2.25.2" + n, Modality: "MG"},
			SOPInstanceUID: "2.25.3" + n,
			Object:         bildrum.Object{Key: "sha256/aa/" + n, SHA256: n, Size: 1},
		}
	}
	conflicting := instance("0")
	conflicting.Object.SHA256 = "other"
	diskFailed := errors.New("input/output error")
	tests := []struct {
		name    string
		first   []bildrum.Instance
		more    [][]bildrum.Instance // what the gate adds, call by call
		gateErr error                // returned by the gate's last call
		want    []string             // error code per instance
	}{
		{"gate fails: nothing committed", []bildrum.Instance{instance("1")}, nil, diskFailed, nil},
		{"gate passes: committed", []bildrum.Instance{instance("2")}, nil, nil, []string{""}},
		{"gate adds twice", []bildrum.Instance{instance("3")}, [][]bildrum.Instance{{instance("4"), conflicting}, {instance("5")}}, nil,
			[]string{"", "", bildrum.ECONFLICT, ""}},
		{"gate adds, then fails: nothing committed", []bildrum.Instance{instance("6")}, [][]bildrum.Instance{{instance("7")}}, diskFailed, nil},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			db := open(t, e.dsn(t), sqlstore.PartNode)
			putAll := func(in ...bildrum.Instance) {
				_, sync, err := db.PutInstancesGated(ctx, in, nil)
				if err == nil {
					err = sync()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			putAll(instance("0"))
			for _, tt := range tests {
				calls := 0
				var added []bildrum.Instance
				errs, sync, err := db.PutInstancesGated(ctx, tt.first, func() ([]bildrum.Instance, error) {
					calls++
					for _, in := range append(tt.first, added...) {
						if _, err := db.Instance(ctx, in.SOPInstanceUID); bildrum.ErrorCode(err) != bildrum.ENOTFOUND && in.SOPInstanceUID != conflicting.SOPInstanceUID {
							t.Errorf("%s: in the gate, Instance(%s) = %v, want ENOTFOUND: nothing may be visible before the commit", tt.name, in.SOPInstanceUID, err)
						}
					}
					if calls <= len(tt.more) {
						added = append(added, tt.more[calls-1]...)
						return tt.more[calls-1], nil
					}
					return nil, tt.gateErr
				})
				if calls != len(tt.more)+1 {
					t.Errorf("%s: gate called %d times, want %d", tt.name, calls, len(tt.more)+1)
				}
				if !errors.Is(err, tt.gateErr) {
					t.Errorf("%s: PutInstancesGated = %v, want %v", tt.name, err, tt.gateErr)
				}
				var got []string
				for _, e := range errs {
					got = append(got, bildrum.ErrorCode(e))
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("%s: results %v, want %v", tt.name, got, tt.want)
				}
				if err == nil {
					if err := sync(); err != nil {
						t.Errorf("%s: sync = %v", tt.name, err)
					}
				}
				for i, in := range append(tt.first, added...) {
					if in.SOPInstanceUID == conflicting.SOPInstanceUID {
						continue
					}
					_, err := db.Instance(ctx, in.SOPInstanceUID)
					if committed, want := err == nil, tt.gateErr == nil && tt.want[i] == ""; committed != want {
						t.Errorf("%s: after PutInstancesGated instance %s is committed: %v, want %v (%v)", tt.name, in.SOPInstanceUID, committed, want, err)
					}
				}
			}
		})
	}
}
