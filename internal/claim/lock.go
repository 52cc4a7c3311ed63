package claim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Holder is who holds a lock, as its lock file records it.
type Holder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// HeldError is Acquire's error when another process holds the lock.
type HeldError struct {
	// Dir is the locked directory; Key is its configuration key
	// ("state_dir", "out"), named in the message.
	Dir, Key string
	// Holder is the holder the lock file names; zero when the holder has
	// not written it yet.
	Holder Holder
	// Lease, for a lock on object storage (AcquireLease), says which
	// generation holds it and how fresh its heartbeat is.
	Lease string
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.Holder.PID != 0 {
		who = fmt.Sprintf("pid %d on host %s since %s", e.Holder.PID, e.Holder.Host, e.Holder.Since.UTC().Format(time.RFC3339))
	}
	if e.Lease != "" {
		who += " (" + e.Lease + ")"
	}
	return fmt.Sprintf("%s: %s is locked by %s; stop that process or use another %s", e.Key, e.Dir, who, e.Key)
}

// Lock is an exclusive lock on a directory, held until Release or until the
// process ends.
type Lock struct {
	f *os.File
}

// Acquire creates dir (with perm) if needed and takes the exclusive lock of
// its lock file name, without waiting: when another process holds it, it
// returns a *HeldError naming the holder, having created nothing but the
// directory and the lock file. key is the directory's configuration key,
// for messages. The lock file stays when the lock is released: removing it
// would let two processes lock two different files of the same name.
func Acquire(dir, name, key string, perm os.FileMode) (*Lock, error) {
	if err := os.MkdirAll(dir, perm); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if err := tryLock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errLocked) {
			he := &HeldError{Dir: abs, Key: key}
			if b, rerr := os.ReadFile(path); rerr == nil {
				json.Unmarshal(b, &he.Holder) // a holder that has not written yet is "another process"
			}
			return nil, he
		}
		return nil, fmt.Errorf("%s: locking %s: %w", key, path, err)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Since: time.Now().UTC().Truncate(time.Second)})
	if err := errors.Join(f.Truncate(0), writeAt(f, append(b, '\n')), f.Sync()); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: writing %s: %w", key, path, err)
	}
	return &Lock{f: f}, nil
}

func writeAt(f *os.File, b []byte) error {
	_, err := f.WriteAt(b, 0)
	return err
}

// Release releases the lock. Safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
