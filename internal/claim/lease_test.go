package claim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/sinks/objstore"
)

// leaseStores are the stores the lease is tested on: a directory, and a
// prefix of a fresh bucket on a real S3 server.
func leaseStores() map[string]func(t *testing.T) objstore.Store {
	return map[string]func(t *testing.T) objstore.Store{
		"local": func(t *testing.T) objstore.Store {
			st, err := objstore.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"s3": func(t *testing.T) objstore.Store {
			srv := s3test.Require(t)
			srv.Setenv(t)
			cfg := objstore.DefaultConfig()
			cfg.S3.Endpoint = srv.Endpoint
			cfg.S3.ForcePathStyle = true
			st, err := objstore.NewS3("s3://"+srv.Bucket(t)+"/state", cfg)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
}

// fast are lease timings for tests: a heartbeat every 50ms, stale after
// 10 minutes unless a test moves the clock.
func fast() LeaseOptions {
	return LeaseOptions{TTL: 10 * time.Minute, Heartbeat: 50 * time.Millisecond}
}

// later is fast with the clock moved past the TTL: every holder looks stale.
func later() LeaseOptions {
	o := fast()
	o.now = func() time.Time { return time.Now().Add(o.TTL + time.Second) }
	return o
}

func TestLease(t *testing.T) {
	for name, open := range leaseStores() {
		t.Run(name, func(t *testing.T) {
			t.Run("a live holder refuses a second process, naming itself, and a released lease is taken at once", func(t *testing.T) {
				st := open(t)
				ctx := context.Background()
				first, err := AcquireLease(ctx, st, "_deid.lock", "out", fast())
				if err != nil {
					t.Fatal(err)
				}
				_, err = AcquireLease(ctx, st, "_deid.lock", "out", fast())
				var held *HeldError
				if !errors.As(err, &held) {
					t.Fatalf("second AcquireLease: %v, want a *HeldError", err)
				}
				for _, want := range []string{"out: " + st.String() + " is locked by pid ", "generation 1, last heartbeat", "stop that process or use another out"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message %q does not say %q", err, want)
					}
				}
				if err := first.Release(ctx); err != nil {
					t.Fatal(err)
				}
				second, err := AcquireLease(ctx, st, "_deid.lock", "out", fast())
				if err != nil {
					t.Fatalf("after Release: %v", err)
				}
				defer second.Release(ctx)
				if second.Generation() != 2 {
					t.Errorf("generation %d after a release of 1, want 2", second.Generation())
				}
			})

			t.Run("a stale holder is taken over by the next generation and stops", func(t *testing.T) {
				st := open(t)
				ctx := context.Background()
				old, err := AcquireLease(ctx, st, "_deid.lock", "state_dir", fast())
				if err != nil {
					t.Fatal(err)
				}
				taker, err := AcquireLease(ctx, st, "_deid.lock", "state_dir", later())
				if err != nil {
					t.Fatalf("taking over a stale lease: %v", err)
				}
				defer taker.Release(ctx)
				if taker.Generation() != old.Generation()+1 {
					t.Errorf("taker's generation %d, want %d", taker.Generation(), old.Generation()+1)
				}
				select {
				case <-old.Lost():
				case <-time.After(5 * time.Second):
					t.Fatal("the old holder did not notice within 5s that its lease was taken over")
				}
				if err := old.Check(ctx); !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "generation 2 took the lock over") {
					t.Errorf("old holder's Check: %v, want ErrLeaseLost naming generation 2", err)
				}
				if err := taker.Check(ctx); err != nil {
					t.Errorf("taker's Check: %v", err)
				}
				old.Release(ctx)
				// The old holder's release does not free the taker's lease.
				if _, err := AcquireLease(ctx, st, "_deid.lock", "state_dir", fast()); err == nil {
					t.Error("a third process took a lease its taker holds, after the old holder released")
				}
			})

			t.Run("of many takers of a stale lease exactly one wins", func(t *testing.T) {
				st := open(t)
				ctx := context.Background()
				// Real time: a holder that dies without releasing, whose
				// heartbeat goes stale; the winner's fresh lease must stop
				// the takers that look after it.
				opts := LeaseOptions{TTL: 3 * time.Second, Heartbeat: time.Second}
				old, err := AcquireLease(ctx, st, "_deid.lock", "out", opts)
				if err != nil {
					t.Fatal(err)
				}
				old.abandon()
				time.Sleep(opts.TTL + 1500*time.Millisecond) // the store's times are whole seconds
				const n = 8
				var wg sync.WaitGroup
				results := make([]error, n)
				leases := make([]*Lease, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						leases[i], results[i] = AcquireLease(ctx, st, "_deid.lock", "out", opts)
					}()
				}
				wg.Wait()
				won := 0
				for i, err := range results {
					var held *HeldError
					switch {
					case err == nil:
						won++
						defer leases[i].Release(ctx)
					case !errors.As(err, &held):
						t.Errorf("taker %d: %v, want a *HeldError", i, err)
					}
				}
				if won != 1 {
					t.Errorf("%d takers won, want exactly 1", won)
				}
			})
		})
	}
}

func TestOfTwoRunsBindingANewRootOneBindingIsWritten(t *testing.T) {
	for name, open := range leaseStores() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ctx := context.Background()
			if _, ok, err := ReadObject(ctx, st, "_deid_binding.json"); ok || err != nil {
				t.Fatalf("no binding: ok %v, err %v", ok, err)
			}
			const n = 6
			var wg sync.WaitGroup
			created := make([]bool, n)
			haves := make([]*Binding, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b := &Binding{KeyFingerprint: Fingerprint([]byte("k")), PolicyVersion: fmt.Sprintf("v%d", i), Policy: Policy{}}
					var err error
					haves[i], created[i], err = CreateObject(ctx, st, "_deid_binding.json", b)
					if err != nil {
						t.Errorf("run %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			var winner string
			for i := range n {
				if created[i] {
					if winner != "" {
						t.Fatalf("two runs created the binding: %s and v%d", winner, i)
					}
					winner = fmt.Sprintf("v%d", i)
				}
			}
			if winner == "" {
				t.Fatal("no run created the binding")
			}
			for i, h := range haves {
				if h != nil && h.PolicyVersion != winner {
					t.Errorf("run %d sees policy %s, want the winner's %s", i, h.PolicyVersion, winner)
				}
			}
			got, ok, err := ReadObject(ctx, st, "_deid_binding.json")
			if err != nil || !ok || got.PolicyVersion != winner {
				t.Errorf("read back: %+v, %v, %v; want policy %s", got, ok, err, winner)
			}
			if err := Check("out", st.String(), got, &Binding{KeyFingerprint: Fingerprint([]byte("k")), PolicyVersion: "other"}); err == nil ||
				!strings.Contains(err.Error(), "out: "+st.String()+" is bound to policy "+winner) {
				t.Errorf("Check against another policy: %v", err)
			}
		})
	}
}
