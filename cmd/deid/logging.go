package main

import (
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func zapISO8601(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(t.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// zapCore builds a JSON core writing to w with zc's level and encoder. The
// writes are serialized: goroutines log at once (the settings follower, the
// publisher, the workers), and w need not be safe for concurrent use.
func zapCore(zc zap.Config, w io.Writer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zc.EncoderConfig), zapcore.Lock(zapcore.AddSync(w)), zc.Level)
}
