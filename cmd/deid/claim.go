package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/parquet"
)

// The files of a run's claim (internal/claim): a lock and a binding in the
// state directory, and another pair in the output, named so that readers of
// the output pass them by (Hive-partitioned readers skip names beginning
// with "_").
const (
	stateLockName    = "deid.lock"
	stateBindingName = "binding.json"
	outLockName      = "_deid.lock"
	outBindingName   = "_deid_binding.json"
)

// claimed is what a run holds on its state directory and output.
type claimed struct {
	locks []*claim.Lock
	// lease is the lock of an output on object storage (no flock there).
	lease *claim.Lease
	// out is the output's store, when it is on object storage.
	out objstore.Store
	// stateLease and state are the same for a state_dir on object storage.
	stateLease *claim.Lease
	state      objstore.Store
	// resuming: the state directory is an earlier run's.
	resuming bool
}

func (c *claimed) release() {
	if c.lease != nil {
		c.lease.Release(context.Background())
	}
	if c.stateLease != nil {
		c.stateLease.Release(context.Background())
	}
	for i := len(c.locks) - 1; i >= 0; i-- {
		c.locks[i].Release()
	}
}

// lost is closed when another process took the output's lease over (never,
// for a local output).
func (c *claimed) lost() <-chan struct{} {
	if c.lease == nil {
		return c.stateLost()
	}
	if c.stateLease == nil {
		return c.lease.Lost()
	}
	either := make(chan struct{})
	go func() {
		select {
		case <-c.lease.Lost():
		case <-c.stateLease.Lost():
		}
		close(either)
	}()
	return either
}

// stateLost is closed when another process took the state directory's
// lease over (never, for a local one).
func (c *claimed) stateLost() <-chan struct{} {
	if c.stateLease == nil {
		return nil
	}
	return c.stateLease.Lost()
}

// lostErr says which lease was lost, or nil.
func (c *claimed) lostErr() error {
	for _, l := range []*claim.Lease{c.lease, c.stateLease} {
		if l != nil && l.Err() != nil {
			return l.Err()
		}
	}
	return nil
}

// leaseOptions are the timings of the leases on object storage:
// storage.lease_ttl, renewed every third of it.
func leaseOptions(cfg *Config) claim.LeaseOptions {
	return claim.LeaseOptions{TTL: cfg.Storage.LeaseTTL, Heartbeat: cfg.Storage.LeaseTTL / 3}
}

// claimDirs locks the state directory (if any), then the output, so that a
// second process is refused before it reads or writes anything else; then
// it checks that both are bound to this run's pseudonym key and policy (and
// the output to this state directory), and binds them if they are new.
// Every check comes before the first write, so a refused run leaves both as
// they were (but for the lock files).
//
// An output on object storage (out, the store given) has no flock: it is
// locked by a lease (claim.AcquireLease: lock objects _deid.lock/<generation>
// created conditionally, renewed by a heartbeat), and bound by a binding
// object created conditionally. So is a state_dir on object storage (state,
// the store given): lock objects deid.lock/<generation> and binding.json.
func claimDirs(ctx context.Context, cfg *Config, key []byte, out, state objstore.Store) (*claimed, error) {
	c := &claimed{}
	if isURL(cfg.StateDir) {
		c.state = state
		l, err := claim.AcquireLease(ctx, state, stateLockName, "state_dir", leaseOptions(cfg))
		if err != nil {
			return nil, err
		}
		c.stateLease = l
	} else if cfg.StateDir != "" {
		l, err := claim.Acquire(cfg.StateDir, stateLockName, "state_dir", 0o750)
		if err != nil {
			return nil, err
		}
		c.locks = append(c.locks, l)
	}
	if isURL(cfg.Out) {
		c.out = out
		l, err := claim.AcquireLease(ctx, out, outLockName, "out", leaseOptions(cfg))
		if err != nil {
			c.release()
			return nil, err
		}
		c.lease = l
	} else {
		l, err := claim.Acquire(cfg.Out, outLockName, "out", 0o755)
		if err != nil {
			c.release()
			return nil, err
		}
		c.locks = append(c.locks, l)
	}
	if err := c.bind(ctx, cfg, key); err != nil {
		c.release()
		return nil, err
	}
	return c, nil
}

func (c *claimed) bind(ctx context.Context, cfg *Config, key []byte) error {
	policy := cfg.policy()
	want := &claim.Binding{KeyFingerprint: claim.Fingerprint(key), PolicyVersion: policy.Version(), Policy: policy,
		Created: time.Now().UTC().Truncate(time.Second)}
	var writeState bool
	if cfg.StateDir != "" {
		have, ok, err := c.readStateBinding(ctx, cfg)
		switch {
		case err != nil:
			return fmt.Errorf("state_dir: %w; restore the state directory or start over with a new state_dir and a new out", err)
		case ok:
			want.StateID = have.StateID
			if err := claim.Check("state_dir", cfg.StateDir, have, want); err != nil {
				return err
			}
			c.resuming = true
		default:
			if err := c.onlyStateClaim(ctx, cfg,
				"no binding to a pseudonym key and policy, so it is not a state directory this deid wrote (an older deid's checkpoints, or another directory); finish its run with the deid that wrote it, or start over with a new state_dir and a new out"); err != nil {
				return err
			}
			if want.StateID, err = claim.NewStateID(); err != nil {
				return err
			}
			writeState = true
		}
	}
	if c.out != nil {
		// The state directory is bound after the output's checks, before
		// the output's binding, as below.
		return c.bindStore(ctx, cfg, want, func() error {
			if !writeState {
				return nil
			}
			return c.writeStateBinding(ctx, cfg, want)
		})
	}
	if !c.resuming && cfg.Mode == modeFile {
		if err := checkOutDir(cfg.Out); err != nil {
			return err
		}
	}
	outPath := filepath.Join(cfg.Out, outBindingName)
	have, ok, err := claim.Read(outPath)
	switch {
	case err != nil:
		return fmt.Errorf("out: %w; the output is damaged — start over with a new out", err)
	case ok:
		if err := claim.Check("out", cfg.Out, have, want); err != nil {
			return err
		}
	default:
		if err := onlyClaimFiles(cfg.Out, outLockName, "out",
			"no binding to a pseudonym key and policy, so this deid did not write it and will not add to it; name a new out"); err != nil {
			return err
		}
	}
	// The state directory first: once it is bound, the run counts as a
	// resumed one, which may find its output begun.
	if writeState {
		if err := c.writeStateBinding(ctx, cfg, want); err != nil {
			return err
		}
	}
	if !ok {
		if err := claim.Write(outPath, want); err != nil {
			return fmt.Errorf("out: binding: %w", err)
		}
	}
	return nil
}

// readStateBinding reads the state directory's binding, from a directory
// or from object storage.
func (c *claimed) readStateBinding(ctx context.Context, cfg *Config) (*claim.Binding, bool, error) {
	if c.state != nil {
		return claim.ReadObject(ctx, c.state, stateBindingName)
	}
	return claim.Read(filepath.Join(cfg.StateDir, stateBindingName))
}

// onlyStateClaim refuses a state directory without a binding that holds
// anything but its lock (and, on object storage, a probe object in
// passing): why says what it is not.
func (c *claimed) onlyStateClaim(ctx context.Context, cfg *Config, why string) error {
	if c.state == nil {
		return onlyClaimFiles(cfg.StateDir, stateLockName, "state_dir", why)
	}
	infos, err := c.state.List(ctx, "")
	if err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	for _, in := range infos {
		if !strings.HasPrefix(in.Key, stateLockName+"/") && !strings.HasPrefix(in.Key, objstore.ProbePrefix) {
			return fmt.Errorf("state_dir: %s holds %s but %s", c.state, in.Key, why)
		}
	}
	return nil
}

// writeStateBinding binds a new state directory; on object storage with a
// conditional create, so that of two runs binding it at once one wins and
// the other is refused.
func (c *claimed) writeStateBinding(ctx context.Context, cfg *Config, want *claim.Binding) error {
	if c.state == nil {
		if err := claim.Write(filepath.Join(cfg.StateDir, stateBindingName), want); err != nil {
			return fmt.Errorf("state_dir: binding: %w", err)
		}
		return nil
	}
	have, created, err := claim.CreateObject(ctx, c.state, stateBindingName, want)
	if err != nil {
		return fmt.Errorf("state_dir: binding: %w", err)
	}
	if !created {
		return fmt.Errorf("state_dir: %s was bound by another run (state id %s) while this one started; one run writes a state directory — start over with a new state_dir", c.state, have.StateID)
	}
	return nil
}

// bindStore checks and writes the binding of an output on object storage,
// as bind does a directory's; the binding is created with a conditional
// create, so that of two runs binding a new output one binding is written
// and the other run is checked against it. bindState, called once every
// check of the output has passed, binds the state directory.
func (c *claimed) bindStore(ctx context.Context, cfg *Config, want *claim.Binding, bindState func() error) error {
	st := c.out
	have, ok, err := claim.ReadObject(ctx, st, outBindingName)
	switch {
	case err != nil:
		return fmt.Errorf("out: %w; the output is damaged — start over with a new out", err)
	case ok:
		if !c.resuming && cfg.Mode == modeFile {
			return storeOnlyClaimObjects(ctx, st, "")
		}
		if err := claim.Check("out", st.String(), have, want); err != nil {
			return err
		}
		return bindState()
	}
	why := "no binding to a pseudonym key and policy, so this deid did not write it and will not add to it; name a new out"
	if !c.resuming && cfg.Mode == modeFile {
		why = ""
	}
	if err := storeOnlyClaimObjects(ctx, st, why); err != nil {
		return err
	}
	if err := bindState(); err != nil {
		return err
	}
	have, created, err := claim.CreateObject(ctx, st, outBindingName, want)
	if err != nil {
		return fmt.Errorf("out: binding: %w", err)
	}
	if !created {
		return claim.Check("out", st.String(), have, want)
	}
	return nil
}

// storeOnlyClaimObjects refuses an output on object storage that holds
// anything but its lock objects (and a probe object in passing), as
// onlyClaimFiles does a directory.
func storeOnlyClaimObjects(ctx context.Context, st objstore.Store, why string) error {
	infos, err := st.List(ctx, "")
	if err != nil {
		return fmt.Errorf("out: %w", err)
	}
	for _, in := range infos {
		if strings.HasPrefix(in.Key, outLockName+"/") || strings.HasPrefix(in.Key, objstore.ProbePrefix) {
			continue
		}
		if why == "" {
			return fmt.Errorf("out: %s is not empty (it holds %s); published windows are never overwritten — remove it or pass another --out", st, in.Key)
		}
		return fmt.Errorf("out: %s holds %s but %s", st, in.Key, why)
	}
	return nil
}

// checkOutDir refuses an output directory that already holds a run:
// published windows are immutable, so a file-mode run starts from an empty
// directory (but for its lock file).
func checkOutDir(dir string) error {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	return onlyClaimFiles(dir, outLockName, "out", "")
}

// onlyClaimFiles refuses a directory that holds anything but its lock file:
// one without a binding must be new (why says so), and a file-mode output
// must be empty (why is empty). A binding's temporary file, left by a run
// killed while it wrote the binding, is removed.
func onlyClaimFiles(dir, lock, key, why string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	for _, e := range entries {
		if claim.IsTemp(e.Name()) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			continue
		}
		if e.Name() != lock {
			abs, _ := filepath.Abs(dir)
			if why == "" {
				return fmt.Errorf("%s: %s is not empty; published windows are never overwritten — remove it or pass another --out", key, abs)
			}
			return fmt.Errorf("%s: %s holds %s but %s", key, abs, e.Name(), why)
		}
	}
	return nil
}

// publishedFrontier returns the end (µs) of the newest window any earlier
// run published to out, 0 when none: events of windows ending at or before
// it are late (pipeline.Stages.PublishedEnd).
func publishedFrontier(ctx context.Context, out objstore.Store) (int64, error) {
	keys, err := parquet.ListManifestKeys(ctx, out, "datasets/")
	if err != nil {
		return 0, fmt.Errorf("out: listing published windows: %w", err)
	}
	var end int64
	for _, k := range keys {
		m, err := parquet.ReadManifestObject(ctx, out, k)
		if err != nil {
			return 0, errors.Join(fmt.Errorf("out: a published window cannot be read; check the output with deid verify"), err)
		}
		end = max(end, m.Window.End.UnixMicro())
	}
	return end, nil
}
