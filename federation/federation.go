// Package federation is the protocol between the national hub and the
// regional nodes: the node's side serves what the hub may ask, the hub's side
// fans calls out to every node under a per-node deadline and reports, region
// by region, who answered and why not, so that no total is ever presented as
// complete when a region is missing.
//
// Version 1 runs over HTTP with JSON bodies under /federation/v1/ and a
// bearer credential of role hub; mutual TLS comes with the federation issue.
// docs/federation.md describes the messages.
package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
)

// PathStatus is the node's status endpoint, relative to its base URL.
const PathStatus = "/federation/v1/status"

// maxResponse caps what the hub reads from one node's answer.
const maxResponse = 1 << 20

// registerSummary is what a node needs from its register to report status.
type registerSummary interface {
	RegisterSummary(ctx context.Context) (bildrum.RegisterSummary, error)
}

// NodeServer serves a node's side of the protocol.
type NodeServer struct {
	Region   string
	Register registerSummary
	Auth     *auth.Authenticator
	Log      *slog.Logger
}

// Routes adds the node's federation routes to mux.
func (s *NodeServer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathStatus, s.Auth.Require(s.status, bildrum.RoleHub))
}

func (s *NodeServer) status(w http.ResponseWriter, r *http.Request) {
	sum, err := s.Register.RegisterSummary(r.Context())
	if err != nil {
		problem.Error(w, r, s.Log, err)
		return
	}
	writeJSON(w, bildrum.NodeStatus{
		Region: s.Region, Version: bildrum.Version,
		Women: sum.Women, Exams: sum.Exams, DataVersion: sum.DataVersion,
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// Client is the hub's side of the protocol.
type Client struct {
	HTTP  *http.Client // transport to the nodes
	Token string       // the hub's bearer credential at the nodes

	// NodeTimeout bounds each node's answer in a fan-out (default 2s).
	NodeTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Status asks one node for its status.
func (c *Client) Status(ctx context.Context, n bildrum.Node) (bildrum.NodeStatus, error) {
	var s bildrum.NodeStatus
	start := c.now()
	if err := c.get(ctx, n.Federation+strings.TrimPrefix(PathStatus, "/federation/v1"), &s); err != nil {
		return s, err
	}
	if s.Region != n.Region {
		return s, fmt.Errorf("node at %s says it serves region %q, not %s", n.Federation, s.Region, n.Region)
	}
	s.CheckedAt = c.now().UTC()
	s.LatencyMS = s.CheckedAt.Sub(start).Milliseconds()
	return s, nil
}

// get fetches url and decodes its JSON answer into v; a problem details
// answer becomes a *RemoteError.
func (c *Client) get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxResponse)
	if resp.StatusCode != http.StatusOK {
		var p problem.Details
		json.NewDecoder(body).Decode(&p)
		return &RemoteError{Status: resp.StatusCode, Detail: p.Detail}
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("decode answer of %s: %w", url, err)
	}
	return nil
}

// RemoteError is a node's refusal: an HTTP error status with its detail.
type RemoteError struct {
	Status int
	Detail string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("node answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// Result is one node's outcome of a fan-out: how it answered, and its value
// when it did.
type Result[T any] struct {
	bildrum.RegionAnswer
	Value T
}

// FanOut calls fn for every node at once, each under its own deadline of
// timeout, and returns one result per node in the nodes' order. It never
// fails as a whole: a node that is down, slow or refusing is reported as such.
func FanOut[T any](ctx context.Context, nodes []bildrum.Node, timeout time.Duration, fn func(context.Context, bildrum.Node) (T, error)) []Result[T] {
	out := make([]Result[T], len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			v, err := fn(nctx, n)
			out[i] = Result[T]{RegionAnswer: answerOf(n.Region, err), Value: v}
		}()
	}
	wg.Wait()
	return out
}

// answerOf classifies a node's error for the person reading the answer.
func answerOf(region string, err error) bildrum.RegionAnswer {
	a := bildrum.RegionAnswer{Region: region, Status: bildrum.AnswerOK}
	var remote *RemoteError
	var netErr net.Error
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		a.Status, a.Reason = bildrum.AnswerTimeout, "did not answer in time"
	case errors.As(err, &remote):
		a.Status, a.Reason = bildrum.AnswerRefused, remote.Error()
	case isUnreachable(err):
		a.Status, a.Reason = bildrum.AnswerDown, "could not be reached"
	default:
		a.Status, a.Reason = bildrum.AnswerRefused, err.Error()
	}
	return a
}

func isUnreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Hub gathers the federation's state for the hub's pages and APIs.
type Hub struct {
	Directory bildrum.NodeDirectory
	Client    *Client
	Log       *slog.Logger
}

// Overview asks every node for its status at once and reports each region:
// its current status when it answered, its last known one otherwise.
func (h *Hub) Overview(ctx context.Context) (bildrum.FederationOverview, error) {
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return bildrum.FederationOverview{}, fmt.Errorf("overview: %w", err)
	}
	timeout := h.Client.NodeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ov := bildrum.FederationOverview{AskedAt: h.Client.now().UTC(), Asked: len(nodes)}
	results := FanOut(ctx, nodes, timeout, h.Client.Status)
	for i, res := range results {
		n := nodes[i]
		region, _ := bildrum.RegionByCode(n.Region)
		rep := bildrum.NodeReport{RegionAnswer: res.RegionAnswer, Name: region.Name, Web: n.Web, Node: n.LastStatus}
		if res.Status == bildrum.AnswerOK {
			rep.Node = res.Value
			ov.Answered++
			ov.Women += res.Value.Women
			ov.Exams += res.Value.Exams
			if err := h.Directory.RecordStatus(ctx, res.Value); err != nil && h.Log != nil {
				h.Log.Warn("record node status", "region", n.Region, "err", err)
			}
		}
		ov.Nodes = append(ov.Nodes, rep)
	}
	ov.Complete = ov.Answered == ov.Asked
	return ov, nil
}
