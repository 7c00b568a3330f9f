// Package federation is the protocol between the national hub and the
// regional nodes: the node's side serves what the hub may ask, the hub's side
// fans calls out to every node under a per-node deadline and reports, region
// by region, who answered and why not, so that no total is ever presented as
// complete when a region is missing.
//
// Version 1 runs over HTTPS with JSON bodies under /federation/v1/, TLS 1.3
// with certificates from the federation's own CA both ways (ca.go, tls.go);
// a part's identity is the URI its certificate names. docs/federation.md
// describes the messages.
package federation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/problem"
)

// PathStatus is the node's status endpoint, relative to its base URL.
const PathStatus = "/federation/v1/status"

// Protocol headers: every call carries a request ID, which the node logs and
// echoes, and the caller's deadline, which bounds the node's work.
const (
	HeaderRequestID = "X-Request-Id"
	HeaderDeadline  = "Bildrum-Deadline" // RFC 3339 with fractional seconds
)

// maxResponse caps what the hub reads from one node's answer.
const maxResponse = 1 << 20

// registerSummary is what a node needs from its register to report status.
type registerSummary interface {
	RegisterSummary(ctx context.Context) (bildrum.RegisterSummary, error)
}

// NodeServer serves a node's side of the protocol. Its routes must be
// served over TLS with Credentials.ServerConfig: callers are identified by
// their client certificates, and only a hub may call.
type NodeServer struct {
	Region   string
	Register registerSummary
	Log      *slog.Logger
}

// Routes adds the node's federation routes to mux.
func (s *NodeServer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathStatus, s.handle(s.status))
}

// handle wraps a federation handler with the peer check, the request ID and
// the caller's deadline.
func (s *NodeServer) handle(h http.HandlerFunc) http.HandlerFunc {
	return Handle(s.Log, h, "hub")
}

// Handle wraps a federation endpoint: only parts of the given kinds may call
// over mutual TLS; the request ID is logged and echoed; the caller's
// deadline bounds the handler's context.
func Handle(log *slog.Logger, h http.HandlerFunc, kinds ...string) http.HandlerFunc {
	return RequirePeer(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if len(id) > 64 {
			id = id[:64]
		}
		if id != "" {
			w.Header().Set(HeaderRequestID, id)
		}
		ctx := r.Context()
		if d, err := time.Parse(time.RFC3339Nano, r.Header.Get(HeaderDeadline)); err == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d)
			defer cancel()
		}
		if log != nil {
			peer, _ := PeerIdentity(r)
			log.Debug("federation call", "path", r.URL.Path, "peer", peer.String(), "request_id", id)
		}
		h(w, r.WithContext(ctx))
	}, kinds...)
}

func (s *NodeServer) status(w http.ResponseWriter, r *http.Request) {
	sum, err := s.Register.RegisterSummary(r.Context())
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	WriteJSON(w, bildrum.NodeStatus{
		Region: s.Region, Version: bildrum.Version,
		Women: sum.Women, Exams: sum.Exams, DataVersion: sum.DataVersion,
	})
}

// WriteJSON answers a federation call with v as JSON.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	problem.Error(w, r, nil, err)
}

// Client is the hub's side of the protocol: it calls nodes over mutual TLS,
// checking that each answers with its own region's certificate.
type Client struct {
	Credentials *Credentials

	// NodeTimeout bounds each node's answer in a fan-out (default 2s).
	NodeTimeout time.Duration
	// Retries is how often an idempotent call is retried after a
	// connection failure, with exponential backoff from 50 ms (default 2).
	Retries int
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	clients map[Identity]*http.Client // guarded by mu
	peers   map[string]*http.Client   // by peer name, guarded by mu
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// httpClient returns the mutual-TLS client for the part named id.
func (c *Client) httpClient(id Identity) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clients == nil {
		c.clients = map[Identity]*http.Client{}
	}
	hc, ok := c.clients[id]
	if !ok {
		hc = &http.Client{Transport: c.Credentials.Transport(id)}
		c.clients[id] = hc
	}
	return hc
}

// Call describes one federation call as made.
type Call struct {
	RequestID   string
	Latency     time.Duration
	CertExpires time.Time // the answering part's certificate
}

// Status asks one node for its status.
func (c *Client) Status(ctx context.Context, n bildrum.Node) (bildrum.NodeStatus, error) {
	var s bildrum.NodeStatus
	call, err := c.Get(ctx, NodeIdentity(n.Region), n.Federation+strings.TrimPrefix(PathStatus, "/federation/v1"), &s)
	if err != nil {
		return s, err
	}
	if s.Region != n.Region {
		return s, fmt.Errorf("node at %s says it serves region %q, not %s", n.Federation, s.Region, n.Region)
	}
	s.CheckedAt = c.now().UTC()
	s.LatencyMS = call.Latency.Milliseconds()
	s.CertExpires = call.CertExpires.UTC()
	return s, nil
}

// Get makes an idempotent call to the part named id and decodes its JSON
// answer into v. Connection failures are retried with backoff within ctx's
// deadline; a problem details answer becomes a *RemoteError.
func (c *Client) Get(ctx context.Context, id Identity, url string, v any) (Call, error) {
	return c.get2(ctx, c.httpClient(id), url, v)
}

// get2 is Get on a given mutual-TLS client.
func (c *Client) get2(ctx context.Context, hc *http.Client, url string, v any) (Call, error) {
	call := Call{RequestID: newRequestID()}
	retries := c.Retries
	if retries == 0 {
		retries = 2
	}
	backoff := 50 * time.Millisecond
	start := c.now()
	for attempt := 0; ; attempt++ {
		err := c.get(ctx, hc, url, call.RequestID, v, &call)
		if err == nil {
			call.Latency = c.now().Sub(start)
			return call, nil
		}
		var remote *RemoteError
		if attempt >= retries || errors.As(err, &remote) || ctx.Err() != nil || !isUnreachable(err) {
			return call, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return call, err
		case <-t.C:
		}
		backoff *= 2
	}
}

func (c *Client) get(ctx context.Context, hc *http.Client, url, requestID string, v any, call *Call) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderRequestID, requestID)
	if d, ok := ctx.Deadline(); ok {
		req.Header.Set(HeaderDeadline, d.UTC().Format(time.RFC3339Nano))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		call.CertExpires = resp.TLS.PeerCertificates[0].NotAfter
	}
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

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
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

// isUnreachable reports a failure to reach the part at all: a refused or
// reset connection, or a TLS handshake the part's certificate failed.
func isUnreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Hub gathers the federation's state for the hub's pages and APIs.
type Hub struct {
	Directory bildrum.NodeDirectory
	Client    *Client
	// Peers are other countries' hubs, asked beside the nodes.
	Peers []Peer
	Log   *slog.Logger
}

// Overview asks every node and every peer hub at once and reports each:
// a region's current status when it answered, its last known one otherwise.
func (h *Hub) Overview(ctx context.Context) (bildrum.FederationOverview, error) {
	var peers []bildrum.PeerReport
	done := make(chan struct{})
	go func() {
		defer close(done)
		peers = h.peerReports(ctx)
	}()
	ov, err := h.Nodes(ctx)
	<-done
	ov.Peers = peers
	return ov, err
}

// peerReports asks every peer hub for its status.
func (h *Hub) peerReports(ctx context.Context) []bildrum.PeerReport {
	var out []bildrum.PeerReport
	targets := make([]bildrum.Node, len(h.Peers))
	for i, p := range h.Peers {
		targets[i] = bildrum.Node{Region: p.Trust.Name, Federation: p.Federation}
	}
	results := FanOut(ctx, targets, h.timeout(), func(ctx context.Context, n bildrum.Node) (bildrum.PeerStatus, error) {
		for _, p := range h.Peers {
			if p.Trust.Name == n.Region {
				return h.Client.PeerStatus(ctx, p)
			}
		}
		return bildrum.PeerStatus{}, fmt.Errorf("unknown peer %s", n.Region)
	})
	for _, r := range results {
		out = append(out, bildrum.PeerReport{Name: r.Region, Status: r.Status, Reason: r.Reason, Peer: r.Value})
	}
	return out
}

func (h *Hub) timeout() time.Duration {
	if h.Client.NodeTimeout > 0 {
		return h.Client.NodeTimeout
	}
	return 2 * time.Second
}

// Nodes asks every node of this hub's own federation, without peers.
func (h *Hub) Nodes(ctx context.Context) (bildrum.FederationOverview, error) {
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return bildrum.FederationOverview{}, fmt.Errorf("overview: %w", err)
	}
	ov := bildrum.FederationOverview{AskedAt: h.Client.now().UTC(), Asked: len(nodes)}
	results := FanOut(ctx, nodes, h.timeout(), h.Client.Status)
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
