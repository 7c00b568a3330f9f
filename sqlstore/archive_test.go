package sqlstore_test

import (
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/sqlstore/storetest"
)

func TestImageIndex(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			storetest.ImageIndex(t, func(t *testing.T) bildrum.ImageIndex { return open(t, e.dsn(t), sqlstore.PartNode) })
		})
	}
}
