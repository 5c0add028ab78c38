package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Local store commands: they work on files with no server running and never
// contact one.

func storeCommands() []*command {
	return []*command{storeVerifyCommand()}
}

func restoreCommand() *command {
	return &command{
		path: "restore", args: "FILE", minArgs: 1, maxArgs: 1, local: true,
		summary: "put a backup in place as a stopped server's data file",
		help: `Restores a file written by "gatehouse backup" into --data-dir, with the
server stopped. It does not contact a server.

In order, and stopping at the first problem with nothing changed:
  1. FILE passes "gatehouse store verify" (bbolt's consistency check, the
     schema version, every record and index entry);
  2. FILE is copied into the data dir under a temporary name (mode 0600) and
     synced;
  3. the master key (--master-key-file, default <data-dir>/master.key) must
     unseal every signing key in the copy: a backup is only usable with the
     master key of the server that took it, so copy that file first;
  4. an existing <data-dir>/gatehouse.db is refused unless --force is given;
     if a server holds it, restore refuses even with --force. With --force
     the old file is kept beside it as gatehouse.db.pre-restore-<time>;
  5. the copy is renamed over <data-dir>/gatehouse.db and the directory is
     synced, so the data file is always either the old one or the whole
     backup.

The restored store has the backup's admin keys: <data-dir>/admin.key is
only read when a store has no admin key at all, so use a key that was valid
when the backup was taken.`,
		example: `gatehouse restore --data-dir ./data /var/backups/gatehouse-2026-12-01.db
gatehouse restore --data-dir ./data --force /var/backups/gatehouse-2026-12-01.db`,
		define: func(fs *flag.FlagSet) action {
			dataDir := fs.String("data-dir", "./data", "`dir`ectory of the server's data file (created if missing)")
			masterKey := fs.String("master-key-file", "", "`file` with the master key of the server that took the backup (default <data-dir>/master.key)")
			force := fs.Bool("force", false, "replace an existing data file (it is kept as gatehouse.db.pre-restore-<time>)")
			return func(ctx context.Context, s *session, args []string) error {
				mk := *masterKey
				if mk == "" {
					mk = filepath.Join(*dataDir, "master.key")
				}
				res, err := restoreBackup(args[0], *dataDir, mk, *force, s.now())
				if err != nil {
					return err
				}
				fmt.Fprintf(s.stdout, "Restored %s to %s: %d service tokens, %d applications, %d policies, %d signing keys (revision %d).\n",
					args[0], res.path, res.tokens, res.apps, res.policies, res.keys, res.rev)
				if res.previous != "" {
					fmt.Fprintf(s.stdout, "The previous data file is kept as %s.\n", res.previous)
				}
				_, err = fmt.Fprintln(s.stdout, "Start the server on this data dir to serve it.")
				return err
			}
		},
	}
}

func storeVerifyCommand() *command {
	return &command{
		path: "store verify", args: "[FILE]", minArgs: 0, maxArgs: 1, local: true,
		summary: "check a data file or backup for consistency",
		help: `Checks a gatehouse data file that no server has open: a backup, or the
live file with the server stopped (a running server holds the file's lock,
and the check says so). It runs bbolt's page-level consistency check, then
checks that the file is a gatehouse store of a supported schema, that every
record decodes and sits under its own key, and that every index entry and
record agree. It opens the file read-only and never creates or changes it.

FILE defaults to <data-dir>/gatehouse.db. Exit status 1 and a list of up to
20 problems when the check fails.`,
		example: `gatehouse store verify /var/backups/gatehouse-2026-12-01.db
gatehouse store verify --data-dir /var/lib/gatehouse`,
		define: func(fs *flag.FlagSet) action {
			dataDir := fs.String("data-dir", "./data", "`dir`ectory whose gatehouse.db to check when no FILE is given")
			return func(ctx context.Context, s *session, args []string) error {
				path := store.FilePath(*dataDir)
				if len(args) == 1 {
					path = args[0]
				}
				if err := store.Verify(path); err != nil {
					return err
				}
				_, err := fmt.Fprintf(s.stdout, "%s: ok\n", path)
				return err
			}
		},
	}
}

// restored is what restoreBackup put in place.
type restored struct {
	path, previous               string
	rev                          uint64
	tokens, apps, policies, keys int
}

// restoreBackup carries out "gatehouse restore"; see its help for the
// steps. Until the final rename nothing in dataDir but a temporary file
// (removed on failure) is touched.
func restoreBackup(backup, dataDir, masterKeyFile string, force bool, now time.Time) (_ *restored, err error) {
	if err := store.Verify(backup); err != nil {
		return nil, fmt.Errorf("backup %s cannot be restored: %w", backup, err)
	}
	master, err := readMasterKey(masterKeyFile)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	target := store.FilePath(dataDir)
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("data file %s is a directory", target)
	}

	tmp, err := copyToTemp(backup, dataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	res, err := inspectCopy(tmp, master, masterKeyFile)
	if err != nil {
		return nil, err
	}
	res.path = target

	// The live file: absent, or replaced only with --force and only while
	// no server holds its lock. The lock is held across the renames.
	old, err := os.OpenFile(target, os.O_RDWR, 0)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("data file: %w", err)
	default:
		defer old.Close()
		if err := syscall.Flock(int(old.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return nil, fmt.Errorf("%w: data file %s is in use by a running gatehouse server; stop it before restoring", store.ErrLocked, target)
		}
		if !force {
			return nil, fmt.Errorf("%s already exists; give --force to replace it (it will be kept as %s.pre-restore-<time>)", target, store.FileName)
		}
		res.previous = target + ".pre-restore-" + now.UTC().Format("20060102T150405Z")
		if err := os.Rename(target, res.previous); err != nil {
			return nil, fmt.Errorf("keep the previous data file: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		if res.previous != "" {
			os.Rename(res.previous, target) // put the old file back
		}
		return nil, fmt.Errorf("put the backup in place: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return nil, fmt.Errorf("sync data dir: %w", err)
	}
	return res, nil
}

// readMasterKey reads an existing master key file; restore never creates
// one, since a new key cannot unseal the backup's signing keys.
func readMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("master key %s does not exist: the backup's signing keys are sealed under the master key of the server that took it; copy that file there or name it with --master-key-file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	key, err := decodeMasterKey(b)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	return key, nil
}

// copyToTemp copies src to a new 0600 temporary file in dir and syncs it.
func copyToTemp(src, dir string) (_ string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "."+store.FileName+".restore-*")
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return "", fmt.Errorf("copy the backup: %w", err)
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("copy the backup: %w", err)
	}
	return out.Name(), nil
}

// inspectCopy opens the private copy as a store, counts what it holds and
// checks that master unseals every signing key in it.
func inspectCopy(path string, master []byte, masterKeyFile string) (*restored, error) {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	st, err := db.Load()
	if err != nil {
		return nil, err
	}
	for _, k := range st.SigningKeys {
		if _, err := tokens.Open(master, k); err != nil {
			return nil, fmt.Errorf("master key %s cannot unseal signing key %s in the backup (%w): use the master key of the server that took the backup", masterKeyFile, k.KID, err)
		}
	}
	return &restored{
		rev: st.Rev, tokens: len(st.Tokens), apps: len(st.Apps),
		policies: len(st.Policies), keys: len(st.SigningKeys),
	}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
