package authz

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind: a gRPC server
// or connection not stopped, an HTTP server not closed, a background
// goroutine started by the hot path (there must be none).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
