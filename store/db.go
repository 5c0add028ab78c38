package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// SchemaVersion is the record layout this package reads and writes. A file
// with a higher version is refused (ErrNewerSchema); a lower one would be
// migrated by Open once there is a version 2.
const SchemaVersion = 2

// FileName is the data file's name inside the data directory.
const FileName = "gatehouse.db"

// DefaultLockTimeout is how long Open waits for the file lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// DefaultMaxBatchDelay is how long Batch waits for more calls to join a
// transaction when Options.MaxBatchDelay is zero. bbolt's own default
// (10ms) is ten times an fsync on common disks, so every lone Batch call
// would wait 10ms and 32 concurrent creators got ~2,000 tokens/s; at 2ms
// they get ~5,800 tokens/s (BenchmarkBatchCreateTokens).
const DefaultMaxBatchDelay = 2 * time.Millisecond

// fileMode: the file holds secret digests and sealed signing keys; only the
// service's own user may read it.
const fileMode = 0o600

// Bucket names. See doc.go for what each holds.
var (
	bucketMeta            = []byte("meta")
	bucketTokens          = []byte("tokens")
	bucketTokenClientIDs  = []byte("token_client_ids")
	bucketTokenNames      = []byte("token_names")
	bucketApps            = []byte("apps")
	bucketAppNames        = []byte("app_names")
	bucketAppAUDs         = []byte("app_auds")
	bucketPolicies        = []byte("policies")
	bucketSigningKeys     = []byte("signing_keys")
	bucketAdminKeys       = []byte("admin_keys")
	bucketAdminKeyDigests = []byte("admin_key_digests")
	bucketAudit           = []byte("audit")
	// Schema 2: policy ids by application ("<app id>/<policy id>") and by
	// the service tokens their rules name ("<token id>/<policy id>"), so
	// that listing an application's policies, or finding the policies a
	// token deletion touches, reads only those policies.
	bucketAppPolicies   = []byte("app_policies")
	bucketTokenPolicies = []byte("token_policies")

	allBuckets = [][]byte{
		bucketMeta, bucketTokens, bucketTokenClientIDs, bucketTokenNames,
		bucketApps, bucketAppNames, bucketAppAUDs, bucketPolicies,
		bucketSigningKeys, bucketAdminKeys, bucketAdminKeyDigests, bucketAudit,
		bucketAppPolicies, bucketTokenPolicies,
	}
	// sinceSchema2 are the buckets a schema-1 file lacks (Open builds them).
	sinceSchema2 = [][]byte{bucketAppPolicies, bucketTokenPolicies}

	keySchemaVersion = []byte("schema_version")
	keyRev           = []byte("rev")
)

// Options configure Open.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process. Zero means DefaultLockTimeout (1s), so a second server fails
	// fast with ErrLocked instead of hanging (bbolt's own zero would wait
	// forever); a negative value means wait forever.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. Only for tests that want speed: a crash
	// can then lose or corrupt committed data.
	NoSync bool
	// MaxBatchDelay is how long Batch waits for more calls before it
	// commits; zero means DefaultMaxBatchDelay (2ms).
	MaxBatchDelay time.Duration
	// MaxBatchSize commits a batch as soon as it holds that many calls;
	// zero keeps bbolt's default (1000).
	MaxBatchSize int
}

// DB is an open gatehouse store. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
	hub  *hub
	// failed is set once a commit left the file in an unknown state.
	failed atomic.Pointer[detailError]
	// released is when the mapped pages were last given back (unix ns).
	released atomic.Int64

	// testBeforeDeliver, if set (by tests, before any write), runs in the
	// commit handler before the change is handed to the hub: a delay there
	// widens the window in which commit handlers run out of order.
	testBeforeDeliver func(rev uint64)
}

// FilePath returns the data file path inside dataDir.
func FilePath(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Open opens the store at path, creating the file (mode 0600) if it does not
// exist, but never its directory. A new file gets the current schema version
// and revision 0; every bucket is created if missing.
func Open(path string, opts Options) (*DB, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	timeout := opts.LockTimeout
	switch {
	case timeout == 0:
		timeout = DefaultLockTimeout
	case timeout < 0:
		timeout = 0 // bbolt: wait forever
	}
	bdb, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: timeout, NoSync: opts.NoSync})
	if err != nil {
		return nil, openError(path, err)
	}
	bdb.MaxBatchDelay = DefaultMaxBatchDelay
	if opts.MaxBatchDelay > 0 {
		bdb.MaxBatchDelay = opts.MaxBatchDelay
	}
	if opts.MaxBatchSize > 0 {
		bdb.MaxBatchSize = opts.MaxBatchSize
	}
	var rev uint64
	err = bdb.Update(func(btx *bolt.Tx) error {
		var (
			version uint64
			err     error
		)
		rev, version, err = initMeta(btx, path)
		if err != nil {
			return err
		}
		for _, name := range allBuckets {
			if _, err := btx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return migrate(btx, version)
	})
	if err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return &DB{bolt: bdb, path: path, hub: newHub(rev)}, nil
}

// checkPath gives a precise error for the path mistakes bbolt would report
// as a bare "no such file or directory" or "is a directory".
func checkPath(path string) error {
	if path == "" {
		return fmt.Errorf("%w: data file path is empty", ErrDataPath)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: data directory %s does not exist", ErrDataPath, dir)
	case err != nil:
		return fmt.Errorf("%w: data directory %s: %w", ErrDataPath, dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: data directory %s is not a directory", ErrDataPath, dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%w: data file %s is a directory", ErrDataPath, path)
	}
	return nil
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return &detailError{
			msg:      fmt.Sprintf("data file %s is locked by another gatehouse process", path),
			sentinel: ErrLocked,
		}
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrChecksum):
		return fmt.Errorf("%w: %s is not a bbolt file: %w", ErrNotStore, path, err)
	}
	return fmt.Errorf("open data file %s: %w", path, err)
}

// migrate brings a file of schema version from up to SchemaVersion, in the
// transaction that opens it: either the whole migration commits or none of
// it. Every bucket exists by now.
func migrate(btx *bolt.Tx, from uint64) error {
	if from >= SchemaVersion {
		return nil
	}
	if from < 2 {
		// Index every policy by application and by the tokens it names.
		tx := &Tx{btx: btx}
		c := btx.Bucket(bucketPolicies).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			p, err := decode[policy.Policy](v, "policy", string(k))
			if err != nil {
				return fmt.Errorf("migrate to schema 2: %w", err)
			}
			if err := tx.indexPolicy(p); err != nil {
				return fmt.Errorf("migrate to schema 2: %w", err)
			}
		}
	}
	return btx.Bucket(bucketMeta).Put(keySchemaVersion, u64(SchemaVersion))
}

// initMeta checks (or, on a new file, writes) the schema version and
// returns the current revision and the version the file is at.
func initMeta(btx *bolt.Tx, path string) (rev, version uint64, err error) {
	meta := btx.Bucket(bucketMeta)
	if meta == nil {
		var others []string
		_ = btx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			others = append(others, string(name))
			return nil
		})
		if len(others) > 0 {
			return 0, 0, fmt.Errorf("%w: %s is a bbolt file without gatehouse metadata (buckets: %s)",
				ErrNotStore, path, strings.Join(others, ", "))
		}
		meta, err := btx.CreateBucket(bucketMeta)
		if err != nil {
			return 0, 0, fmt.Errorf("create bucket meta: %w", err)
		}
		if err := meta.Put(keySchemaVersion, u64(SchemaVersion)); err != nil {
			return 0, 0, err
		}
		return 0, SchemaVersion, meta.Put(keyRev, u64(0))
	}
	v, ok := readU64(meta.Get(keySchemaVersion))
	if !ok || v == 0 {
		return 0, 0, fmt.Errorf("%w: %s: meta schema_version is missing or malformed", ErrCorrupt, path)
	}
	if v > SchemaVersion {
		return 0, 0, &detailError{
			msg: fmt.Sprintf("store schema version %d is newer than this gatehouse supports (%d): upgrade gatehouse",
				v, SchemaVersion),
			sentinel: ErrNewerSchema,
		}
	}
	rev, ok = readU64(meta.Get(keyRev))
	if !ok {
		return 0, 0, fmt.Errorf("%w: %s: meta rev is missing or malformed", ErrCorrupt, path)
	}
	return rev, v, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func readU64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// Close closes the data file, waiting for running transactions.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the data file's path.
func (db *DB) Path() string { return db.path }

// Update runs fn in one read-write transaction. If fn returns an error,
// nothing it wrote is kept and no Change is delivered. Otherwise the
// revision is bumped and, after the commit, fn's Change is delivered to
// subscribers in revision order before Update returns.
//
// The Tx must not be used after fn returns.
func (db *DB) Update(fn func(*Tx) error) error { return db.write(db.bolt.Update, fn) }

// Batch is Update through bbolt's Batch: concurrent calls are coalesced into
// one transaction (one fsync), which is what makes bulk creation fast. fn
// may run more than once (when another call in the batch fails, the batch is
// retried without it), so it must not have effects outside the Tx. Each call
// still gets its own revision and its own Change; a failing fn fails only
// its own call.
func (db *DB) Batch(fn func(*Tx) error) error { return db.write(db.bolt.Batch, fn) }

func (db *DB) write(run func(func(*bolt.Tx) error) error, fn func(*Tx) error) error {
	if err := db.Err(); err != nil {
		return err
	}
	// uncommitted is the Change of fn's last successful run; it is only
	// read when the commit itself failed. (With Batch the runs happen on
	// bbolt's batch goroutine; its result channel orders them before the
	// read below.)
	var uncommitted *Change
	err := run(func(btx *bolt.Tx) error {
		uncommitted = nil
		c, err := db.apply(btx, fn)
		if err != nil {
			return err
		}
		uncommitted = &c
		return nil
	})
	if err != nil && uncommitted != nil {
		db.commitFailed(*uncommitted)
	}
	if err == nil {
		db.releaseSometimes()
	}
	return err
}

// releaseInterval is how often, at most, writes give back the data file's
// pages they and the reads before them brought into RSS.
const releaseInterval = 250 * time.Millisecond

// releaseSometimes calls ReleaseMappedPages if it has not run for
// releaseInterval. A write reads B+tree pages through the mapping, and the
// kernel maps up to 16 neighbouring pages per fault: with a million tokens,
// creating tokens at 2,000 a second would otherwise bring the whole file
// (over a GiB) back into the process's RSS within seconds. At most four
// times a second, the release costs well under a millisecond each.
func (db *DB) releaseSometimes() {
	now := time.Now().UnixNano()
	last := db.released.Load()
	if now-last < int64(releaseInterval) || !db.released.CompareAndSwap(last, now) {
		return
	}
	_ = db.ReleaseMappedPages() // best effort: only RSS is at stake
}

// apply runs one Update/Batch call inside btx with a fresh recorder (a
// re-run starts over), then takes the next revision from meta (so calls
// that share a batch transaction get consecutive revisions in commit order)
// and arranges delivery after the commit.
func (db *DB) apply(btx *bolt.Tx, fn func(*Tx) error) (Change, error) {
	tx := &Tx{btx: btx, rec: &recorder{}}
	if err := fn(tx); err != nil {
		return Change{}, err
	}
	meta := btx.Bucket(bucketMeta)
	prev, ok := readU64(meta.Get(keyRev))
	if !ok {
		return Change{}, fmt.Errorf("%w: meta rev is missing or malformed", ErrCorrupt)
	}
	rev := prev + 1
	if err := meta.Put(keyRev, u64(rev)); err != nil {
		return Change{}, err
	}
	c := tx.rec.change(rev)
	btx.OnCommit(func() {
		if db.testBeforeDeliver != nil {
			db.testBeforeDeliver(c.Rev)
		}
		db.hub.committed(c)
	})
	return c, nil
}

// commitFailed handles a commit that returned an error after fn succeeded.
// Usually nothing reached the file (a full disk fails before any write)
// and the revision is simply reused by the next commit. But when the final
// fsync fails after bbolt wrote its meta page, the new revision is visible
// to later transactions although no commit handler ran: left alone, the
// hub would wait for that revision forever and every later write would
// hang. Then the change is delivered as if committed (it is what the file
// now says) and the store refuses further writes (Err): after a failed
// fsync, what is really on disk is unknown until the process restarts and
// reads it back.
func (db *DB) commitFailed(c Change) {
	var onDisk uint64
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		onDisk, _ = readU64(btx.Bucket(bucketMeta).Get(keyRev))
		return nil
	}); err != nil || onDisk < c.Rev {
		return
	}
	db.failed.CompareAndSwap(nil, &detailError{
		msg: fmt.Sprintf("data file %s: a commit failed after it was partly written (revision %d); restart gatehouse",
			db.path, c.Rev),
		sentinel: ErrFailed,
	})
	db.hub.committed(c)
}

// Err returns ErrFailed (wrapped) once a commit failed in a way that leaves
// the file's state unknown (see commitFailed); nil otherwise. Health checks
// should report it; Update and Batch return it without trying.
func (db *DB) Err() error {
	if p := db.failed.Load(); p != nil {
		return p
	}
	return nil
}

// View runs fn in a read-only transaction. Keep it short: a long read
// transaction keeps the file from reusing freed pages.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(btx *bolt.Tx) error { return fn(&Tx{btx: btx}) })
}

// Subscribe registers fn to be called with every Change committed from now
// on, in revision order, from the committing goroutine, before that
// goroutine's Update or Batch returns. fn must be fast, must not modify the
// Change, and must not call Update, Batch or Subscribe (it would deadlock).
//
// To mirror the state without missing or repeating a change, use
// LoadAndSubscribe.
func (db *DB) Subscribe(fn func(Change)) { db.hub.subscribe(0, fn) }

// State is the whole served state at one revision.
type State struct {
	Rev         uint64
	Tokens      []*tokens.ServiceToken
	Apps        []*policy.Application
	Policies    []*policy.Policy
	SigningKeys []*tokens.SealedKey
}

// Load reads the full state and the revision it is at, in one read
// transaction.
//
// Tokens, which may number hundreds of thousands, are copied out raw inside
// the transaction and decoded afterwards on all CPUs: decoding is nearly
// all of Load's cost, and the read transaction stays short. Records in the
// form encode writes skip encoding/json (decodeTokenFast).
func (db *DB) Load() (*State, error) {
	var (
		st  *State
		raw rawRecords
	)
	err := db.View(func(tx *Tx) error {
		var err error
		st, err = tx.loadSmall()
		raw = copyRecords(tx.bucket(bucketTokens))
		return err
	})
	if err != nil {
		return nil, err
	}
	if st.Tokens, err = decodeTokens(raw); err != nil {
		return nil, err
	}
	return st, nil
}

// SigningKeys reads the sealed signing keys in a read transaction.
func (db *DB) SigningKeys() ([]*tokens.SealedKey, error) {
	var keys []*tokens.SealedKey
	err := db.View(func(tx *Tx) error {
		var err error
		keys, err = tx.SigningKeys()
		return err
	})
	return keys, err
}

// LoadAndSubscribe loads the state and subscribes fn to every change after
// it, atomically: fn sees exactly the changes with Rev > State.Rev.
func (db *DB) LoadAndSubscribe(fn func(Change)) (*State, error) {
	// Holding the hub's lock stops deliveries (commits go on), so no change
	// can be delivered between the load and the registration; changes that
	// committed before the load but are still parked are filtered by Rev.
	db.hub.mu.Lock()
	defer db.hub.mu.Unlock()
	st, err := db.Load()
	if err != nil {
		return nil, err
	}
	db.hub.subs = append(db.hub.subs, subscription{after: st.Rev, fn: fn})
	return st, nil
}

// LoadAndSubscribeEach is LoadAndSubscribe that hands the tokens to each,
// one at a time in id order, instead of returning them in State.Tokens
// (left nil). each runs inside the read transaction, with a value reused
// for the next token: it must copy what it keeps. The pages of the data
// file already read are given back to the kernel as the scan goes (see
// ReleaseMappedPages). With a million tokens, holding the raw records, the
// decoded tokens and the mapped file at once was more than twice the
// memory the server needs afterwards. The data file is first asked into
// the page cache in file order (see prefetch): the walk is in key order.
func (db *DB) LoadAndSubscribeEach(each func(*tokens.ServiceToken), fn func(Change)) (*State, error) {
	prefetch(db.path)
	db.hub.mu.Lock()
	defer db.hub.mu.Unlock()
	var st *State
	err := db.View(func(tx *Tx) error {
		var err error
		if st, err = tx.loadSmall(); err != nil {
			return err
		}
		var (
			d    tokenDecoder
			t    tokens.ServiceToken
			read int
		)
		c := tx.bucket(bucketTokens).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !d.decode(v, &t) {
				if err := unmarshal(v, &t, "token", string(k)); err != nil {
					return err
				}
			}
			each(&t)
			if read += len(k) + len(v); read >= releaseEvery {
				releaseMapped(tx.btx)
				read = 0
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	db.hub.subs = append(db.hub.subs, subscription{after: st.Rev, fn: fn})
	return st, nil
}

// releaseEvery is how many bytes of records LoadAndSubscribeEach reads
// between releases of the mapped pages.
const releaseEvery = 32 << 20

// loadSmall reads the state but the tokens.
func (tx *Tx) loadSmall() (*State, error) {
	st := &State{Rev: tx.Rev()}
	if err := tx.ForEachApp(func(a *policy.Application) error {
		st.Apps = append(st.Apps, a)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := tx.ForEachPolicy("", func(p *policy.Policy) error {
		st.Policies = append(st.Policies, p)
		return nil
	}); err != nil {
		return nil, err
	}
	keys, err := tx.SigningKeys()
	if err != nil {
		return nil, err
	}
	st.SigningKeys = keys
	return st, nil
}

// TouchLastSeen records when tokens were last used, in transactions of up
// to touchChunk tokens (a failure leaves the earlier chunks written). It
// only moves LastSeenAt forward and ignores ids that no longer exist.
//
// It neither bumps the revision nor delivers a Change: last-seen times are
// bookkeeping the authz server itself produced (DrainLastSeen), and making
// every flush a change would rebuild snapshot shards for nothing.
func (db *DB) TouchLastSeen(seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	if err := db.Err(); err != nil {
		return err
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids) // key order: fewer pages touched in between
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), touchChunk)]
		ids = ids[len(chunk):]
		if err := db.touchLastSeen(chunk, seen); err != nil {
			return err
		}
	}
	return nil
}

// touchChunk is how many tokens one TouchLastSeen transaction updates.
// Reading and rewriting 10,000 random tokens of a million in one commit
// faulted some 300 MiB of the data file into RSS (the kernel maps 16
// neighbouring pages per fault) until the release after it, and was 0.3 s
// of CPU in one stretch, which Checks sharing the core waited behind. In
// chunks, each released after its commit, the file's share stays small,
// and each chunk's fsync gives the core back to the Checks.
const touchChunk = 250

func (db *DB) touchLastSeen(ids []string, seen map[string]time.Time) error {
	defer func() { _ = db.ReleaseMappedPages() }()
	return db.bolt.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketTokens)
		for _, id := range ids {
			raw := b.Get([]byte(id))
			if raw == nil {
				continue
			}
			t, err := decode[tokens.ServiceToken](raw, "token", id)
			if err != nil {
				return err
			}
			at := seen[id]
			if !at.After(t.LastSeenAt) {
				continue
			}
			t.LastSeenAt = at
			data, err := encode(t)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(id), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Backup writes a consistent copy of the data file to w from one read
// transaction; writers go on meanwhile. The copy is itself a store that
// Open and Verify accept.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(btx *bolt.Tx) error {
		var err error
		n, err = btx.WriteTo(w)
		return err
	})
	return n, err
}

// rawRecords is a bucket's keys and values copied into one buffer, so they
// outlive the transaction: record i's key is buf[ends[2i-1]:ends[2i]] and
// its value buf[ends[2i]:ends[2i+1]] (with ends[-1] = 0).
type rawRecords struct {
	buf  []byte
	ends []int
}

func copyRecords(b *bolt.Bucket) rawRecords {
	// Stats walks the pages without decoding them: cheap next to the copy,
	// and it saves growing a buffer of tens of megabytes by doubling.
	st := b.Stats()
	r := rawRecords{buf: make([]byte, 0, st.LeafInuse), ends: make([]int, 0, 2*st.KeyN)}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r.buf = append(r.buf, k...)
		r.ends = append(r.ends, len(r.buf))
		r.buf = append(r.buf, v...)
		r.ends = append(r.ends, len(r.buf))
	}
	return r
}

func (r *rawRecords) len() int { return len(r.ends) / 2 }

func (r *rawRecords) at(i int) (key, val []byte) {
	start := 0
	if i > 0 {
		start = r.ends[2*i-1]
	}
	return r.buf[start:r.ends[2*i]], r.buf[r.ends[2*i]:r.ends[2*i+1]]
}

// decodeTokens decodes every token record, in key order, splitting the work
// over GOMAXPROCS goroutines once there are enough records to be worth it.
// Each worker puts its tokens in one block and carves their secret digests
// out of shared chunks (see tokenDecoder); records decodeTokenFast does not
// take go through encoding/json.
func decodeTokens(r rawRecords) ([]*tokens.ServiceToken, error) {
	n := r.len()
	if n == 0 {
		return nil, nil
	}
	out := make([]*tokens.ServiceToken, n)
	workers := min(runtime.GOMAXPROCS(0), 1+n/2048)
	per := (n + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			lo, hi := w*per, min((w+1)*per, n)
			if lo >= hi {
				return
			}
			block := make([]tokens.ServiceToken, hi-lo)
			d := tokenDecoder{arena: true}
			for i := lo; i < hi; i++ {
				_, v := r.at(i)
				t := &block[i-lo]
				if !d.decode(v, t) {
					k, _ := r.at(i)
					if err := unmarshal(v, t, "token", string(k)); err != nil {
						errs[w] = err
						return
					}
				}
				out[i] = t
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
