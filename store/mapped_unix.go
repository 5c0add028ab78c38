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
// Reads after loading fault pages back in, and the kernel maps up to 16
// neighbouring pages on each fault (fault-around, which MADV_RANDOM does
// not turn off): a last-seen flush touching 10,000 tokens of a million
// brought some 430 MiB of the file back into RSS. The server calls this
// again after each last-seen flush.
//
// It runs inside a read transaction, which holds bbolt's mmap lock: the
// mapping cannot be replaced while the kernel is told about it.
func (db *DB) ReleaseMappedPages() error {
	return db.bolt.View(func(tx *bolt.Tx) error { return releaseMapped(tx) })
}

// releaseMapped is ReleaseMappedPages within tx, whose mmap lock keeps the
// mapping in place.
func releaseMapped(tx *bolt.Tx) error {
	size := tx.Size()
	if size <= 0 {
		return nil
	}
	info := tx.DB().Info()
	// info.Data is the address of the mapping (outside the Go heap); read
	// it as the pointer it is.
	base := *(*unsafe.Pointer)(unsafe.Pointer(&info.Data))
	return unix.Madvise(unsafe.Slice((*byte)(base), size), unix.MADV_DONTNEED)
}
