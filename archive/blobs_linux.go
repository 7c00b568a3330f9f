//go:build linux && (amd64 || arm64)

package archive

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ioctls and flag of chattr +T (linux/fs.h), for the architectures
// whose ioctl numbers take the generic encoding with a 64-bit long.
const (
	fsIocGetflags = 0x80086601
	fsIocSetflags = 0x40086602
	fsTopdirFl    = 0x00020000
)

// spreadSubdirs marks dir as the top of a directory hierarchy (chattr +T),
// so that ext2/3/4's Orlov allocator spreads the subdirectories created in
// it over the file system's block groups, as it does with top-level
// directories, instead of packing them into the group of dir. The 256
// shard directories of a FileBlobs then each start with a group of their
// own: a new object's inode is allocated near its directory, and creating
// it does not scan past the free inodes of a group crowded with recent
// deletions (ext4 without a journal skips inodes deleted in the last
// minutes), as a directory beside busy ones, such as one under /tmp, would.
// It is a hint: file systems without the flag ignore or refuse it, and so
// does this function.
func spreadSubdirs(dir string) {
	f, err := openFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	var flags int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocGetflags, uintptr(unsafe.Pointer(&flags))); errno != 0 {
		return
	}
	if flags&fsTopdirFl != 0 {
		return
	}
	flags |= fsTopdirFl
	syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocSetflags, uintptr(unsafe.Pointer(&flags)))
}

// topOfHierarchy reports whether dir is marked as the top of a directory
// hierarchy, and whether the file system says; for tests.
func topOfHierarchy(dir string) (top, known bool) {
	f, err := openFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return false, false
	}
	defer f.Close()
	var flags int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocGetflags, uintptr(unsafe.Pointer(&flags))); errno != 0 {
		return false, false
	}
	return flags&fsTopdirFl != 0, true
}

// syncFileSystem makes everything written to the file system of dir
// durable, with one syncfs(2): for many new files, one journal commit and
// one flush of the disk's cache instead of one of each per file. Since
// Linux 5.8 it reports write-back errors of the file system.
func syncFileSystem(dir string) error {
	f, err := openFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err := unix.Syncfs(int(f.Fd()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.SyscallError{Syscall: "syncfs", Err: err}
		}
		return nil
	}
}
