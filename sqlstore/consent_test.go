package sqlstore_test

import (
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
)

func TestConsentStores(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Run("ConsentStore", func(t *testing.T) {
				storetest.ConsentStore(t, func(t *testing.T) bildrum.ConsentStore { return open(t, e.dsn(t), sqlstore.PartHub) })
			})
			t.Run("ConsentReplica", func(t *testing.T) {
				storetest.ConsentReplica(t, func(t *testing.T) bildrum.ConsentReplica { return open(t, e.dsn(t), sqlstore.PartNode) })
			})
			t.Run("TrialContacts", func(t *testing.T) {
				storetest.TrialContacts(t, func(t *testing.T) storetest.TrialContactRegister { return open(t, e.dsn(t), sqlstore.PartHub) })
			})
		})
	}
}
