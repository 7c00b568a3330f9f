package archive

import (
	"context"
	"fmt"

	"github.com/bildrum/bildrum"
)

// Group commit.
//
// Every store request ends in an index transaction, and on a durable store
// every transaction ends in a sync (SQLite's WAL fsync, PostgreSQL's WAL
// flush), which costs more than indexing a few instances. So the requests
// that wait at the same moment share one: Batch.Commit queues its instances
// and waits; a committer goroutine takes every batch waiting (a round),
// indexes them all in one PutInstances call, and then acknowledges each.
// Batches that arrive during a round wait for the next, which takes them
// all at once: the busier the archive, the larger the rounds. The committer
// runs only while batches wait; it is started by the first batch after a
// quiet moment and ends when none is left, so the Archive needs no Close.
//
// Grouping changes no guarantee. A batch's objects are durable before its
// instances are committed, and its instances are acknowledged only when the
// round's transaction has committed. Small objects are still being synced
// when their batch is queued (Batch.Add starts their syncs): the round runs
// its statements meanwhile and waits for every sync of the round before it
// commits (gatingIndex), so that the disk's two waits, the objects' and
// the transaction's, overlap the work between them without changing their
// order; batches queued while it waits join it. The index's own sync may
// come after its commit (sqlstore's WAL sync): the round is then
// acknowledged when that sync has returned, while the committer runs the
// next round. Per-instance refusals (ECONFLICT, EINVALID) stay per instance. An
// error that fails a whole transaction, or an object that could not be made
// durable, could come from any batch in it, so the committer then indexes
// each batch of the round in a transaction of its own, without the
// instances whose objects failed: one bad request fails no other.

// gatingIndex is an ImageIndex that can hold a transaction open until a
// condition holds, add to it meanwhile, and commit without waiting for the
// disk. PutInstancesGated is PutInstances, except that
//
//   - it calls gate after the instances' statements and before committing.
//     When gate returns more instances, it indexes them in the same
//     transaction and calls gate again; it commits when gate returns none,
//     and when gate returns an error it commits nothing and returns it.
//     errs holds one result per instance: those of instances, then those
//     of each return of gate in turn.
//   - when it returns, the instances are committed but durable only once
//     sync returns nil.
//
// sqlstore.DB implements it: the committer acknowledges a round when its
// sync has returned, and runs its next round meanwhile. For an index that
// does not, the committer waits for the objects and then calls
// PutInstances.
type gatingIndex interface {
	PutInstancesGated(ctx context.Context, instances []bildrum.Instance, gate func() (more []bildrum.Instance, err error)) (errs []error, sync func() error, err error)
}

// commit is one batch waiting for the committer.
type commit struct {
	ctx       context.Context // the batch's, for the values it carries: a round is not cancelled
	instances []bildrum.Instance
	syncs     []*objectSync // per instance: its object's sync, or nil when durable
	errs      []error       // one per instance, when err is nil
	err       error         // the batch as a whole failed: none of it was indexed
	done      chan struct{}
}

// groupCommit queues instances for the committer and waits until a round has
// indexed them; its results are those of bildrum.ImageIndex.PutInstances
// for the instances alone, except that an instance whose object sync failed
// is not indexed and gets that error. syncs holds the sync of each
// instance's object (nil for an object durable already; a nil slice for
// all). The committer unpins the instances' objects after their round.
// When ctx ends first, groupCommit returns its error; the instances may
// still be indexed by their round.
func (a *Archive) groupCommit(ctx context.Context, instances []bildrum.Instance, syncs []*objectSync) ([]error, error) {
	c := a.enqueue(ctx, instances, syncs)
	select {
	case <-c.done:
		return c.errs, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// enqueue queues instances for the committer, starting it when none runs.
func (a *Archive) enqueue(ctx context.Context, instances []bildrum.Instance, syncs []*objectSync) *commit {
	if syncs == nil {
		syncs = make([]*objectSync, len(instances))
	}
	c := &commit{ctx: ctx, instances: instances, syncs: syncs, done: make(chan struct{})}
	a.pending.Add(1)
	a.commitMu.Lock()
	a.queue = append(a.queue, c)
	if !a.committing {
		a.committing = true
		go a.commitRounds()
	}
	a.commitMu.Unlock()
	return c
}

// commitRounds is the committer: it indexes rounds of the queue until the
// queue is empty, and then ends. A round whose commit is still being made
// durable is acknowledged by a goroutine of its own (see commitRound).
func (a *Archive) commitRounds() {
	for {
		a.commitMu.Lock()
		round := a.queue
		a.queue = nil
		if len(round) == 0 {
			a.committing = false
			a.commitMu.Unlock()
			return
		}
		a.commitMu.Unlock()
		a.commitRound(round)
	}
}

// commitRound indexes the batches of round in one transaction that
// commits once their objects are durable, or each in its own when that
// fails, and acknowledges them when the index entries are durable: before
// it returns, or, when the index made the commit durable later, from a
// goroutine that waits for that, while the committer goes on with the next
// round.
func (a *Archive) commitRound(round []*commit) {
	ctx := context.WithoutCancel(round[0].ctx)
	var all []bildrum.Instance
	var syncs []*objectSync
	add := func(batches []*commit) []bildrum.Instance {
		var instances []bildrum.Instance
		for _, c := range batches {
			instances = append(instances, c.instances...)
			syncs = append(syncs, c.syncs...)
		}
		return instances
	}
	all = add(round)
	waited := 0 // syncs[:waited] have finished
	errs, sync, err := a.putGated(ctx, all, func() ([]bildrum.Instance, error) {
		for ; waited < len(syncs); waited++ {
			if err := syncs[waited].wait(); err != nil {
				return nil, err
			}
		}
		// Batches queued meanwhile join the round, while it has room:
		// their statements run while their objects' syncs finish, and
		// the round commits them too, instead of a round of their own
		// waiting for this one.
		more := a.takeQueued(maxRoundInstances - len(all))
		if len(more) == 0 {
			return nil, nil
		}
		round = append(round, more...)
		instances := add(more)
		all = append(all, instances...)
		return instances, nil
	})
	switch {
	case err == nil:
		for _, c := range round {
			c.errs, errs = errs[:len(c.instances):len(c.instances)], errs[len(c.instances):]
		}
		if sync != nil {
			go func() {
				if err := sync(); err != nil {
					for _, c := range round {
						c.errs, c.err = nil, err
					}
				}
				a.acknowledge(round)
			}()
			return
		}
	case len(round) == 1 && !syncFailed(round[0]):
		round[0].err = err
	default:
		for _, c := range round {
			a.commitAlone(ctx, c)
		}
	}
	a.acknowledge(round)
}

// maxRoundInstances bounds the instances that batches joining a round
// while it waits for its objects may bring it to: the first batch of a
// round waits for the objects of every batch that joins.
const maxRoundInstances = 64

// takeQueued takes batches from the front of the queue, as long as they
// bring no more than room instances.
func (a *Archive) takeQueued(room int) []*commit {
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	n := 0
	for n < len(a.queue) && len(a.queue[n].instances) <= room {
		room -= len(a.queue[n].instances)
		n++
	}
	taken := a.queue[:n:n]
	a.queue = a.queue[n:]
	return taken
}

// acknowledge releases the batches of a round: their results are final.
func (a *Archive) acknowledge(round []*commit) {
	for _, c := range round {
		for _, in := range c.instances {
			a.unpin(in.Object.Key)
		}
		a.unhold(c.instances, func(i int) bool { return c.err == nil && c.errs[i] != nil })
		close(c.done)
	}
	a.pending.Add(-len(round))
}

// putGated indexes instances, and those gate adds, in one transaction that
// commits only when gate returns no error and no more instances; see
// gatingIndex. The instances are durable when sync, if not nil, returns
// nil, and at once when it is nil.
func (a *Archive) putGated(ctx context.Context, instances []bildrum.Instance, gate func() ([]bildrum.Instance, error)) (errs []error, sync func() error, err error) {
	if g, ok := a.index.(gatingIndex); ok {
		return g.PutInstancesGated(ctx, instances, gate)
	}
	for {
		more, err := gate()
		if err != nil {
			return nil, nil, err
		}
		if len(more) == 0 {
			break
		}
		instances = append(instances[:len(instances):len(instances)], more...)
	}
	errs, err = a.index.PutInstances(ctx, instances)
	return errs, nil, err
}

// syncFailed reports whether the sync of an object of c failed.
func syncFailed(c *commit) bool {
	for _, s := range c.syncs {
		if s.wait() != nil {
			return true
		}
	}
	return false
}

// sync returns the sync of the object of instance i, or nil.
func (c *commit) sync(i int) *objectSync {
	if i < len(c.syncs) {
		return c.syncs[i]
	}
	return nil
}

// commitAlone indexes the instances of c whose objects are durable in one
// transaction of their own; the others get their sync's error.
func (a *Archive) commitAlone(ctx context.Context, c *commit) {
	errs := make([]error, len(c.instances))
	var durable []bildrum.Instance
	var at []int
	for i, in := range c.instances {
		if err := c.sync(i).wait(); err != nil {
			errs[i] = fmt.Errorf("store %s: %w", in.SOPInstanceUID, err)
			continue
		}
		durable = append(durable, in)
		at = append(at, i)
	}
	if len(durable) > 0 {
		put, err := a.index.PutInstances(ctx, durable)
		if err != nil {
			c.err = err
			return
		}
		for j, i := range at {
			errs[i] = put[j]
		}
	}
	c.errs = errs
}

// Wait returns when every batch queued so far has been through its round
// and the objects held for them have been moved into the blob store (see
// hold.go): a node calls it after its servers stopped and before it closes
// its database, so that no round or move outlives the index it writes to
// (a request that gave up waiting leaves its round running). The mover
// then moves at once what is held, without waiting for more.
func (a *Archive) Wait() {
	select {
	case a.hurry <- struct{}{}:
	default: // asked already
	}
	a.pending.Wait()
}
