package kafka

// SetAfterHighWaterMarks makes WaitCaughtUp call f once it has read the
// high-water marks it waits for.
func SetAfterHighWaterMarks(s *Settings, f func()) { s.afterHighWaterMarks = f }

// MaxBatch is the most records Next returns at once.
const MaxBatch = maxBatch
