package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/pipeline"
)

// partitionReader reads one topic-partition through kafka-go's batch API: a
// Conn to the partition's leader, one fetch per Next, each record's value
// read into a buffer the reader reuses (no allocation per record). It
// implements pipeline.PartitionReader.
type partitionReader struct {
	id   pipeline.PartitionID
	cfg  *Config
	cn   *kafkaconn.Conn
	log  *zap.Logger
	done <-chan struct{} // the generation's end; nil for none

	conn   *kafka.Conn
	leader string // "host:port" of the partition's leader, as last looked up
	boot   int    // the bootstrap broker to ask next
	retry  kafkaconn.Retrier

	// next is the offset of the next record to return.
	next int64
	// end is the offset Next stops at with io.EOF (StopAtEnd); -1 for none.
	end int64

	recs  []pipeline.Record
	arena []byte
	// spareRecs and spareArena hold the previous batch, which stays valid
	// while this one is read; the next fetch reuses them.
	spareRecs  []pipeline.Record
	spareArena []byte
	// inflated holds the records of the fetch's compressed batches,
	// decompressed (wire.go); spareInflated the previous fetch's.
	inflated, spareInflated []byte
	// keyed makes fetch keep keys too (the settings follower); msgs then
	// holds the records instead of recs.
	keyed  bool
	msgs   []message
	closed bool

	// wire is the connection under conn, for the reader's own fetches
	// (wire.go); parseOwn tells that they are made: until a fetch holds
	// something only kafka-go reads.
	wire     *wire
	parseOwn bool
}

// message is a record with its key, for the settings follower.
type message struct {
	Offset int64
	Key    []byte
	// Value is nil for a tombstone (and for an empty value, which kafka-go
	// does not tell apart).
	Value []byte
}

var _ pipeline.PartitionReader = (*partitionReader)(nil)

func newPartitionReader(cfg *Config, cn *kafkaconn.Conn, log *zap.Logger, id pipeline.PartitionID, done <-chan struct{}) *partitionReader {
	return &partitionReader{id: id, cfg: cfg, cn: cn, log: log.With(zap.Stringer("partition", id)), done: done,
		retry: kafkaconn.NewRetrier(&cfg.Config), end: -1, next: -1, parseOwn: cfg.RecordParser != ParserKafkaGo}
}

func (s *Source) newReader(id pipeline.PartitionID, done <-chan struct{}) *partitionReader {
	r := newPartitionReader(&s.cfg, s.conn, s.opts.log, id, done)
	if s.opts.stopAtEnd {
		r.end = 0 // set from the high-water mark by open
	}
	return r
}

// ID names the partition.
func (r *partitionReader) ID() pipeline.PartitionID { return r.id }

// errorf wraps err with the partition and the broker it was talking to.
func (r *partitionReader) errorf(format string, args ...any) error {
	at := r.leader
	if at == "" {
		at = "bootstrap " + addrs(r.cfg.Brokers)
	}
	return fmt.Errorf("kafka: %s (leader %s): %w", r.id, at, fmt.Errorf(format, args...))
}

// open connects to the partition's leader and positions the reader: at
// start when explicit (checking that it is on the broker), else at the
// first (kafka.FirstOffset) or last (kafka.LastOffset) offset. With
// StopAtEnd it records the high-water mark as the end. Transient failures
// are retried within the budget.
func (r *partitionReader) open(ctx context.Context, start int64, explicit bool) error {
	for {
		first, last, err := r.offsets(ctx)
		if err == nil {
			r.retry.Reset()
			switch {
			case !explicit && start == kafka.LastOffset:
				r.next = last
			case !explicit:
				r.next = first
			case start < first || start > last:
				if r.next, err = r.outOfRange(start, first, last); err != nil {
					return err
				}
			default:
				r.next = start
			}
			if r.end >= 0 {
				r.end = last
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !kafkaconn.Transient(err) {
			return r.errorf("opening the partition: %w", err)
		}
		r.log.Warn("opening the partition failed; retrying", zap.String("leader", r.leader), zap.Error(err))
		r.dropConn()
		if berr := r.retry.Backoff(ctx, err); berr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return r.errorf("opening the partition: %w", berr)
		}
	}
}

// offsets connects if needed and returns the partition's first offset and
// its high-water mark.
func (r *partitionReader) offsets(ctx context.Context) (first, last int64, err error) {
	if err := r.connect(ctx); err != nil {
		return 0, 0, err
	}
	r.conn.SetDeadline(time.Now().Add(r.cfg.RequestTimeout))
	defer func() {
		if r.conn != nil {
			r.conn.SetDeadline(time.Time{})
		}
	}()
	stop := context.AfterFunc(ctx, func() { r.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return r.conn.ReadOffsets()
}

// outOfRange applies offset_out_of_range to an offset that is not on the
// broker, returning where to go on.
func (r *partitionReader) outOfRange(off, first, last int64) (int64, error) {
	switch r.cfg.OffsetOutOfRange {
	case OutOfRangeEarliest:
		r.log.Warn("offset out of range; moving to the earliest offset (kafka.offset_out_of_range: earliest)",
			zap.Int64("offset", off), zap.Int64("earliest", first), zap.Int64("high_water_mark", last))
		return first, nil
	case OutOfRangeLatest:
		r.log.Warn("offset out of range; moving to the end of the partition (kafka.offset_out_of_range: latest)",
			zap.Int64("offset", off), zap.Int64("earliest", first), zap.Int64("high_water_mark", last))
		return last, nil
	}
	why := "the records before the earliest offset were deleted (retention)"
	if off > last {
		why = "the offset is past the end of the partition (was the topic re-created?)"
	}
	return 0, r.errorf("offset %d is out of range [%d, %d]: %s; records are never skipped silently: "+
		"set kafka.offset_out_of_range to earliest or latest to move on: %w", off, first, last, why, kafka.OffsetOutOfRange)
}

// connect looks the partition's leader up through a bootstrap broker and
// connects to it. It leaves r.conn nil on error.
func (r *partitionReader) connect(ctx context.Context) error {
	if r.conn != nil {
		return nil
	}
	var err error
	for range r.cfg.Brokers {
		boot := r.cfg.Brokers[r.boot%len(r.cfg.Brokers)]
		var p kafka.Partition
		if p, err = r.lookup(ctx, boot); err == nil {
			r.leader = hostPort(p.Leader)
			if r.conn, err = r.dialer().DialPartition(ctx, "tcp", "", p); err == nil {
				return nil
			}
			r.wire = nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Ask the next bootstrap broker next time.
		r.boot++
	}
	return err
}

// lookup asks broker boot for the partition's metadata. Unlike kafka-go's
// Dialer.LookupPartition it tries once, so the retry budget stays ours.
func (r *partitionReader) lookup(ctx context.Context, boot string) (kafka.Partition, error) {
	c, err := r.cn.Dialer.DialContext(ctx, "tcp", boot)
	if err != nil {
		return kafka.Partition{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(r.cfg.RequestTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	parts, err := c.ReadPartitions(r.id.Source)
	if err != nil {
		return kafka.Partition{}, err
	}
	for _, p := range parts {
		if p.Topic == r.id.Source && p.ID == int(r.id.Partition) {
			if p.Leader.Host == "" {
				return kafka.Partition{}, kafka.LeaderNotAvailable
			}
			return p, nil
		}
	}
	return kafka.Partition{}, kafka.UnknownTopicOrPartition
}

func (r *partitionReader) dropConn() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	r.wire = nil
}

// Next returns the next batch of records in offset order: one fetch from
// the partition's leader. It blocks until at least one record is
// available, ctx is done (ctx.Err()), the generation has ended (an error
// wrapping ErrGenerationEnded), or, with StopAtEnd, the end is reached
// (io.EOF). A tombstone or empty value is a record with an empty Value.
//
// Transient failures (a leader change, a broker restart, a reset
// connection) are retried inside Next with exponential backoff,
// reconnecting to the current leader; only a failure that outlasts the
// retry budget, or one that retrying cannot fix, is returned, naming the
// partition and the broker. An offset that is no longer on the broker is
// an error unless offset_out_of_range says otherwise: records are never
// skipped silently.
//
// The batch and the records' Values are the reader's, valid until the
// second call to Next after the one that returned them. Not safe for
// concurrent use.
func (r *partitionReader) Next(ctx context.Context) ([]pipeline.Record, error) {
	if r.closed {
		return nil, r.errorf("reading a closed partition reader")
	}
	// The previous batch stays valid while this one is read: its buffers
	// are set aside and this batch takes the ones before them.
	r.arena, r.spareArena = r.spareArena, r.arena
	r.inflated, r.spareInflated = r.spareInflated, r.inflated
	r.recs, r.spareRecs = r.spareRecs, r.recs
	for {
		if r.end >= 0 && r.next >= r.end {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-r.done:
			return nil, r.errorf("%w", ErrGenerationEnded)
		default:
		}
		n, err := r.fetch(ctx)
		if n > 0 {
			r.retry.Reset()
			if r.end >= 0 {
				if r.recs = trimEnd(r.recs, r.end); len(r.recs) == 0 {
					continue
				}
			}
			return r.recs, nil
		}
		if err == nil {
			r.retry.Reset()
			continue
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if err = r.recover(ctx, err); err != nil {
			return nil, err
		}
	}
}

// trimEnd drops the records at or past end.
func trimEnd(recs []pipeline.Record, end int64) []pipeline.Record {
	for len(recs) > 0 && recs[len(recs)-1].Pos.Offset >= end {
		recs = recs[:len(recs)-1]
	}
	return recs
}

// recover handles a failed fetch: it moves on from an out-of-range offset
// per the policy, retries a transient failure after a backoff, and returns
// anything else (or a failure past the budget) as the reader's error.
func (r *partitionReader) recover(ctx context.Context, err error) error {
	if errors.Is(err, kafka.OffsetOutOfRange) {
		first, last, oerr := r.offsets(ctx)
		if oerr == nil {
			if r.next >= first && r.next <= last {
				return nil // the range moved while we asked: fetch again
			}
			next, perr := r.outOfRange(r.next, first, last)
			if perr != nil {
				return perr
			}
			r.next = next
			return nil
		}
		err = oerr
	}
	if !kafkaconn.Transient(err) {
		return r.errorf("reading at offset %d: %w", r.next, err)
	}
	r.log.Warn("reading the partition failed; retrying", zap.String("leader", r.leader),
		zap.Int64("offset", r.next), zap.Error(err))
	r.dropConn()
	if berr := r.retry.Backoff(ctx, err); berr != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return r.errorf("reading at offset %d: %w", r.next, berr)
	}
	return nil
}

// fetch reads one batch from the leader into r.recs (or r.msgs when keyed)
// and returns how many records it holds: with the reader's own request and
// parser (wire.go) when they take it, else through kafka-go's batch API.
// It returns an error only when the batch holds no record: an error after
// some records shows again on the next fetch, which starts after them.
func (r *partitionReader) fetch(ctx context.Context) (int, error) {
	if err := r.connect(ctx); err != nil {
		return 0, err
	}
	if r.arena == nil && !r.keyed {
		// Room for the response's header around FetchMaxBytes of records.
		r.arena = make([]byte, r.cfg.FetchMaxBytes+64<<10)
	}
	if r.parseOwn && r.wire != nil { // never for a keyed reader: dialer keeps no wire
		if n, err := r.fetchOwn(ctx); !errors.Is(err, errNotParsed) {
			return n, err
		}
	}
	c := r.conn
	c.SetDeadline(time.Now().Add(r.cfg.FetchMaxWait + r.cfg.RequestTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	if _, err := c.Seek(r.next, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		stop()
		return 0, err
	}
	batch := c.ReadBatchWith(kafka.ReadBatchConfig{
		MinBytes: r.cfg.FetchMinBytes,
		MaxBytes: r.cfg.FetchMaxBytes,
		MaxWait:  r.cfg.FetchMaxWait,
	})
	var n, grow int
	var readErr error
	if r.keyed {
		n, readErr = r.readKeyed(batch)
	} else {
		n, grow, readErr = r.readValues(batch)
	}
	closeErr := batch.Close()
	if after := batch.Offset(); after > r.next {
		// Past the last record read, or past records compacted away at the
		// end of the batch.
		r.next = after
	}
	if !stop() {
		// ctx was cancelled and the deadline forced into the past: the
		// connection's state is unknown, so start afresh next time.
		r.dropConn()
	} else {
		c.SetDeadline(time.Time{})
	}
	if grow > 0 {
		// A record larger than the buffer: grow it for the next fetch.
		r.arena = make([]byte, max(grow, 2*len(r.arena)))
		r.log.Info("a record is larger than the read buffer; growing it", zap.Int("bytes", len(r.arena)))
	}
	if n > 0 {
		if closeErr != nil && !errors.Is(closeErr, io.ErrShortBuffer) && !errors.As(closeErr, new(kafka.Error)) {
			r.dropConn() // kafka-go closed it
		}
		return n, nil
	}
	switch {
	case errors.Is(readErr, io.EOF), errors.Is(readErr, kafka.RequestTimedOut), errors.Is(readErr, io.ErrShortBuffer):
		// An empty fetch (nothing new within fetch_max_wait), or a record
		// that needs the larger buffer: fetch again.
		if closeErr == nil || errors.Is(closeErr, kafka.RequestTimedOut) || errors.Is(closeErr, io.ErrShortBuffer) {
			return 0, nil
		}
		return 0, closeErr
	case readErr != nil:
		return 0, readErr
	}
	return 0, closeErr
}

// readValues reads the batch's records into r.recs, their values into the
// arena. It returns the number of records, and the size the arena needs
// when a record did not fit in what was left of it and no record was read
// before it.
func (r *partitionReader) readValues(batch *kafka.Batch) (n, grow int, err error) {
	recs := r.recs[:0]
	used := 0
	for {
		var size int
		size, err = batch.Read(r.arena[used:])
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) && len(recs) == 0 && size > len(r.arena) {
				grow = size
			}
			break
		}
		off := batch.Offset() - 1
		if off < r.next {
			// A fetch returns whole record batches: skip the records
			// before the one asked for.
			continue
		}
		recs = append(recs, pipeline.Record{
			Pos:   pipeline.Position{Source: r.id.Source, Partition: r.id.Partition, Offset: off},
			Value: r.arena[used : used+size : used+size],
		})
		used += size
		r.next = off + 1
	}
	r.recs = recs
	return len(recs), grow, err
}

// readKeyed reads the batch's records with their keys into r.msgs.
func (r *partitionReader) readKeyed(batch *kafka.Batch) (int, error) {
	msgs := r.msgs[:0]
	var err error
	for {
		var m kafka.Message
		if m, err = batch.ReadMessage(); err != nil {
			break
		}
		if m.Offset < r.next {
			continue
		}
		msgs = append(msgs, message{Offset: m.Offset, Key: m.Key, Value: m.Value})
		r.next = m.Offset + 1
	}
	r.msgs = msgs
	return len(msgs), err
}

// Close releases the partition's connection. Safe to call more than once;
// not concurrently with Next.
func (r *partitionReader) Close() error {
	r.closed = true
	r.dropConn()
	return nil
}
