package archive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
)

// memIndex is an in-memory bildrum.ImageIndex that keeps the contract of
// PutInstances: per-instance ECONFLICT and EINVALID, and a call that fails
// as a whole indexes nothing. A call holding the instance poison fails as a
// whole, as a broken database would. It records the size of each call.
type memIndex struct {
	bildrum.ImageIndex // the searches, which these tests do not use
	poison             string

	mu    sync.Mutex
	byUID map[string]bildrum.Instance
	calls []int
}

func newMemIndex(poison string) *memIndex {
	return &memIndex{poison: poison, byUID: map[string]bildrum.Instance{}}
}

func (m *memIndex) PutInstances(ctx context.Context, instances []bildrum.Instance) ([]error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, len(instances))
	for _, in := range instances {
		if in.SOPInstanceUID == m.poison {
			return nil, errors.New("disk I/O error")
		}
	}
	errs := make([]error, len(instances))
	for i, in := range instances {
		prev, ok := m.byUID[in.SOPInstanceUID]
		switch {
		case in.SOPInstanceUID == "":
			errs[i] = bildrum.Errorf(bildrum.EINVALID, "no SOP Instance UID")
		case ok && prev.Object.SHA256 != in.Object.SHA256:
			errs[i] = bildrum.Errorf(bildrum.ECONFLICT, "SOP Instance %s is stored with other content", in.SOPInstanceUID)
		default:
			m.byUID[in.SOPInstanceUID] = in
		}
	}
	return errs, nil
}

func (m *memIndex) Instance(ctx context.Context, uid string) (bildrum.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.byUID[uid]
	if !ok {
		return in, bildrum.Errorf(bildrum.ENOTFOUND, "no instance %s", uid)
	}
	return in, nil
}

// inst is an instance with content named by content.
func inst(uid, content string) bildrum.Instance {
	return bildrum.Instance{SOPInstanceUID: uid, Object: bildrum.Object{Key: "sha256/" + content, SHA256: content}}
}

// TestCommitRound checks one round of the committer: every batch waiting
// is indexed in one call, per-instance refusals stay with their instance,
// and a batch that fails a whole transaction fails no other batch.
func TestCommitRound(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]bildrum.Instance
		calls   []int      // sizes of the PutInstances calls
		want    [][]string // per batch, the error code of each instance; nil for a failed batch
		indexed []string
	}{
		{
			name:    "one transaction for all",
			batches: [][]bildrum.Instance{{inst("1", "a"), inst("2", "b")}, {inst("3", "c")}, {inst("4", "d")}},
			calls:   []int{4},
			want:    [][]string{{"", ""}, {""}, {""}},
			indexed: []string{"1", "2", "3", "4"},
		},
		{
			name: "refusals stay per instance",
			batches: [][]bildrum.Instance{
				{inst("1", "a"), inst("", "x")},
				{inst("1", "other"), inst("5", "e")}, // a later batch sees the earlier ones
				{inst("1", "a")},                     // the same bytes again: idempotent
			},
			calls:   []int{5},
			want:    [][]string{{"", bildrum.EINVALID}, {bildrum.ECONFLICT, ""}, {""}},
			indexed: []string{"1", "5"},
		},
		{
			name:    "a failing batch fails no other",
			batches: [][]bildrum.Instance{{inst("1", "a")}, {inst("2", "b"), inst("poison", "p")}, {inst("3", "c")}},
			calls:   []int{4, 1, 2, 1},
			want:    [][]string{{""}, nil, {""}},
			indexed: []string{"1", "3"},
		},
		{
			name:    "a failing batch alone",
			batches: [][]bildrum.Instance{{inst("poison", "p")}},
			calls:   []int{1},
			want:    [][]string{nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := newMemIndex("poison")
			a := New(idx, nil)
			var round []*commit
			for _, b := range tt.batches {
				for _, in := range b {
					a.pin(in.Object.Key)
				}
				round = append(round, &commit{ctx: context.Background(), instances: b, done: make(chan struct{})})
			}
			a.commitRound(round)
			if got := fmt.Sprint(idx.calls); got != fmt.Sprint(tt.calls) {
				t.Errorf("PutInstances calls of sizes %s, want %v", got, tt.calls)
			}
			for i, c := range round {
				select {
				case <-c.done:
				default:
					t.Errorf("batch %d not acknowledged", i)
				}
				if tt.want[i] == nil {
					if c.err == nil {
						t.Errorf("batch %d: err = nil, want the transaction's error", i)
					}
					continue
				}
				if c.err != nil || len(c.errs) != len(tt.want[i]) {
					t.Errorf("batch %d: %d errors, err %v; want %d, nil", i, len(c.errs), c.err, len(tt.want[i]))
					continue
				}
				for j, e := range c.errs {
					if got := bildrum.ErrorCode(e); got != tt.want[i][j] {
						t.Errorf("batch %d instance %d: error %v, want code %q", i, j, e, tt.want[i][j])
					}
				}
			}
			for _, uid := range tt.indexed {
				if _, err := idx.Instance(context.Background(), uid); err != nil {
					t.Errorf("instance %s not indexed: %v", uid, err)
				}
			}
			if len(idx.byUID) != len(tt.indexed) {
				t.Errorf("%d instances indexed, want %d", len(idx.byUID), len(tt.indexed))
			}
			if len(a.pins) != 0 {
				t.Errorf("pins left after the round: %v", a.pins)
			}
		})
	}
}

// TestCommitWaitsForItsRound checks that a batch is acknowledged only
// after the round holding it has indexed it, and that batches queued
// meanwhile are indexed together in the next round.
func TestCommitWaitsForItsRound(t *testing.T) {
	idx := &gatedIndex{memIndex: newMemIndex(""), entered: make(chan struct{}), release: make(chan struct{})}
	a := New(idx, nil)
	ctx := context.Background()
	first := a.enqueue(ctx, []bildrum.Instance{inst("1", "a")})
	<-idx.entered // the first round is inside PutInstances
	var more []*commit
	for _, uid := range []string{"2", "3", "4"} {
		more = append(more, a.enqueue(ctx, []bildrum.Instance{inst(uid, uid)}))
	}
	select {
	case <-first.done:
		t.Fatal("the batch was acknowledged before its transaction committed")
	default:
	}
	close(idx.release)
	<-first.done
	<-idx.entered // the second round
	for i, c := range append(more, first) {
		<-c.done
		if c.err != nil || len(c.errs) != 1 || c.errs[0] != nil {
			t.Errorf("batch %d: errors %v, %v; want one nil", i, c.errs, c.err)
		}
	}
	if got := fmt.Sprint(idx.calls); got != "[1 3]" {
		t.Errorf("PutInstances calls of sizes %s, want [1 3]: the three waiting batches in one round", got)
	}
}

// gatedIndex is a memIndex whose PutInstances signals entered and then
// waits for release.
type gatedIndex struct {
	*memIndex
	entered chan struct{}
	release chan struct{}
}

func (g *gatedIndex) PutInstances(ctx context.Context, instances []bildrum.Instance) ([]error, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.memIndex.PutInstances(ctx, instances)
}

// TestWaitOutlastsAbandonedRequests: a request that stops waiting leaves
// its round running; Wait returns only when that round has indexed it, so
// a node closing its database after Wait never cuts a round short.
func TestWaitOutlastsAbandonedRequests(t *testing.T) {
	idx := &gatedIndex{memIndex: newMemIndex(""), entered: make(chan struct{}), release: make(chan struct{})}
	a := New(idx, nil)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := a.groupCommit(ctx, []bildrum.Instance{inst("1", "a")})
		gaveUp <- err
	}()
	<-idx.entered // the round is inside PutInstances
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("groupCommit after its request ended = %v, want context.Canceled", err)
	}
	waited := make(chan struct{})
	go func() { a.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while a round was still inside PutInstances")
	default:
	}
	close(idx.release)
	<-waited
	if _, err := idx.Instance(context.Background(), "1"); err != nil {
		t.Errorf("after Wait the abandoned instance is not indexed: %v", err)
	}
}
