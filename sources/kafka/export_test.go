package kafka

import "github.com/mya/deid/pipeline"

// SetAfterHighWaterMarks makes WaitCaughtUp call f once it has read the
// high-water marks it waits for.
func SetAfterHighWaterMarks(s *Settings, f func()) { s.afterHighWaterMarks = f }

// ParsesOwn tells whether reader r still makes its own fetches (wire.go),
// rather than reading through kafka-go.
func ParsesOwn(r pipeline.PartitionReader) bool { return r.(*partitionReader).parseOwn }
