package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/mya/deid/pipeline"
)

// recordBatch builds a record batch of format 2 at offset base with attrs
// (its records compressed when they name a codec) and one record per value
// (nil: a null value), its checksum set.
func recordBatch(base int64, attrs uint16, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // no key
		if v == nil {
			r = binary.AppendVarint(r, -1)
		} else {
			r = binary.AppendVarint(r, int64(len(v)))
			r = append(r, v...)
		}
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	if codec := compress.Compression(attrs & 0x7); codec != 0 && codec.Codec() != nil {
		var z bytes.Buffer
		w := codec.Codec().NewWriter(&z)
		w.Write(recs)
		w.Close()
		recs = z.Bytes()
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(base))
	b = binary.BigEndian.AppendUint32(b, uint32(batchHeader-12+len(recs)))
	b = binary.BigEndian.AppendUint32(b, 0) // leader epoch
	b = append(b, 2)                        // magic
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	b = binary.BigEndian.AppendUint16(b, attrs)
	b = binary.BigEndian.AppendUint32(b, uint32(max(len(values)-1, 0)))
	b = binary.BigEndian.AppendUint64(b, 0) // timestamps
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // producer id -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = binary.BigEndian.AppendUint32(b, uint32(len(values)))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func TestParseBatches(t *testing.T) {
	id := pipeline.PartitionID{Source: "events", Partition: 3}
	two := recordBatch(10, 0, []byte("a"), nil)
	three := recordBatch(12, 0, []byte("b"), []byte{}, []byte("c"))
	cat := slices.Concat[[]byte]

	t.Run("whole batches from an offset inside the first", func(t *testing.T) {
		recs, next, why, err := parseBatches(nil, cat(two, three, three[:30]), id, 11, new([]byte), 1<<20)
		if err != nil || why != "" {
			t.Fatalf("parseBatches: %q, %v", why, err)
		}
		var got []string
		for _, r := range recs {
			if r.Pos.Source != "events" || r.Pos.Partition != 3 {
				t.Errorf("record at %s", r.Pos)
			}
			got = append(got, fmt.Sprintf("%s@%d", r.Value, r.Pos.Offset))
		}
		if strings.Join(got, " ") != "@11 b@12 @13 c@14" || next != 15 {
			t.Errorf("records %v, next %d; want [@11 b@12 @13 c@14] and 15 (the batch cut short left for the next fetch)", got, next)
		}
	})

	t.Run("compressed with each codec", func(t *testing.T) {
		for _, codec := range []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
			inflated := []byte("left from the fetch before")[:0]
			b := cat(recordBatch(10, uint16(codec), []byte("a"), nil), recordBatch(12, 0, []byte("b")),
				recordBatch(13, uint16(codec), []byte("c"), []byte("dd")))
			recs, next, why, err := parseBatches(nil, b, id, 10, &inflated, 1<<20)
			if err != nil || why != "" {
				t.Fatalf("%s: parseBatches: %q, %v", codec, why, err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, fmt.Sprintf("%s@%d", r.Value, r.Pos.Offset))
			}
			if strings.Join(got, " ") != "a@10 @11 b@12 c@13 dd@14" || next != 15 {
				t.Errorf("%s: records %v, next %d; want [a@10 @11 b@12 c@13 dd@14] and 15", codec, got, next)
			}
		}
	})

	t.Run("decompressed up to the limit", func(t *testing.T) {
		b := cat(recordBatch(10, uint16(compress.Lz4), []byte("a"), []byte("b")), recordBatch(12, 0, []byte("c")),
			recordBatch(13, uint16(compress.Lz4), []byte("d")))
		recs, next, why, err := parseBatches(nil, b, id, 10, new([]byte), 1)
		if err != nil || why != "" || len(recs) != 3 || next != 13 {
			t.Errorf("got %d records, next %d (%q, %v); want the first two batches (3 records) and 13, the second compressed batch left for the next fetch",
				len(recs), next, why, err)
		}
	})

	t.Run("left to kafka-go", func(t *testing.T) {
		old := recordBatch(10, 0, []byte("a"))
		old[16] = 1
		for name, b := range map[string][]byte{
			"unknown codec": recordBatch(10, 6, []byte("a")),
			"control":       recordBatch(10, 0x20, []byte("a")),
			"format 1":      old,
		} {
			_, _, why, err := parseBatches(nil, cat(two, b), id, 0, new([]byte), 1<<20)
			if err != nil || why == "" {
				t.Errorf("%s: why %q, err %v; want it left to kafka-go", name, why, err)
			}
		}
	})

	t.Run("damaged", func(t *testing.T) {
		flipped := append([]byte(nil), three...)
		flipped[len(flipped)-1] ^= 1
		short := recordBatch(12, 0, []byte("b"), []byte("c"))
		binary.BigEndian.PutUint32(short[57:], 3) // says three records, holds two
		binary.BigEndian.PutUint32(short[17:], crc32.Checksum(short[21:], castagnoli))
		garbled := recordBatch(12, uint16(compress.Zstd), []byte("b"))
		garbled[len(garbled)-3] ^= 0xff
		binary.BigEndian.PutUint32(garbled[17:], crc32.Checksum(garbled[21:], castagnoli))
		for name, b := range map[string][]byte{"checksum": flipped, "count": short, "compressed data": garbled} {
			_, _, _, err := parseBatches(nil, b, id, 0, new([]byte), 1<<20)
			if !errors.Is(err, kafka.InvalidMessage) {
				t.Errorf("%s: err %v; want a damaged batch (kafka.InvalidMessage, retried)", name, err)
			}
		}
	})
}
