package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/pipeline"
)

// recordBatch builds a record batch of format 2 at offset base with attrs
// and one record per value (nil: a null value), its checksum set.
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
		recs, next, why, err := parseBatches(nil, cat(two, three, three[:30]), id, 11)
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

	t.Run("left to kafka-go", func(t *testing.T) {
		old := recordBatch(10, 0, []byte("a"))
		old[16] = 1
		for name, b := range map[string][]byte{
			"compressed": recordBatch(10, 2, []byte("a")),
			"control":    recordBatch(10, 0x20, []byte("a")),
			"format 1":   old,
		} {
			_, _, why, err := parseBatches(nil, cat(two, b), id, 0)
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
		for name, b := range map[string][]byte{"checksum": flipped, "count": short} {
			_, _, _, err := parseBatches(nil, b, id, 0)
			if !errors.Is(err, kafka.InvalidMessage) {
				t.Errorf("%s: err %v; want a damaged batch (kafka.InvalidMessage, retried)", name, err)
			}
		}
	})
}
