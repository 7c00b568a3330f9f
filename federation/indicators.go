package federation

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/bildrum/bildrum"
)

// PathIndicators is a node's quality indicators, computed from its own
// register and released under the small-cell rule, for the hub.
const PathIndicators = "/federation/v1/indicators"

// IndicatorSource computes a node's released indicators for a period kind
// ("year" or "quarter") as a JSON-encodable value. The protocol carries
// them as they are, so this package need not know their shape.
type IndicatorSource func(ctx context.Context, period string) (any, error)

// IndicatorRoutes adds the indicators call to a node's federation mux.
func IndicatorRoutes(mux *http.ServeMux, source IndicatorSource, log *slog.Logger) {
	mux.HandleFunc("GET "+PathIndicators, Handle(log, func(w http.ResponseWriter, r *http.Request) {
		v, err := source(r.Context(), r.URL.Query().Get("period"))
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		WriteJSON(w, v)
	}, "hub"))
}

// Indicators asks every node for its released indicators of a period kind
// at once, each under its own deadline, and returns one result per region
// with the node's answer as raw JSON.
func (h *Hub) Indicators(ctx context.Context, period string) ([]Result[json.RawMessage], error) {
	nodes, err := h.Directory.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	q := url.Values{"period": {period}}.Encode()
	return FanOut(ctx, nodes, h.timeout()*2, func(ctx context.Context, n bildrum.Node) (json.RawMessage, error) {
		var raw json.RawMessage
		base := strings.TrimSuffix(n.Federation, "/federation/v1")
		_, err := h.Client.Get(ctx, NodeIdentity(n.Region), base+PathIndicators+"?"+q, &raw)
		return raw, err
	}), nil
}
