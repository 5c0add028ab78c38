package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// backupTimeout is the default --timeout of backup, which bounds the whole
// transfer rather than one small call.
const backupTimeout = 10 * time.Minute

// errEmptyBackup: the server ended the stream without sending anything.
var errEmptyBackup = errors.New("the server sent an empty backup")

// writeBackup streams the snapshot into a temporary file next to out, syncs
// it and renames it over out, then syncs the directory: out is either the
// previous file or the whole new backup, never a partial one.
func writeBackup(stream adminv1.AdminService_BackupClient, out string) (n int64, err error) {
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".tmp-*") // mode 0600: the backup holds digests and sealed keys
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		m, err := tmp.Write(chunk.GetData())
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	if n == 0 {
		return 0, errEmptyBackup
	}
	if err := tmp.Sync(); err != nil {
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return n, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return n, err
	}
	defer d.Close()
	return n, d.Sync()
}

func backupCommands() []*command {
	return []*command{backupCommand(), restoreCommand()}
}

func backupCommand() *command {
	return &command{
		path: "backup", maxArgs: 0, timeout: backupTimeout,
		summary: "save a consistent copy of the whole store to a file",
		help: `Streams a consistent snapshot of the server's store (a bbolt file) into
the --out file, while the server keeps serving. The file is written under a
temporary name, synced and renamed, so it is never left half-written; it is
created with mode 0600, since it holds secret digests and sealed signing keys.
To restore, stop the server and run "gatehouse restore" (which verifies the
file and checks the master key first).

--timeout bounds the whole transfer here (default 10m).`,
		example: `gatehouse backup --out /var/backups/gatehouse-$(date +%F).db`,
		define: func(fs *flag.FlagSet) action {
			out := fs.String("out", "", "write the backup to `file` (required)")
			return func(ctx context.Context, s *session, args []string) error {
				if *out == "" {
					return usagef("--out is required")
				}
				client, err := s.admin()
				if err != nil {
					return err
				}
				if s.g.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, s.g.timeout)
					defer cancel()
				}
				stream, err := client.Backup(ctx, &adminv1.BackupRequest{})
				if err != nil {
					return err
				}
				n, err := writeBackup(stream, *out)
				if err != nil {
					return err
				}
				if s.out.json {
					b, err := json.MarshalIndent(struct {
						Out   string `json:"out"`
						Bytes int64  `json:"bytes"`
					}{*out, n}, "", "  ")
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(s.stdout, "%s\n", b)
					return err
				}
				_, err = fmt.Fprintf(s.stdout, "Wrote a %d-byte backup to %s.\n", n, *out)
				return err
			}
		},
	}
}
