package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStdlibOnly keeps policy a leaf: it imports the standard library and
// nothing else, so authz, admin and store can all depend on it.
func TestStdlibOnly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./policy")
	cmd.Dir = ".." // module root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/gatehouse-dev/gatehouse/policy"
	for _, dep := range strings.Fields(string(out)) {
		if dep != self {
			t.Errorf("policy depends on %s; it must import the standard library only", dep)
		}
	}
}
