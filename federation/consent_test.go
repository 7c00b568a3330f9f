package federation_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/federation"
	"github.com/bildrum/bildrum/sqlstore"
)

func TestConsentReplicasFollowTheRegister(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	hubDB := openHubDB(t)
	type node struct {
		db  *sqlstore.DB
		srv *httptest.Server
	}
	nodes := map[string]*node{}
	for _, region := range []string{"12", "14"} {
		db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "node.db"), sqlstore.PartNode)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		mux := http.NewServeMux()
		federation.ReplicaRoutes(mux, db, time.Now, nil)
		srv := httptest.NewUnstartedServer(mux)
		srv.TLS = p.credentials(p.issue(federation.NodeIdentity(region), time.Hour)).ServerConfig()
		srv.StartTLS()
		t.Cleanup(srv.Close)
		nodes[region] = &node{db: db, srv: srv}
		if err := hubDB.PutNode(ctx, bildrum.Node{Region: region, Federation: srv.URL + "/federation/v1"}); err != nil {
			t.Fatal(err)
		}
	}
	hub := &federation.Hub{Directory: hubDB, Client: &federation.Client{Credentials: p.credentials(p.issue(federation.HubIdentity("SE"), time.Hour)), NodeTimeout: time.Second}}

	anna, berit := bildrum.PersonID("195001182046"), bildrum.PersonID("195203072227")
	hubDB.PutConsent(ctx, anna, bildrum.ConsentChoices{OptOuts: []bildrum.Purpose{"research"}}, "citizen")
	last, _ := hubDB.PutConsent(ctx, berit, bildrum.ConsentChoices{TrialContact: bildrum.TrialContact{OptIn: true, Email: "b@example.se"}}, "citizen")

	results, err := hub.SyncConsent(ctx, hubDB)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Status != bildrum.AnswerOK || r.Value.Version != last.Version || r.Value.SyncedAt.IsZero() {
			t.Errorf("sync of %s: %s %s, state %+v; want ok at version %d", r.Region, r.Status, r.Reason, r.Value, last.Version)
		}
	}
	for region, n := range nodes {
		rec, _ := n.db.ReplicaConsent(ctx, anna)
		if ok, _ := rec.Choices.Allows(bildrum.PurposeResearch, region); ok {
			t.Errorf("node %s's replica still allows research for anna after her opt-out", region)
		}
	}

	// Node 14 goes away; anna changes her mind; 14 is reported and catches up later.
	nodes["14"].srv.Close()
	changed, _ := hubDB.PutConsent(ctx, anna, bildrum.ConsentChoices{}, "citizen")
	results, _ = hub.SyncConsent(ctx, hubDB)
	status := map[string]string{}
	for _, r := range results {
		status[r.Region] = r.Status
	}
	if status["12"] != bildrum.AnswerOK || status["14"] != bildrum.AnswerDown {
		t.Errorf("sync with 14 down: %v, want 12 ok and 14 down", status)
	}
	rec, _ := nodes["12"].db.ReplicaConsent(ctx, anna)
	if rec.Version != changed.Version {
		t.Errorf("node 12 holds anna at version %d, want %d", rec.Version, changed.Version)
	}
	st, _ := nodes["14"].db.ReplicaState(ctx)
	if st.Version != last.Version {
		t.Errorf("node 14 (down) moved to version %d, want it left at %d", st.Version, last.Version)
	}
}
