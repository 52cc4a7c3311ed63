package gen

import (
	"cmp"
	"hash/fnv"
	"math"
	"slices"
	"strings"
)

// The world is the cast the events are about: workspaces with their
// volumes, teams, campaigns and creators, and each workspace's consent
// history. It depends only on the seed and the workspace settings, never on
// the number of events, so a longer run tells more about the same world.

// Workspace kinds, by their consent history.
const (
	wsOrdinary      = iota
	wsOptedOut      // opted out (first record, or later by an owner or admin)
	wsDeleted       // deleted (a record, or a tombstone-like record)
	wsUnknown       // no settings record at all
	wsReOptInEditor // opted out, then "opted in" by an editor: stays out
	wsReOptInOwner  // opted out, then opted in by an owner: included
	wsUnreadable    // ordinary, until an unreadable settings record: excluded
)

type creator struct {
	id, handle, name string
	followers        int64
	// age is 0 when the payload carries no creator_age.
	age int
	// guardian is the guardian_consent field: -1 absent, 0 false, 1 true.
	guardian int
	country  int
	platform int
}

type campaign struct {
	id       string
	industry int
	// stray, when set, is the campaign's industry instead: a value
	// outside the taxonomy (strayIndustries).
	stray    string
	platform int
	// cpm is the spend per thousand impressions and aov the revenue per
	// conversion, in cents.
	cpm, aov float64
	tags     string
}

type workspace struct {
	id        string
	key       []byte // id, as the message key
	partition int
	kind      int
	industry  int
	plan      int
	teamSize  int
	users     []string
	creators  []*creator
	// minors holds a creator under 13, one of 13-17 with guardian consent,
	// one of 13-17 without.
	minors    [3]*creator
	campaigns []campaign
	country   int
}

type world struct {
	ws []*workspace
	// cum is the cumulative, normalized event volume of ws: Zipf-like, a few
	// workspaces make most of the events.
	cum []float64
}

// volumeExponent shapes the workspaces' heavy-tailed volumes: the i-th
// largest has weight 1/(i+1)^volumeExponent.
const volumeExponent = 0.9

// strayCampaigns is the share of campaigns whose industry is a stray
// outside the taxonomy.
const strayCampaigns = 0.03

// maxCreators caps the shared creator pool.
const maxCreators = 500_000

func buildWorld(cfg *Config) *world {
	r := newRNG(cfg.Seed, 1)
	n := cfg.Workspaces
	w := &world{ws: make([]*workspace, n)}

	// A global pool of creators; workspaces (agencies, brands) share the
	// popular ones.
	salt := r.u64()
	pool := make([]*creator, min(max(50, 15*n), maxCreators))
	for i := range pool {
		c := newCreator(r, "cr_"+hexID(mix(uint64(i)^salt^0x2545f491)))
		if r.chance(0.4) {
			c.age = int(r.between(18, 64))
		}
		pool[i] = c
	}
	// Ids come from a bijection of an index, so they are unique.
	for i := range w.ws {
		ws := &workspace{
			id:       "ws_" + hexID(mix(uint64(i)^salt)),
			industry: industries.pick(r.float()),
			country:  countries.pick(r.float()),
		}
		ws.key = []byte(ws.id)
		ws.partition = partitionOf(ws.id, cfg.Partitions)
		w.ws[i] = ws
	}
	// Volumes by rank, ranks shuffled so that ids say nothing of volume.
	rank := make([]int, n)
	for i := range rank {
		rank[i] = i
	}
	shuffle(r, rank)
	weights := make([]float64, n)
	for i := range weights {
		weights[i] = 1 / math.Pow(float64(rank[i]+1), volumeExponent)
	}
	w.cum = make([]float64, n)
	sum := 0.0
	for i, x := range weights {
		sum += x
		w.cum[i] = sum
	}
	for i := range w.cum {
		w.cum[i] /= sum
	}

	for i, ws := range w.ws {
		share := float64(rank[i]) / float64(n)
		ws.plan = plans.pick(r.float())
		switch {
		case share < 0.05:
			ws.plan = 3 // the biggest customers are enterprise
		case share < 0.2 && ws.plan < 2:
			ws.plan = 2
		}
		ws.teamSize = teamSize(r, ws.plan)
		users := min(ws.teamSize, 60)
		ws.users = make([]string, users)
		for u := range ws.users {
			ws.users[u] = "usr_" + hexID(mix(uint64(i)<<20|uint64(u)^salt^0x5bd1e995))
		}
		nc := int(r.pareto(3, 150, 0.8))
		ws.creators = make([]*creator, nc)
		for c := range ws.creators {
			// Popular creators (low pool indexes) work with many workspaces.
			ws.creators[c] = pool[int(float64(len(pool))*math.Pow(r.float(), 2))]
		}
		for m := range ws.minors {
			c := newCreator(r, "cr_"+hexID(mix(uint64(i*3+m)^salt^0x68e31da4^1<<46)))
			switch m {
			case 0:
				c.age = int(r.between(9, 12))
				c.guardian = -1
				if r.chance(0.3) {
					c.guardian = 1 // consent does not help under 13
				}
			case 1:
				c.age, c.guardian = int(r.between(13, 17)), 1
			case 2:
				c.age, c.guardian = int(r.between(13, 17)), -1
				if r.chance(0.5) {
					c.guardian = 0
				}
			}
			c.followers = int64(r.pareto(500, 400_000, 0.6))
			ws.minors[m] = c
		}
		ncamp := int(r.pareto(2, 40, 1.0))
		ws.campaigns = make([]campaign, ncamp)
		for c := range ws.campaigns {
			camp := campaign{
				id:       "cmp_" + hexID(mix(uint64(i)<<24|uint64(c)^salt^0x27d4eb2f)),
				industry: ws.industry,
				platform: platforms.pick(r.float()),
				cpm:      r.uniform(300, 2500),
				aov:      r.uniform(1500, 15000),
				tags:     pick(r, tagSets),
			}
			if r.chance(0.15) {
				camp.industry = industries.pick(r.float())
			}
			if r.chance(strayCampaigns) {
				camp.stray = pick(r, strayIndustries)
			}
			ws.campaigns[c] = camp
		}
	}
	w.assignKinds(r, cfg)
	return w
}

func newCreator(r *rng, id string) *creator {
	first, last := pick(r, firstNames), pick(r, lastNames)
	c := &creator{
		id:        id,
		name:      first + " " + last,
		handle:    "@" + pick(r, handleWords) + strings.ToLower(strings.ReplaceAll(first, " ", "")) + pick(r, handleWords),
		followers: int64(r.pareto(500, 5_000_000, 0.5)),
		guardian:  -1,
		country:   countries.pick(r.float()),
		platform:  platforms.pick(r.float()),
	}
	if r.chance(0.3) {
		c.handle += itoa(int(r.between(1, 99)))
	}
	return c
}

func teamSize(r *rng, plan int) int {
	switch plan {
	case 0:
		return int(r.between(1, 3))
	case 1:
		return int(r.between(1, 12))
	case 2:
		return int(r.pareto(5, 80, 1.2))
	}
	return int(r.pareto(25, 900, 1.0))
}

// assignKinds picks the workspaces with a special consent history, never
// among the five largest unless there are too few others, so that the
// sample keeps most of its volume.
func (w *world) assignKinds(r *rng, cfg *Config) {
	n := len(w.ws)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	// A random order, with the five largest moved to the end.
	shuffle(r, order)
	big := make([]int, n)
	copy(big, order)
	slices.SortStableFunc(big, func(a, b int) int { return cmp.Compare(w.weight(b), w.weight(a)) })
	top := map[int]bool{}
	for _, i := range big[:min(5, n)] {
		top[i] = true
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ta, tb := 0, 0
		if top[a] {
			ta = 1
		}
		if top[b] {
			tb = 1
		}
		return ta - tb
	})
	rt := cfg.Rates
	next := 0
	for _, k := range []struct {
		kind int
		rate float64
	}{{wsOptedOut, rt.OptedOut}, {wsDeleted, rt.Deleted}, {wsUnknown, rt.Unknown},
		{wsReOptInEditor, rt.ReOptInEditor}, {wsReOptInOwner, rt.ReOptInOwner}} {
		for range workspaceCount(k.rate, n) {
			if next >= n {
				return
			}
			w.ws[order[next]].kind = k.kind
			next++
		}
	}
}

func (w *world) weight(i int) float64 {
	if i == 0 {
		return w.cum[0]
	}
	return w.cum[i] - w.cum[i-1]
}

// pick draws a workspace by volume and returns its index.
func (w *world) pick(u float64) int {
	i, _ := slices.BinarySearch(w.cum, u)
	return min(i, len(w.ws)-1)
}

func shuffle(r *rng, s []int) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

// partitionOf maps a workspace id (the message key) to a partition, as a
// keyed producer does.
func partitionOf(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// mask48 keeps the 48 bits an id's 12 hex digits show.
const mask48 = 1<<48 - 1

// mix is a bijection of the 48-bit integers that looks random: distinct
// inputs below 2^48 give distinct ids.
func mix(x uint64) uint64 {
	x &= mask48
	x = x * 0x9e3779b97f4b & mask48
	x ^= x >> 23
	x = x * 0x5deece66d1 & mask48
	x ^= x >> 21
	x = x * 0xc2b2ae3d27d5 & mask48
	x ^= x >> 25
	return x
}

// hexID returns a 10-hex-digit id (40 bits: no collision to speak of
// among the millions of entities of the largest configs).
func hexID(v uint64) string { return string(appendHex(nil, v, 10)) }

func itoa(v int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
