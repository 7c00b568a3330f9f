package web

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
	"github.com/bildrum/bildrum/tlog"
)

// maxEventsShown caps the events one answer proves, newest first.
const maxEventsShown = 200

// Events serves a woman her own events from the transparency log, each
// with everything her browser needs to check it without trusting the hub:
// the signed checkpoint, the log's verifier key, the leaf as logged, its
// inclusion proof, and her person key, which shows the leaf is about her.
type Events struct {
	Log  *tlog.Log
	Auth *auth.Authenticator
	Logs *slog.Logger
}

// Routes adds GET /api/v1/me/events to mux.
func (e *Events) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/me/events", e.Auth.Require(e.mine, bildrum.RoleCitizen))
}

// eventView is one of her events, opened for her.
type eventView struct {
	Index      uint64          `json:"index"`
	Leaf       string          `json:"leaf"` // the leaf as logged, base64
	Time       string          `json:"time"`
	Actor      tlog.Actor      `json:"actor"`
	Purpose    bildrum.Purpose `json:"purpose"`
	LegalBasis string          `json:"legal_basis"`
	Region     string          `json:"region"`
	Kind       string          `json:"kind"`
	What       string          `json:"what"`
	ActorName  string          `json:"actor_name"`
	Proof      []string        `json:"proof,omitempty"` // inclusion proof hashes, base64; none while pending
	Pending    bool            `json:"pending"`         // logged, not yet in a published checkpoint
}

type eventsAnswer struct {
	Origin      string      `json:"origin"`
	VerifierKey string      `json:"verifier_key"`
	Checkpoint  string      `json:"checkpoint"`
	TreeSize    uint64      `json:"tree_size"`
	PersonKey   string      `json:"person_key"` // base64; hers alone
	Events      []eventView `json:"events"`
}

func (e *Events) mine(w http.ResponseWriter, r *http.Request) {
	p, _ := bildrum.PrincipalFrom(r.Context())
	ctx := r.Context()
	indices, err := e.Log.PersonIndices(ctx, p.Person)
	if err != nil {
		problem.Error(w, r, e.Logs, err)
		return
	}
	var cp []byte
	if len(indices) > 0 {
		// Her newest event is usually in the next checkpoint, signed within
		// the log's interval: wait for it briefly, so it comes with a proof.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cp, _ = e.Log.WaitCheckpoint(wctx, indices[len(indices)-1])
		cancel()
	}
	if cp == nil {
		if cp, err = e.Log.Checkpoint(ctx); err != nil {
			problem.Error(w, r, e.Logs, err)
			return
		}
	}
	parsed, err := e.Log.ParseCheckpoint(cp)
	if err != nil {
		problem.Error(w, r, e.Logs, err)
		return
	}
	key := e.Log.PersonKey(p.Person)
	a := eventsAnswer{Origin: e.Log.Origin(), VerifierKey: e.Log.VerifierKey(), Checkpoint: string(cp), TreeSize: parsed.Size,
		PersonKey: base64.StdEncoding.EncodeToString(key), Events: []eventView{}}
	for i := len(indices) - 1; i >= 0 && len(a.Events) < maxEventsShown; i-- {
		idx := indices[i]
		raw, err := e.Log.Entry(ctx, idx)
		if err != nil {
			problem.Error(w, r, e.Logs, err)
			return
		}
		leaf, err := tlog.ParseLeaf(raw)
		if err != nil {
			problem.Error(w, r, e.Logs, err)
			return
		}
		d, err := tlog.OpenDetails(key, leaf)
		if err != nil {
			continue // not hers after all: never shown
		}
		v := eventView{Index: idx, Leaf: base64.StdEncoding.EncodeToString(raw), Time: leaf.Time, Actor: leaf.Actor, Purpose: leaf.Purpose,
			LegalBasis: leaf.LegalBasis, Region: leaf.Region, Kind: leaf.Kind, What: d.What, ActorName: d.ActorName, Pending: idx >= parsed.Size}
		if !v.Pending {
			proof, err := e.Log.InclusionProof(ctx, idx, parsed.Size)
			if err != nil {
				problem.Error(w, r, e.Logs, err)
				return
			}
			for _, h := range proof {
				v.Proof = append(v.Proof, base64.StdEncoding.EncodeToString(h))
			}
		}
		a.Events = append(a.Events, v)
	}
	writeJSON(w, a)
}
