package main

import (
	"context"
	"errors"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/kafkadlq"
	kafkasrc "github.com/mya/deid/sources/kafka"
	"github.com/mya/deid/transforms/consent"
)

// kafkaStages completes st for Kafka mode: the consumer-group source, the
// settings follower that feeds consent, and the dead-letter topic.
func (b *builder) kafkaStages(ctx context.Context, st *pipeline.Stages, cons *consent.Store) error {
	cfg, log := b.cfg, b.log
	var opts []kafkasrc.Option
	opts = append(opts, kafkasrc.WithLogger(log))
	if cfg.StopAtEnd {
		opts = append(opts, kafkasrc.StopAtEnd())
	}
	src, err := kafkasrc.New(cfg.Kafka, opts...)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, src.Close)
	st.Stream = src
	if cfg.Kafka.ScaleOut {
		b.src = src
		if b.job, err = b.jobStages(ctx, st, src); err != nil {
			return err
		}
	}

	topic := cfg.SettingsTopic
	skippedLog, err := openSettingsLog(st.Exclusions, cfg.Out, cfg.policyVersion())
	if err != nil {
		return err
	}
	settings, err := kafkasrc.NewSettings(cfg.Kafka, topic, func(key, value []byte, pos pipeline.Position) error {
		if value == nil {
			cons.Tombstone(string(key))
			return nil
		}
		// An unreadable record excludes its workspace; one that names no
		// workspace stops the follower (and consent with it) unless
		// consent.unattributable is skip.
		before := cons.Stats()
		if err := cons.ApplyValue(key, value, pos.String()); err != nil {
			return err
		}
		after := cons.Stats()
		switch {
		case after.Unattributable > before.Unattributable:
			log.Warn("settings record unreadable and naming no workspace: skipped (consent.unattributable: skip)", zap.Stringer("position", pos))
			// Logged before the follower moves on; a failure stops it.
			return skippedLog.add(context.Background(), pos)
		case after.Malformed > before.Malformed:
			log.Warn("settings record unreadable: the workspaces it names are excluded (consent_unreadable)", zap.Stringer("position", pos))
		}
		return nil
	}, kafkasrc.WithLogger(log))
	if err != nil {
		return err
	}
	b.closers = append(b.closers, settings.Close)
	followCtx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	b.closers = append(b.closers, func() error { stopFollow(); return nil })
	go func() {
		if err := settings.Run(followCtx); err != nil && followCtx.Err() == nil {
			log.Error("settings follower stopped", zap.Error(err))
		}
	}()
	var caughtUp atomic.Bool
	cons.SetCaughtUp(func(ctx context.Context) error {
		if err := settings.WaitCaughtUp(ctx); err != nil {
			return err
		}
		caughtUp.Store(true)
		return nil
	})
	b.consentErr = func() error { return errors.Join(settings.Err(), cons.Err()) }
	// /readyz also needs a partition assigned (serveOps checks it).
	b.ready = func() bool { return caughtUp.Load() && b.consentErr() == nil }

	dl := cfg.DeadLetters
	dl.Kafka, dl.Group = cfg.Kafka.Config, cfg.Kafka.Group
	dead, err := kafkadlq.New(dl, kafkadlq.WithLogger(log), kafkadlq.WithExcluded(consentExcluded(cons)))
	if err != nil {
		return err
	}
	logKeepPayload(log, dl.KeepPayload)
	b.closers = append(b.closers, dead.Close)
	st.DeadLetters = dead
	return nil
}
