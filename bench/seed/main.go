// Command seed fills a stopped gatehouse server's store with benchmark
// data, directly through the store package (the same record formats and
// index maintenance the admin API uses): --tokens service tokens, --apps
// applications each with one non_identity policy admitting any valid
// service token, and one extra application with a bypass policy (everyone).
// It writes the client id and secret of an evenly spaced sample of the
// tokens to --creds for the load generator.
//
// Writes go in large transactions with fsync off (the data is disposable
// and the file is closed cleanly, which syncs it), so a million tokens take
// seconds, not the hours one fsync per token would.
//
// Application 0 serves --host (with session cookies on, so session JWTs are
// accepted back), applications 1..N-1 serve app-NNNN.example.com, and the
// bypass application serves --bypass-host.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/checkreq"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

type config struct {
	dataDir    string
	tokens     int
	apps       int
	sample     int
	creds      string
	host       string
	bypassHost string
	chunk      int
	prefix     string
}

func main() {
	c := config{}
	flag.StringVar(&c.dataDir, "data-dir", "", "gatehouse data directory (the server must be stopped)")
	flag.IntVar(&c.tokens, "tokens", 1000, "service tokens to create")
	flag.IntVar(&c.apps, "apps", 1000, "applications with a service-token policy (plus one bypass application)")
	flag.IntVar(&c.sample, "sample", 10000, "write credentials of this many tokens (evenly spaced) to --creds")
	flag.StringVar(&c.creds, "creds", "", "credentials file to write (JSON list of {client_id, client_secret})")
	flag.StringVar(&c.host, "host", "app.example.com", "domain of application 0 (the load generator's target)")
	flag.StringVar(&c.bypassHost, "bypass-host", "public.example.com", "domain of the bypass application")
	flag.IntVar(&c.chunk, "chunk", 50000, "tokens per write transaction")
	flag.StringVar(&c.prefix, "name-prefix", "bench", "prefix of token and application names")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the seeding to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	// A million records are garbage-light but pointer-heavy; collecting
	// less often roughly halves the CPU spent in the GC.
	debug.SetGCPercent(400)
	start := time.Now()
	if err := seed(c); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "seed: %d tokens, %d+1 applications in %s\n", c.tokens, c.apps, time.Since(start).Round(time.Millisecond))
}

func seed(c config) error {
	switch {
	case c.dataDir == "":
		return errors.New("--data-dir is required")
	case c.tokens < 0 || c.tokens > 10_000_000:
		return fmt.Errorf("--tokens %d: want 0..10000000", c.tokens)
	case c.apps < 1 || c.apps > 100_000:
		return fmt.Errorf("--apps %d: want 1..100000", c.apps)
	case c.chunk < 1:
		return fmt.Errorf("--chunk %d: want ≥ 1", c.chunk)
	case c.sample < 0:
		return fmt.Errorf("--sample %d: want ≥ 0", c.sample)
	case c.sample > 0 && c.creds == "":
		return errors.New("--creds is required when --sample > 0")
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return err
	}
	db, err := store.Open(store.FilePath(c.dataDir), store.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now().UTC()
	if err := seedApps(db, c, now); err != nil {
		return err
	}
	creds, err := seedTokens(db, c, now)
	if err != nil {
		return err
	}
	if c.creds != "" {
		if err := checkreq.WriteCreds(c.creds, creds); err != nil {
			return err
		}
	}
	return db.Close()
}

func seedApps(db *store.DB, c config, now time.Time) error {
	var apps []*policy.Application
	var pols []*policy.Policy
	for i := range c.apps + 1 {
		aud, err := policy.NewAUD()
		if err != nil {
			return err
		}
		a := &policy.Application{
			ID:              tokens.NewID(),
			Name:            fmt.Sprintf("%s-app-%04d", c.prefix, i),
			Domains:         []string{fmt.Sprintf("app-%04d.example.com", i)},
			AUD:             aud,
			SessionDuration: 24 * time.Hour,
			SessionCookie:   true,
			CreatedAt:       now,
			UpdatedAt:       now,
		}
		p := &policy.Policy{
			ID:            tokens.NewID(),
			ApplicationID: a.ID,
			Name:          "service tokens",
			Decision:      policy.NonIdentity,
			Precedence:    1,
			Include:       []policy.Rule{{AnyValidServiceToken: &struct{}{}}},
			CreatedAt:     now,
			UpdatedAt:     now,
		}
		switch i {
		case 0:
			a.Domains = []string{c.host}
		case c.apps:
			a.Name = c.prefix + "-public"
			a.Domains = []string{c.bypassHost}
			p.Name, p.Decision = "everyone", policy.Bypass
			p.Include = []policy.Rule{{Everyone: &struct{}{}}}
		}
		if err := policy.ValidateApplication(a); err != nil {
			return err
		}
		if err := policy.ValidatePolicy(p); err != nil {
			return err
		}
		apps, pols = append(apps, a), append(pols, p)
	}
	if _, err := policy.Compile(apps, pols); err != nil {
		return fmt.Errorf("seed applications do not compile: %w", err)
	}
	return db.Update(func(tx *store.Tx) error {
		for i, a := range apps {
			if err := tx.PutApp(a); err != nil {
				return err
			}
			if err := tx.PutPolicy(pols[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// seedTokens creates the tokens with tokens.New on all cores, then writes
// them in chunks of c.chunk per transaction, returning the sampled
// credentials.
//
// bbolt splits nodes only when a transaction commits, so random keys make a
// large transaction quadratic and many small ones rewrite most of the tree
// each time. Keys written in ascending order only ever append to the
// right-most pages. So before writing, the tokens are sorted by id, and the
// names (bench-token-NNNNNNN, in that order) and the client ids (fresh
// tokens.New ones, sorted) are handed out in the same order: all three
// buckets then grow at their right edge. The records are exactly what
// tokens.New makes; only which random client id goes with which random id
// differs, which nothing depends on.
func seedTokens(db *store.DB, c config, now time.Time) ([]checkreq.Cred, error) {
	toks := make([]*tokens.ServiceToken, c.tokens)
	secrets := make([]string, c.tokens)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < c.tokens; i += len(errs) {
				t, secret, err := tokens.New("seed", tokens.Forever, now)
				if err != nil {
					errs[w] = err
					return
				}
				toks[i], secrets[i] = t, secret
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Sort (token, secret) pairs by id, then give out names and client ids
	// in that order.
	order := make([]int, c.tokens)
	clientIDs := make([]string, c.tokens)
	for i := range order {
		order[i] = i
		clientIDs[i] = toks[i].ClientID
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(toks[a].ID, toks[b].ID) })
	slices.Sort(clientIDs)
	sorted := make([]*tokens.ServiceToken, c.tokens)
	sortedSecrets := make([]string, c.tokens)
	for pos, i := range order {
		t := toks[i]
		t.Name = fmt.Sprintf("%s-token-%07d", c.prefix, pos)
		t.ClientID = clientIDs[pos]
		sorted[pos], sortedSecrets[pos] = t, secrets[i]
	}
	toks, secrets = nil, nil

	for lo := 0; lo < len(sorted); lo += c.chunk {
		batch := sorted[lo:min(lo+c.chunk, len(sorted))]
		if err := db.Update(func(tx *store.Tx) error {
			for _, t := range batch {
				if err := tx.PutToken(t); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("tokens %d..%d: %w", lo, lo+len(batch)-1, err)
		}
	}

	var creds []checkreq.Cred
	if c.sample > 0 && c.tokens > 0 {
		every := max(c.tokens/c.sample, 1)
		for i := 0; i < len(sorted) && len(creds) < c.sample; i += every {
			creds = append(creds, checkreq.Cred{ClientID: sorted[i].ClientID, ClientSecret: sortedSecrets[i]})
		}
	}
	return creds, nil
}
