package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of the file at path that are in the page cache.
func resident(t *testing.T, path string) (in, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		if v&1 != 0 {
			in++
		}
	}
	return in, len(vec)
}

func TestPrefetchReadsTheWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	// 4 MiB: many times one read-ahead window, so a single WILLNEED for
	// the whole file (capped at the window) would not pass.
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Clean pages can be dropped once written back.
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if in, total := resident(t, path); in > total/4 {
		t.Skipf("%d of %d pages still cached after FADV_DONTNEED (tmpfs?): nothing to measure here", in, total)
	}

	prefetch(path)

	// The reads are asynchronous: wait for them, not for a fixed time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, total := resident(t, path)
		if in == total {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after prefetch %d of %d pages are in the page cache, want all", in, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
