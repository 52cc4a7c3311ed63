package gen

import (
	"github.com/mya/deid/pipeline"
)

// Event types, as indexes into typeNames: campaign, usage, the message
// types, then the unsupported ones.
const (
	typeCampaign     = catCampaign
	typeUsage        = catUsage
	typeMessage0     = 2
	typeUnsupported0 = typeMessage0 + 6
)

var typeNames = func() []string {
	names := []string{"campaign.metrics", "usage.interaction"}
	names = append(names, messageTypes.vals...)
	return append(names, unsupportedTypes.vals...)
}()

// Malformed codes in the order of their outcome indexes.
var codeNames = []string{codeInvalidJSON, codeMissing, codeWrongType, codeNegative, codeImplausible, codeBadTimestamp, codeFuture}

const codeFuture = "future_timestamp"

func codeIndex(code string) int {
	for i, c := range codeNames {
		if c == code {
			return i
		}
	}
	panic("gen: unknown malformed code " + code) // a bug in this package
}

// Outcomes: what deid must make of a line, as one small integer.
const (
	outCampaign = 0 // contributed to campaign_metrics
	outUsage    = 1 // contributed to usage_patterns
	outExcluded = 2 // + pipeline.Reason
	outDead     = outExcluded + 16
	numOutcomes = outDead + 7 // + index into codeNames
)

// counts are what renderers count besides per-line outcomes.
type counts struct {
	hz        [numHazards]int64
	types     [16]int64
	malformed [7]int64
}

func (c *counts) add(o *counts) {
	for i := range c.hz {
		c.hz[i] += o.hz[i]
	}
	for i := range c.types {
		c.types[i] += o.types[i]
	}
	for i := range c.malformed {
		c.malformed[i] += o.malformed[i]
	}
}

// renderer renders lines from their plans. Each goroutine owns one.
type renderer struct {
	cfg *Config
	w   *world
	r   *rng
	// c is where the line being rendered is counted; scratch when it is
	// rendered again as a duplicate.
	c, own  *counts
	scratch counts

	buf, text []byte
	campaign  campaignEv
	usage     usageEv
	msgWS     *workspace
	msgSender string
	// minorReason is the age gate's verdict on each minor category.
	minorReason [3]pipeline.Reason
}

func newRenderer(cfg *Config, w *world) *renderer {
	return &renderer{cfg: cfg, w: w, r: &rng{},
		minorReason: [3]pipeline.Reason{pipeline.ReasonMinorUnder13, pipeline.ReasonNone, pipeline.ReasonMinorWithoutGuardianConsent}}
}

// renderChunk renders every line of c.
func (g *renderer) renderChunk(c *chunk) {
	c.buf, c.ends, c.outcomes, c.types = c.buf[:0], c.ends[:0], c.outcomes[:0], c.types[:0]
	c.c = counts{}
	g.own = &c.c
	for i := range c.plans {
		line, typ, out := g.render(&c.plans[i])
		c.buf = append(c.buf, line...)
		c.ends = append(c.ends, len(c.buf))
		c.outcomes = append(c.outcomes, uint8(out))
		c.types = append(c.types, uint8(typ))
	}
}

// render renders one line and returns it with its event type (index) and
// its expected outcome.
func (g *renderer) render(l *plan) ([]byte, int, int) {
	g.r.p.Seed(splitmix(uint64(g.cfg.Seed)^0x6a09e667f3bcc908), splitmix(uint64(l.seed)+uint64(g.cfg.Seed)<<32))
	ws := g.w.ws[l.ws]
	occ, style := l.occ, int(l.style)
	g.c = g.own
	if l.dup {
		// The original's bytes again; only the duplicate is counted.
		g.c = &g.scratch
		g.own.hz[hzDuplicate]++
	} else if style != tsSeconds {
		g.c.hz[hzTimestampVariant]++
	}
	var line []byte
	typ, out := int(l.typ), 0
	switch l.cat {
	case catMalformed:
		m := g.mutation()
		ci := codeIndex(m.code)
		g.c.hz[hzMalformed]++
		g.c.malformed[ci]++
		out = outDead + ci
		if m.usage {
			g.buildUsage(ws)
			line, typ = g.renderUsage(occ, style, m), typeUsage
		} else {
			g.buildCampaign(ws)
			line, typ = g.renderCampaign(occ, style, m), typeCampaign
		}
	case catFarFuture, catLate:
		if l.cat == catLate {
			g.c.hz[hzLate]++
			out = outExcluded + int(pipeline.ReasonLateEvent)
		} else {
			ci := codeIndex(codeFuture)
			g.c.hz[hzFarFuture]++
			g.c.malformed[ci]++
			out = outDead + ci
		}
		if typ == typeUsage {
			g.buildUsage(ws)
			line = g.renderUsage(occ, style, mutation{})
		} else {
			g.buildCampaign(ws)
			line = g.renderCampaign(occ, style, mutation{})
		}
	case catCampaign:
		g.buildCampaign(ws)
		line = g.renderCampaign(occ, style, mutation{})
		reason := wsReason(ws)
		if reason == pipeline.ReasonNone && g.campaign.minor >= 0 {
			reason = g.minorReason[g.campaign.minor]
		}
		if out = outCampaign; reason != pipeline.ReasonNone {
			out = outExcluded + int(reason)
		}
	case catUsage:
		g.buildUsage(ws)
		line = g.renderUsage(occ, style, mutation{})
		if out = outUsage; wsReason(ws) != pipeline.ReasonNone {
			out = outExcluded + int(wsReason(ws))
		}
	case catMessage:
		g.c.hz[hzMessage]++
		line = g.renderMessage(ws, typeNames[typ], occ, style)
		out = outExcluded + int(pipeline.ReasonMessageContent)
	case catUnsupported:
		g.c.hz[hzUnsupported]++
		line = g.renderUnsupported(ws, typeNames[typ], occ, style)
		out = outExcluded + int(pipeline.ReasonUnsupportedEventType)
	}
	if l.dup {
		out = outExcluded + int(pipeline.ReasonDuplicate)
	}
	return line, typ, out
}

// wsReason is the consent gate's verdict on a workspace's events.
func wsReason(ws *workspace) pipeline.Reason {
	switch ws.kind {
	case wsOptedOut, wsReOptInEditor:
		return pipeline.ReasonOptedOut
	case wsDeleted:
		return pipeline.ReasonWorkspaceDeleted
	case wsUnknown:
		return pipeline.ReasonConsentUnknown
	case wsUnreadable:
		return pipeline.ReasonConsentUnreadable
	}
	return pipeline.ReasonNone
}

// splitmix is splitmix64's step: it spreads nearby seeds far apart.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
