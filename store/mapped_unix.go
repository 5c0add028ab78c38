//go:build unix

package store

import (
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMappedPages tells the kernel that this process no longer needs the
// pages of the data file it has read so far (MADV_DONTNEED on bbolt's
// read-only shared mapping of the file). They stay in the page cache, and a
// later read faults them back in from there. Loading reads the whole file:
// without this, every page of it (about 1 GiB with a million tokens) stays
// in the process's RSS, though the kernel could drop it at any time.
//
// It runs inside a read transaction, which holds bbolt's mmap lock: the
// mapping cannot be replaced while the kernel is told about it.
func (db *DB) ReleaseMappedPages() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		size := tx.Size()
		if size <= 0 {
			return nil
		}
		info := db.bolt.Info()
		// info.Data is the address of the mapping (outside the Go heap);
		// read it as the pointer it is.
		base := *(*unsafe.Pointer)(unsafe.Pointer(&info.Data))
		return unix.Madvise(unsafe.Slice((*byte)(base), size), unix.MADV_DONTNEED)
	})
}
