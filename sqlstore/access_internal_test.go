package sqlstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
)

// TestRecordAccessCovers checks, with the WAL's fsyncs held by the test,
// that an access event waits for the disk unless a durable event of the same
// actor, purpose, region, person and kind from less than a minute before
// covers it; that a covered event is made durable in the background; that
// every event is kept, in order; and that once an fsync has failed, covered
// events fail too (fail closed).
func TestRecordAccessCovers(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "node.db"), PartNode)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 16)
	release := make(chan error)
	ended := make(chan struct{})
	d.writer.syncFile = func(*os.File) error {
		started <- struct{}{}
		select {
		case err := <-release:
			return err
		case <-ended: // the test failed with an fsync held
			return errors.New("test ended")
		}
	}
	defer d.Close()
	defer close(ended)

	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	radiologist := bildrum.Principal{Name: "rad-12", Role: bildrum.RoleRadiologist, Region: "12"}
	staff := bildrum.Principal{Name: "staff-12", Role: bildrum.RoleStaff, Region: "12"}
	event := func(actor bildrum.Principal, person bildrum.PersonID, kind string, after time.Duration, what string) bildrum.AccessEvent {
		return bildrum.AccessEvent{Time: t0.Add(after), Actor: actor, Purpose: bildrum.PurposeCare, Region: "12", Person: person, Kind: kind, What: what}
	}
	anna, berit := bildrum.PersonID("195001182046"), bildrum.PersonID("194910112397")
	for _, tc := range []struct {
		name    string
		e       bildrum.AccessEvent
		covered bool
	}{
		{"first", event(radiologist, anna, bildrum.AccessImageRead, 0, "a1"), false},
		{"same, 10 s later", event(radiologist, anna, bildrum.AccessImageRead, 10*time.Second, "a2"), true},
		{"another person", event(radiologist, berit, bildrum.AccessImageRead, 11*time.Second, "b1"), false},
		{"another actor", event(staff, anna, bildrum.AccessImageRead, 12*time.Second, "s1"), false},
		{"another kind", event(radiologist, anna, bildrum.AccessImageSearch, 13*time.Second, "q1"), false},
		{"same, 59 s later", event(radiologist, anna, bildrum.AccessImageRead, 59*time.Second, "a3"), true},
		{"same, a minute later", event(radiologist, anna, bildrum.AccessImageRead, 60*time.Second, "a4"), false},
		{"earlier than the covering one", event(radiologist, anna, bildrum.AccessImageRead, 30*time.Second, "a5"), false},
	} {
		done := make(chan error, 1)
		go func() { done <- d.RecordAccess(ctx, tc.e) }()
		if tc.covered {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			case <-time.After(10 * time.Second): // failure detection, not synchronisation
				t.Fatalf("%s: RecordAccess waited for the disk, want it covered", tc.name)
			}
			<-started // the background sync, which the test lets finish
			release <- nil
			d.access.wait()
			continue
		}
		<-started
		select {
		case err := <-done:
			t.Fatalf("%s: RecordAccess returned (%v) before its fsync did", tc.name, err)
		default:
		}
		release <- nil
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	got, err := d.AccessEventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, e := range got {
		whats = append(whats, e.Event.What)
	}
	if want := "a1 a2 b1 s1 q1 a3 a4 a5"; strings.Join(whats, " ") != want {
		t.Errorf("outbox holds %s, want %s", strings.Join(whats, " "), want)
	}

	// A failed fsync fails the event that waits for it, and from then on
	// the covered ones too.
	failing := errors.New("disk gone")
	done := make(chan error, 1)
	go func() {
		done <- d.RecordAccess(ctx, event(staff, berit, bildrum.AccessImageRead, 40*time.Second, "sb1"))
	}()
	<-started
	release <- failing
	if err := <-done; !errors.Is(err, failing) {
		t.Fatalf("RecordAccess after a failed fsync = %v, want %v", err, failing)
	}
	if err := d.RecordAccess(ctx, event(radiologist, anna, bildrum.AccessImageRead, 70*time.Second, "a6")); !errors.Is(err, failing) {
		t.Errorf("covered RecordAccess after a failed fsync = %v, want %v", err, failing)
	}
}
