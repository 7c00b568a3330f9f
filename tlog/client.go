package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	f_log "github.com/transparency-dev/formats/log"
	f_note "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/bildrum/bildrum"
)

// maxResource bounds what a Client reads for one resource: a full tile is
// 8 KiB, a full entry bundle at most 256 entries of 64 KiB.
const maxResource = 256 * (2 + 1<<16)

// Client reads a bildrum log from outside over HTTP, using nothing but the
// [tlog-tiles] resources, and verifies everything it reads against the
// log's key and, when configured, its witnesses' cosignatures. It is what
// 'bildrum log verify' and 'bildrum log show' use; it is not safe for
// concurrent use.
type Client struct {
	prefix    *url.URL // ends in '/'
	origin    string
	vkey      string
	verifier  note.Verifier
	witnesses []note.Verifier
	quorum    int
	http      *http.Client
}

// NewClient returns a client for the log at the URL prefix (e.g.
// "https://hub.example/log") with the verifier key vkey. Checkpoints must
// carry valid cosignatures from at least quorum of the witnesses, given by
// their cosignature/v1 verifier keys (quorum 0 means all). hc may be nil.
func NewClient(prefix, vkey string, witnessKeys []string, quorum int, hc *http.Client) (*Client, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("log URL %q: want http(s)://HOST/log", prefix)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log verifier key %q: %v (want origin+hash+base64, as the hub publishes it)", vkey, err)
	}
	c := &Client{prefix: u, origin: v.Name(), vkey: vkey, verifier: v, quorum: quorum, http: hc}
	for _, k := range witnessKeys {
		wv, err := f_note.NewVerifierForCosignatureV1(k)
		if err != nil {
			return nil, fmt.Errorf("witness key %q: %v (want name+hash+base64)", k, err)
		}
		c.witnesses = append(c.witnesses, wv)
	}
	if c.quorum == 0 {
		c.quorum = len(c.witnesses)
	}
	if c.quorum > len(c.witnesses) {
		return nil, fmt.Errorf("witness quorum %d is more than the %d witness keys given", c.quorum, len(c.witnesses))
	}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	return c, nil
}

// Origin returns the log's origin, the name in its verifier key.
func (c *Client) Origin() string { return c.origin }

// VerifierKey returns the log's verifier key the client checks with.
func (c *Client) VerifierKey() string { return c.vkey }

// Checkpoint is a checkpoint whose signature (and witness quorum) verified.
type Checkpoint struct {
	Origin    string
	Size      uint64
	Hash      []byte   // root hash of the tree of Size leaves
	Raw       []byte   // the signed note as served
	Cosigners []string // witnesses whose cosignatures verified
}

// Checkpoint fetches and verifies the log's latest checkpoint.
func (c *Client) Checkpoint(ctx context.Context) (Checkpoint, error) {
	raw, err := c.get(ctx, layout.CheckpointPath)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := c.ParseCheckpoint(raw)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%s: %w", c.url(layout.CheckpointPath), err)
	}
	return cp, nil
}

// ParseCheckpoint verifies a checkpoint note: the log's signature, its
// origin, and the witness quorum.
func (c *Client) ParseCheckpoint(raw []byte) (Checkpoint, error) {
	n, err := note.Open(raw, note.VerifierList(append([]note.Verifier{c.verifier}, c.witnesses...)...))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		return Checkpoint{}, fmt.Errorf("the checkpoint is not signed by the log key %s+%08x: it was signed with another key", c.origin, c.verifier.KeyHash())
	case errors.As(err, &invalid):
		return Checkpoint{}, fmt.Errorf("the checkpoint carries a bad signature by %s+%08x: it was altered after signing", invalid.Name, invalid.Hash)
	case err != nil:
		return Checkpoint{}, fmt.Errorf("the checkpoint is not a signed note: %v", err)
	}
	signed := false
	out := Checkpoint{Raw: raw}
	for _, s := range n.Sigs {
		if s.Name == c.verifier.Name() && s.Hash == c.verifier.KeyHash() {
			signed = true
		}
		for _, w := range c.witnesses {
			if s.Name == w.Name() && s.Hash == w.KeyHash() {
				out.Cosigners = append(out.Cosigners, w.Name())
			}
		}
	}
	if !signed {
		return Checkpoint{}, fmt.Errorf("the checkpoint is not signed by the log key %s+%08x, only by witnesses", c.origin, c.verifier.KeyHash())
	}
	var cp f_log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return Checkpoint{}, fmt.Errorf("the signed note is not a checkpoint: %v", err)
	}
	if cp.Origin != c.origin {
		return Checkpoint{}, fmt.Errorf("the checkpoint is for origin %q, not %q", cp.Origin, c.origin)
	}
	out.Origin, out.Size, out.Hash = cp.Origin, cp.Size, cp.Hash
	if len(out.Cosigners) < c.quorum {
		var missing []string
		for _, w := range c.witnesses {
			if !containsString(out.Cosigners, w.Name()) {
				missing = append(missing, w.Name())
			}
		}
		return Checkpoint{}, fmt.Errorf("the checkpoint of size %d carries %d valid witness cosignatures, %d are required: none from %s", cp.Size, len(out.Cosigners), c.quorum, strings.Join(missing, ", "))
	}
	return out, nil
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// CheckConsistency checks that newer extends older: that the log only
// appended to the tree older signed, with a consistency proof built from
// the tiles.
func (c *Client) CheckConsistency(ctx context.Context, older, newer Checkpoint) error {
	switch {
	case older.Size > newer.Size:
		return fmt.Errorf("the log shrank: a checkpoint of size %d was seen before, the log now signs size %d: the log was rolled back or forked", older.Size, newer.Size)
	case older.Size == newer.Size:
		if !bytes.Equal(older.Hash, newer.Hash) {
			return fmt.Errorf("two checkpoints of size %d sign different roots (%x and %x): the log forked", older.Size, older.Hash, newer.Hash)
		}
		return nil
	case older.Size == 0:
		return nil
	}
	pb, err := client.NewProofBuilder(ctx, newer.Size, c.readTile)
	if err != nil {
		return err
	}
	p, err := pb.ConsistencyProof(ctx, older.Size, newer.Size)
	if err != nil {
		return fmt.Errorf("consistency proof from size %d to %d: %w", older.Size, newer.Size, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p, older.Hash, newer.Hash); err != nil {
		return fmt.Errorf("the checkpoint of size %d (root %x) is not consistent with the checkpoint of size %d (root %x) seen before: the log's history was rewritten, or its tiles were altered", newer.Size, newer.Hash, older.Size, older.Hash)
	}
	return nil
}

// CheckTiles checks that the tiles the log serves for the checkpoint hash
// to its signed root.
func (c *Client) CheckTiles(ctx context.Context, cp Checkpoint) error {
	root := rfc6962.DefaultHasher.EmptyRoot()
	if cp.Size > 0 {
		hashes, err := client.FetchRangeNodes(ctx, cp.Size, c.readTile)
		if err != nil {
			return fmt.Errorf("read the tiles of size %d: %w", cp.Size, err)
		}
		r, err := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewRange(0, cp.Size, hashes)
		if err != nil {
			return fmt.Errorf("tiles of size %d: %w", cp.Size, err)
		}
		if root, err = r.GetRootHash(nil); err != nil {
			return fmt.Errorf("tiles of size %d: %w", cp.Size, err)
		}
	}
	if !bytes.Equal(root, cp.Hash) {
		return fmt.Errorf("the tiles for size %d hash to root %x, but the checkpoint signs root %x: a tile was altered (run with -full to find it)", cp.Size, root, cp.Hash)
	}
	return nil
}

// Entry fetches the leaf at index and checks its inclusion in the tree of
// the checkpoint.
func (c *Client) Entry(ctx context.Context, cp Checkpoint, index uint64) ([]byte, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("leaf %d is not in the log: the checkpoint covers %d leaves", index, cp.Size)
	}
	b := index / layout.EntryBundleWidth
	path, raw, err := c.readResource(ctx, b, layout.PartialTileSize(0, b, cp.Size), layout.EntriesPath)
	if err != nil {
		return nil, err
	}
	var bundle api.EntryBundle
	if err := bundle.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(bundle.Entries)) {
		return nil, fmt.Errorf("%s holds %d entries, so not leaf %d", path, len(bundle.Entries), index)
	}
	e := bundle.Entries[i]
	pb, err := client.NewProofBuilder(ctx, cp.Size, c.readTile)
	if err != nil {
		return nil, err
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of leaf %d: %w", index, err)
	}
	if err := VerifyInclusion(e, index, cp.Size, p, cp.Hash); err != nil {
		return nil, fmt.Errorf("leaf %d in %s is not included in the tree of the signed checkpoint: the entry bundle or a tile was altered ('bildrum log verify -full' finds which)", index, path)
	}
	return e, nil
}

// AuditError lists what a full audit found wrong, each naming the tile or
// entry bundle and the leaf.
type AuditError struct {
	Problems []string
	More     int // problems found beyond those listed
}

// Error lists the problems, one a line.
func (e *AuditError) Error() string {
	var b strings.Builder
	if n := len(e.Problems) + e.More; n == 1 {
		b.WriteString("the log does not verify (1 problem):")
	} else {
		fmt.Fprintf(&b, "the log does not verify (%d problems):", n)
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  … and %d more", e.More)
	}
	return b.String()
}

// maxProblems is how many problems an AuditError lists.
const maxProblems = 20

// Audit recomputes the whole tree of the checkpoint from the entry bundles:
// it checks every hash of every tile the checkpoint needs and the root. It
// calls visit (when not nil) with each leaf in order. Problems with the
// log's data come back as an *AuditError; other errors (the network) as
// themselves.
func (c *Client) Audit(ctx context.Context, cp Checkpoint, visit func(index uint64, entry []byte) error) error {
	a := audit{c: c, cp: cp}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	all := rf.NewEmptyRange(0)
	for b := uint64(0); b*layout.EntryBundleWidth < cp.Size; b++ {
		p := layout.PartialTileSize(0, b, cp.Size)
		width := int(p)
		if p == 0 {
			width = layout.EntryBundleWidth
		}
		bpath, raw, err := c.readResource(ctx, b, p, layout.EntriesPath)
		if errors.Is(err, fs.ErrNotExist) {
			a.problem("%s is missing: the checkpoint of size %d needs it (leaves %d to %d)", bpath, cp.Size, b*layout.EntryBundleWidth, b*layout.EntryBundleWidth+uint64(width)-1)
			return a.err()
		} else if err != nil {
			return err
		}
		var bundle api.EntryBundle
		if err := bundle.UnmarshalText(raw); err != nil {
			a.problem("%s: not an entry bundle (%v)", bpath, err)
			return a.err()
		}
		if len(bundle.Entries) < width {
			a.problem("%s holds %d entries, the checkpoint of size %d needs %d (leaves %d to %d)", bpath, len(bundle.Entries), cp.Size, width, b*layout.EntryBundleWidth, b*layout.EntryBundleWidth+uint64(width)-1)
			return a.err()
		}
		hashes := make([][]byte, width)
		for i, e := range bundle.Entries[:width] {
			index := b*layout.EntryBundleWidth + uint64(i)
			hashes[i] = rfc6962.DefaultHasher.HashLeaf(e)
			if err := all.Append(hashes[i], nil); err != nil {
				return err
			}
			if visit != nil {
				if err := visit(index, e); err != nil {
					return err
				}
			}
		}
		tpath, tile, err := a.tile(ctx, 0, b, p)
		if err != nil {
			return err
		}
		if tile != nil {
			for i, h := range hashes {
				if i >= len(tile.Nodes) {
					a.problem("%s holds %d hashes, the checkpoint needs %d", tpath, len(tile.Nodes), width)
					break
				}
				if !bytes.Equal(tile.Nodes[i], h) {
					index := b*layout.EntryBundleWidth + uint64(i)
					a.mismatches = append(a.mismatches, mismatch{0, index, index,
						fmt.Sprintf("leaf %d: entry %d of %s hashes to %x, but hash %d of %s is %x", index, i, bpath, h, i, tpath, tile.Nodes[i])})
				}
			}
		}
		if p == 0 {
			if err := a.push(ctx, 1, subtreeRoot(rf, hashes)); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := a.flushPartial(ctx); err != nil {
		return err
	}
	root, err := all.GetRootHash(nil)
	if err != nil {
		return err
	}
	if cp.Size == 0 {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	rootOK := bytes.Equal(root, cp.Hash)
	tilesOK := c.CheckTiles(ctx, cp) == nil
	for _, m := range a.mismatches {
		// A hash above a wrong leaf is wrong because of it: say it once.
		if m.level > 0 && a.leafMismatchIn(m.first, m.last) {
			continue
		}
		switch {
		case rootOK:
			a.problem("%s: the entries hash to the signed root, so the tile was altered", m.msg)
		case tilesOK && m.level == 0:
			a.problem("%s: the tiles hash to the signed root and the entries do not, so the entry was altered", m.msg)
		default:
			a.problem("%s: the entry bundle or the tile was altered", m.msg)
		}
	}
	if !rootOK && len(a.mismatches) == 0 {
		a.problem("the %d entries hash to root %x, but the checkpoint signs root %x: entries were altered and their tiles rewritten to match", cp.Size, root, cp.Hash)
	}
	return a.err()
}

// mismatch is a tile hash that differs from the one recomputed from the
// entries, covering the leaves first to last.
type mismatch struct {
	level       int
	first, last uint64
	msg         string
}

func (a *audit) leafMismatchIn(first, last uint64) bool {
	for _, m := range a.mismatches {
		if m.level == 0 && m.first >= first && m.first <= last {
			return true
		}
	}
	return false
}

// audit is the state of one Client.Audit.
type audit struct {
	c          *Client
	cp         Checkpoint
	levels     [][][]byte // levels[l-1]: recomputed hashes for the level-l tile being filled
	next       []uint64   // next[l-1]: index of that tile
	problems   []string
	more       int
	mismatches []mismatch // judged once the root is known
}

func (a *audit) problem(format string, args ...any) {
	if len(a.problems) < maxProblems {
		a.problems = append(a.problems, fmt.Sprintf(format, args...))
	} else {
		a.more++
	}
}

func (a *audit) err() error {
	if len(a.problems) == 0 {
		return nil
	}
	return &AuditError{Problems: a.problems, More: a.more}
}

// push adds the recomputed hash of a full tile at level-1 to the level-l
// tile being filled, checking that tile against the log's when it is full.
func (a *audit) push(ctx context.Context, level int, h []byte) error {
	for len(a.levels) < level {
		a.levels = append(a.levels, nil)
		a.next = append(a.next, 0)
	}
	a.levels[level-1] = append(a.levels[level-1], h)
	if len(a.levels[level-1]) < layout.TileWidth {
		return nil
	}
	hashes := a.levels[level-1]
	if err := a.check(ctx, level, a.next[level-1], 0, hashes); err != nil {
		return err
	}
	a.levels[level-1] = nil
	a.next[level-1]++
	return a.push(ctx, level+1, subtreeRoot(&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}, hashes))
}

// flushPartial checks the partial tiles above level 0.
func (a *audit) flushPartial(ctx context.Context) error {
	for i, hashes := range a.levels {
		if len(hashes) == 0 {
			continue
		}
		if err := a.check(ctx, i+1, a.next[i], uint8(len(hashes)), hashes); err != nil {
			return err
		}
	}
	return nil
}

// check compares a tile of the log with the hashes recomputed from the
// entries.
func (a *audit) check(ctx context.Context, level int, index uint64, p uint8, want [][]byte) error {
	path, tile, err := a.tile(ctx, uint64(level), index, p)
	if err != nil || tile == nil {
		return err
	}
	span := uint64(1) << (8 * level) // leaves under each hash of the tile
	for i, h := range want {
		if i >= len(tile.Nodes) {
			a.problem("%s holds %d hashes, the checkpoint needs %d", path, len(tile.Nodes), len(want))
			return nil
		}
		if !bytes.Equal(tile.Nodes[i], h) {
			first := (index*layout.TileWidth + uint64(i)) * span
			a.mismatches = append(a.mismatches, mismatch{level, first, first + span - 1,
				fmt.Sprintf("%s: hash %d (leaves %d to %d) is %x, but the entries hash to %x", path, i, first, first+span-1, tile.Nodes[i], h)})
		}
	}
	return nil
}

// tile fetches and parses a tile; a tile that does not parse is recorded
// as a problem and returned as nil.
func (a *audit) tile(ctx context.Context, level, index uint64, p uint8) (string, *api.HashTile, error) {
	path, raw, err := a.c.readResource(ctx, index, p, func(n uint64, p uint8) string { return layout.TilePath(level, n, p) })
	if errors.Is(err, fs.ErrNotExist) {
		a.problem("%s is missing: the checkpoint of size %d needs it", path, a.cp.Size)
		return path, nil, nil
	} else if err != nil {
		return path, nil, err
	}
	var t api.HashTile
	if err := t.UnmarshalText(raw); err != nil {
		a.problem("%s: not a tile (%v)", path, err)
		return path, nil, nil
	}
	return path, &t, nil
}

// subtreeRoot is the Merkle Tree Hash of a full tile's hashes.
func subtreeRoot(rf *compact.RangeFactory, hashes [][]byte) []byte {
	r := rf.NewEmptyRange(0)
	for _, h := range hashes {
		r.Append(h, nil)
	}
	root, _ := r.GetRootHash(nil)
	return root
}

// readTile is a client.TileFetcherFunc.
func (c *Client) readTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	_, b, err := c.readResource(ctx, index, p, func(n uint64, p uint8) string { return layout.TilePath(level, n, p) })
	return b, err
}

// readResource fetches a tile or entry bundle, falling back from a partial
// one to the full one, which [tlog-tiles] lets logs delete the partial
// ones for. It returns the path it read.
func (c *Client) readResource(ctx context.Context, index uint64, p uint8, path func(uint64, uint8) string) (string, []byte, error) {
	rel := path(index, p)
	b, err := c.get(ctx, rel)
	if p != 0 && errors.Is(err, fs.ErrNotExist) {
		full := path(index, 0)
		if fb, ferr := c.get(ctx, full); ferr == nil {
			return full, fb, nil
		}
	}
	return rel, b, err
}

func (c *Client) url(rel string) string {
	return c.prefix.JoinPath(rel).String()
}

// get fetches one resource of the log; a missing one is fs.ErrNotExist.
func (c *Client) get(ctx context.Context, rel string) ([]byte, error) {
	u := c.url(rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "bildrum/"+bildrum.Version+" (transparency log client)")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: not found: %w", u, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResource+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	if len(b) > maxResource {
		return nil, fmt.Errorf("%s: larger than any tile or entry bundle can be", u)
	}
	return b, nil
}

// hashLeaf is the RFC 6962 leaf hash.
func hashLeaf(e []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(e) }
