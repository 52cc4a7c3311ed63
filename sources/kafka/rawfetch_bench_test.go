package kafka_test

// A prototype, measured only: what reading a partition would cost if deid
// sent its own fetch requests and parsed the record batches in place,
// instead of kafka-go's Conn.ReadBatchWith and Batch.Read. It speaks Fetch
// v4 over plain TCP (no TLS, no SASL, no compression, no control batches:
// the benchmark's topics have none of them) and is not used by deid.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mya/deid/pipeline"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// rawFetcher reads one partition with hand-made Fetch v4 requests.
type rawFetcher struct {
	conn  net.Conn
	r     *bufio.Reader
	topic string
	part  int32
	corr  int32
	req   []byte
	resp  []byte
	recs  []pipeline.Record
}

func dialRaw(addr, topic string, part int32) (*rawFetcher, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawFetcher{conn: c, r: bufio.NewReaderSize(c, 256<<10), topic: topic, part: part}, nil
}

func (f *rawFetcher) Close() error { return f.conn.Close() }

// fetch asks for records from offset on and returns those at or after it,
// and the offset after the last record of the last whole batch.
func (f *rawFetcher) fetch(offset int64, maxBytes int32, maxWait time.Duration) ([]pipeline.Record, int64, error) {
	f.corr++
	b := f.req[:0]
	b = append(b, 0, 0, 0, 0)               // size, filled in below
	b = binary.BigEndian.AppendUint16(b, 1) // Fetch
	b = binary.BigEndian.AppendUint16(b, 4)
	b = binary.BigEndian.AppendUint32(b, uint32(f.corr))
	b = appendStr(b, "deid-proto")
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica -1
	b = binary.BigEndian.AppendUint32(b, uint32(maxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	b = append(b, 0) // read uncommitted
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendStr(b, f.topic)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(f.part))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	f.req = b
	if _, err := f.conn.Write(b); err != nil {
		return nil, 0, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if cap(f.resp) < n {
		f.resp = make([]byte, n)
	}
	resp := f.resp[:n]
	if _, err := io.ReadFull(f.r, resp); err != nil {
		return nil, 0, err
	}
	d := dec{b: resp}
	if corr := d.i32(); corr != f.corr {
		return nil, 0, fmt.Errorf("correlation %d, want %d", corr, f.corr)
	}
	d.i32() // throttle
	var records []byte
	for range d.i32() {
		d.str()
		for range d.i32() {
			d.i32() // partition
			if code := d.i16(); code != 0 {
				return nil, 0, fmt.Errorf("error code %d", code)
			}
			d.i64()
			d.i64()
			if na := d.i32(); na > 0 {
				d.skip(16 * int(na))
			}
			records = d.bytes()
		}
	}
	if d.err != nil {
		return nil, 0, d.err
	}
	return f.parse(records, offset)
}

// parse reads the whole record batches of b; a batch cut short at the end
// (the broker stops at max bytes) is left for the next fetch.
func (f *rawFetcher) parse(b []byte, offset int64) ([]pipeline.Record, int64, error) {
	recs, next := f.recs[:0], offset
	for len(b) >= 61 {
		base := int64(binary.BigEndian.Uint64(b))
		size := int(binary.BigEndian.Uint32(b[8:]))
		if len(b) < 12+size {
			break
		}
		batch := b[:12+size]
		b = b[12+size:]
		if batch[16] != 2 {
			return nil, 0, fmt.Errorf("record batch magic %d", batch[16])
		}
		if crc32.Checksum(batch[21:], castagnoli) != binary.BigEndian.Uint32(batch[17:]) {
			return nil, 0, errors.New("record batch CRC mismatch")
		}
		attrs := binary.BigEndian.Uint16(batch[21:])
		if attrs&7 != 0 || attrs&0x20 != 0 {
			return nil, 0, errors.New("compressed or control batch: not in this prototype")
		}
		last := base + int64(binary.BigEndian.Uint32(batch[23:]))
		count := int(binary.BigEndian.Uint32(batch[57:]))
		d := dec{b: batch[61:]}
		for range count {
			l := d.varint()
			rec := dec{b: d.take(int(l))}
			rec.skip(1) // attributes
			rec.varint()
			off := base + rec.varint()
			if k := rec.varint(); k > 0 {
				rec.skip(int(k))
			}
			v := rec.varint()
			val := rec.take(int(v))
			if rec.err != nil {
				return nil, 0, rec.err
			}
			if off >= offset {
				recs = append(recs, pipeline.Record{Pos: pipeline.Position{Source: f.topic, Partition: f.part, Offset: off}, Value: val})
			}
		}
		if d.err != nil {
			return nil, 0, d.err
		}
		next = max(next, last+1)
	}
	f.recs = recs
	return recs, next, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// dec reads big-endian fields and zig-zag varints; the first shortfall
// sticks in err.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
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
func (d *dec) skip(n int) { d.take(n) }
func (d *dec) i16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}
func (d *dec) i32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}
func (d *dec) i64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}
func (d *dec) str() string { return string(d.take(int(d.i16()))) }
func (d *dec) bytes() []byte {
	n := d.i32()
	if n < 0 {
		return nil
	}
	return d.take(int(n))
}
func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		if d.err == nil {
			d.err = io.ErrUnexpectedEOF
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

// rawConsumer is the prototype as a consumer of benchmark: partitions
// 0..n-1 of topic on a single broker, the first perPart records of each.
func rawConsumer(b *testing.B, broker, topic string, perPart int) func(p int) int {
	return func(p int) int {
		f, err := dialRaw(broker, topic, int32(p))
		if err != nil {
			b.Error(err)
			return 0
		}
		defer f.Close()
		n, off := 0, int64(0)
		for n < perPart {
			recs, next, err := f.fetch(off, 4<<20, 100*time.Millisecond)
			if err != nil {
				b.Error(err)
				return n
			}
			n += min(len(recs), perPart-n)
			off = next
		}
		return n
	}
}
