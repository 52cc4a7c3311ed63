package gen

import (
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/mya/deid/pipeline"
)

// Writer receives the generated lines: a file writer (WriteFiles), or a
// producer to Kafka topics. Lines come without a trailing newline; key is
// the workspace id (the message key). key and line are valid only during
// the call: copy them to keep them. Generate calls the Writer from one
// goroutine at a time. An error stops Generate.
type Writer interface {
	// Event receives one event line of a partition, in partition order.
	Event(partition int, key, line []byte) error
	// Setting receives one settings line, in time order. Every settings line
	// comes before the first event line.
	Setting(key, line []byte) error
}

// Generate writes cfg's settings lines, then its event lines, to out, and
// describes them. The same cfg yields the same lines, byte for byte, with
// the same Go version on the same architecture, however many CPUs render
// them.
//
// Generation has two stages. A planner, in one goroutine, decides each
// line's kind, workspace and event time, and keeps the model of each
// partition that late events and duplicates need (its newest event time,
// its recent lines). Renderers, on every CPU, then write each line from its
// plan with a random stream seeded by the line's number, so a line's bytes
// depend on nothing else; a duplicate is its original's plan rendered again.
func Generate(cfg Config, out Writer) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	w := buildWorld(&cfg)
	st := &Stats{ByType: map[string]int64{}, Malformed: map[string]int64{}}
	if err := writeSettings(&cfg, w, st, out); err != nil {
		return Stats{}, err
	}
	pl := newPlanner(&cfg, w)
	agg := newAggregate(cfg.Partitions)
	if err := run(&cfg, w, pl, agg, out); err != nil {
		return Stats{}, err
	}
	agg.finish(st, pl)
	return *st, nil
}

// The contract §5 defaults that decide which lines are late and which window a
// duplicate falls in, in milliseconds.
const (
	windowMs     = 24 * 3600 * 1000
	outOfOrderMs = 10 * 60 * 1000
	latenessMs   = 60 * 60 * 1000
	// disorderMs is the most an ordinary event trails the newest one of its
	// partition: well inside the out-of-orderness, so never late.
	disorderMs = 5 * 60 * 1000
	noTime     = math.MinInt64
)

// ringSize is how many recent lines of a partition a duplicate may repeat.
const ringSize = 8

// Line categories.
const (
	catCampaign = iota
	catUsage
	catMessage
	catUnsupported
	catMalformed
	catDuplicate
	catLate
	catFarFuture
	numCats
)

// plan is everything about a line the renderer does not draw itself.
type plan struct {
	// seed is the number of the line whose random stream renders this one:
	// its own, or its original's for a duplicate.
	seed  int64
	occ   int64 // event time, ms
	ws    int32
	cat   uint8
	typ   uint8 // index into typeNames (message and unsupported types)
	style uint8
	dup   bool
}

// partPlan is the planner's model of one partition as deid sees it.
type partPlan struct {
	// maxSeen is the newest well-formed event time: the watermark's base.
	maxSeen  int64
	ring     [ringSize]plan
	ringLen  int
	ringNext int
	// lateDebt and dupDebt count late and duplicate lines drawn before the
	// partition could hold one; they are made up later.
	lateDebt, dupDebt int
}

type planner struct {
	cfg   *Config
	w     *world
	r     *rng
	parts []partPlan
	// cum holds the cumulative line rates of the categories.
	cum             [numCats]float64
	usageOdds       float64 // the usage share of ordinary events
	startMs, spanMs int64
	firstMs, lastMs int64
}

func newPlanner(cfg *Config, w *world) *planner {
	pl := &planner{cfg: cfg, w: w, r: newRNG(cfg.Seed, 2), parts: make([]partPlan, cfg.Partitions)}
	for i := range pl.parts {
		pl.parts[i].maxSeen = noTime
	}
	rt := cfg.Rates
	shares := [numCats]float64{
		catUsage: rt.Usage, catMessage: rt.Message, catUnsupported: rt.Unsupported, catMalformed: rt.Malformed,
		catDuplicate: rt.Duplicate, catLate: rt.Late, catFarFuture: rt.FarFuture,
	}
	sum := 0.0
	for _, s := range shares {
		sum += s
	}
	shares[catCampaign] = max(0, 1-sum)
	acc := 0.0
	for c := range numCats {
		acc += shares[c]
		pl.cum[c] = acc
	}
	pl.cum[numCats-1] = math.Inf(1)
	if o := shares[catCampaign] + shares[catUsage]; o > 0 {
		pl.usageOdds = shares[catUsage] / o
	}
	pl.startMs = cfg.Start.UnixMilli()
	pl.spanMs = int64(cfg.Days) * 86400 * 1000
	pl.firstMs, pl.lastMs = math.MaxInt64, math.MinInt64
	return pl
}

// next plans line i. Event time advances evenly over the days; a line goes
// to its workspace's partition and trails the newest event there by at
// most disorderMs, except for the hazards.
func (pl *planner) next(i int) plan {
	r := pl.r
	base := pl.startMs + int64(float64(i)/float64(pl.cfg.Events)*float64(pl.spanMs))
	u := r.float()
	cat := 0
	for u >= pl.cum[cat] {
		cat++
	}
	wsi := pl.w.pick(r.float())
	ws := pl.w.ws[wsi]
	p := &pl.parts[ws.partition]
	dup := -1
	switch cat {
	case catLate:
		if !pl.canLate(p) {
			p.lateDebt++
			cat = pl.ordinary()
		}
	case catDuplicate:
		if dup = pl.dupCandidate(p); dup < 0 {
			p.dupDebt++
			cat = pl.ordinary()
		}
	}
	if cat == catCampaign || cat == catUsage {
		switch {
		case p.lateDebt > 0 && pl.canLate(p):
			p.lateDebt--
			cat = catLate
		case p.dupDebt > 0:
			if dup = pl.dupCandidate(p); dup >= 0 {
				p.dupDebt--
				cat = catDuplicate
			}
		}
	}
	if cat == catDuplicate {
		d := p.ring[dup]
		d.dup = true
		return d
	}
	l := plan{seed: int64(i), ws: int32(wsi), cat: uint8(cat)}
	switch cat {
	case catMalformed:
		l.occ, l.style = pl.eventTime(base)
		return l
	case catFarFuture:
		const year = 365 * 86400 * 1000
		l.occ, l.style = pl.style(base + r.between(2*year, 20*year))
		l.typ = uint8(pl.ordinary())
		return l
	case catLate:
		b := bound(p.maxSeen)
		l.occ, l.style = pl.style(b - r.between(60*1000, min(23*3600*1000, b-pl.startMs)))
		l.typ = uint8(pl.ordinary())
		return l
	case catMessage:
		l.typ = uint8(typeMessage0 + messageTypes.pick(r.float()))
	case catUnsupported:
		l.typ = uint8(typeUnsupported0 + unsupportedTypes.pick(r.float()))
	default:
		l.typ = uint8(cat) // typeCampaign, typeUsage
	}
	// A well-formed line in order: it moves the watermark and a duplicate
	// may repeat it.
	l.occ, l.style = pl.eventTime(base)
	p.maxSeen = max(p.maxSeen, l.occ)
	pl.firstMs, pl.lastMs = min(pl.firstMs, l.occ), max(pl.lastMs, l.occ)
	p.ring[p.ringNext] = l
	p.ringNext = (p.ringNext + 1) % ringSize
	p.ringLen = min(p.ringLen+1, ringSize)
	return l
}

// ordinary draws an ordinary category: usage or campaign.
func (pl *planner) ordinary() int {
	if pl.r.chance(pl.usageOdds) {
		return catUsage
	}
	return catCampaign
}

// bound is the end at or before which every window of a partition is
// closed, as deid computes it (contract §5), or noTime.
func bound(maxSeen int64) int64 {
	if maxSeen == noTime {
		return noTime
	}
	wm := maxSeen - outOfOrderMs - latenessMs
	return wm - mod(wm, windowMs)
}

func windowEnd(t int64) int64 { return t - mod(t, windowMs) + windowMs }

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// canLate tells whether the partition has closed a window since the start,
// so that a late event can be dated in it.
func (pl *planner) canLate(p *partPlan) bool {
	b := bound(p.maxSeen)
	return b != noTime && b-pl.startMs >= 2*60*1000
}

// dupCandidate returns the ring index of a recent line of p whose window is
// still open, or -1.
func (pl *planner) dupCandidate(p *partPlan) int {
	if p.ringLen == 0 {
		return -1
	}
	i := pl.r.intn(p.ringLen)
	if windowEnd(p.ring[i].occ) <= bound(p.maxSeen) {
		return -1
	}
	return i
}

// eventTime draws an ordinary event time trailing base by up to disorderMs,
// and its written style.
func (pl *planner) eventTime(base int64) (int64, uint8) {
	return pl.style(max(pl.startMs, base-pl.r.between(0, disorderMs)))
}

// style draws how a time is written and rounds it to what the style shows.
func (pl *planner) style(occ int64) (int64, uint8) {
	switch u := pl.r.float(); {
	case u < 0.15:
		return occ, tsMillis
	case u < 0.18:
		return occ - mod(occ, 1000), tsOffset
	}
	return occ - mod(occ, 1000), tsSeconds
}

// chunkLines is how many lines a renderer renders at a time.
const chunkLines = 4096

// chunk is a run of lines on their way from the planner through a renderer
// to the writer.
type chunk struct {
	plans []plan
	// buf holds the rendered lines back to back; ends[i] ends line i.
	buf      []byte
	ends     []int
	outcomes []uint8
	types    []uint8
	c        counts
	done     chan struct{}
}

// run plans, renders and writes the event lines: the planner in one
// goroutine, in line order; renderers in parallel, one per CPU; the writer
// in the calling goroutine, chunk after chunk in line order. At most
// 2×workers chunks exist, so memory stays bounded.
func run(cfg *Config, w *world, pl *planner, agg *aggregate, out Writer) error {
	n := cfg.Events
	nchunks := (n + chunkLines - 1) / chunkLines
	workers := max(1, min(runtime.GOMAXPROCS(0), nchunks))
	inflight := 2 * workers

	free := make(chan *chunk, inflight)
	for range inflight {
		free <- &chunk{done: make(chan struct{}, 1)}
	}
	jobs := make(chan *chunk, inflight)
	order := make(chan *chunk, inflight)
	quit := make(chan struct{})

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := newRenderer(cfg, w)
			for c := range jobs {
				select {
				case <-quit: // the writer failed: nothing more is written
				default:
					rd.renderChunk(c)
				}
				c.done <- struct{}{}
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for start := 0; start < n; start += chunkLines {
			var c *chunk
			select {
			case <-quit:
				return
			default:
			}
			select {
			case c = <-free:
			case <-quit:
				return
			}
			c.plans = c.plans[:0]
			for i := start; i < min(n, start+chunkLines); i++ {
				c.plans = append(c.plans, pl.next(i))
			}
			jobs <- c
			order <- c
		}
	}()

	var err error
	for c := range order {
		<-c.done
		if err == nil {
			err = agg.write(c, w, out)
			if err != nil {
				close(quit)
			}
		}
		free <- c
	}
	wg.Wait()
	return err
}

// aggregate gathers what was written, per partition.
type aggregate struct {
	lines, bytes []int64
	outcomes     [][numOutcomes]int64
	c            counts
}

func newAggregate(parts int) *aggregate {
	return &aggregate{lines: make([]int64, parts), bytes: make([]int64, parts), outcomes: make([][numOutcomes]int64, parts)}
}

// write hands a rendered chunk's lines to out and counts them.
func (a *aggregate) write(c *chunk, w *world, out Writer) error {
	start := 0
	for i, end := range c.ends {
		ws := w.ws[c.plans[i].ws]
		p := ws.partition
		line := c.buf[start:end]
		start = end
		a.lines[p]++
		a.bytes[p] += int64(len(line))
		a.outcomes[p][c.outcomes[i]]++
		a.c.types[c.types[i]]++
		if err := out.Event(p, ws.key, line); err != nil {
			return err
		}
	}
	a.c.add(&c.c)
	return nil
}

// finish turns the counters into Stats.
func (a *aggregate) finish(s *Stats, pl *planner) {
	s.Expected = newExpected()
	s.Partitions = make([]PartitionStats, len(a.lines))
	for p := range a.lines {
		e := newExpected()
		for o, n := range a.outcomes[p] {
			if n == 0 {
				continue
			}
			switch {
			case o < outExcluded:
				e.Contributed[[]string{DatasetCampaignMetrics, DatasetUsagePatterns}[o]] += n
			case o < outDead:
				e.Excluded[pipeline.Reason(o-outExcluded).String()] += n
			default:
				e.DeadLetters[codeNames[o-outDead]] += n
			}
		}
		s.Partitions[p] = PartitionStats{Lines: a.lines[p], Bytes: a.bytes[p], Expected: e}
		s.Expected.add(e)
		s.Events += a.lines[p]
		s.Bytes += a.bytes[p]
	}
	for t, n := range a.c.types {
		if n > 0 {
			s.ByType[typeNames[t]] = n
		}
	}
	for code, n := range a.c.malformed {
		if n > 0 {
			s.Malformed[codeNames[code]] = n
		}
	}
	s.Hazards = map[Hazard]int64{}
	for h, n := range a.c.hz {
		s.Hazards[hazardNames[h]] = n
	}
	if pl.firstMs <= pl.lastMs {
		s.FirstEvent, s.LastEvent = time.UnixMilli(pl.firstMs).UTC(), time.UnixMilli(pl.lastMs).UTC()
	}
}
