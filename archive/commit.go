package archive

import (
	"context"

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
// Grouping changes no guarantee. A batch's objects are durable before it is
// queued (Batch.Add), and its instances are acknowledged only when the
// round's transaction has committed. Per-instance refusals (ECONFLICT,
// EINVALID) stay per instance. An error that fails a whole transaction
// could come from any batch in it, so the committer then indexes each batch
// of the round in a transaction of its own: one bad request fails no other.

// commit is one batch waiting for the committer.
type commit struct {
	ctx       context.Context // the batch's, for the values it carries: a round is not cancelled
	instances []bildrum.Instance
	errs      []error // one per instance, when err is nil
	err       error   // the batch as a whole failed: none of it was indexed
	done      chan struct{}
}

// groupCommit queues instances for the committer and waits until a round has
// indexed them; its results are those of bildrum.ImageIndex.PutInstances
// for the instances alone. The committer unpins the instances' objects
// after their round. When ctx ends first, groupCommit returns its error;
// the instances may still be indexed by their round.
func (a *Archive) groupCommit(ctx context.Context, instances []bildrum.Instance) ([]error, error) {
	c := a.enqueue(ctx, instances)
	select {
	case <-c.done:
		return c.errs, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// enqueue queues instances for the committer, starting it when none runs.
func (a *Archive) enqueue(ctx context.Context, instances []bildrum.Instance) *commit {
	c := &commit{ctx: ctx, instances: instances, done: make(chan struct{})}
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
// queue is empty, and then ends.
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
		a.pending.Add(-len(round))
	}
}

// commitRound indexes the batches of round in one transaction, or each in
// its own when that fails, and acknowledges them.
func (a *Archive) commitRound(round []*commit) {
	ctx := context.WithoutCancel(round[0].ctx)
	var all []bildrum.Instance
	for _, c := range round {
		all = append(all, c.instances...)
	}
	errs, err := a.index.PutInstances(ctx, all)
	switch {
	case err == nil:
		for _, c := range round {
			c.errs, errs = errs[:len(c.instances):len(c.instances)], errs[len(c.instances):]
		}
	case len(round) == 1:
		round[0].err = err
	default:
		for _, c := range round {
			c.errs, c.err = a.index.PutInstances(ctx, c.instances)
		}
	}
	for _, c := range round {
		for _, in := range c.instances {
			a.unpin(in.Object.Key)
		}
		close(c.done)
	}
}

// Wait returns when every batch queued so far has been through its round:
// a node calls it after its servers stopped and before it closes its
// database, so that no round outlives the index it writes to (a request
// that gave up waiting leaves its round running).
func (a *Archive) Wait() { a.pending.Wait() }
