package main

import (
	"context"
	"fmt"
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

	topic := cfg.SettingsTopic
	settings, err := kafkasrc.NewSettings(cfg.Kafka, topic, func(key, value []byte, offset int64) {
		if value == nil {
			cons.Tombstone(string(key))
			return
		}
		if err := cons.ApplyJSON(value, fmt.Sprintf("%s@%d", topic, offset)); err != nil {
			log.Warn("settings record skipped", zap.String("topic", topic), zap.Int64("offset", offset), zap.Error(err))
		}
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
	// /readyz also needs a partition assigned (serveOps checks it).
	b.ready = caughtUp.Load

	dl := cfg.DeadLetters
	dl.Kafka = cfg.Kafka
	dead, err := kafkadlq.New(dl, kafkadlq.WithLogger(log))
	if err != nil {
		return err
	}
	b.closers = append(b.closers, dead.Close)
	st.DeadLetters = dead
	return nil
}
