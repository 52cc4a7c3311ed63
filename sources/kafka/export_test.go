package kafka

// SetAfterHighWaterMarks makes WaitCaughtUp call f once it has read the
// high-water marks it waits for.
func SetAfterHighWaterMarks(s *Settings, f func()) { s.afterHighWaterMarks = f }
