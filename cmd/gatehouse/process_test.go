package main

// Helpers for the tests that run the real binaries as child processes:
// the durability test (kill -9) and the end-to-end test through the Envoy
// stand-in.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds bin/gatehouse and bin/whoami once per test run (without
// -race: they run as child processes, and the race detector would only slow
// them down; the in-process tests cover races).
func binaries(t *testing.T) (gatehouse, whoami string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gatehouse-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		for _, b := range []struct{ out, pkg string }{{"gatehouse", "./cmd/gatehouse"}, {"whoami", "./cmd/whoami"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "gatehouse"), filepath.Join(binDir, "whoami")
}

// syncBuffer is a goroutine-safe buffer for a child's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serverProc is a running `gatehouse serve` child process.
type serverProc struct {
	cmd                            *exec.Cmd
	dataDir                        string
	authzAddr, adminAddr, httpAddr string
	issuer                         string
	logs                           *syncBuffer
	exited                         chan struct{}
}

// startServe starts `gatehouse serve` on dataDir with loopback port-0
// listeners and waits for its "gatehouse serving" log line.
func startServe(t *testing.T, bin, dataDir string, extra ...string) *serverProc {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir,
		"--authz-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--log-format", "json", "--last-seen-flush", "200ms", "--shutdown-grace", "5s"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, dataDir: dataDir, logs: &syncBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(append([]byte(nil), line...), '\n'))
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == "gatehouse serving" {
				select {
				case ready <- m:
				default:
				}
			}
		}
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	select {
	case m := <-ready:
		p.authzAddr, _ = m["authz_addr"].(string)
		p.adminAddr, _ = m["admin_addr"].(string)
		p.httpAddr, _ = m["http_addr"].(string)
		p.issuer, _ = m["issuer"].(string)
	case <-p.exited:
		t.Fatalf("gatehouse serve exited before serving:\n%s", p.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse serve did not start within 30s:\n%s", p.logs.String())
	}
	return p
}

// kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *serverProc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	<-p.exited
}

// adminKey reads the bootstrap admin key the server wrote.
func (p *serverProc) adminKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dataDir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// adminClient dials the admin API with the bootstrap key.
func (p *serverProc) adminClient(t *testing.T) (adminv1.AdminServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(p.adminAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+p.adminKey(t))
	return adminv1.NewAdminServiceClient(conn), ctx
}

// cli runs the gatehouse CLI against p and returns stdout; a non-zero exit
// fails the test unless wantErr.
func (p *serverProc) cli(t *testing.T, bin string, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_SERVER="+p.adminAddr, "GATEHOUSE_ADMIN_KEY="+p.adminKey(t))
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustCLI is cli that fails the test on a non-zero exit and decodes JSON
// output into out (when out is non-nil).
func (p *serverProc) mustCLI(t *testing.T, bin string, out any, args ...string) string {
	t.Helper()
	stdout, stderr, err := p.cli(t, bin, nil, args...)
	if err != nil {
		t.Fatalf("gatehouse %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			t.Fatalf("gatehouse %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, stdout)
		}
	}
	return stdout
}
