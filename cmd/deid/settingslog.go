package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/transforms/consent"
)

// settingsLog writes settings records skipped under consent.unattributable:
// skip to the exclusion log's settings chain: one entry each (reason
// consent_unattributable, the record's position, nothing of its content),
// committed at once, each position once even across restarts (a Kafka-mode
// follower reads the whole topic again; a resumed file-mode run reads the
// file again). Settings records are not input records: the chain records no
// accounting, and verify counts none of its entries as an input line's
// disposition. Not safe for concurrent use (the follower applies records
// one at a time).
type settingsLog struct {
	ch     pipeline.ExclusionChain
	logged map[string]bool
	policy string
}

// openSettingsLog opens the settings chain of the log under out and reads
// the positions it already holds.
func openSettingsLog(log pipeline.ExclusionLog, out, policy string) (*settingsLog, error) {
	ch, err := log.Chain(verify.SettingsChain)
	if err != nil {
		return nil, fmt.Errorf("exclusions: settings chain: %w", err)
	}
	l := &settingsLog{ch: ch, logged: map[string]bool{}, policy: policy}
	if ch.Seq() == 0 {
		return l, nil
	}
	for seq := 1; seq <= ch.Seq(); seq++ {
		entries, _, err := readSettingsSegment(log, out, seq)
		if err != nil {
			return nil, fmt.Errorf("exclusions: settings chain: %w (the exclusion log is damaged: restore it, or start a new output)", err)
		}
		for _, e := range entries {
			l.logged[e.Pos.String()] = true
		}
	}
	return l, nil
}

// readSettingsSegment reads segment seq of the settings chain: through the
// log's store when it has one (an output on object storage), else from the
// directory out.
func readSettingsSegment(log pipeline.ExclusionLog, out string, seq int) ([]pipeline.Exclusion, *exclusions.SegmentMeta, error) {
	if l, ok := log.(*exclusions.Log); ok {
		return l.ReadSegment(context.Background(), verify.SettingsChain, seq)
	}
	return exclusions.ReadSegment(filepath.Join(exclusions.ChainDir(out, verify.SettingsChain), exclusions.SegmentName(seq)))
}

// add logs skipped records, in one segment, leaving out positions logged
// already.
func (l *settingsLog) add(ctx context.Context, positions ...pipeline.Position) error {
	now := time.Now().UnixMicro()
	n := 0
	for _, pos := range positions {
		if l.logged[pos.String()] {
			continue
		}
		e := &pipeline.Exclusion{Pos: pos, Reason: pipeline.ReasonConsentUnattributable, PolicyVersion: l.policy, DecidedAt: now}
		if err := l.ch.Append(e); err != nil {
			return fmt.Errorf("exclusions: settings chain: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := l.ch.Commit(ctx, nil); err != nil {
		return fmt.Errorf("exclusions: settings chain: %w", err)
	}
	for _, pos := range positions {
		l.logged[pos.String()] = true
	}
	return nil
}

// logUnattributable logs every unattributable record a file-mode load
// skipped (see settingsLog).
func logUnattributable(ctx context.Context, log pipeline.ExclusionLog, out string, cons *consent.Store, policy string) error {
	skipped := cons.Unattributable()
	if len(skipped) == 0 {
		return nil
	}
	if n := cons.Stats().Unattributable; n > int64(len(skipped)) {
		return fmt.Errorf("consent: %d settings records are unreadable and name no workspace, more than the %d the exclusion log takes: fix the settings file", n, len(skipped))
	}
	l, err := openSettingsLog(log, out, policy)
	if err != nil {
		return err
	}
	positions := make([]pipeline.Position, len(skipped))
	for i, sk := range skipped {
		positions[i] = settingsPosition(sk.Position)
	}
	return l.add(ctx, positions...)
}

// settingsPosition turns a file-mode settings position ("path:line") into
// a Position: the file's base name, partition 0, the line.
func settingsPosition(pos string) pipeline.Position {
	i := strings.LastIndexByte(pos, ':')
	line, err := strconv.ParseInt(pos[i+1:], 10, 64)
	if i < 0 || err != nil {
		return pipeline.Position{Source: pos}
	}
	return pipeline.Position{Source: filepath.Base(pos[:i]), Offset: line}
}
