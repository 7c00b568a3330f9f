//go:build !linux || !(amd64 || arm64)

package archive

import "errors"

// spreadSubdirs does nothing here; see the Linux version.
func spreadSubdirs(dir string) {}

// topOfHierarchy reports that the flag is unknown here.
func topOfHierarchy(dir string) (top, known bool) { return false, false }

// syncFileSystem is unsupported here: FileBlobs.WriteMany syncs file by
// file instead.
func syncFileSystem(dir string) error { return errors.ErrUnsupported }
