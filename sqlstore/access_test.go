package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
)

func TestAccessOutboxAndCursor(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			node := open(t, e.dsn(t), sqlstore.PartNode)
			at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
			for i, kind := range []string{"register-read", "image-read", "image-read"} {
				ev := bildrum.AccessEvent{Time: at.Add(time.Duration(i) * time.Second), Actor: bildrum.Principal{Name: "staff-12", Role: bildrum.RoleStaff, Region: "12"},
					Purpose: bildrum.PurposeCare, Region: "12", Person: "195001182046", Kind: kind, What: "x"}
				if err := node.RecordAccess(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			got, err := node.AccessEventsAfter(ctx, 0, 2)
			if err != nil || len(got) != 2 || got[0].Event.Kind != "register-read" || got[1].Seq <= got[0].Seq {
				t.Fatalf("first page = %+v, %v; want the two oldest in order", got, err)
			}
			rest, _ := node.AccessEventsAfter(ctx, got[1].Seq, 10)
			if len(rest) != 1 || !rest[0].Event.Time.Equal(at.Add(2*time.Second)) {
				t.Errorf("after %d: %+v, want the third event", got[1].Seq, rest)
			}
			hub := open(t, e.dsn(t), sqlstore.PartHub)
			if seq, err := hub.EventCursor(ctx, "12"); err != nil || seq != 0 {
				t.Errorf("new cursor = %d, %v; want 0", seq, err)
			}
			hub.SetEventCursor(ctx, "12", 7)
			hub.SetEventCursor(ctx, "12", 9)
			if seq, _ := hub.EventCursor(ctx, "12"); seq != 9 {
				t.Errorf("cursor = %d, want 9", seq)
			}
		})
	}
}
