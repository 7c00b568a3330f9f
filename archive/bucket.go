//go:build !gocloud

package archive

import (
	"context"

	"github.com/bildrum/bildrum"
)

// openBucket is where object storage would open: this build has no
// gocloud.dev drivers (build with -tags gocloud once go.sum holds them).
func openBucket(ctx context.Context, rawURL string) (BlobStore, error) {
	return nil, bildrum.Errorf(bildrum.EINVALID, "blob store %q: this build of bildrum keeps blobs only in a local directory (file:///path); object storage needs a build with -tags gocloud", rawURL)
}
