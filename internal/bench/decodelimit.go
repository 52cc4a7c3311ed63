package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sources/file"
	"github.com/mya/deid/transforms/decode"
)

// DecodeCounts is what DecodeLimit read.
type DecodeCounts struct {
	Records   int64 `json:"records"`
	Malformed int64 `json:"malformed"`
	Bytes     int64 `json:"bytes"`
}

// DecodeLimit reads every file with deid's file source and decodes every
// record with deid's decoder into a typed event, and does nothing else:
// one goroutine per file, as deid runs one worker per partition. It is the
// upper bound of deid's throughput on the same input, since deid does this
// and more. The counts keep the work from being optimized away.
func DecodeLimit(ctx context.Context, files []string) (DecodeCounts, error) {
	counts := make([]DecodeCounts, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, path := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = decodeFile(ctx, path)
		}()
	}
	wg.Wait()
	var total DecodeCounts
	for _, c := range counts {
		total.Records += c.Records
		total.Malformed += c.Malformed
		total.Bytes += c.Bytes
	}
	return total, errors.Join(errs...)
}

func decodeFile(ctx context.Context, path string) (DecodeCounts, error) {
	var c DecodeCounts
	r, err := file.OpenFile(path, file.DefaultConfig())
	if err != nil {
		return c, err
	}
	defer r.Close()
	dec, err := decode.New(decode.DefaultConfig())
	if err != nil {
		return c, err
	}
	var ev pipeline.Event
	for {
		batch, err := r.Next(ctx)
		for i := range batch {
			rec := &batch[i]
			c.Records++
			c.Bytes += int64(len(rec.Value)) + 1
			if rec.Err != nil || dec.Decode(rec.Value, &ev) != nil {
				c.Malformed++
			}
		}
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return c, fmt.Errorf("decode limit: %w", err)
		}
	}
}
