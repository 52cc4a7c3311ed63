package aggregate

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/mya/deid/pipeline"
)

// unsafeData returns the address of s's bytes, to tell shared strings apart.
func unsafeData(s string) *byte { return unsafe.StringData(s) }

// The aggregator reads counters by their offset in the event: every
// counter's offset reads what its accessor returns, on an event whose
// integer fields all differ.
func TestCounterOffsets(t *testing.T) {
	var ev pipeline.Event
	n := int64(0)
	for _, v := range []reflect.Value{reflect.ValueOf(&ev.Campaign).Elem(), reflect.ValueOf(&ev.Usage).Elem()} {
		for i := range v.NumField() {
			if f := v.Field(i); f.Kind() == reflect.Int64 {
				n++
				f.SetInt(1000 + n)
			}
		}
	}
	counters := 0
	for name, f := range fields {
		if f.typ != fieldCounter {
			continue
		}
		counters++
		if got, want := *(*int64)(unsafe.Add(unsafe.Pointer(&ev), f.at)), f.num(&ev); got != want || want == 0 {
			t.Errorf("counter %s: %d at its offset %d, want %d", name, got, f.at, want)
		}
	}
	if counters == 0 {
		t.Fatal("no counters in the field table")
	}
}
