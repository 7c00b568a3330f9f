package archive

import "testing"

// NewTestArchive returns an archive on a SQLite index and a blob directory
// of the test's own, which waits for its background work before the index
// closes.
func NewTestArchive(t testing.TB) *Archive {
	f := newHoldFixture(t)
	a := New(f.db, f.files)
	t.Cleanup(a.Wait)
	return a
}
