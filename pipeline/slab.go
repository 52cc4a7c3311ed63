package pipeline

// NewContribution returns an empty contribution shaped for the partial's
// dataset, like the function NewContribution, but allocated with the
// partial's others: creating one is not three allocations, and its sums and
// entity sets lie beside it, so adding an event to it touches neighbouring
// cache lines rather than three distant ones. Aggregators allocate with it.
func (p *Partial) NewContribution(nSums, nSets int) *Contribution {
	return p.slab.new(nSums, nSets)
}

// contribSlab allocates contributions in chunks of blocks, each block a
// contribution with room for its sums and entity sets; a contribution with
// more than fit is allocated on its own.
type contribSlab struct {
	blocks []contribBlock
}

// contribBlock is a contribution with room for its sums and sets: the
// default datasets need at most 8 sums and 2 sets.
type contribBlock struct {
	c    Contribution
	sums [blockSums]int64
	sets [blockSets]EntitySet
}

const (
	slabChunk = 256
	blockSums = 8
	blockSets = 2
)

func (s *contribSlab) new(nSums, nSets int) *Contribution {
	if nSums > blockSums || nSets > blockSets {
		return NewContribution(nSums, nSets)
	}
	if len(s.blocks) == 0 {
		s.blocks = make([]contribBlock, slabChunk)
	}
	b := &s.blocks[0]
	s.blocks = s.blocks[1:]
	b.c.Sums = b.sums[:nSums:nSums]
	b.c.Sets = b.sets[:nSets:nSets]
	return &b.c
}
