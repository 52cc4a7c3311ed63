package claim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTheFingerprintTellsKeysApartAndIsNotAHashOfTheKey(t *testing.T) {
	a, b := []byte("key-a-0123456789abcdef"), []byte("key-b-0123456789abcdef")
	if Fingerprint(a) != Fingerprint(bytes.Clone(a)) {
		t.Error("the same key gives two fingerprints")
	}
	if Fingerprint(a) == Fingerprint(b) {
		t.Error("two keys give one fingerprint")
	}
	plain := sha256.Sum256(a)
	if fp := Fingerprint(a); fp == hex.EncodeToString(plain[:]) || strings.Contains(fp, hex.EncodeToString(a)) {
		t.Errorf("fingerprint %s is a plain hash of the key or holds it", fp)
	}
}

func TestABindingIsReadBackAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "binding.json")
	if _, ok, err := Read(path); ok || err != nil {
		t.Fatalf("no file: ok %v, err %v", ok, err)
	}
	want := &Binding{KeyFingerprint: Fingerprint([]byte("k")), PolicyVersion: "v1", Policy: Policy{"pipeline.window": "24h0m0s"},
		StateID: "s1", Created: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Read(path)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-written +read):\n%s", diff)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), `"k"`) {
		t.Errorf("the binding holds the key:\n%s", b)
	}
	if err := os.WriteFile(path, []byte(`{"binding_version":1,"key":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(path); err == nil {
		t.Error("a binding with an unknown field is read")
	}
}

func TestCheck(t *testing.T) {
	base := func() *Binding {
		p := Policy{"pipeline.window": "24h0m0s", "datasets[0].privacy.k": "10"}
		return &Binding{KeyFingerprint: Fingerprint([]byte("key-a")), PolicyVersion: p.Version(), Policy: p, StateID: "s1"}
	}
	tests := []struct {
		name   string
		change func(b *Binding)
		want   []string // in the message; none: no error
	}{
		{"the same key, policy and state directory may continue", func(*Binding) {}, nil},
		{"the creation time does not matter", func(b *Binding) { b.Created = time.Now() }, nil},
		{"another key is refused, and the message says how to start over", func(b *Binding) { b.KeyFingerprint = Fingerprint([]byte("key-b")) },
			[]string{"state_dir: ", "bound to another pseudonym key", "start over with a new state_dir and a new out"}},
		{"another policy is refused, naming what changed", func(b *Binding) {
			b.Policy = Policy{"pipeline.window": "12h0m0s", "datasets[0].privacy.k": "10"}
			b.PolicyVersion = b.Policy.Version()
		}, []string{"bound to policy", "pipeline.window: 24h0m0s → 12h0m0s", "start over with a new state_dir and a new out"}},
		{"another state directory is refused", func(b *Binding) { b.StateID = "s2" },
			[]string{"written with another state directory", "run with the state_dir that wrote it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := base()
			tt.change(want)
			err := Check("state_dir", "/state", base(), want)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("not refused")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestAPolicyIsItsSectionsByYAMLPath(t *testing.T) {
	type section struct {
		Window time.Duration `yaml:"window"`
		K      int           `yaml:"k"`
		Tables []string      `yaml:"tables"`
		Skip   string        `yaml:"-"`
	}
	p := Policy{}
	if err := p.Add("pipeline", section{Window: 24 * time.Hour, K: 10, Tables: []string{"a.csv"}, Skip: "x"}); err != nil {
		t.Fatal(err)
	}
	want := Policy{"pipeline.window": "24h0m0s", "pipeline.k": "10", "pipeline.tables[0]": "a.csv"}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	v := p.Version()
	p.Drop(func(path string) bool { return Under(path, "pipeline.tables") })
	if _, ok := p["pipeline.tables[0]"]; ok || p.Version() == v {
		t.Errorf("Drop kept pipeline.tables[0] or the version did not change: %v", p)
	}
	if got := (Policy{"a": "1"}).Diff(Policy{"b": "2"}); got != "a: 1 → (unset); b: (unset) → 2" {
		t.Errorf("Diff: %q", got)
	}
}
