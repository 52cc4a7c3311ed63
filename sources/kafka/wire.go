package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
)

// The reader's own fetch (kafka.record_parser: deid, the default). kafka-go
// reads a fetch record by record, copying each value out of its buffered
// connection; here one Fetch request goes over the same connection (kafka-go
// dialed it: TLS and SASL are done), the whole response is read into the
// reader's arena in one piece, and the values are sliced from it in place.
// It parses what a broker holds for a topic written by today's producers:
// record batches of format 2, uncompressed or compressed with any of
// Kafka's four codecs (decompressed with kafka-go's codecs into a buffer of
// the reader's, the values sliced from it). Anything else — a control
// batch, an older format — makes this reader fetch through kafka-go from
// then on, with the same result: TestOwnFetchReadsWhatKafkaGoReads holds the
// two to the same records.

const (
	// ParserDeid parses fetches in place (the default).
	ParserDeid = "deid"
	// ParserKafkaGo reads fetches through kafka-go's Batch API.
	ParserKafkaGo = "kafka-go"
)

// fetchVersion is the Fetch request version sent: the oldest every broker
// of Kafka 4 answers, and enough for an oversized first batch to come back
// whole (KIP-74).
const fetchVersion = 4

// batchHeader is the size of a record batch's header (format 2).
const batchHeader = 61

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// wire is the connection under the reader's kafka.Conn, as kafka-go's
// dialer left it (TLS and SASL done), for the reader's own requests.
type wire struct {
	net.Conn
	corr int32
	req  []byte
}

// dialer returns the connection's dialer; for a reader that makes its own
// fetches, changed so that it keeps the connection it dials (r.wire): TLS
// is set up by the dial function rather than by kafka-go on top of it, as
// kafka-go would set it up.
func (r *partitionReader) dialer() *kafka.Dialer {
	d := *r.cn.Dialer
	if !r.parseOwn || r.keyed {
		return &d
	}
	dial, tlsCfg := d.DialFunc, d.TLS
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	d.TLS = nil
	d.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if tlsCfg != nil {
			if c, err = handshake(ctx, c, tlsCfg, address); err != nil {
				return nil, err
			}
		}
		r.wire = &wire{Conn: c}
		return c, nil
	}
	return &d
}

// handshake runs TLS over c as kafka-go's dialer does: the server name,
// when the configuration has none, is the host dialed.
func handshake(ctx context.Context, c net.Conn, cfg *tls.Config, address string) (net.Conn, error) {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		host := address
		if i := strings.LastIndex(address, ":"); i >= 0 {
			host = address[:i]
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// errNotParsed tells that a fetch's response holds something the reader's
// own parser does not take; the fetch is made again through kafka-go.
var errNotParsed = errors.New("not parsed")

// fetchOwn makes one fetch with the reader's own request and parser into
// r.recs. It returns the number of records, or errNotParsed (nothing
// changed) when kafka-go must read this fetch; other errors are kafka-go's
// kinds (kafka.Error for a broker's error code), so that recover treats them
// alike.
func (r *partitionReader) fetchOwn(ctx context.Context) (int, error) {
	w := r.wire
	w.corr++
	w.req = fetchRequest(w.req[:0], w.corr, r.cn.Dialer.ClientID, r.id, r.next, r.cfg)
	w.SetDeadline(time.Now().Add(r.cfg.FetchMaxWait + r.cfg.RequestTimeout))
	stop := context.AfterFunc(ctx, func() { w.SetDeadline(time.Unix(1, 0)) })
	resp, err := r.exchange(w)
	if !stop() {
		r.dropConn()
		if err == nil {
			err = ctx.Err()
		}
		return 0, err
	}
	if err != nil {
		r.dropConn() // the connection's state is unknown
		return 0, err
	}
	w.SetDeadline(time.Time{})
	records, err := fetchRecords(resp, w.corr, r.id)
	if err != nil {
		return 0, err
	}
	r.inflated = r.inflated[:0]
	recs, next, why, err := parseBatches(r.recs[:0], records, r.id, r.next, &r.inflated, r.cfg.FetchMaxBytes)
	switch {
	case err != nil:
		return 0, err // recover names the partition
	case why != "":
		// fetch calls fetchOwn only while parseOwn holds: this is the once.
		r.log.Info("reading this partition through kafka-go from here on", zap.String("why", why), zap.Int64("offset", r.next))
		r.parseOwn = false
		return 0, errNotParsed
	case len(recs) == 0 && next == r.next && len(records) > 0:
		// Only part of a batch came back (a broker that does not send an
		// oversized first batch whole): kafka-go grows the buffer for it.
		return 0, errNotParsed
	}
	r.recs, r.next = recs, next
	return len(recs), nil
}

// exchange sends the request and reads the whole response into the arena,
// growing it when the response is larger.
func (r *partitionReader) exchange(w *wire) ([]byte, error) {
	if _, err := w.Write(w.req); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(w, size[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n < 8 || n > 1<<30 {
		return nil, fmt.Errorf("a fetch response of %d bytes: %w", n, kafka.InvalidMessage)
	}
	if len(r.arena) < n {
		r.arena = make([]byte, n+n/8)
		r.log.Info("a fetch response is larger than the read buffer; growing it", zap.Int("bytes", len(r.arena)))
	}
	resp := r.arena[:n]
	if _, err := io.ReadFull(w, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// fetchRequest appends a Fetch request (version fetchVersion, header v1)
// for one partition from offset next.
func fetchRequest(b []byte, corr int32, clientID string, id pipeline.PartitionID, next int64, cfg *Config) []byte {
	b = append(b, 0, 0, 0, 0) // size, set at the end
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, fetchVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // a consumer: replica -1
	b = binary.BigEndian.AppendUint32(b, uint32(cfg.FetchMaxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, uint32(cfg.FetchMinBytes))
	b = binary.BigEndian.AppendUint32(b, uint32(cfg.FetchMaxBytes))
	b = append(b, 0)                        // read uncommitted, as kafka-go's batches do
	b = binary.BigEndian.AppendUint32(b, 1) // one topic
	b = appendString(b, id.Source)
	b = binary.BigEndian.AppendUint32(b, 1) // one partition
	b = binary.BigEndian.AppendUint32(b, uint32(id.Partition))
	b = binary.BigEndian.AppendUint64(b, uint64(next))
	b = binary.BigEndian.AppendUint32(b, uint32(cfg.FetchMaxBytes))
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// fetchRecords checks a Fetch response (version fetchVersion) for one
// partition and returns its record bytes: the partition's error code as a
// kafka.Error, a response to another request or partition as damaged.
func fetchRecords(resp []byte, corr int32, id pipeline.PartitionID) ([]byte, error) {
	d := reader{b: resp}
	if got := d.i32(); got != corr && d.err == nil {
		return nil, fmt.Errorf("a fetch response to request %d where %d was sent: %w", got, corr, kafka.InvalidMessage)
	}
	d.i32() // throttle time
	var records []byte
	found := false
	for range d.count() {
		topic := d.str()
		for range d.count() {
			p := d.i32()
			code := d.i16()
			d.i64() // high-water mark
			d.i64() // last stable offset
			for range d.count() {
				d.i64() // aborted transactions: producer id, first offset
				d.i64()
			}
			recs := d.bytes()
			if d.err != nil || topic != id.Source || p != id.Partition {
				continue
			}
			if code != 0 {
				return nil, kafka.Error(code)
			}
			records, found = recs, true
		}
	}
	if d.err != nil || !found {
		return nil, fmt.Errorf("a fetch response without the partition asked for, or cut short: %w", kafka.InvalidMessage)
	}
	return records, nil
}

// parseBatches appends to recs the records at or after offset from the
// whole record batches of b (a batch cut short at the end, where the broker
// stopped at the fetch's size, is the next fetch's) and returns the offset
// after the last whole batch. A compressed batch's records are decompressed
// onto the end of *inflated, and their values sliced from there; a batch
// that would take them past inflateLimit is left for the next fetch, with
// the batches after it (the first is always taken). why, when
// not empty, says that b holds a batch this parser leaves to kafka-go (recs
// and next are then to be dropped). A batch that fails its checksum, does
// not decompress or does not add up is an error.
func parseBatches(recs []pipeline.Record, b []byte, id pipeline.PartitionID, offset int64, inflated *[]byte, inflateLimit int) (out []pipeline.Record, next int64, why string, err error) {
	next = offset
	packed := 0 // the compressed bytes decompressed so far
	for len(b) >= 17 {
		base := int64(binary.BigEndian.Uint64(b))
		size := int64(binary.BigEndian.Uint32(b[8:]))
		if int64(len(b)) < 12+size {
			break
		}
		if magic := b[16]; magic != 2 {
			return recs, next, fmt.Sprintf("a record batch of format %d (at offset %d)", magic, base), nil
		}
		if size < batchHeader-12 {
			return recs, next, "", fmt.Errorf("the record batch at offset %d is %d bytes, shorter than its header: %w", base, size, kafka.InvalidMessage)
		}
		batch := b[:12+size]
		b = b[12+size:]
		if crc32.Checksum(batch[21:], castagnoli) != binary.BigEndian.Uint32(batch[17:]) {
			return recs, next, "", fmt.Errorf("the record batch at offset %d fails its checksum (damaged on the broker or on the way): %w", base, kafka.InvalidMessage)
		}
		attrs := binary.BigEndian.Uint16(batch[21:])
		if attrs&0x20 != 0 {
			return recs, next, fmt.Sprintf("a control record batch (at offset %d)", base), nil
		}
		body := batch[batchHeader:]
		if codec := compress.Compression(attrs & 0x7); codec != compress.None {
			if codec.Codec() == nil {
				return recs, next, fmt.Sprintf("a record batch compressed with codec %d (at offset %d)", codec, base), nil
			}
			if n := len(*inflated); n > 0 && n+len(body)*n/packed > inflateLimit {
				// This batch would take what is decompressed past the
				// limit (at the ratio of the batches before it): it and
				// the rest are the next fetch's, so that a partition's
				// batches stay near fetch_max_bytes whatever the
				// compression.
				break
			}
			packed += len(body)
			if body, err = inflate(inflated, body, codec, inflateLimit); err != nil {
				return recs, next, "", fmt.Errorf("the record batch at offset %d does not decompress (%s): %v: %w", base, codec, err, kafka.InvalidMessage)
			}
		}
		last := base + int64(binary.BigEndian.Uint32(batch[23:]))
		count := int(int32(binary.BigEndian.Uint32(batch[57:])))
		d := reader{b: body}
		for range count {
			rec := reader{b: d.take(int(d.varint()))}
			rec.take(1)  // attributes
			rec.varint() // timestamp delta
			off := base + rec.varint()
			rec.take(int(max(rec.varint(), 0))) // the key (null: -1)
			var val []byte
			if n := rec.varint(); n > 0 {
				val = rec.take(int(n))
			} else {
				val = body[:0:0] // null or empty: an empty Value
			}
			if err := errors.Join(d.err, rec.err); err != nil || off > last || off < base {
				return recs, next, "", fmt.Errorf("the record batch at offset %d is malformed (record at offset %d): %w", base, off, kafka.InvalidMessage)
			}
			if off >= offset {
				recs = append(recs, pipeline.Record{Pos: pipeline.Position{Source: id.Source, Partition: id.Partition, Offset: off}, Value: val})
			}
		}
		if d.err != nil || len(d.b) != 0 || count < 0 {
			return recs, next, "", fmt.Errorf("the record batch at offset %d does not hold the %d records it says: %w", base, count, kafka.InvalidMessage)
		}
		next = max(next, last+1)
	}
	return recs, next, "", nil
}

// maxInflated bounds what one fetch's compressed batches may decompress to:
// a batch that claims more is refused as damaged rather than allowed to
// take the memory.
const maxInflated = 1 << 30

// inflate decompresses a batch's records with codec onto the end of *buf
// and returns them. An empty buf is given room for limit bytes and the
// batch first, so that it rarely grows afterwards.
func inflate(buf *[]byte, compressed []byte, codec compress.Compression, limit int) ([]byte, error) {
	rd := codec.Codec().NewReader(bytes.NewReader(compressed))
	defer rd.Close()
	b, start := *buf, len(*buf)
	if cap(b) == 0 {
		b = make([]byte, 0, limit+4*len(compressed))
	}
	for {
		if len(b) == cap(b) {
			if len(b) >= maxInflated {
				return nil, fmt.Errorf("more than %d bytes decompressed", maxInflated)
			}
			b = slices.Grow(b, max(4*len(compressed), cap(b)))
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			*buf = b
			return b[start:len(b):len(b)], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// reader reads a response's big-endian fields and zig-zag varints; the
// first shortfall sticks in err and later reads return zeros.
type reader struct {
	b   []byte
	err error
}

func (d *reader) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		if d.err == nil {
			d.err = io.ErrUnexpectedEOF
		}
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *reader) i16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (d *reader) i32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (d *reader) i64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

// count reads an array's length; a null array (-1) has none.
func (d *reader) count() int { return max(int(d.i32()), 0) }

func (d *reader) str() string { return string(d.take(int(d.i16()))) }

// bytes reads nullable bytes; null is nil.
func (d *reader) bytes() []byte {
	n := d.i32()
	if n < 0 {
		return nil
	}
	return d.take(int(n))
}

func (d *reader) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = io.ErrUnexpectedEOF
		return 0
	}
	d.b = d.b[n:]
	return v
}
