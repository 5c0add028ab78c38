package store

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind (a bbolt
// file not closed, a batch or backup goroutine still running).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
