package gen

// The vocabulary the generator draws from: platforms, content types, the
// industry and feature taxonomies, audience countries, and the small
// pieces of free text that make message bodies and captions look real.
// Weights are relative.

import (
	"io/fs"
	"strings"

	datasets "github.com/mya/deid/transforms/aggregate"
)

type weighted struct {
	v string
	w float64
}

// table is a weighted list with a cumulative index for sampling.
type table struct {
	vals []string
	cum  []float64
}

func newTable(items []weighted) table {
	t := table{vals: make([]string, len(items)), cum: make([]float64, len(items))}
	sum := 0.0
	for i, it := range items {
		sum += it.w
		t.vals[i] = it.v
		t.cum[i] = sum
	}
	for i := range t.cum {
		t.cum[i] /= sum
	}
	return t
}

// pick returns the index of the value u (in [0,1)) falls on.
func (t *table) pick(u float64) int {
	lo, hi := 0, len(t.cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if u < t.cum[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// taxonomy returns the values of one of deid's built-in taxonomy tables
// (an ARX table, value;family;*), in the table's order and without its
// other row, weighted: a value of weights by its weight, another leaf by
// 0.5, a family alone (a client that gave no detail) by 0.2. It panics
// only if the table that ships with deid is missing, which the package's
// tests rule out.
func taxonomy(name string, weights map[string]float64) table {
	data, err := fs.ReadFile(datasets.BuiltinTables(), name)
	if err != nil {
		panic("gen: built-in table " + name + ": " + err.Error())
	}
	var items []weighted
	for _, line := range strings.Split(string(data), "\n") {
		v, _, ok := strings.Cut(strings.TrimSpace(line), ";")
		switch {
		case !ok || v == datasets.Other:
		case weights[v] > 0:
			items = append(items, weighted{v, weights[v]})
		case strings.Contains(v, "."):
			items = append(items, weighted{v, 0.5})
		default:
			items = append(items, weighted{v, 0.2})
		}
	}
	return newTable(items)
}

var platforms = newTable([]weighted{
	{"instagram", 38}, {"tiktok", 30}, {"youtube", 14}, {"x", 9}, {"linkedin", 9},
})

// oddPlatforms are platform values the decoder must normalize: odd casing
// and padding of known platforms, and platforms deid does not know.
var oddPlatforms = []string{" Instagram ", "TikTok", "YOUTUBE", "X", "LinkedIn ", "snapchat", "pinterest", "twitch", "threads", ""}

// contentTypes lists, per platform (in the order of platforms.vals), the
// content types that platform has.
var contentTypes = map[string]table{
	"instagram": newTable([]weighted{{"reel", 45}, {"post", 30}, {"story", 20}, {"live", 5}}),
	"tiktok":    newTable([]weighted{{"video", 85}, {"live", 10}, {"story", 5}}),
	"youtube":   newTable([]weighted{{"video", 50}, {"short", 40}, {"live", 10}}),
	"x":         newTable([]weighted{{"post", 80}, {"video", 20}}),
	"linkedin":  newTable([]weighted{{"post", 60}, {"article", 25}, {"video", 15}}),
}

var oddContentTypes = []string{"carousel", "Reel", " post", "podcast", "ugc_bundle"}

// videoContent tells which content types have video views.
var videoContent = map[string]bool{"reel": true, "video": true, "short": true, "live": true, "story": true}

// industries are the platform's industry taxonomy: the table deid ships
// as the industry dimension's value set (industries.csv), weighted.
var industries = taxonomy("industries.csv", map[string]float64{
	"beauty.skincare": 9, "beauty.makeup": 7, "beauty.haircare": 4,
	"fashion.streetwear": 6, "fashion.luxury": 4, "fashion.athleisure": 5,
	"food.restaurants": 5, "food.beverages": 5, "food.grocery": 3,
	"tech.saas": 5, "tech.consumer_electronics": 5,
	"gaming.mobile": 6, "gaming.console": 3, "gaming.esports": 2,
	"travel.hotels": 4, "travel.airlines": 2,
	"fitness.yoga": 3, "fitness.gyms": 3, "fitness.nutrition": 3,
	"finance.fintech": 3, "finance.banking": 2,
})

// oddIndustries are industry values the decoder must normalize (casing,
// padding, empty) and strays outside the taxonomy, which must read other.
var oddIndustries = []string{"", "automotive", "Beauty.Skincare", " tech.saas", "pets.food", "other",
	"<script>alert(1)</script>.x", "beauty.nails", "crypto.nft"}

// strayIndustries are industries outside the taxonomy that whole campaigns
// carry (a client's own label, an injection attempt), so that a stray
// reaches many workspaces' records: however many share it, it must be
// published as other.
var strayIndustries = []string{"<script>alert(1)</script>.x", "web3.nft_drops", "Beauty.Nails"}

// countries are audience countries, ISO 3166-1 alpha-2, weighted roughly
// by the size of the creator economy.
var countries = newTable([]weighted{
	{"US", 30}, {"GB", 8}, {"IN", 8}, {"BR", 7}, {"DE", 6}, {"FR", 5}, {"JP", 5},
	{"MX", 4}, {"CA", 4}, {"ID", 3}, {"AU", 3}, {"ES", 3}, {"IT", 3}, {"PH", 2},
	{"KR", 2}, {"TR", 2}, {"NL", 2}, {"AR", 1}, {"PL", 1}, {"SE", 1}, {"NG", 1},
	{"ZA", 1}, {"SA", 1}, {"AE", 1}, {"EG", 0.5}, {"KE", 0.5}, {"NZ", 0.5}, {"CL", 0.5},
})

// oddCountries are values the decoder must map to "ZZ" or upper-case.
var oddCountries = []string{"", "us", " gb", "UK", "EU", "XX", "USA", "zz"}

// features are the platform's feature taxonomy: the table deid ships as
// the feature dimension's value set (features.csv), weighted.
var features = taxonomy("features.csv", map[string]float64{
	"analytics.dashboard": 14, "analytics.reports": 8, "analytics.benchmarks": 4,
	"campaigns.builder": 9, "campaigns.briefs": 5, "campaigns.scheduler": 5,
	"creators.search": 10, "creators.lists": 6, "creators.outreach": 5,
	"content.calendar": 6, "content.approvals": 5, "content.library": 4,
	"mya.chat": 9, "mya.suggestions": 5, "mya.insights": 4,
	"billing.plans": 1, "billing.invoices": 1,
	"settings.team": 2, "settings.integrations": 2,
})

// oddFeatures are feature values the decoder must normalize and strays
// outside the taxonomy, which must read other.
var oddFeatures = []string{"", "search", "Analytics.Dashboard", "labs.beta_canvas", "<img src=x onerror=alert(1)>",
	"mya.chat_v2"}

var actions = newTable([]weighted{
	{"view", 50}, {"click", 25}, {"create", 8}, {"update", 9}, {"delete", 2}, {"export", 3},
	{"share", 2}, {"duplicate", 1},
})

var plans = newTable([]weighted{{"free", 35}, {"pro", 35}, {"business", 20}, {"enterprise", 10}})

var oddPlans = []string{"Pro", " business", "trial", "legacy_team", ""}

var devices = newTable([]weighted{{"desktop", 68}, {"mobile", 26}, {"tablet", 5}, {"tv", 0.5}, {"", 0.5}})

var oddDevices = []string{"Desktop", "MOBILE ", "watch", "kiosk"}

var messageTypes = newTable([]weighted{
	{"message.direct", 40}, {"message.email", 20}, {"message.sms", 15}, {"support.message", 15},
	{"message.imessage", 8}, {"message.whatsapp", 2},
})

var unsupportedTypes = newTable([]weighted{
	{"account.login", 40}, {"billing.invoice", 15}, {"workspace.member_invited", 15},
	{"integration.sync", 20}, {"audit.export_requested", 10},
})

var firstNames = []string{"Mia", "Liam", "Sofia", "Noah", "Aiko", "Mateo", "Zoë", "Lukas", "Ana", "Omar",
	"Priya", "Chen", "Léa", "Kwame", "Isabela", "Jonas", "Fatima", "Diego", "Yuki", "Amara", "Łukasz", "Siobhan"}

var lastNames = []string{"Garcia", "Smith", "Müller", "Tanaka", "Silva", "Okafor", "Nguyen", "Rossi",
	"Kowalski", "Patel", "Dubois", "Kim", "Johansson", "O'Brien", "Haddad", "Fernández"}

var handleWords = []string{"glow", "daily", "fit", "eats", "tech", "style", "with", "the", "real", "just",
	"travels", "games", "lab", "studio", "by", "hey", "its", "vibes"}

var emailDomains = []string{"example.com", "example.org", "example.net", "mail.example", "inbox.example"}

var captionParts = []string{
	"Obsessed with this new drop", "Day 3 of testing this routine", "Honest review, not sponsored... ok it is",
	"Link in bio for 20% off", "You asked, I answered", "POV: you finally found the one",
	"Swipe for the before/after", "Can't believe how fast this sold out", "Tag someone who needs this",
	"My go-to for busy mornings", "Unboxing time", "3 ways to style it",
}

var hashtags = []string{"#ad", "#sponsored", "#skincare", "#ootd", "#foodie", "#gaming", "#fitness",
	"#travel", "#tech", "#grwm", "#fyp", "#reels", "#glowup", "#mealprep", "#setup"}

var emoji = []string{"✨", "🔥", "💖", "😍", "🙌", "📦", "☕", "🏋️"}

// messageBodies are message templates: {n} a first name, {p} a phone
// number, {e} an e-mail address, {a} an amount in dollars.
var messageBodies = []string{
	"Hi {n}, can you send the draft by Friday? My number is {p} if it's easier.",
	"Hey {n}! Loved the last reel. Contract attached, rate is ${a} for 3 posts.",
	"{n}, the client wants the caption changed to \"no filter\" - can you redo it?",
	"Reminder: payment of ${a} goes out tomorrow. Reply to {e} with your invoice.",
	"Thanks {n},\nshipping address updated. Tracking will follow.",
	"Can we hop on a call? I'm at {p} all afternoon.",
	"Hi support, I can't log in since yesterday. My email is {e}.",
	"\u00bfPodemos hablar ma\u00f1ana, {n}? \t Te llamo al {p}.",
}

var commentTexts = []string{
	"omg where is this from??", "need this in my life", "code doesn't work for me :(",
	"first!!", "you look amazing 😍", "is this really sponsored?", "DM me for collab",
}

var userAgents = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Instagram 356.0.0.31.94 Android (34/14; 420dpi; 1080x2340; samsung; SM-S918B)",
}

var tagSets = []string{`["q4","launch"]`, `["evergreen"]`, `["holiday","gifting"]`, `[]`, `["always_on","ugc"]`, `["blackfriday"]`}

var appVersions = []string{"4.12.3", "4.12.4", "4.13.0"}

var browsers = []string{"chrome", "safari", "firefox", "edge"}

var locales = []string{"en-US", "en-GB", "de-DE", "fr-FR", "pt-BR", "ja-JP", "es-MX", "hi-IN"}

var pages = []string{"/analytics/overview", "/campaigns", "/creators/search", "/content/calendar", "/mya", "/settings/team"}

var roles = []string{"owner", "admin", "editor"}
