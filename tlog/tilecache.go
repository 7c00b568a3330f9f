package tlog

import (
	"context"
	"sync"

	"github.com/transparency-dev/tessera/api/layout"
)

// maxCachedTiles bounds the full tiles kept in memory for proofs: 8 KiB
// each, so 32 MiB.
const maxCachedTiles = 4096

// tileCache keeps full tiles, which never change, in memory, so that
// serving proofs reads little from disk: the upper tiles are shared by
// every proof. Partial tiles are always read from disk.
type tileCache struct {
	read func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)

	mu    sync.Mutex // guards tiles
	tiles map[[2]uint64][]byte
}

// readTile is a client.TileFetcherFunc. A full tile answers a request for
// a partial one too, as [tlog-tiles] allows: a client takes the hashes it
// needs from the front.
func (c *tileCache) readTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	key := [2]uint64{level, index}
	c.mu.Lock()
	t, ok := c.tiles[key]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := c.read(ctx, level, index, p)
	if err != nil || len(t) != layout.TileWidth*32 {
		return t, err
	}
	c.mu.Lock()
	if len(c.tiles) >= maxCachedTiles {
		// Drop an arbitrary half: simple, and the hot upper tiles come
		// back on the next proof.
		n := 0
		for k := range c.tiles {
			if n++; n > maxCachedTiles/2 {
				break
			}
			delete(c.tiles, k)
		}
	}
	c.tiles[key] = t
	c.mu.Unlock()
	return t, nil
}
