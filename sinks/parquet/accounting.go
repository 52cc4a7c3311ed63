package parquet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

// AccountingVersion is the version of the accounting record format written.
const AccountingVersion = 1

// AccountingName is the file name of a window's accounting record.
const AccountingName = "accounting.json"

// AccountingRecord is a window's accounting, for compliance: the counts
// finer than k that the manifest must not carry. It is written before the
// manifest, which records its SHA-256, and is never rewritten once the
// manifest exists.
type AccountingRecord struct {
	AccountingVersion int    `json:"accounting_version"`
	Dataset           string `json:"dataset"`
	PolicyVersion     string `json:"policy_version"`
	Window            Window `json:"window"`
	// Accounting is the window's events: contributed = published +
	// withdrawn + suppressed, with the withdrawn and suppressed events by
	// reason and the suppressed cells.
	Accounting pipeline.WindowAccounting `json:"accounting"`
	// Partitions is each input partition's accounting up to the position
	// at which it closed this window: the input covered.
	Partitions []pipeline.PartitionAccounting `json:"partitions"`
}

// AccountingDir returns the directory of a dataset window's accounting
// record: <out>/accounting/<dataset>/<PartitionPath>.
func AccountingDir(outDir, dataset string, w pipeline.Window) (string, error) {
	if !validName(dataset) {
		return "", fmt.Errorf("dataset name %q is not a safe directory name", dataset)
	}
	rel, err := PartitionPath(w)
	if err != nil {
		return "", err
	}
	return filepath.Join(outDir, "accounting", dataset, rel), nil
}

func newAccountingRecord(out *pipeline.WindowOutput) *AccountingRecord {
	a := out.Acct
	a.WithdrawnByReason = nonNilMap(a.WithdrawnByReason)
	a.SuppressedByReason = nonNilMap(a.SuppressedByReason)
	a.RowsByLevel = nonNilMap(a.RowsByLevel)
	a.EventsByLevel = nonNilMap(a.EventsByLevel)
	return &AccountingRecord{AccountingVersion: AccountingVersion, Dataset: out.Spec.Name,
		PolicyVersion: out.PolicyVersion,
		Window:        Window{Start: time.UnixMicro(out.Window.Start).UTC(), End: time.UnixMicro(out.Window.End).UTC()},
		Accounting:    a, Partitions: nonNil(out.Partitions)}
}

// writeAccounting writes the window's accounting record, replacing one an
// interrupted commit left, and returns its SHA-256. The caller holds the
// dataset's lock and has checked that the window has no manifest.
func (s *Sink) writeAccounting(ctx context.Context, out *pipeline.WindowOutput) (string, error) {
	dir, err := AccountingKey(out.Spec.Name, out.Window)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(newAccountingRecord(out)); err != nil {
		return "", err
	}
	if err := s.st.Put(ctx, dir+"/"+AccountingName, bytes.NewReader(b.Bytes()), objstore.PutOptions{Private: true}); err != nil {
		return "", fmt.Errorf("writing accounting record: %w", err)
	}
	return sha256Hex(b.Bytes()), nil
}

// AccountingKey returns the key prefix of a dataset window's accounting
// record in the output: accounting/<dataset>/<PartitionPath>.
func AccountingKey(dataset string, w pipeline.Window) (string, error) {
	if !validName(dataset) {
		return "", fmt.Errorf("dataset name %q is not a safe directory name", dataset)
	}
	rel, err := PartitionPath(w)
	if err != nil {
		return "", err
	}
	return path.Join("accounting", dataset, rel), nil
}

// ReadAccounting reads and decodes an accounting record, rejecting unknown
// fields and versions, and returns it with the hex SHA-256 of its bytes.
func ReadAccounting(path string) (*AccountingRecord, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	h := sha256.Sum256(b)
	sum := hex.EncodeToString(h[:])
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r AccountingRecord
	if err := dec.Decode(&r); err != nil {
		return nil, sum, fmt.Errorf("accounting record %s: %w", path, err)
	}
	if r.AccountingVersion != AccountingVersion {
		return nil, sum, fmt.Errorf("accounting record %s: accounting_version %d, want %d", path, r.AccountingVersion, AccountingVersion)
	}
	return &r, sum, nil
}
