package agegate

import (
	"testing"

	"github.com/mya/deid/pipeline"
)

func TestCheck(t *testing.T) {
	campaign := func(hasAge bool, age int64, guardian bool) *pipeline.Event {
		return &pipeline.Event{Kind: pipeline.KindCampaignMetrics,
			Campaign: pipeline.CampaignMetrics{HasAge: hasAge, CreatorAge: age, GuardianConsent: guardian}}
	}
	tests := []struct {
		name string
		ev   *pipeline.Event
		want pipeline.Reason
	}{
		{"an absent age passes", campaign(false, 0, false), pipeline.ReasonNone},
		{"a 12-year-old is excluded even with guardian consent", campaign(true, 12, true), pipeline.ReasonMinorUnder13},
		{"an age of zero is under 13", campaign(true, 0, false), pipeline.ReasonMinorUnder13},
		{"a 13-year-old without guardian consent is excluded", campaign(true, 13, false), pipeline.ReasonMinorWithoutGuardianConsent},
		{"a 17-year-old without guardian consent is excluded", campaign(true, 17, false), pipeline.ReasonMinorWithoutGuardianConsent},
		{"a 13-year-old with guardian consent passes", campaign(true, 13, true), pipeline.ReasonNone},
		{"a 17-year-old with guardian consent passes", campaign(true, 17, true), pipeline.ReasonNone},
		{"an 18-year-old passes without guardian consent", campaign(true, 18, false), pipeline.ReasonNone},
		{"a usage event carries no age and passes", &pipeline.Event{Kind: pipeline.KindUsageInteraction}, pipeline.ReasonNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Gate{}).Check(tt.ev); got != tt.want {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}
