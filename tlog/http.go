package tlog

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/problem"
)

// Prefix is where the hub serves the log: the [tlog-tiles] URL prefix.
const Prefix = "/log"

// The JSON API for clients that would rather not compute proofs from tiles,
// such as the citizen's page. Everything it answers can be checked against
// a signed checkpoint; docs/transparency.md describes the messages.
const (
	PathInclusion   = Prefix + "/v1/proof/inclusion"   // ?index=N&tree_size=M
	PathConsistency = Prefix + "/v1/proof/consistency" // ?first=M&second=N
	PathEntries     = Prefix + "/v1/entries/"          // + index
	PathVerifierKey = Prefix + "/v1/verifier-key"
)

// InclusionProofJSON is the answer of PathInclusion.
type InclusionProofJSON struct {
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize  uint64   `json:"tree_size"`
	Hashes    [][]byte `json:"hashes"` // base64, as RFC 6962 audit path
}

// ConsistencyProofJSON is the answer of PathConsistency.
type ConsistencyProofJSON struct {
	First  uint64   `json:"first"`
	Second uint64   `json:"second"`
	Hashes [][]byte `json:"hashes"` // base64
}

// EntryJSON is the answer of PathEntries: the leaf's exact bytes, which
// are what is hashed, and the leaf decoded for reading.
type EntryJSON struct {
	Index    uint64 `json:"index"`
	Entry    []byte `json:"entry"`     // base64 of the leaf bytes
	LeafHash []byte `json:"leaf_hash"` // RFC 6962 leaf hash, base64
	Leaf     *Leaf  `json:"leaf,omitempty"`
}

// Routes adds the log's read-only routes under Prefix to mux: the
// [tlog-tiles] resources (checkpoint, tile/…, tile/entries/…) straight from
// the log directory, and the JSON API. None needs credentials, and any web
// origin may read them: the log is public and holds no personal data in the
// clear.
func (l *Log) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"/checkpoint", public(l.serveCheckpoint))
	mux.HandleFunc("GET "+Prefix+"/tile/entries/{index...}", public(l.serveBundle))
	mux.HandleFunc("GET "+Prefix+"/tile/{level}/{index...}", public(l.serveTile))
	mux.HandleFunc("GET "+PathInclusion, public(l.serveInclusion))
	mux.HandleFunc("GET "+PathConsistency, public(l.serveConsistency))
	mux.HandleFunc("GET "+PathEntries+"{index}", public(l.serveEntry))
	mux.HandleFunc("GET "+PathVerifierKey, public(l.serveVerifierKey))
}

// public lets scripts of any web origin read a response (CORS), so that
// monitors and verifiers can run in a browser.
func public(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h(w, r)
	}
}

// Handler returns an http.Handler serving Routes. Its patterns include
// Prefix, so it is mounted at Prefix+"/" as it is, without StripPrefix.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	l.Routes(mux)
	return mux
}

func (l *Log) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := l.Checkpoint(r.Context())
	if err != nil {
		l.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// [tlog-tiles]: mutable, no caching beyond a few seconds.
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
}

func (l *Log) serveTile(w http.ResponseWriter, r *http.Request) {
	level, index, p, err := layout.ParseTileLevelIndexPartial(r.PathValue("level"), r.PathValue("index"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	l.serveStatic(w, r, layout.TilePath(level, index, p), false)
}

func (l *Log) serveBundle(w http.ResponseWriter, r *http.Request) {
	index, p, err := layout.ParseTileIndexPartial(r.PathValue("index"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	l.serveStatic(w, r, layout.EntriesPath(index, p), true)
}

// serveStatic serves one immutable resource of the log directory. The path
// is rebuilt from the parsed numbers and must equal the request's, so only
// canonical [tlog-tiles] paths are served and nothing else of the directory.
func (l *Log) serveStatic(w http.ResponseWriter, r *http.Request, rel string, compress bool) {
	if Prefix+"/"+rel != r.URL.Path {
		http.NotFound(w, r)
		return
	}
	b, err := os.ReadFile(filepath.Join(l.cfg.Dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		l.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if !compress {
		w.Write(b)
		return
	}
	h.Set("Vary", "Accept-Encoding")
	if !acceptsGzip(r) {
		w.Write(b)
		return
	}
	h.Set("Content-Encoding", "gzip")
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (l *Log) serveInclusion(w http.ResponseWriter, r *http.Request) {
	index, err1 := queryUint(r, "index")
	size, err2 := queryUint(r, "tree_size")
	if err := errors.Join(err1, err2); err != nil {
		l.fail(w, r, err)
		return
	}
	hashes, err := l.InclusionProof(r.Context(), index, size)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, InclusionProofJSON{LeafIndex: index, TreeSize: size, Hashes: hashes})
}

func (l *Log) serveConsistency(w http.ResponseWriter, r *http.Request) {
	first, err1 := queryUint(r, "first")
	second, err2 := queryUint(r, "second")
	if err := errors.Join(err1, err2); err != nil {
		l.fail(w, r, err)
		return
	}
	hashes, err := l.ConsistencyProof(r.Context(), first, second)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	writeJSON(w, ConsistencyProofJSON{First: first, Second: second, Hashes: hashes})
}

func (l *Log) serveEntry(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		l.fail(w, r, bildrum.Errorf(bildrum.EINVALID, "entry index %q: want a leaf index, a decimal number", r.PathValue("index")))
		return
	}
	e, err := l.Entry(r.Context(), index)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	out := EntryJSON{Index: index, Entry: e, LeafHash: hashLeaf(e)}
	if leaf, err := ParseLeaf(e); err == nil {
		out.Leaf = &leaf
	}
	writeJSON(w, out)
}

func (l *Log) serveVerifierKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(l.vkey + "\n"))
}

func (l *Log) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Error(w, r, l.cfg.Log, err)
}

func queryUint(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, bildrum.Errorf(bildrum.EINVALID, "query parameter %s=%q: want a decimal number", name, s)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(v)
}
