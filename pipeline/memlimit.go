package pipeline

import (
	"math"
	"runtime/debug"
	"sync"
)

// The process's soft memory limit covers the Go heap and deid's tables
// outside it (the dedup tables of big windows): Go's own limit
// (runtime/debug.SetMemoryLimit) sees only the heap, so it is kept at the
// configured limit less what those tables hold, and follows them as they
// are mapped and returned.
var memLimit struct {
	sync.Mutex
	limit   int64 // 0: none set through SetMemoryLimit
	offHeap int64
}

// SetMemoryLimit sets a soft limit on the memory of the process, the Go
// heap and deid's off-heap tables together; 0 or less sets none (Go's limit
// becomes unlimited). Go's collector works harder as the heap nears what
// the tables leave of the limit, though never below a quarter of it, so
// that a window's dedup table cannot leave the heap nothing.
func SetMemoryLimit(limit int64) {
	memLimit.Lock()
	defer memLimit.Unlock()
	memLimit.limit = max(limit, 0)
	applyMemLimit()
}

// offHeapChanged accounts for delta bytes mapped (or, negative, returned).
func offHeapChanged(delta int64) {
	memLimit.Lock()
	defer memLimit.Unlock()
	memLimit.offHeap += delta
	if memLimit.limit > 0 {
		applyMemLimit()
	}
}

// applyMemLimit passes the limit left for the heap to Go; memLimit is held.
func applyMemLimit() {
	if memLimit.limit == 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return
	}
	debug.SetMemoryLimit(max(memLimit.limit-memLimit.offHeap, memLimit.limit/4))
}
