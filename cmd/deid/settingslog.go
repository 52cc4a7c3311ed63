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
	"github.com/mya/deid/transforms/consent"
)

// logUnattributable writes the unattributable settings records the store
// skipped to the exclusion log's settings chain, one entry each (reason
// consent_unattributable, the record's file and line, nothing of its
// content). Settings records are not input records: the chain records no
// accounting, and verify counts none of its entries as an input line's
// disposition. A chain that already has a segment was written by the run this
// one resumes, from the same settings file: it is left as it is.
func logUnattributable(ctx context.Context, log pipeline.ExclusionLog, cons *consent.Store, policy string) error {
	skipped := cons.Unattributable()
	if len(skipped) == 0 {
		return nil
	}
	if n := cons.Stats().Unattributable; n > int64(len(skipped)) {
		return fmt.Errorf("consent: %d settings records are unreadable and name no workspace, more than the %d the exclusion log takes: fix the settings file", n, len(skipped))
	}
	ch, err := log.Chain(verify.SettingsChain)
	if err != nil {
		return fmt.Errorf("exclusions: settings chain: %w", err)
	}
	if ch.Seq() > 0 {
		return nil
	}
	now := time.Now().UnixMicro()
	for _, sk := range skipped {
		e := &pipeline.Exclusion{Pos: settingsPosition(sk.Position), Reason: pipeline.ReasonConsentUnattributable,
			PolicyVersion: policy, DecidedAt: now}
		if err := ch.Append(e); err != nil {
			return fmt.Errorf("exclusions: settings chain: %w", err)
		}
	}
	if _, err := ch.Commit(ctx, nil); err != nil {
		return fmt.Errorf("exclusions: settings chain: %w", err)
	}
	return nil
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
