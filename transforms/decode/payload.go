package decode

import "github.com/mya/deid/pipeline"

// maxCreatorAge is the largest creator_age taken as an age rather than as
// a data error.
const maxCreatorAge = 150

// Fields of a campaign.metrics payload, as bits of a seen/present set.
const (
	cCampaignID uint32 = 1 << iota
	cCreatorID
	cPlatform
	cContentType
	cIndustry
	cCountry
	cFollowerCount
	cCreatorAge
	cGuardianConsent
	cImpressions
	cReach
	cClicks
	cLikes
	cComments
	cShares
	cSaves
	cVideoViews
	cConversions
	cSpendCents
	cRevenueCents
)

// campaign decodes a campaign.metrics payload (contract §3.3) at b[i].
func (d *Decoder) campaign(b []byte, i int, c *pipeline.CampaignMetrics) int {
	c.Platform, c.ContentType, c.Industry, c.Country = Other, Other, Other, UnknownCountry
	var seen, present uint32
	i, more := first(b, i)
	for more {
		name, at := d.key(b, i)
		if at < 0 {
			return at
		}
		i = at
		var ok bool
		switch string(name) {
		case "campaign_id":
			d.once(&seen, cCampaignID, "payload.campaign_id")
			i = d.id(b, i, &present, cCampaignID, slotCampaignID, "payload.campaign_id", &c.CampaignID)
		case "creator_id":
			d.once(&seen, cCreatorID, "payload.creator_id")
			i = d.id(b, i, &present, cCreatorID, slotCreatorID, "payload.creator_id", &c.CreatorID)
		case "platform":
			var v []byte
			if v, ok, i = d.dim(b, i, &seen, cPlatform, "payload.platform"); ok {
				c.Platform = d.closed(v, platforms)
			}
		case "content_type":
			var v []byte
			if v, ok, i = d.dim(b, i, &seen, cContentType, "payload.content_type"); ok {
				c.ContentType = d.closed(v, contentTypes)
			}
		case "industry":
			var v []byte
			if v, ok, i = d.dim(b, i, &seen, cIndustry, "payload.industry"); ok {
				c.Industry = d.open(v)
			}
		case "audience_country":
			var v []byte
			if v, ok, i = d.dim(b, i, &seen, cCountry, "payload.audience_country"); ok {
				c.Country = country(v)
			}
		case "follower_count":
			if ok, i = d.counter(b, i, &seen, cFollowerCount, "payload.follower_count", &c.FollowerCount); ok {
				present |= cFollowerCount
			}
		case "creator_age":
			d.once(&seen, cCreatorAge, "payload.creator_age")
			var age int64
			var neg bool
			if age, neg, ok, i = d.integer(b, i, "payload.creator_age"); ok {
				if neg || age > maxCreatorAge {
					d.fail(CodeInvalidValue, "payload.creator_age", "must be between 0 and 150")
				} else {
					c.HasAge, c.CreatorAge = true, age
				}
			}
		case "guardian_consent":
			d.once(&seen, cGuardianConsent, "payload.guardian_consent")
			var v bool
			if v, ok, i = d.boolean(b, i, "payload.guardian_consent"); ok {
				c.GuardianConsent = v
			}
		case "impressions":
			_, i = d.counter(b, i, &seen, cImpressions, "payload.impressions", &c.Impressions)
		case "reach":
			_, i = d.counter(b, i, &seen, cReach, "payload.reach", &c.Reach)
		case "clicks":
			_, i = d.counter(b, i, &seen, cClicks, "payload.clicks", &c.Clicks)
		case "likes":
			_, i = d.counter(b, i, &seen, cLikes, "payload.likes", &c.Likes)
		case "comments":
			_, i = d.counter(b, i, &seen, cComments, "payload.comments", &c.Comments)
		case "shares":
			_, i = d.counter(b, i, &seen, cShares, "payload.shares", &c.Shares)
		case "saves":
			_, i = d.counter(b, i, &seen, cSaves, "payload.saves", &c.Saves)
		case "video_views":
			_, i = d.counter(b, i, &seen, cVideoViews, "payload.video_views", &c.VideoViews)
		case "conversions":
			_, i = d.counter(b, i, &seen, cConversions, "payload.conversions", &c.Conversions)
		case "spend_cents":
			_, i = d.counter(b, i, &seen, cSpendCents, "payload.spend_cents", &c.SpendCents)
		case "revenue_cents":
			_, i = d.counter(b, i, &seen, cRevenueCents, "payload.revenue_cents", &c.RevenueCents)
		default:
			d.pending++
			i = d.skip(b, i, 2)
		}
		if i < 0 {
			return i
		}
		if i, more = next(b, i); i < 0 {
			return i
		}
	}
	switch {
	case present&cCampaignID == 0:
		d.fail(CodeMissingField, "payload.campaign_id", "required")
	case present&cCreatorID == 0:
		d.fail(CodeMissingField, "payload.creator_id", "required")
	case present&cFollowerCount == 0:
		d.fail(CodeMissingField, "payload.follower_count", "required")
	}
	return i
}

// Fields of a usage.interaction payload, as bits of a seen/present set.
const (
	uFeature uint32 = 1 << iota
	uAction
	uPlanTier
	uDeviceType
	uTeamSize
	uDurationMs
)

// usage decodes a usage.interaction payload (contract §3.3) at b[i].
func (d *Decoder) usage(b []byte, i int, u *pipeline.UsageInteraction) int {
	u.Feature, u.Action, u.PlanTier, u.DeviceType = Other, Other, Other, Other
	var seen, present uint32
	i, more := first(b, i)
	for more {
		name, at := d.key(b, i)
		if at < 0 {
			return at
		}
		i = at
		var ok bool
		var v []byte
		switch string(name) {
		case "feature":
			if v, ok, i = d.dim(b, i, &seen, uFeature, "payload.feature"); ok {
				u.Feature = d.open(v)
			}
		case "action":
			if v, ok, i = d.dim(b, i, &seen, uAction, "payload.action"); ok {
				u.Action = d.closed(v, actions)
			}
		case "plan_tier":
			if v, ok, i = d.dim(b, i, &seen, uPlanTier, "payload.plan_tier"); ok {
				u.PlanTier = d.closed(v, planTiers)
			}
		case "device_type":
			if v, ok, i = d.dim(b, i, &seen, uDeviceType, "payload.device_type"); ok {
				u.DeviceType = d.closed(v, deviceTypes)
			}
		case "team_size":
			d.once(&seen, uTeamSize, "payload.team_size")
			var n int64
			var neg bool
			if n, neg, ok, i = d.integer(b, i, "payload.team_size"); ok {
				if neg || n < 1 || n > plausibleMax {
					d.fail(CodeInvalidValue, "payload.team_size", "must be between 1 and 10^12")
				} else {
					u.TeamSize = n
					present |= uTeamSize
				}
			}
		case "duration_ms":
			_, i = d.counter(b, i, &seen, uDurationMs, "payload.duration_ms", &u.DurationMs)
		default:
			d.pending++
			i = d.skip(b, i, 2)
		}
		if i < 0 {
			return i
		}
		if i, more = next(b, i); i < 0 {
			return i
		}
	}
	if present&uTeamSize == 0 {
		d.fail(CodeMissingField, "payload.team_size", "required")
	}
	return i
}
