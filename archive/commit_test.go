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
			a.pending.Add(len(round)) // as enqueue does
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
	first := a.enqueue(ctx, []bildrum.Instance{inst("1", "a")}, nil)
	<-idx.entered // the first round is inside PutInstances
	var more []*commit
	for _, uid := range []string{"2", "3", "4"} {
		more = append(more, a.enqueue(ctx, []bildrum.Instance{inst(uid, uid)}, nil))
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
		_, err := a.groupCommit(ctx, []bildrum.Instance{inst("1", "a")}, nil)
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

// gatedMemIndex is a memIndex that keeps the contract of gatingIndex: it
// signals entered when its statements have run, commits only when the gate
// returns nil, and makes a commit durable when the test sends its result on
// durable.
type gatedMemIndex struct {
	*memIndex
	entered chan struct{}
	durable chan error
	// rounds, when set, gets a channel of each round's own, in the order
	// of the rounds, whose value the round's sync returns (instead of one
	// from durable): to answer the syncs of rounds in turn.
	rounds chan chan error
}

func (g *gatedMemIndex) PutInstancesGated(ctx context.Context, instances []bildrum.Instance, gate func() ([]bildrum.Instance, error)) ([]error, func() error, error) {
	g.entered <- struct{}{}
	for {
		more, err := gate()
		if err != nil {
			return nil, nil, err
		}
		if len(more) == 0 {
			break
		}
		instances = append(instances, more...)
	}
	errs, err := g.memIndex.PutInstances(ctx, instances)
	if err != nil {
		return nil, nil, err
	}
	if g.rounds != nil {
		mine := make(chan error, 1)
		g.rounds <- mine
		return errs, func() error { return <-mine }, nil
	}
	return errs, func() error { return <-g.durable }, nil
}

// TestCommitWaitsForObjects checks that a round commits only once the
// objects of all its instances are durable; that batches queued while it
// waits join it, and it then waits for their objects too; and that an
// object that could not be made durable fails its own instance alone: the
// other instances of its batch and of the round are indexed.
func TestCommitWaitsForObjects(t *testing.T) {
	ctx := context.Background()
	idx := &gatedMemIndex{memIndex: newMemIndex(""), entered: make(chan struct{}, 4), durable: make(chan error, 4)}
	a := New(idx, nil)
	idx.durable <- nil
	idx.durable <- nil
	pending := func() *objectSync { return &objectSync{done: make(chan struct{})} }
	first, failing, last := pending(), pending(), pending()
	one := a.enqueue(ctx, []bildrum.Instance{inst("1", "a")}, []*objectSync{first})
	<-idx.entered // the round's statements have run; its gate waits
	two := a.enqueue(ctx, []bildrum.Instance{inst("2", "b"), inst("3", "c"), inst("4", "d")}, []*objectSync{failing, nil, last})
	close(first.done) // the round takes batch two and waits for its objects
	failing.err = errors.New("input/output error")
	close(failing.done)
	select {
	case <-one.done:
		t.Fatal("a round was acknowledged before the objects of all its instances were durable")
	default:
	}
	close(last.done)
	<-one.done
	<-two.done
	if one.err != nil || len(one.errs) != 1 || one.errs[0] != nil {
		t.Errorf("batch one: %v, %v; want one nil error", one.errs, one.err)
	}
	if two.err != nil || len(two.errs) != 3 || two.errs[0] == nil || two.errs[1] != nil || two.errs[2] != nil {
		t.Errorf("batch two: %v, %v; want the sync's error for the first instance alone", two.errs, two.err)
	}
	for uid, want := range map[string]bool{"1": true, "2": false, "3": true, "4": true} {
		if _, err := idx.Instance(ctx, uid); (err == nil) != want {
			t.Errorf("instance %s indexed: %v, want %v", uid, err == nil, want)
		}
	}
	// One transaction that failed on the object, then one per batch.
	if got := fmt.Sprint(idx.calls); got != "[1 2]" {
		t.Errorf("PutInstances calls of sizes %s, want [1 2]: batch one alone, batch two without its failed instance", got)
	}
	a.Wait()
	if len(a.pins) != 0 {
		t.Errorf("pins left: %v", a.pins)
	}
}

// TestCommitJoinsWaitingRound checks that batches queued while a round
// waits for its objects are committed in that round's transaction, as long
// as the round has room.
func TestCommitJoinsWaitingRound(t *testing.T) {
	ctx := context.Background()
	idx := &gatedMemIndex{memIndex: newMemIndex(""), entered: make(chan struct{}, 4), durable: make(chan error, 4)}
	for range 4 {
		idx.durable <- nil
	}
	a := New(idx, nil)
	sync := &objectSync{done: make(chan struct{})}
	first := a.enqueue(ctx, []bildrum.Instance{inst("1", "a")}, []*objectSync{sync})
	<-idx.entered
	big := make([]bildrum.Instance, maxRoundInstances)
	for i := range big {
		big[i] = inst(fmt.Sprint("big", i), fmt.Sprint("big", i))
	}
	batches := []*commit{
		a.enqueue(ctx, []bildrum.Instance{inst("2", "b")}, nil),
		a.enqueue(ctx, []bildrum.Instance{inst("3", "c"), inst("4", "d")}, nil),
		a.enqueue(ctx, big, nil), // no room left: the next round
	}
	close(sync.done)
	<-first.done
	for i, c := range batches {
		<-c.done
		if c.err != nil || len(c.errs) != len(c.instances) {
			t.Errorf("batch %d: %v, %v", i, c.errs, c.err)
		}
	}
	if got := fmt.Sprint(idx.calls); got != fmt.Sprint([]int{4, maxRoundInstances}) {
		t.Errorf("PutInstances calls of sizes %s, want [4 %d]: the first round with the two batches that fit", got, maxRoundInstances)
	}
}

// TestCommitAcknowledgesWhenDurable checks that a round committed by an
// index that makes its commits durable later is acknowledged only when
// that is done, that the committer runs the next round meanwhile, and that
// a round whose commit could not be made durable fails as a whole.
func TestCommitAcknowledgesWhenDurable(t *testing.T) {
	ctx := context.Background()
	idx := &gatedMemIndex{memIndex: newMemIndex(""), entered: make(chan struct{}, 4), rounds: make(chan chan error, 4)}
	a := New(idx, nil)
	first := a.enqueue(ctx, []bildrum.Instance{inst("1", "a")}, nil)
	<-idx.entered
	firstSync := <-idx.rounds
	// The first round has committed and waits for the disk; the next
	// round runs meanwhile.
	second := a.enqueue(ctx, []bildrum.Instance{inst("2", "b")}, nil)
	<-idx.entered
	secondSync := <-idx.rounds
	select {
	case <-first.done:
		t.Fatal("a round was acknowledged before its commit was durable")
	default:
	}
	firstSync <- nil
	secondSync <- errors.New("input/output error")
	<-first.done
	<-second.done
	if first.err != nil || len(first.errs) != 1 || first.errs[0] != nil {
		t.Errorf("first round: %v, %v; want stored", first.errs, first.err)
	}
	if second.err == nil {
		t.Errorf("second round: %v, %v; want the sync's error", second.errs, second.err)
	}
	waited := make(chan struct{})
	go func() { a.Wait(); close(waited) }()
	<-waited
}
