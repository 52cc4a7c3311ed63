package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/mya/deid/sinks/anchors"
)

// anchors opens the anchor log the config names: nil when none, so that
// every commit then goes unanchored (and verify says tail truncation cannot
// be detected).
func (b *builder) anchors() (anchors.Anchorer, error) {
	cfg := b.cfg.Anchors
	var all anchors.Multi
	if isURL(cfg.File) {
		// On object storage: one object per line (anchors.Store).
		ctx := context.Background()
		st, err := openStore(ctx, b.cfg.Storage, "anchors.file", cfg.File)
		if err != nil {
			return nil, err
		}
		a, err := anchors.OpenStore(ctx, st)
		if err != nil {
			return nil, err
		}
		all = append(all, a)
		b.log.Info("anchoring every commit", zap.String("anchors_file", cfg.File))
	} else if cfg.File != "" {
		f, err := anchors.OpenFile(cfg.File)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, f.Close)
		all = append(all, f)
		b.log.Info("anchoring every commit", zap.String("anchors_file", cfg.File))
	}
	if cfg.Topic != "" {
		t, err := anchors.NewTopic(b.cfg.Kafka.Config, cfg.Topic)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, t.Close)
		all = append(all, t)
		b.log.Info("anchoring every commit", zap.String("anchors_topic", cfg.Topic))
	}
	if len(all) == 0 {
		b.log.Warn("no anchor log configured (anchors.file or --anchors): deleting the newest windows together with the exclusion segments after them cannot be detected")
		return nil, nil
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}
