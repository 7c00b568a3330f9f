package sqlstore_test

import (
	"testing"

	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
)

func TestFeasibilityStores(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			storetest.FeasibilityStore(t, func(t *testing.T) storetest.FeasibilityNode { return open(t, e.dsn(t), sqlstore.PartNode) })
		})
	}
}
