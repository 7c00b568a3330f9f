package federation

import (
	"context"
	"sync"

	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

// PathAccessEvents is a node's outbox of accesses to women's data, which
// the hub carries into the transparency log.
const PathAccessEvents = "/federation/v1/access-events"

// AccessEvent is one event of a node's outbox, numbered in its order.
type AccessEvent struct {
	Seq   int64               `json:"seq"`
	Event bildrum.AccessEvent `json:"event"`
}

// AccessOutbox is what a node serves its outbox from.
type AccessOutbox func(ctx context.Context, after int64, limit int) ([]AccessEvent, error)

// AccessRoutes adds the outbox call to a node's federation mux.
func AccessRoutes(mux *http.ServeMux, outbox AccessOutbox, log *slog.Logger) {
	mux.HandleFunc("GET "+PathAccessEvents, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		if err != nil || after < 0 {
			writeProblem(w, r, bildrum.Errorf(bildrum.EINVALID, "after: give the last sequence number the hub holds (0 for none)"))
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		events, err := outbox(r.Context(), after, limit)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, events)
	}, "hub"))
}

// eventCursors is where the hub keeps how far each node's outbox is in the log.
type eventCursors interface {
	EventCursor(ctx context.Context, region string) (int64, error)
	SetEventCursor(ctx context.Context, region string, seq int64) error
}

// pullPage is how many events the hub takes from a node at once.
const pullPage = 1000

// AppendEvents appends a page of access events to the transparency log
// durably, all in one round (tlog.Log.AppendAll). When it fails, some of
// the events may be in the log already.
type AppendEvents func(ctx context.Context, events []bildrum.AccessEvent) error

// PullAccessEvents carries every node's new access events into the log:
// each page is appended (durably) before the node's cursor moves past it,
// so none is lost; a page may be logged twice if the hub stops between the
// two, or when appending it failed part way.
func (h *Hub) PullAccessEvents(ctx context.Context, cursors eventCursors, appendEvents AppendEvents) ([]Result[int], error) {
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("pull access events: %w", err)
	}
	return FanOut(ctx, nodes, h.timeout()*10, func(ctx context.Context, n bildrum.Node) (int, error) {
		base := strings.TrimSuffix(n.Federation, "/federation/v1")
		seq, err := cursors.EventCursor(ctx, n.Region)
		if err != nil {
			return 0, err
		}
		carried := 0
		for {
			var page []AccessEvent
			q := url.Values{"after": {strconv.FormatInt(seq, 10)}, "limit": {strconv.Itoa(pullPage)}}
			if _, err := h.Client.Get(ctx, NodeIdentity(n.Region), base+PathAccessEvents+"?"+q.Encode(), &page); err != nil {
				return carried, err
			}
			for _, ev := range page {
				if ev.Event.Region != n.Region {
					return carried, fmt.Errorf("node %s sent an access event of region %q", n.Region, ev.Event.Region)
				}
			}
			if err := appendEvents(ctx, eventsOf(page)); err != nil {
				return carried, err
			}
			if len(page) > 0 {
				seq = page[len(page)-1].Seq
				carried += len(page)
				if err := cursors.SetEventCursor(ctx, n.Region, seq); err != nil {
					return carried, err
				}
			}
			if len(page) < pullPage {
				return carried, nil
			}
		}
	}), nil
}

// eventsOf returns the events of an outbox page.
func eventsOf(page []AccessEvent) []bildrum.AccessEvent {
	events := make([]bildrum.AccessEvent, len(page))
	for i, ev := range page {
		events[i] = ev.Event
	}
	return events
}

// LocalRegion is the cursor name of the hub's own outbox.
const LocalRegion = "hub"

// PullLocal carries the hub's own outbox (the access events of steps the
// hub takes itself, such as recruitment invitations) into the log, as
// PullAccessEvents does a node's.
func PullLocal(ctx context.Context, outbox AccessOutbox, cursors eventCursors, appendEvents AppendEvents) (int, error) {
	seq, err := cursors.EventCursor(ctx, LocalRegion)
	if err != nil {
		return 0, err
	}
	carried := 0
	for {
		page, err := outbox(ctx, seq, pullPage)
		if err != nil {
			return carried, err
		}
		if err := appendEvents(ctx, eventsOf(page)); err != nil {
			return carried, err
		}
		if len(page) > 0 {
			seq = page[len(page)-1].Seq
			carried += len(page)
			if err := cursors.SetEventCursor(ctx, LocalRegion, seq); err != nil {
				return carried, err
			}
		}
		if len(page) < pullPage {
			return carried, nil
		}
	}
}

// AccessPull runs PullAccessEvents (and PullLocal when Local is set) every
// Interval until ctx ends.
type AccessPull struct {
	Hub     *Hub
	Cursors eventCursors
	Append  AppendEvents
	// Local is the hub's own outbox; nil when the hub keeps none.
	Local    AccessOutbox
	Interval time.Duration // default 2s
	Log      *slog.Logger

	mu sync.Mutex // one pull at a time, so no event is carried twice
}

// Once carries every node's new events into the log now.
func (p *AccessPull) Once(ctx context.Context) ([]Result[int], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Local != nil {
		if _, err := PullLocal(ctx, p.Local, p.Cursors, p.Append); err != nil {
			return nil, fmt.Errorf("carry the hub's own access events: %w", err)
		}
	}
	return p.Hub.PullAccessEvents(ctx, p.Cursors, p.Append)
}

// Run pulls until ctx ends.
func (p *AccessPull) Run(ctx context.Context) {
	interval := p.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		results, err := p.Once(ctx)
		if err != nil && p.Log != nil && ctx.Err() == nil {
			p.Log.Warn("pull access events", "err", err)
		}
		for _, r := range results {
			if r.Status != bildrum.AnswerOK && p.Log != nil && ctx.Err() == nil {
				p.Log.Warn("pull access events", "region", r.Region, "status", r.Status, "reason", r.Reason)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
