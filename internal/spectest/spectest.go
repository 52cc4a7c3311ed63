// Package spectest builds the small dataset specs that tests of deid's
// internal packages share: a hierarchy over a listed domain, and a region
// and an industry dimension over it. Tests only.
package spectest

import (
	"strings"

	"github.com/mya/deid/pipeline"
)

// Tree is a hierarchy of three levels over a listed domain of dotted
// values: "eu.de" at level 0, "eu" at level 1, "*" at the top.
type Tree []string

// Levels is 3: the value, its parent and "*".
func (Tree) Levels() int { return 3 }

// Generalize returns v at level 0, the part of v before its first dot at
// level 1, and "*" above.
func (Tree) Generalize(v string, l int) string {
	switch {
	case l <= 0:
		return v
	case l == 1:
		before, _, _ := strings.Cut(v, ".")
		return before
	}
	return "*"
}

// Domain lists the generalizations of t's values at level l, each once, in
// the order they first appear: t itself at level 0.
func (t Tree) Domain(l int) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range t {
		if g := t.Generalize(v, l); !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// Describe names the hierarchy for the data dictionary.
func (Tree) Describe() string { return "tree" }

// Dimensions returns two dimensions of three leaves under two parents each:
// region over eu.de, eu.fr and na.us, and industry over beauty.hair,
// beauty.skin and tech.saas. Each call returns a new slice.
func Dimensions() []pipeline.Dimension {
	return []pipeline.Dimension{
		{Name: "region", Hierarchy: Tree{"eu.de", "eu.fr", "na.us"}},
		{Name: "industry", Hierarchy: Tree{"beauty.hair", "beauty.skin", "tech.saas"}},
	}
}
