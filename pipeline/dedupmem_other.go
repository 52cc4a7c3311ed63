//go:build !linux

package pipeline

// tableMem owns nothing where tables live on the heap.
type tableMem struct{}

// allocBuckets returns a zeroed table of n buckets on the heap.
func allocBuckets(n int, _ *tableMem) []dedupBucket { return make([]dedupBucket, n) }

func (*tableMem) release() {}
