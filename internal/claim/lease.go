package claim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mya/deid/sinks/objstore"
)

// A lease is the lock of a root on object storage (an s3:// state_dir or
// out), where there is no flock. It is a sequence of lock objects,
// <name>/<generation> (20 digits, so that they list in order), each
// created with a conditional create (If-None-Match: *), so that of any
// number of processes creating the same generation exactly one succeeds.
// The holder is the highest generation that is not released. The holder
// rewrites its object every heartbeat; one whose object is older than the
// TTL is stale — its process is gone or cut off — and is taken over by
// creating the next generation, which again exactly one taker wins. A
// holder that finds a generation above its own has lost the lease and
// stops (Lost, Check): it is fenced by the generation number. Release marks
// the holder's object released, so the next run takes the lease at once
// instead of waiting for the TTL; the object is kept, so that a holder cut
// off long ago still finds a higher generation and stops.
//
// Staleness compares the store's time of the last heartbeat (whole seconds
// on S3) with this process's clock, so the TTL should be well above a
// second and any clock skew between the hosts and the store.

// LeaseOptions are the timings of a lease.
type LeaseOptions struct {
	// TTL is how old the holder's last heartbeat may be before the lease
	// can be taken over.
	TTL time.Duration
	// Heartbeat is how often the holder rewrites its lock object and
	// checks that no higher generation exists; at most TTL/3.
	Heartbeat time.Duration
	// now is the clock (tests).
	now func() time.Time
}

// DefaultLeaseOptions are the timings deid uses: a 30-second TTL, renewed
// every 10 seconds.
func DefaultLeaseOptions() LeaseOptions {
	return LeaseOptions{TTL: 30 * time.Second, Heartbeat: 10 * time.Second}
}

// leaseRecord is the content of a lock object.
type leaseRecord struct {
	Holder
	Generation uint64    `json:"generation"`
	Heartbeat  time.Time `json:"heartbeat"`
	Released   bool      `json:"released,omitempty"`
}

// ErrLeaseLost is wrapped by Check's and Err's error once another process
// has taken the lease over.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a held lock of a root on object storage; see AcquireLease.
type Lease struct {
	st   objstore.Store
	name string // the lock objects' prefix, e.g. "_deid.lock"
	key  string // the root's configuration key, for messages
	gen  uint64
	rec  leaseRecord
	opts LeaseOptions

	mu   sync.Mutex
	err  error         // why the lease was lost; nil while held
	lost chan struct{} // closed when the lease is lost
	stop chan struct{} // closed by Release
	done chan struct{} // closed when the heartbeat goroutine returns
}

// genKey is the lock object of generation gen.
func genKey(name string, gen uint64) string { return fmt.Sprintf("%s/%020d", name, gen) }

// generations lists the generations of name's lock objects, ascending.
func generations(ctx context.Context, st objstore.Store, name string) ([]uint64, []objstore.Info, error) {
	infos, err := st.List(ctx, name+"/")
	if err != nil {
		return nil, nil, err
	}
	var gens []uint64
	var keep []objstore.Info
	for _, in := range infos {
		g, err := strconv.ParseUint(strings.TrimPrefix(in.Key, name+"/"), 10, 64)
		if err != nil || in.Key != genKey(name, g) {
			continue // not a lock object of ours; left alone
		}
		gens = append(gens, g)
		keep = append(keep, in)
	}
	return gens, keep, nil
}

func readRecord(ctx context.Context, st objstore.Store, key string) (leaseRecord, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return leaseRecord{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<16))
	if err != nil {
		return leaseRecord{}, err
	}
	var r leaseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return leaseRecord{}, fmt.Errorf("lock object %s is unreadable (%v)", key, err)
	}
	return r, nil
}

// AcquireLease takes the lease of the root st under the lock objects
// name/…, without waiting: when a live holder has it (a heartbeat younger
// than opts.TTL), or another process takes it at the same moment, it
// returns a *HeldError naming the holder. key is the root's configuration
// key ("out", "state_dir"), for messages. The lease is renewed in the
// background until Release; Lost is closed if another process takes it
// over meanwhile.
func AcquireLease(ctx context.Context, st objstore.Store, name, key string, opts LeaseOptions) (*Lease, error) {
	if opts.TTL <= 0 || opts.Heartbeat <= 0 || opts.Heartbeat*3 > opts.TTL {
		return nil, fmt.Errorf("%s: lease timings: the heartbeat (%s) must be positive and at most a third of the TTL (%s)", key, opts.Heartbeat, opts.TTL)
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	gens, infos, err := generations(ctx, st, name)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the lock of %s: %w", key, st, err)
	}
	var next uint64 = 1
	if n := len(gens); n > 0 {
		top, info := gens[n-1], infos[n-1]
		next = top + 1
		rec, err := readRecord(ctx, st, info.Key)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			// Pruned or released meanwhile: the create below decides.
		case err != nil:
			return nil, fmt.Errorf("%s: reading the lock of %s: %w", key, st, err)
		case !rec.Released && opts.now().Sub(info.ModTime) < opts.TTL:
			return nil, &HeldError{Dir: st.String(), Key: key, Holder: rec.Holder,
				Lease: fmt.Sprintf("generation %d, last heartbeat %s ago; it is taken over when older than %s", top, opts.now().Sub(info.ModTime).Round(time.Second), opts.TTL)}
		}
	}
	host, _ := os.Hostname()
	now := opts.now().UTC()
	l := &Lease{st: st, name: name, key: key, gen: next, opts: opts,
		rec:  leaseRecord{Holder: Holder{PID: os.Getpid(), Host: host, Since: now.Truncate(time.Second)}, Generation: next, Heartbeat: now},
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	b, _ := json.Marshal(l.rec)
	err = st.Put(ctx, genKey(name, next), bytes.NewReader(append(b, '\n')), objstore.PutOptions{IfNotExists: true})
	if errors.Is(err, objstore.ErrExists) {
		// Another process took this generation first: it holds the lease.
		he := &HeldError{Dir: st.String(), Key: key, Lease: fmt.Sprintf("generation %d, taken at the same moment", next)}
		if rec, rerr := readRecord(ctx, st, genKey(name, next)); rerr == nil {
			he.Holder = rec.Holder
		}
		return nil, he
	}
	if err != nil {
		return nil, fmt.Errorf("%s: taking the lock of %s: %w", key, st, err)
	}
	// Older generations are history now; a holder cut off long ago that
	// writes its own again still finds ours above it.
	for _, g := range gens {
		if g+1 < next {
			st.Delete(ctx, genKey(name, g)) // best effort: only tidiness
		}
	}
	go l.renew()
	return l, nil
}

// Generation is the lease's generation: higher than every earlier holder's.
func (l *Lease) Generation() uint64 { return l.gen }

// Lost is closed when another process has taken the lease over; the holder
// must stop writing to the root.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err says why the lease was lost (wrapping ErrLeaseLost), or nil.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Check lists the lock objects now and fails, wrapping ErrLeaseLost, if a
// generation above the lease's exists: the fencing check to make before a
// commit.
func (l *Lease) Check(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	gens, _, err := generations(ctx, l.st, l.name)
	if err != nil {
		return fmt.Errorf("%s: checking the lock of %s: %w", l.key, l.st, err)
	}
	if n := len(gens); n > 0 && gens[n-1] > l.gen {
		l.lose(gens[n-1])
		return l.Err()
	}
	return nil
}

func (l *Lease) lose(by uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.err = fmt.Errorf("%s: %s: generation %d took the lock over from this process's generation %d (its heartbeat was older than %s): %w; stop, and let one process write there",
		l.key, l.st, by, l.gen, l.opts.TTL, ErrLeaseLost)
	close(l.lost)
}

// renew rewrites the lease's object every heartbeat, after checking that
// no higher generation exists, until Release or the lease is lost.
func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.Heartbeat)
		err := l.Check(ctx)
		if err == nil {
			err = l.write(ctx, false)
		}
		cancel()
		if errors.Is(err, ErrLeaseLost) {
			return
		}
		// Another failure (the store unreachable for a while) is retried at
		// the next beat; if it lasts past the TTL, a taker may come, and the
		// next Check finds it.
	}
}

// abandon stops the heartbeat without releasing the lease, as a process
// that dies does (tests).
func (l *Lease) abandon() {
	close(l.stop)
	<-l.done
}

// write rewrites the lease's object with a fresh heartbeat.
func (l *Lease) write(ctx context.Context, released bool) error {
	r := l.rec
	r.Heartbeat = l.opts.now().UTC()
	r.Released = released
	b, _ := json.Marshal(r)
	return l.st.Put(ctx, genKey(l.name, l.gen), bytes.NewReader(append(b, '\n')), objstore.PutOptions{})
}

// Release stops the heartbeat and marks the lease released, unless it was
// lost. Safe to call more than once.
func (l *Lease) Release(ctx context.Context) error {
	if l == nil {
		return nil
	}
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	<-l.done
	if err := l.Check(ctx); err != nil {
		return nil // taken over: the object is no longer ours to mark
	}
	if err := l.write(ctx, true); err != nil {
		return fmt.Errorf("%s: releasing the lock of %s: %w", l.key, l.st, err)
	}
	return nil
}
