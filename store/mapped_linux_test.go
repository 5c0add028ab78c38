//go:build linux

package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// mappedRSS is how much of the data file's mapping is resident in this
// process (the Rss of its line in /proc/self/smaps), in bytes.
func mappedRSS(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, total, found := false, 0, false
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = strings.HasSuffix(line, " "+path)
			found = found || in
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	if !found {
		t.Fatalf("%s is not mapped", path)
	}
	return total
}

// TestReleaseMappedPagesRSS: the release takes the file's pages out of the
// process's RSS, and reads afterwards bring back only what they touch.
func TestReleaseMappedPagesRSS(t *testing.T) {
	db := openTest(t, Options{NoSync: true})
	path := db.bolt.Path()
	const n = 5000
	if err := db.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.PutToken(newToken(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(); err != nil {
		t.Fatal(err)
	}
	loaded := mappedRSS(t, path)
	if loaded < 1<<20 {
		t.Fatalf("after Load only %d bytes of the file are resident: the test would prove nothing", loaded)
	}
	if err := db.ReleaseMappedPages(); err != nil {
		t.Fatal(err)
	}
	released := mappedRSS(t, path)
	if released > 64<<10 {
		t.Errorf("after the release %d bytes are resident (%d before)", released, loaded)
	}
	id := testID(1, n/2)
	if err := db.View(func(tx *Tx) error {
		tok, err := tx.Token(id)
		if err == nil && tok.ID != id {
			err = fmt.Errorf("got %s", tok.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// One read descends a tree of a few levels (and bbolt reads its meta
	// pages); with the kernel's fault-around each fault maps up to 64 KiB.
	if after := mappedRSS(t, path); after > released+8*64<<10 || after > loaded/2 {
		t.Errorf("one read made %d bytes resident", after-released)
	}
}
