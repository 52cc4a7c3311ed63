package claim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy is configuration by YAML path ("pipeline.window": "24h0m0s",
// "datasets[0].privacy.k": "10"): the settings that change what a run
// excludes and publishes. Its Version is the policy version of every
// exclusion entry and manifest.
type Policy map[string]string

// Add adds section v under prefix, as YAML encodes it: every key of the
// section, so that a setting added to it later is part of the policy
// unless it is dropped on purpose (fail closed).
func (p Policy) Add(prefix string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("policy %s: %w", prefix, err)
	}
	var tree any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return fmt.Errorf("policy %s: %w", prefix, err)
	}
	p.flatten(prefix, tree)
	return nil
}

func (p Policy) flatten(path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			p[path] = "{}"
		}
		for k, x := range v {
			p.flatten(join(path, k), x)
		}
	case []any:
		if len(v) == 0 {
			p[path] = "[]"
		}
		for i, x := range v {
			p.flatten(fmt.Sprintf("%s[%d]", path, i), x)
		}
	case nil:
		p[path] = "null"
	default:
		p[path] = fmt.Sprint(v)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Drop removes every path for which drop is true, and what lies under it.
func (p Policy) Drop(drop func(path string) bool) {
	for k := range p {
		if drop(k) {
			delete(p, k)
		}
	}
}

// Under tells whether path is prefix itself or lies under it.
func Under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"[")
}

// Version is the hex of the first 8 bytes of the SHA-256 of the policy's
// JSON (keys sorted, so the same policy gives the same version).
func (p Policy) Version() string {
	b, _ := json.Marshal(map[string]string(p))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
