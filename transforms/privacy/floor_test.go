package privacy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/privacy"
)

// TestConfigAndGateAgreeOnTheFloorOfK holds the dataset configuration and
// the privacy gate to one floor of k: a k below pipeline.MinK is refused by
// both, naming that floor, and a k at the floor is refused by neither.
func TestConfigAndGateAgreeOnTheFloorOfK(t *testing.T) {
	specs, err := aggregate.Build(aggregate.DefaultConfig(), nil)
	if err != nil {
		t.Fatalf("Build(DefaultConfig()): %v", err)
	}
	for _, k := range []int{1, pipeline.MinK - 1, pipeline.MinK, pipeline.MinK + 1} {
		below := k < pipeline.MinK
		t.Run(fmt.Sprintf("k = %d", k), func(t *testing.T) {
			cfg := aggregate.DefaultConfig()
			cfg.Datasets[0].Privacy.K = k
			cfg.Datasets[0].Privacy.DominanceN = 1
			cfgMsg := fmt.Sprintf("datasets[0].privacy.k: must be >= %d (got %d)", pipeline.MinK, k)
			if err := cfg.Validate(); below != (err != nil && strings.Contains(err.Error(), cfgMsg)) {
				t.Errorf("config: Validate() = %v; refusing %q: want %v", err, cfgMsg, below)
			}

			spec := *specs[0]
			spec.Privacy.K = k
			spec.Privacy.DominanceN = 1
			gateMsg := fmt.Sprintf("k = %d is below the floor of %d", k, pipeline.MinK)
			_, err := privacy.New().Apply(&spec, pipeline.NewPartial(spec.Name, pipeline.Window{}))
			if below != (err != nil && strings.Contains(err.Error(), gateMsg)) {
				t.Errorf("gate: Apply = %v; refusing %q: want %v", err, gateMsg, below)
			}
			if !below && err != nil {
				t.Errorf("gate: Apply refused a k at or above the floor: %v", err)
			}
		})
	}
}
