package gen

import (
	"bytes"
	"math"
	"strconv"
)

// Event lines are built field by field with strconv.Append*: every field is
// written with a trailing comma, and the last comma of an object becomes
// its closing brace.

var canaryMarker = []byte(CanaryMarker)

// Fields a malformed line can break (0 is none).
const (
	fNone = iota
	fEventID
	fEventType
	fOccurredAt
	fWorkspaceID
	fUserID
	fPayload
	fCampaignID
	fCreatorID
	fFollowers
	fImpressions
	fClicks
	fLikes
	fSpend
	fViews
	fTeamSize
	fDuration
)

// Malformed codes (pipeline.MalformedError codes of contract §3.1).
const (
	codeInvalidJSON  = "invalid_json"
	codeMissing      = "missing_field"
	codeWrongType    = "wrong_type"
	codeNegative     = "negative_counter"
	codeImplausible  = "implausible_counter"
	codeBadTimestamp = "invalid_timestamp"
)

// mutation says how a malformed line is broken.
type mutation struct {
	code    string
	field   int
	variant int
	usage   bool
}

func (m *mutation) hits(f int) bool { return f != fNone && m.field == f && m.code != "" }

var badTimestamps = []string{"2026-13-45T25:61:00Z", "yesterday", "2026-11-02 10:00:00", "", "2026-11-02T10:00:00", "1730419200", "02/11/2026 10:00"}

// mutation draws how to break the next malformed line.
func (g *renderer) mutation() mutation {
	r := g.r
	codes := [...]string{codeInvalidJSON, codeMissing, codeWrongType, codeNegative, codeImplausible, codeBadTimestamp}
	m := mutation{code: codes[r.intn(len(codes))], usage: r.chance(0.2)}
	switch m.code {
	case codeInvalidJSON:
	case codeMissing:
		if m.usage {
			m.field = pick(r, []int{fEventID, fEventType, fOccurredAt, fWorkspaceID, fPayload, fTeamSize, fUserID})
		} else {
			m.field = pick(r, []int{fEventID, fEventType, fOccurredAt, fWorkspaceID, fPayload, fCampaignID, fCreatorID, fFollowers})
		}
	case codeWrongType:
		if m.usage {
			m.field = pick(r, []int{fEventID, fWorkspaceID, fPayload, fTeamSize, fDuration})
		} else {
			m.field = pick(r, []int{fEventID, fWorkspaceID, fPayload, fImpressions, fFollowers})
		}
	case codeNegative:
		if m.usage {
			m.field = fDuration
		} else {
			m.field = pick(r, []int{fClicks, fImpressions, fLikes, fSpend})
		}
	case codeImplausible:
		m.usage = false
		m.field = pick(r, []int{fImpressions, fSpend, fViews})
	case codeBadTimestamp:
		m.field = fOccurredAt
		m.variant = r.intn(len(badTimestamps))
	}
	return m
}

// strField appends key (a quoted key and colon) and "v", — or breaks the
// field.
func strField(b []byte, key, v string, f int, m *mutation) []byte {
	if m.hits(f) {
		switch m.code {
		case codeMissing:
			return b
		case codeWrongType:
			b = append(b, key...)
			b = strconv.AppendUint(b, uint64(len(v))*7919+12345, 10)
			return append(b, ',')
		}
	}
	b = append(b, key...)
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"', ',')
}

// intField appends key (a quoted key and colon) and v, — or breaks the
// field.
func intField(b []byte, key string, v int64, f int, m *mutation) []byte {
	if m.hits(f) {
		switch m.code {
		case codeMissing:
			return b
		case codeWrongType:
			b = append(b, key...)
			if f == fDuration {
				b = strconv.AppendInt(b, v, 10)
				return append(b, ".5,"...)
			}
			b = append(b, '"')
			b = strconv.AppendInt(b, v, 10)
			return append(b, '"', ',')
		case codeNegative:
			v = -(v%5000 + 1)
		case codeImplausible:
			v = 1_000_000_000_000 + 1 + v*1000
		}
	}
	b = append(b, key...)
	b = strconv.AppendInt(b, v, 10)
	return append(b, ',')
}

// counter appends an optional counter: like intField, except that a zero
// is mostly left out, as producers that omit zeros do (an absent counter
// counts as 0); some still write it.
func (g *renderer) counter(b []byte, key string, v int64, f int, m *mutation) []byte {
	if v == 0 && !m.hits(f) && g.r.chance(0.85) {
		return b
	}
	return intField(b, key, v, f, m)
}

// close turns an object's trailing comma into its closing brace.
func closeObj(b []byte) []byte {
	if b[len(b)-1] == ',' {
		b[len(b)-1] = '}'
		return b
	}
	return append(b, '}')
}

// envelope appends the envelope fields other than the payload.
func (g *renderer) envelope(b []byte, typ string, occ int64, style int, ws *workspace, userID string, m *mutation, layoutB bool) []byte {
	if layoutB {
		b = strField(b, `"event_type":`, typ, fEventType, m)
		b = g.eventID(b, m)
		b = strField(b, `"workspace_id":`, ws.id, fWorkspaceID, m)
		if userID != "" {
			b = strField(b, `"user_id":`, userID, fUserID, m)
		}
		b = g.occurredAt(b, occ, style, m)
		b = append(b, `"received_at":`...)
		b = appendTime(b, occ+g.r.between(200, 9000), tsMillis)
		return append(b, `,"schema":3,"source":"webhook",`...)
	}
	b = g.eventID(b, m)
	b = strField(b, `"event_type":`, typ, fEventType, m)
	b = g.occurredAt(b, occ, style, m)
	b = strField(b, `"workspace_id":`, ws.id, fWorkspaceID, m)
	if userID != "" {
		b = strField(b, `"user_id":`, userID, fUserID, m)
	}
	return append(b, `"schema":3,`...)
}

func (g *renderer) eventID(b []byte, m *mutation) []byte {
	if m.hits(fEventID) {
		if m.code == codeMissing {
			return b
		}
		b = appendKey(b, "event_id")
		b = strconv.AppendUint(b, g.r.u64()>>12, 10)
		return append(b, ',')
	}
	b = append(b, `"event_id":"`...)
	if g.r.chance(0.7) {
		b = appendULID(b, g.r)
	} else {
		b = appendUUID(b, g.r)
	}
	return append(b, '"', ',')
}

func (g *renderer) occurredAt(b []byte, occ int64, style int, m *mutation) []byte {
	if m.hits(fOccurredAt) {
		if m.code == codeMissing {
			return b
		}
		b = appendKey(b, "occurred_at")
		b = appendRaw(b, badTimestamps[m.variant])
		return append(b, ',')
	}
	b = append(b, `"occurred_at":`...)
	b = appendTime(b, occ, style)
	return append(b, ',')
}

// Payload kinds.
const (
	plCampaign = iota
	plUsage
	plMessage
	plUnsupported
)

// payloadField appends "payload":{...}, built in place — or breaks it.
func (g *renderer) payloadField(b []byte, m *mutation, kind int, typ string) []byte {
	if m.hits(fPayload) {
		if m.code == codeMissing {
			return b
		}
		return append(b, `"payload":"see attachment",`...)
	}
	b = append(b, `"payload":{`...)
	switch kind {
	case plCampaign:
		b = g.campaignPayload(b, m)
	case plUsage:
		b = g.usagePayload(b, m)
	case plMessage:
		b = g.messagePayload(b, typ)
	default:
		b = g.unsupportedPayload(b, typ)
	}
	b = closeObj(b)
	return append(b, ',')
}

// finishLine closes the line, and cuts it short for an invalid_json mutation.
func (g *renderer) finishLine(b []byte, m *mutation) []byte {
	b = closeObj(b)
	if m.code == codeInvalidJSON {
		cut := 1 + g.r.intn(len(b)-2)
		// A canary cut off is not in the output: do not count it.
		g.c.hz[hzCanary] -= int64(bytes.Count(b, canaryMarker) - bytes.Count(b[:cut], canaryMarker))
		b = b[:cut]
	}
	g.buf = b
	return b
}

// --- campaign.metrics ---

type campaignEv struct {
	ws     *workspace
	camp   *campaign
	cr     *creator
	minor  int // the minor category of ws.minors, or -1
	userID string

	platform, contentType, industry, country string
	video                                    bool
	followers                                int64

	imp, reach, clicks, likes, comments, shares, saves, views, conv, spend, rev int64

	pii     bool
	layoutB bool
}

// contentByPlatform holds contentTypes in the order of platforms.vals, and
// which of each platform's content types are video.
var contentByPlatform, videoByPlatform = func() ([]table, [][]bool) {
	ts := make([]table, len(platforms.vals))
	vs := make([][]bool, len(platforms.vals))
	for i, p := range platforms.vals {
		ts[i] = contentTypes[p]
		for _, ct := range ts[i].vals {
			vs[i] = append(vs[i], videoContent[ct])
		}
	}
	return ts, vs
}()

// buildCampaign draws a campaign.metrics event of ws into g.campaign.
func (g *renderer) buildCampaign(ws *workspace) {
	r, rt := g.r, &g.cfg.Rates
	e := &g.campaign
	e.ws = ws
	e.camp = &ws.campaigns[r.intn(len(ws.campaigns))]
	e.minor = -1
	if r.chance(rt.Minor) {
		e.minor = r.intn(3)
		e.cr = ws.minors[e.minor]
		g.c.hz[hzMinorUnder13+e.minor]++
	} else {
		// A workspace works most with its first few creators.
		e.cr = ws.creators[int(float64(len(ws.creators))*r.float()*r.float())]
	}
	plat := e.camp.platform
	if r.chance(0.3) {
		plat = e.cr.platform
	}
	e.platform = platforms.vals[plat]
	ct := &contentByPlatform[plat]
	ci := ct.pick(r.float())
	e.contentType, e.video = ct.vals[ci], videoByPlatform[plat][ci]
	e.industry = industries.vals[e.camp.industry]
	if e.camp.stray != "" {
		e.industry = e.camp.stray
	}
	switch u := r.float(); {
	case u < 0.7:
		e.country = countries.vals[e.cr.country]
	case u < 0.9:
		e.country = countries.vals[ws.country]
	default:
		e.country = countries.vals[countries.pick(r.float())]
	}
	if r.chance(rt.Odd) {
		g.c.hz[hzOddDimension]++
		switch r.intn(4) {
		case 0:
			e.platform = pick(r, oddPlatforms)
		case 1:
			e.contentType = pick(r, oddContentTypes)
		case 2:
			e.industry = pick(r, oddIndustries)
		default:
			e.country = pick(r, oddCountries)
		}
	}
	e.followers = e.cr.followers
	f := float64(e.followers)
	imp := f * r.lognormal(math.Log(0.12), 0.9)
	e.imp = int64(imp)
	e.reach = int64(imp * r.uniform(0.55, 0.95))
	e.clicks = int64(imp * r.uniform(0.005, 0.03))
	likes := imp * r.uniform(0.01, 0.08)
	e.likes = int64(likes)
	e.comments = int64(likes * r.uniform(0.01, 0.1))
	e.shares = int64(likes * r.uniform(0.02, 0.15))
	e.saves = int64(likes * r.uniform(0.02, 0.2))
	e.views = 0
	if e.video {
		e.views = int64(imp * r.uniform(0.3, 0.9))
	}
	e.conv = int64(float64(e.clicks) * r.uniform(0.01, 0.08))
	e.spend = int64(imp * e.camp.cpm * r.uniform(0.8, 1.2) / 1000)
	e.rev = int64(float64(e.conv) * e.camp.aov * r.uniform(0.7, 1.3))
	e.userID = "" // mostly a poller's, not a person's
	if r.chance(0.2) {
		e.userID = ws.users[r.intn(len(ws.users))]
	}
	e.pii = r.chance(rt.PII)
	if e.pii {
		g.c.hz[hzPII]++
	}
	e.layoutB = r.chance(0.1)
}

func (g *renderer) renderCampaign(occ int64, style int, m mutation) []byte {
	e := &g.campaign
	r := g.r
	b := append(g.buf[:0], '{')
	if e.layoutB {
		g.c.hz[hzPayloadFirst]++
		b = g.payloadField(b, &m, plCampaign, "")
		b = g.envelope(b, "campaign.metrics", occ, style, e.ws, e.userID, &m, true)
		return g.finishLine(b, &m)
	}
	b = g.envelope(b, "campaign.metrics", occ, style, e.ws, e.userID, &m, false)
	if r.chance(0.3) {
		b = append(b, `"source":"metrics-poller",`...)
	}
	b = g.payloadField(b, &m, plCampaign, "")
	// Envelope extras deid drops: a nested object and an array now and
	// then, as some producers add them.
	if r.chance(0.2) {
		b = append(b, `"client":{"app":"metrics-poller","version":"`...)
		b = append(b, pick(r, appVersions)...)
		b = append(b, `"},`...)
	}
	if r.chance(0.2) {
		b = append(b, `"tags":`...)
		b = append(b, e.camp.tags...)
		b = append(b, ',')
	}
	return g.finishLine(b, &m)
}

// campaignPayload appends the payload's fields, each with a trailing comma.
func (g *renderer) campaignPayload(p []byte, m *mutation) []byte {
	e := &g.campaign
	r := g.r
	p = strField(p, `"campaign_id":`, e.camp.id, fCampaignID, m)
	p = strField(p, `"creator_id":`, e.cr.id, fCreatorID, m)
	p = append(p, `"platform":"`...)
	p = append(p, e.platform...)
	p = append(p, `","content_type":"`...)
	p = append(p, e.contentType...)
	p = append(p, `","industry":"`...)
	p = append(p, e.industry...)
	p = append(p, `","audience_country":"`...)
	p = append(p, e.country...)
	p = append(p, `",`...)
	p = intField(p, `"follower_count":`, e.followers, fFollowers, m)
	if e.cr.age > 0 {
		p = append(p, `"creator_age":`...)
		p = strconv.AppendInt(p, int64(e.cr.age), 10)
		p = append(p, ',')
	}
	if e.cr.guardian >= 0 {
		p = append(p, `"guardian_consent":`...)
		p = appendBool(p, e.cr.guardian == 1)
		p = append(p, ',')
	}
	p = intField(p, `"impressions":`, e.imp, fImpressions, m)
	p = g.counter(p, `"reach":`, e.reach, fNone, m)
	p = g.counter(p, `"clicks":`, e.clicks, fClicks, m)
	p = g.counter(p, `"likes":`, e.likes, fLikes, m)
	p = g.counter(p, `"comments":`, e.comments, fNone, m)
	p = g.counter(p, `"shares":`, e.shares, fNone, m)
	if e.platform != "x" && e.platform != "linkedin" {
		p = g.counter(p, `"saves":`, e.saves, fNone, m)
	}
	if e.video || m.hits(fViews) {
		p = g.counter(p, `"video_views":`, e.views, fViews, m)
	}
	p = g.counter(p, `"conversions":`, e.conv, fNone, m)
	p = g.counter(p, `"spend_cents":`, e.spend, fSpend, m)
	p = g.counter(p, `"revenue_cents":`, e.rev, fNone, m)
	if r.chance(0.15) {
		p = append(p, `"currency":"USD","post_id":"`...)
		p = appendHex(p, r.u64(), 12)
		p = append(p, `",`...)
	}
	if e.pii {
		p = g.appendPII(p)
	}
	return p
}

// appendPII appends the personal data fields a campaign payload should
// never carry into a dataset: a caption and the creator's handle always,
// the others by chance.
func (g *renderer) appendPII(p []byte) []byte {
	r, e := g.r, &g.campaign
	p = append(p, `"caption":`...)
	g.text = g.caption(g.text[:0])
	p = appendString(p, g.text, false)
	p = append(p, `,"creator_handle":`...)
	p = appendString(p, e.cr.handle, false)
	p = append(p, ',')
	if r.chance(0.5) {
		p = append(p, `"creator_name":`...)
		p = appendString(p, e.cr.name, false)
		p = append(p, ',')
	}
	if r.chance(0.4) {
		p = append(p, `"comment_text":`...)
		g.text = append(g.text[:0], pick(r, commentTexts)...)
		g.text = g.maybeCanary(g.text)
		p = appendString(p, g.text, false)
		p = append(p, ',')
	}
	if r.chance(0.4) {
		p = append(p, `"email":"`...)
		p = g.appendEmail(p)
		p = append(p, `",`...)
	}
	if r.chance(0.3) {
		p = append(p, `"phone":"`...)
		p = g.appendPhone(p)
		p = append(p, `",`...)
	}
	if r.chance(0.4) {
		p = append(p, `"ip_address":"`...)
		p = g.appendIP(p)
		p = append(p, `",`...)
	}
	if r.chance(0.4) {
		p = append(p, `"user_agent":`...)
		p = appendString(p, pick(r, userAgents), false)
		p = append(p, ',')
	}
	return p
}

// caption appends a post caption: a phrase, an emoji, hashtags, and now and
// then a canary.
func (g *renderer) caption(t []byte) []byte {
	r := g.r
	t = append(t, pick(r, captionParts)...)
	t = append(t, ' ')
	t = append(t, pick(r, emoji)...)
	for range 1 + r.intn(3) {
		t = append(t, ' ')
		t = append(t, pick(r, hashtags)...)
	}
	return g.maybeCanary(t)
}

// maybeCanary appends a canary string to free text at the configured rate.
func (g *renderer) maybeCanary(t []byte) []byte {
	if !g.r.chance(g.cfg.Rates.Canary) {
		return t
	}
	g.c.hz[hzCanary]++
	t = append(t, " ref "...)
	t = append(t, CanaryMarker...)
	return appendHex(t, g.r.u64(), 16)
}

func (g *renderer) appendEmail(b []byte) []byte {
	r := g.r
	b = appendLowerASCII(b, pick(r, firstNames))
	b = append(b, '.')
	b = appendLowerASCII(b, pick(r, lastNames))
	b = append(b, '@')
	return append(b, pick(r, emailDomains)...)
}

// appendPhone appends a fictional number (555-01xx is reserved for fiction).
func (g *renderer) appendPhone(b []byte) []byte {
	b = append(b, "+1-555-01"...)
	return append2(b, g.r.intn(100))
}

// appendIP appends an address from the documentation ranges (RFC 5737, 3849).
func (g *renderer) appendIP(b []byte) []byte {
	r := g.r
	switch r.intn(4) {
	case 0:
		b = append(b, "192.0.2."...)
	case 1:
		b = append(b, "198.51.100."...)
	case 2:
		b = append(b, "203.0.113."...)
	default:
		b = append(b, "2001:db8::"...)
		return appendHex(b, r.u64(), 4)
	}
	return strconv.AppendInt(b, int64(1+r.intn(254)), 10)
}

// appendLowerASCII appends s with ASCII letters lower-cased, dropping
// characters that do not belong in an e-mail local part.
func appendLowerASCII(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		case 'a' <= c && c <= 'z':
			b = append(b, c)
		}
	}
	return b
}

// --- usage.interaction ---

type usageEv struct {
	ws                            *workspace
	userID                        string
	feature, action, plan, device string
	teamSize, duration            int64
	layoutB                       bool
	locale, page, browser         string
}

// durationByAction is the median duration (ms) and spread of each action
// (in the order of actions.vals).
var durationByAction = [][2]float64{{8000, 1.0}, {400, 0.8}, {30000, 1.0}, {20000, 1.0}, {1500, 0.6}, {5000, 0.7}, {2500, 0.7}, {1500, 0.6}}

func (g *renderer) buildUsage(ws *workspace) {
	r := g.r
	e := &g.usage
	e.ws = ws
	e.userID = ws.users[int(float64(len(ws.users))*r.float()*r.float())]
	e.feature = features.vals[features.pick(r.float())]
	a := actions.pick(r.float())
	e.action = actions.vals[a]
	e.plan = plans.vals[ws.plan]
	e.device = devices.vals[devices.pick(r.float())]
	e.teamSize = int64(ws.teamSize)
	d := durationByAction[a]
	e.duration = int64(r.lognormal(math.Log(d[0]), d[1]))
	if r.chance(g.cfg.Rates.Odd) {
		g.c.hz[hzOddDimension]++
		switch r.intn(4) {
		case 0:
			e.feature = pick(r, oddFeatures)
		case 1:
			e.plan = pick(r, oddPlans)
		case 2:
			e.device = pick(r, oddDevices)
		default:
			e.action = "Export"
		}
	}
	e.layoutB = r.chance(0.05)
	e.locale, e.page, e.browser = pick(r, locales), pick(r, pages), pick(r, browsers)
}

func (g *renderer) renderUsage(occ int64, style int, m mutation) []byte {
	e := &g.usage
	r := g.r
	b := append(g.buf[:0], '{')
	if e.layoutB {
		g.c.hz[hzPayloadFirst]++
		b = g.payloadField(b, &m, plUsage, "")
		b = g.envelope(b, "usage.interaction", occ, style, e.ws, e.userID, &m, true)
		return g.finishLine(b, &m)
	}
	b = g.envelope(b, "usage.interaction", occ, style, e.ws, e.userID, &m, false)
	b = append(b, `"source":"web-app",`...)
	b = g.payloadField(b, &m, plUsage, "")
	if r.chance(0.2) {
		b = append(b, `"client":{"app":"web","version":"2026.11.`...)
		b = append(b, byte('0'+r.intn(4)))
		b = append(b, `","browser":"`...)
		b = append(b, e.browser...)
		b = append(b, `"},`...)
	}
	return g.finishLine(b, &m)
}

// usagePayload appends the payload's fields, each with a trailing comma.
func (g *renderer) usagePayload(p []byte, m *mutation) []byte {
	e := &g.usage
	r := g.r
	p = append(p, `"feature":"`...)
	p = append(p, e.feature...)
	p = append(p, `","action":"`...)
	p = append(p, e.action...)
	p = append(p, `","plan_tier":"`...)
	p = append(p, e.plan...)
	p = append(p, `",`...)
	p = intField(p, `"team_size":`, e.teamSize, fTeamSize, m)
	p = append(p, `"device_type":"`...)
	p = append(p, e.device...)
	p = append(p, `",`...)
	p = intField(p, `"duration_ms":`, e.duration, fDuration, m)
	// Payload extras deid drops, each now and then.
	if r.chance(0.5) {
		p = append(p, `"session_id":"s_`...)
		p = appendHex(p, r.u64(), 10)
		p = append(p, `",`...)
	}
	if r.chance(0.3) {
		p = append(p, `"page":"`...)
		p = append(p, e.page...)
		p = append(p, `","locale":"`...)
		p = append(p, e.locale...)
		p = append(p, `",`...)
	}
	if r.chance(0.2) {
		p = append(p, `"experiment":{"id":"exp_`...)
		p = append2(p, r.intn(40))
		p = append(p, `","arm":"`...)
		p = append(p, "ab"[r.intn(2)])
		p = append(p, `"},`...)
	}
	return p
}

// --- messages and unsupported types ---

var dmChannels = []string{"instagram_dm", "tiktok_dm", "x_dm", "linkedin_inmail", "in_app"}

func (g *renderer) renderMessage(ws *workspace, typ string, occ int64, style int) []byte {
	var m mutation
	g.msgWS = ws
	g.msgSender = ws.users[g.r.intn(len(ws.users))]
	b := append(g.buf[:0], '{')
	b = g.envelope(b, typ, occ, style, ws, g.msgSender, &m, false)
	b = append(b, `"source":"inbox",`...)
	b = g.payloadField(b, &m, plMessage, typ)
	return g.finishLine(b, &m)
}

// messagePayload appends a message's fields, each with a trailing comma.
func (g *renderer) messagePayload(p []byte, typ string) []byte {
	r := g.r
	ws := g.msgWS
	g.text = g.body(g.text[:0])
	ascii := typ == "support.message"
	switch typ {
	case "message.email":
		p = append(p, `"thread_id":"th_`...)
		p = appendHex(p, r.u64(), 12)
		p = append(p, `","from":"`...)
		p = g.appendEmail(p)
		p = append(p, `","to":"`...)
		p = g.appendEmail(p)
		p = append(p, `","subject":"Re: campaign brief",`...)
	case "message.sms":
		p = append(p, `"from":"`...)
		p = g.appendPhone(p)
		p = append(p, `","to":"`...)
		p = g.appendPhone(p)
		p = append(p, `",`...)
	case "support.message":
		p = append(p, `"ticket_id":"tk_`...)
		p = appendHex(p, r.u64(), 8)
		p = append(p, `","priority":"normal","customer_email":"`...)
		p = g.appendEmail(p)
		p = append(p, `",`...)
		for _, c := range g.text {
			if c >= 0x80 {
				g.c.hz[hzNonASCIIEscapes]++
				break
			}
		}
	default:
		p = append(p, `"thread_id":"th_`...)
		p = appendHex(p, r.u64(), 12)
		p = append(p, `","sender_id":"`...)
		p = append(p, g.msgSender...)
		p = append(p, `","recipient_id":"`...)
		p = append(p, ws.creators[r.intn(len(ws.creators))].id...)
		p = append(p, `","channel":"`...)
		p = append(p, pick(r, dmChannels)...)
		p = append(p, `",`...)
	}
	p = append(p, `"body":`...)
	p = appendString(p, g.text, ascii)
	p = append(p, `,"attachments":`...)
	p = append(p, byte('0'+r.intn(3)))
	return append(p, ',')
}

// body appends a message body from a template, with a canary now and then.
func (g *renderer) body(t []byte) []byte {
	r := g.r
	tpl := pick(r, messageBodies)
	for i := 0; i < len(tpl); i++ {
		if tpl[i] != '{' || i+2 >= len(tpl) || tpl[i+2] != '}' {
			t = append(t, tpl[i])
			continue
		}
		switch tpl[i+1] {
		case 'n':
			t = append(t, pick(r, firstNames)...)
		case 'p':
			t = g.appendPhone(t)
		case 'e':
			t = g.appendEmail(t)
		case 'a':
			t = strconv.AppendInt(t, int64(100*(1+r.intn(50))), 10)
		}
		i += 2
	}
	return g.maybeCanary(t)
}

var (
	loginMethods = []string{"password", "sso", "google", "magic_link"}
	integrations = []string{"shopify", "hubspot", "ga4", "salesforce", "tiktok_ads"}
)

func (g *renderer) renderUnsupported(ws *workspace, typ string, occ int64, style int) []byte {
	var m mutation
	user := ws.users[g.r.intn(len(ws.users))]
	b := append(g.buf[:0], '{')
	b = g.envelope(b, typ, occ, style, ws, user, &m, false)
	b = append(b, `"source":"platform",`...)
	b = g.payloadField(b, &m, plUnsupported, typ)
	return g.finishLine(b, &m)
}

// unsupportedPayload appends the fields of an event type deid does not
// know, each with a trailing comma.
func (g *renderer) unsupportedPayload(p []byte, typ string) []byte {
	r := g.r
	switch typ {
	case "account.login":
		p = append(p, `"method":"`...)
		p = append(p, pick(r, loginMethods)...)
		p = append(p, `","success":`...)
		p = appendBool(p, r.chance(0.95))
		p = append(p, `,"ip_address":"`...)
		p = g.appendIP(p)
		p = append(p, `","user_agent":`...)
		p = appendString(p, pick(r, userAgents), false)
		p = append(p, ',')
	case "billing.invoice":
		p = append(p, `"invoice_id":"inv_`...)
		p = appendHex(p, r.u64(), 10)
		p = append(p, `","amount_cents":`...)
		p = strconv.AppendInt(p, r.between(2900, 990000), 10)
		p = append(p, `,"currency":"USD","status":"paid","billing_email":"`...)
		p = g.appendEmail(p)
		p = append(p, `",`...)
	case "workspace.member_invited":
		p = append(p, `"invitee_email":"`...)
		p = g.appendEmail(p)
		p = append(p, `","role":"`...)
		p = append(p, pick(r, roles)...)
		p = append(p, `",`...)
	case "integration.sync":
		p = append(p, `"integration":"`...)
		p = append(p, pick(r, integrations)...)
		p = append(p, `","records":`...)
		p = strconv.AppendInt(p, r.between(0, 50000), 10)
		p = append(p, `,"status":"ok",`...)
	default:
		p = append(p, `"export_id":"exp_`...)
		p = appendHex(p, r.u64(), 10)
		p = append(p, `","scope":"campaigns","format":"csv",`...)
	}
	return p
}
