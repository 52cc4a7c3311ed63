package exclusions

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mya/deid/sinks/anchors"
)

// DropForeign removes segment seq, the one after the chain's newest, which
// another writer placed: in a job of several instances, a former owner of
// the partition fenced between its check and its write. The chain's owner
// calls it once the group has confirmed it owns the partition. A rollback
// line to the chain's newest goes to the anchor log first, so the segment
// written in its place verifies against the anchors.
func (c *Chain) DropForeign(ctx context.Context, seq int) error {
	if seq != c.seq+1 {
		return fmt.Errorf("exclusions: chain %s: segment %d is not the one after the newest (%d)", c.name, seq, c.seq)
	}
	if c.log.anchor != nil {
		if err := c.anchorLine(ctx, anchors.EventRollback, c.seq, c.head, ""); err != nil {
			return fmt.Errorf("exclusions: chain %s: removing another writer's segment: %w", c.name, err)
		}
	}
	if err := c.log.st.Delete(ctx, c.dir+"/"+SegmentName(seq)); err != nil {
		return fmt.Errorf("exclusions: chain %s: removing another writer's segment: %w", c.name, err)
	}
	_, sigs, err := c.list(ctx)
	if err == nil {
		err = c.removeSigsAfter(ctx, sigs, c.seq)
	}
	if err != nil {
		return fmt.Errorf("exclusions: chain %s: removing another writer's segment: %w", c.name, err)
	}
	return nil
}

// Rollback removes every segment after seq, newest first, and drops what is
// buffered, so the chain continues from segment seq as if nothing had been
// committed after it. A restart calls it with the sequence number its
// checkpoint recorded: segments committed after that checkpoint are replayed
// from the input and written again, so no exclusion entry appears twice.
func (c *Chain) Rollback(seq int) error {
	if seq < 0 || seq > c.seq {
		return fmt.Errorf("exclusions: chain %s: cannot roll back to segment %d: the chain has %d", c.name, seq, c.seq)
	}
	if seq < c.seq && c.log.anchor != nil {
		// Say so in the anchor log before removing anything: the segments
		// written again after this line may differ from those anchored
		// before it (decision times), and a crash in between leaves only
		// segments the anchors no longer claim.
		head := ""
		if seq > 0 {
			var err error
			b, err := c.get(context.Background(), c.dir+"/"+SegmentName(seq))
			if err != nil {
				return fmt.Errorf("exclusions: chain %s: rolling back: %w", c.name, err)
			}
			head = sha256Hex(b)
		}
		if err := c.anchorLine(context.Background(), anchors.EventRollback, seq, head, ""); err != nil {
			return fmt.Errorf("exclusions: chain %s: rolling back: %w", c.name, err)
		}
	}
	ctx := context.Background()
	for n := c.seq; n > seq; n-- {
		if err := c.log.st.Delete(ctx, c.dir+"/"+SegmentName(n)); err != nil {
			return fmt.Errorf("exclusions: chain %s: rolling back: %w", c.name, err)
		}
	}
	// Their signatures go too (after the segments: a crash in between
	// leaves signatures of missing segments, which Chain removes).
	_, sigs, err := c.list(ctx)
	if err == nil {
		err = c.removeSigsAfter(ctx, sigs, seq)
	}
	if err != nil {
		return fmt.Errorf("exclusions: chain %s: rolling back: %w", c.name, err)
	}
	c.entries = c.entries[:0]
	c.seq, c.head, c.lastAcct = seq, "", nil
	if seq == 0 {
		return nil
	}
	meta, head, err := c.readMeta(ctx, seq)
	if err != nil {
		return fmt.Errorf("exclusions: chain %s: rolling back: %w", c.name, err)
	}
	c.head = head
	if meta.Accounting != nil {
		if c.lastAcct, err = json.Marshal(meta.Accounting); err != nil {
			return err
		}
	}
	return nil
}
