package gen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config says what to generate. The same Config always yields the same
// bytes.
type Config struct {
	// Seed seeds every random choice.
	Seed int64 `yaml:"seed"`
	// Events is the number of event lines, over all partitions, hazards
	// included.
	Events int `yaml:"events"`
	// Partitions is the number of event partitions (files, or Kafka
	// partitions); a workspace's events all go to one partition.
	Partitions int `yaml:"partitions"`
	// Workspaces is the number of customer workspaces.
	Workspaces int `yaml:"workspaces"`
	// Start is the event time of the first event.
	Start time.Time `yaml:"start"`
	// Days is how many days of event time the events span.
	Days int `yaml:"days"`
	// Gzip makes WriteFiles compress the event files.
	Gzip bool `yaml:"gzip"`
	// Rates are the hazard rates.
	Rates Rates `yaml:"rates"`
}

// Rates are the shares of each kind of line and hazard. Line rates are
// fractions of all event lines; the lines left over after the line rates
// are ordinary campaign.metrics events. Workspace rates are fractions of
// the workspaces (at least one workspace each when the rate is positive).
type Rates struct {
	// Usage is the share of usage.interaction events.
	Usage float64 `yaml:"usage"`
	// Message is the share of message events (message.*, support.message).
	Message float64 `yaml:"message"`
	// Unsupported is the share of events of types deid does not know.
	Unsupported float64 `yaml:"unsupported"`
	// Malformed is the share of malformed lines (contract §3.1).
	Malformed float64 `yaml:"malformed"`
	// Duplicate is the share of lines re-sending an earlier event.
	Duplicate float64 `yaml:"duplicate"`
	// Late is the share of events for a window already closed.
	Late float64 `yaml:"late"`
	// FarFuture is the share of events dated years ahead.
	FarFuture float64 `yaml:"far_future"`

	// PII is the share of campaign.metrics payloads carrying personal
	// data fields (caption, comment_text, creator_handle, ...).
	PII float64 `yaml:"pii"`
	// Minor is the share of campaign.metrics events by a creator aged
	// under 18 (a third each: under 13, 13-17 with guardian consent, 13-17
	// without).
	Minor float64 `yaml:"minor"`
	// Odd is the share of dimension values with odd casing, padding or
	// values outside the known sets.
	Odd float64 `yaml:"odd"`
	// Canary is the share of free-text fields (message bodies, captions,
	// comments) that carry a canary string.
	Canary float64 `yaml:"canary"`

	// OptedOut, Deleted and Unknown are the shares of workspaces that
	// opted out, were deleted, or have no settings record.
	OptedOut float64 `yaml:"opted_out"`
	Deleted  float64 `yaml:"deleted"`
	Unknown  float64 `yaml:"unknown"`
	// ReOptInEditor is the share of workspaces that opted out and then
	// were opted in again by an editor (ignored: they stay opted out);
	// ReOptInOwner, by an owner (honoured: they are included).
	ReOptInEditor float64 `yaml:"reopt_in_editor"`
	ReOptInOwner  float64 `yaml:"reopt_in_owner"`
	// MalformedSettings is the number of malformed settings lines.
	MalformedSettings int `yaml:"malformed_settings"`
}

// DefaultConfig returns a sample of 200 000 events by 400 workspaces over
// three days from 2026-11-01, in four partitions, with every hazard.
func DefaultConfig() Config {
	return Config{
		Seed:       42,
		Events:     200_000,
		Partitions: 4,
		Workspaces: 400,
		Start:      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Days:       3,
		Rates:      DefaultRates(),
	}
}

// DefaultRates returns the default hazard rates: about 80% campaign
// metrics, 15% usage, 5% hazards.
func DefaultRates() Rates {
	return Rates{
		Usage:       0.15,
		Message:     0.015,
		Unsupported: 0.008,
		Malformed:   0.008,
		Duplicate:   0.008,
		Late:        0.005,
		FarFuture:   0.002,

		PII:    0.05,
		Minor:  0.015,
		Odd:    0.01,
		Canary: 0.25,

		OptedOut:          0.06,
		Deleted:           0.03,
		Unknown:           0.03,
		ReOptInEditor:     0.02,
		ReOptInOwner:      0.02,
		MalformedSettings: 2,
	}
}

// Limits of the configuration.
const (
	maxEvents     = 1 << 34
	maxPartitions = 4096
	// maxWorkspaces bounds the world's memory; ids stay unique far beyond.
	maxWorkspaces = 200_000
	maxDays       = 3660
)

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// maxEvents overflows a 32-bit int: compared and printed as an int64.
	if c.Events < 0 || int64(c.Events) > maxEvents {
		add("gen.events: must be between 0 and %d (got %d)", int64(maxEvents), c.Events)
	}
	if c.Partitions < 1 || c.Partitions > maxPartitions {
		add("gen.partitions: must be between 1 and %d (got %d)", maxPartitions, c.Partitions)
	}
	if c.Workspaces < 1 || c.Workspaces > maxWorkspaces {
		add("gen.workspaces: must be between 1 and %d (got %d)", maxWorkspaces, c.Workspaces)
	}
	if c.Days < 1 || c.Days > maxDays {
		add("gen.days: must be between 1 and %d (got %d)", maxDays, c.Days)
	}
	if c.Start.IsZero() {
		add("gen.start: must be set, e.g. 2026-11-01T00:00:00Z")
	} else if y := c.Start.UTC().Year(); y < 2000 || y > 2200 {
		add("gen.start: must be between the years 2000 and 2200 (got %s)", c.Start.UTC().Format(time.RFC3339))
	}
	r := c.Rates
	line := []struct {
		name string
		v    float64
	}{
		{"usage", r.Usage}, {"message", r.Message}, {"unsupported", r.Unsupported}, {"malformed", r.Malformed},
		{"duplicate", r.Duplicate}, {"late", r.Late}, {"far_future", r.FarFuture},
	}
	sum := 0.0
	for _, f := range line {
		if !(f.v >= 0 && f.v <= 1) {
			add("gen.rates.%s: must be between 0 and 1 (got %v)", f.name, f.v)
			continue
		}
		sum += f.v
	}
	if sum > 1+1e-9 {
		add("gen.rates: the line rates (usage, message, unsupported, malformed, duplicate, late, far_future) add up to %.3f; they must leave room for campaign events (at most 1)", sum)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"pii", r.PII}, {"minor", r.Minor}, {"odd", r.Odd}, {"canary", r.Canary}} {
		if !(f.v >= 0 && f.v <= 1) {
			add("gen.rates.%s: must be between 0 and 1 (got %v)", f.name, f.v)
		}
	}
	ws := []struct {
		name string
		v    float64
	}{{"opted_out", r.OptedOut}, {"deleted", r.Deleted}, {"unknown", r.Unknown},
		{"reopt_in_editor", r.ReOptInEditor}, {"reopt_in_owner", r.ReOptInOwner}}
	special := 0
	for _, f := range ws {
		if !(f.v >= 0 && f.v <= 1) {
			add("gen.rates.%s: must be between 0 and 1 (got %v)", f.name, f.v)
			continue
		}
		special += workspaceCount(f.v, c.Workspaces)
	}
	if c.Workspaces >= 1 && special >= c.Workspaces {
		add("gen.workspaces: %d workspaces leave none ordinary once the workspace rates take %d; raise gen.workspaces or lower the workspace rates", c.Workspaces, special)
	}
	if r.MalformedSettings < 0 || r.MalformedSettings > 1000 {
		add("gen.rates.malformed_settings: must be between 0 and 1000 (got %d)", r.MalformedSettings)
	}
	return errors.Join(errs...)
}

// workspaceCount is how many of n workspaces a workspace rate asks for: at
// least one when the rate is positive.
func workspaceCount(rate float64, n int) int {
	if rate <= 0 || n < 1 {
		return 0
	}
	return max(1, int(math.Round(rate*float64(n))))
}
