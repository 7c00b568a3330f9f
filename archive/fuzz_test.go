package archive_test

import (
	"bytes"
	"testing"

	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
)

// FuzzReadHeader checks that no input makes the header reader fail other
// than with an error, nor allocate beyond the input's size.
func FuzzReadHeader(f *testing.F) {
	good := archivetest.Mammogram(&archivetest.Image{Rows: 8, Columns: 8})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := archive.ReadHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		h.Instance()
		archive.Metadata(h, "x")
	})
}
