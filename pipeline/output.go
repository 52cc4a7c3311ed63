package pipeline

// Value is one measure's value in a published row: an integer (INT64
// columns), a float (DOUBLE columns), or null.
type Value struct {
	Int   int64
	Float float64
	Null  bool
}

// Row is one published aggregate row of a dataset.
type Row struct {
	// Dims holds the (possibly generalized) dimension values, in declaration order.
	Dims []string
	// Level is the row's generalization level: under the ladder strategy
	// the ladder step it was published at, under mondrian the sum of its
	// dimensions' levels (contract §7). 0 means every dimension at level 0.
	Level int
	// DimLevels holds the hierarchy level of each dimension's value, in
	// declaration order; nil means the ladder's levels at step Level
	// (DatasetSpec.DimLevels).
	DimLevels []int
	// Values holds one value per measure, in declaration order.
	Values []Value
}

// CellExclusion is a publish-time exclusion of a whole cell, or of one
// workspace's contributions to a cell: a withdrawal after a consent change,
// or a suppression by the privacy gate.
type CellExclusion struct {
	Dataset string
	Window  Window
	Level   int
	// Dims holds the cell's dimension values at Level.
	Dims   []string
	Reason Reason
	Events int64
	// Workspaces is the number of distinct workspaces in the cell.
	Workspaces int64
	// WorkspaceID is the raw workspace id, for withdrawals only.
	WorkspaceID string
}

// Exclusion is one exclusion-log entry (contract §8). Record-level entries carry
// the record's identity and position; cell-level entries (withdrawals and
// suppressions) carry Cell. Never any payload field.
type Exclusion struct {
	EventID     string
	EventType   string
	WorkspaceID string
	Pos         Position
	// OccurredAt is the event time in microseconds (0 when unknown).
	OccurredAt int64
	Reason     Reason
	// Cell is set for publish-time entries.
	Cell *CellExclusion
	// PolicyVersion is the hash of the effective configuration.
	PolicyVersion string
	// DecidedAt is the decision time in microseconds (wall clock).
	DecidedAt int64
}

// PartitionAccounting is the disposition count of one partition over the
// input range [FirstOffset, LastOffset]: Read == Contributed + sum(Excluded)
// + DeadLetters.
type PartitionAccounting struct {
	Partition   string           `json:"partition"`
	FirstOffset int64            `json:"first_offset"`
	LastOffset  int64            `json:"last_offset"`
	Read        int64            `json:"read"`
	Contributed int64            `json:"contributed"`
	Excluded    map[string]int64 `json:"excluded"`
	DeadLetters int64            `json:"dead_letters"`
	// ContributedByDataset splits Contributed by dataset.
	ContributedByDataset map[string]int64 `json:"contributed_by_dataset"`
}

// Balanced tells whether the accounting identity holds.
func (a *PartitionAccounting) Balanced() bool {
	sum := a.Contributed + a.DeadLetters
	for _, n := range a.Excluded {
		sum += n
	}
	return sum == a.Read
}

// WindowAccounting is one dataset window's accounting: Contributed ==
// Published + Withdrawn + Suppressed (events).
type WindowAccounting struct {
	Contributed        int64            `json:"contributed_events"`
	Published          int64            `json:"published_events"`
	Withdrawn          int64            `json:"withdrawn_events"`
	Suppressed         int64            `json:"suppressed_events"`
	WithdrawnByReason  map[string]int64 `json:"withdrawn_by_reason"`
	SuppressedByReason map[string]int64 `json:"suppressed_by_reason"`
	// RowsByLevel counts published rows per generalization level.
	RowsByLevel map[int]int64 `json:"rows_by_level"`
	// EventsByLevel counts published events per generalization level.
	EventsByLevel   map[int]int64 `json:"events_by_level"`
	CellsSuppressed int64         `json:"cells_suppressed"`
}

// Balanced tells whether the accounting identity holds.
func (a *WindowAccounting) Balanced() bool {
	return a.Contributed == a.Published+a.Withdrawn+a.Suppressed
}

// WindowOutput is everything the dataset sink commits for one dataset
// window: the rows (sorted by dimensions), the accounting, and what the
// manifest must record about the inputs.
type WindowOutput struct {
	Spec   *DatasetSpec
	Window Window
	Rows   []Row
	Acct   WindowAccounting
	// Partitions is each input partition's accounting up to the position at
	// which it closed this window.
	Partitions []PartitionAccounting
	// ChainHeads maps an exclusion-log chain (a partition, or "publish") to
	// the hex SHA-256 of its newest committed segment.
	ChainHeads map[string]string
	// PolicyVersion is the hash of the effective configuration.
	PolicyVersion string
	// PipelineVersion is deid's version.
	PipelineVersion string
}
