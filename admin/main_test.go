package admin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind (a Backup
// writer blocked on its pipe, a server not stopped).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
