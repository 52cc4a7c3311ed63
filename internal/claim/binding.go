package claim

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// bindingVersion is the format of the binding files written.
const bindingVersion = 1

// fingerprintLabel is what the key's fingerprint is the HMAC of.
const fingerprintLabel = "deid state binding v1"

// Binding is what a state directory or an output is bound to. It is
// written once, when the directory is first used, and compared with every
// later run's.
type Binding struct {
	Version int `json:"binding_version"`
	// KeyFingerprint is Fingerprint of the pseudonym key.
	KeyFingerprint string `json:"key_fingerprint"`
	// PolicyVersion is Policy's Version.
	PolicyVersion string `json:"policy_version"`
	// Policy is what the policy version hashes, so that a refusal can name
	// what changed.
	Policy Policy `json:"policy"`
	// StateID names the state directory, and the one an output was written
	// with: an output continues only from the checkpoints that wrote it.
	// Empty for an output written without a state directory.
	StateID string    `json:"state_id,omitempty"`
	Created time.Time `json:"created"`
}

// Fingerprint is the hex HMAC-SHA-256 of a fixed label keyed with key: the
// same key gives the same fingerprint, and the fingerprint reveals nothing
// of the key (a plain hash of a guessable key could be tested offline;
// this can only be computed by whoever holds the key).
func Fingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// NewStateID returns a random id for a new state directory.
func NewStateID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Read reads the binding at path; ok is false when there is none.
func Read(path string) (b *Binding, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	b, err = decode(path, data)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// decode parses the binding data read from where.
func decode(where string, data []byte) (*Binding, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	b := &Binding{}
	if err := dec.Decode(b); err != nil {
		return nil, fmt.Errorf("%s is unreadable (%v)", where, err)
	}
	if b.Version != bindingVersion {
		return nil, fmt.Errorf("%s is in binding format %d and this deid reads format %d", where, b.Version, bindingVersion)
	}
	return b, nil
}

// Write writes b to path: a temporary file, fsynced, renamed into place,
// and the directory fsynced, so that path is whole or absent.
func Write(path string, b *Binding) error {
	b.Version = bindingVersion
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err = errors.Join(err, tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tempPrefix begins the name of a binding being written.
const tempPrefix = ".tmp-binding-"

// IsTemp tells whether name is that of a binding being written, which a
// process killed in the middle leaves behind.
func IsTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// Check compares have, what the directory dir (configuration key key) is
// bound to, with want, this run's binding. It returns nil when the run may
// use the directory, and otherwise an error that says what differs and how
// to start over.
func Check(key, dir string, have, want *Binding) error {
	restart := "start over with a new out"
	if want.StateID != "" {
		restart = "start over with a new state_dir and a new out"
	}
	if !strings.Contains(dir, "://") {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	if !hmac.Equal([]byte(have.KeyFingerprint), []byte(want.KeyFingerprint)) {
		return fmt.Errorf("%s: %s is bound to another pseudonym key (key fingerprint %.12s…, this run's %.12s…): "+
			"its pseudonyms are not this key's, so every workspace would be counted twice; run with the key that wrote it, or %s",
			key, dir, have.KeyFingerprint, want.KeyFingerprint, restart)
	}
	if have.PolicyVersion != want.PolicyVersion {
		return fmt.Errorf("%s: %s is bound to policy %s and this run's policy is %s (%s): "+
			"windows published under one policy must not be mixed with another's; run with the configuration that wrote it, or %s",
			key, dir, have.PolicyVersion, want.PolicyVersion, have.Policy.Diff(want.Policy), restart)
	}
	if have.StateID != want.StateID {
		what := "with another state directory"
		switch {
		case have.StateID == "":
			what = "without a state directory"
		case want.StateID == "":
			what = "with a state directory, and this run has none"
		}
		return fmt.Errorf("%s: %s was written %s: continuing it from other checkpoints would replay the input into it and rewrite its exclusion log; "+
			"run with the state_dir that wrote it, or %s", key, dir, what, restart)
	}
	return nil
}

// Diff names the paths whose values differ between p and q, as
// "path: old → new", at most ten of them.
func (p Policy) Diff(q Policy) string {
	var paths []string
	for k, v := range p {
		if w, ok := q[k]; !ok || w != v {
			paths = append(paths, k)
		}
	}
	for k := range q {
		if _, ok := p[k]; !ok {
			paths = append(paths, k)
		}
	}
	if len(paths) == 0 {
		return "the same settings, hashed differently"
	}
	slices.Sort(paths)
	const most = 10
	var parts []string
	for i, k := range paths {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(paths)-most))
			break
		}
		parts = append(parts, fmt.Sprintf("%s: %s → %s", k, show(p, k), show(q, k)))
	}
	return strings.Join(parts, "; ")
}

func show(p Policy, k string) string {
	if v, ok := p[k]; ok {
		return v
	}
	return "(unset)"
}
