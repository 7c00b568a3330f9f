package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/problem"
)

// Paths of the consent replica protocol on a node.
const (
	PathConsentState   = "/federation/v1/consent/state"
	PathConsentChanges = "/federation/v1/consent/changes"
)

// maxConsentPush caps the body of one push of consent changes.
const maxConsentPush = 16 << 20

// ConsentPush is one push of consent register changes to a node: the
// newest record of every woman changed after the version the node holds,
// and the register version the node holds once it has applied them.
type ConsentPush struct {
	Records []bildrum.ConsentRecord `json:"records"`
	UpTo    int64                   `json:"up_to"`
}

// ReplicaRoutes adds the consent replica protocol to a node's federation
// mux: the hub reads the replica's state and pushes changes. The node
// stamps each push with its own clock, so the replica's age is the node's
// own measure.
func ReplicaRoutes(mux *http.ServeMux, replica bildrum.ConsentReplica, now func() time.Time, log *slog.Logger) {
	mux.HandleFunc("GET "+PathConsentState, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		st, err := replica.ReplicaState(r.Context())
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, st)
	}, "hub"))
	mux.HandleFunc("POST "+PathConsentChanges, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		var push ConsentPush
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConsentPush))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&push); err != nil {
			writeProblem(w, r, bildrum.Errorf(bildrum.EINVALID, "consent push: %v", err))
			return
		}
		if err := replica.ApplyConsentChanges(r.Context(), push.Records, push.UpTo, now()); err != nil {
			writeProblem(w, r, err)
			return
		}
		st, err := replica.ReplicaState(r.Context())
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, st)
	}, "hub"))
}

// post sends v as JSON to a part and decodes its answer; it is not retried.
func (c *Client) post(ctx context.Context, id Identity, url string, v, out any) error {
	return c.postLimit(ctx, id, url, v, out, maxResponse)
}

// postLimit is post reading at most limit bytes of the answer, for calls
// whose answers may be larger than most.
func (c *Client) postLimit(ctx context.Context, id Identity, url string, v, out any, limit int64) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderRequestID, newRequestID())
	if d, ok := ctx.Deadline(); ok {
		req.Header.Set(HeaderDeadline, d.UTC().Format(time.RFC3339Nano))
	}
	resp, err := c.httpClient(id).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, limit)
	if resp.StatusCode != http.StatusOK {
		var p problem.Details
		json.NewDecoder(lr).Decode(&p)
		return &RemoteError{Status: resp.StatusCode, Detail: p.Detail}
	}
	return json.NewDecoder(lr).Decode(out)
}

// consentChanges is what the hub needs from its consent register to sync.
type consentChanges interface {
	ConsentChanges(ctx context.Context, since int64, limit int) ([]bildrum.ConsentRecord, int64, error)
}

// pushPage is how many records go into one push.
const pushPage = 2000

// SyncConsent brings every node's replica up to the register's version,
// each node under its own deadline, and reports per region how it went.
// An up-to-date node still gets an (empty) push: that confirms its replica
// current, which is what keeps its secondary use open.
func (h *Hub) SyncConsent(ctx context.Context, register consentChanges) ([]Result[bildrum.ReplicaState], error) {
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("sync consent: %w", err)
	}
	return FanOut(ctx, nodes, h.timeout()*4, func(ctx context.Context, n bildrum.Node) (bildrum.ReplicaState, error) {
		id := NodeIdentity(n.Region)
		base := strings.TrimSuffix(n.Federation, "/federation/v1")
		var st bildrum.ReplicaState
		if _, err := h.Client.Get(ctx, id, base+PathConsentState, &st); err != nil {
			return st, err
		}
		for {
			recs, current, err := register.ConsentChanges(ctx, st.Version, pushPage)
			if err != nil {
				return st, err
			}
			upTo := current
			if len(recs) == pushPage {
				upTo = recs[len(recs)-1].Version
			}
			if recs == nil {
				recs = []bildrum.ConsentRecord{}
			}
			if err := h.Client.post(ctx, id, base+PathConsentChanges, ConsentPush{Records: recs, UpTo: upTo}, &st); err != nil {
				return st, err
			}
			if upTo == current {
				return st, nil
			}
		}
	}), nil
}

// ConsentSync keeps the nodes' replicas current: it syncs every Interval,
// and at once when Trigger is called after a change.
type ConsentSync struct {
	Hub      *Hub
	Register consentChanges
	Interval time.Duration // default 10s
	Log      *slog.Logger

	kick chan struct{}
}

// Trigger asks for a sync as soon as possible; it never blocks.
func (s *ConsentSync) Trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Init prepares the sync before Run and Trigger are used.
func (s *ConsentSync) Init() { s.kick = make(chan struct{}, 1) }

// Run syncs until ctx ends.
func (s *ConsentSync) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		results, err := s.Hub.SyncConsent(ctx, s.Register)
		if err != nil && s.Log != nil {
			s.Log.Warn("consent sync", "err", err)
		}
		for _, r := range results {
			if r.Status != bildrum.AnswerOK && s.Log != nil {
				s.Log.Warn("consent sync", "region", r.Region, "status", r.Status, "reason", r.Reason)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}
