package main

import (
	"net/http"
	"testing"
)

// TestNodeReadsReachHerLog: Skåne's staff read their register; the node
// records an access per woman before answering, the hub carries the events
// into the transparency log, and the citizen finds the read among her events.
func TestNodeReadsReachHerLog(t *testing.T) {
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	staff := e.Personas["staff-12"].Token
	for offset := 0; ; offset += 1000 {
		var page struct {
			Total int   `json:"total"`
			Rows  []any `json:"rows"`
		}
		if code := get(t, e.Nodes[1].API+"/exams?limit=1000&offset="+itoa(offset), staff, &page); code != http.StatusOK {
			t.Fatalf("GET exams = %d", code)
		}
		if offset+len(page.Rows) >= page.Total {
			break
		}
	}
	if err := d.hub.CarryAccessEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	var mine struct {
		TreeSize int `json:"tree_size"`
		Events   []struct {
			Kind   string `json:"kind"`
			Region string `json:"region"`
			Actor  struct {
				Organisation string `json:"organisation"`
				Role         string `json:"role"`
			} `json:"actor"`
			ActorName string   `json:"actor_name"`
			Proof     []string `json:"proof"`
			Pending   bool     `json:"pending"`
		} `json:"events"`
	}
	if code := get(t, e.Hub.API+"/me/events", e.Personas["citizen"].Token, &mine); code != http.StatusOK {
		t.Fatalf("GET /api/v1/me/events = %d", code)
	}
	found := false
	for _, ev := range mine.Events {
		if ev.Kind == "register-read" && ev.Region == "12" && ev.Actor.Organisation == "Region Skåne" && ev.ActorName == "staff-12" && !ev.Pending {
			found = true
		}
	}
	if !found || mine.TreeSize < 200 {
		t.Errorf("her events %+v (tree size %d): want Skåne's register read among them, in a checkpointed tree of one leaf per woman read", mine.Events, mine.TreeSize)
	}
	// Carrying again adds nothing: the hub keeps its place in each node's outbox.
	before := mine.TreeSize
	if err := d.hub.CarryAccessEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	get(t, e.Hub.API+"/me/events", e.Personas["citizen"].Token, &mine)
	if mine.TreeSize != before {
		t.Errorf("a second carry grew the log from %d to %d", before, mine.TreeSize)
	}
}
