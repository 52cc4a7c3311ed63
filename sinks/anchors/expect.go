package anchors

import (
	"fmt"
	"slices"
)

// Expected is what an anchor log says the output holds: every dataset
// window and exclusion segment anchored and not withdrawn by a rollback,
// with the SHA-256 anchored for it.
type Expected struct {
	// Lines are the anchored commits, by Key, in the order first anchored.
	Lines []Line
	// Conflicts name each window or segment anchored with two different
	// hashes and no rollback between: one of the two files replaced the
	// other.
	Conflicts []string
	// Duplicates counts the lines that repeat an anchor exactly (a restart
	// re-anchors the newest commit of every chain).
	Duplicates int
	// Rollbacks counts the rollback lines.
	Rollbacks int
	// Late counts the chain commits that reached the log after a rollback
	// which had already withdrawn them: written before it (their time is
	// older), by a writer fenced off the chain while its anchor was on
	// its way (a job of several instances).
	Late int
}

// Expect folds an anchor log, in order, into what the output must hold.
func Expect(lines []Line) *Expected {
	e := &Expected{}
	at := map[string]int{} // key → index in e.Lines
	type rollback struct {
		seq  int
		line Line
	}
	rolled := map[string]rollback{} // chain → its newest rollback
	for _, l := range lines {
		if l.Event == EventRollback {
			e.Rollbacks++
			if l.Kind == KindChain {
				rolled[l.Name] = rollback{seq: l.Seq, line: l}
			}
			// Withdraw the chain's segments after l.Seq.
			e.Lines = slices.DeleteFunc(e.Lines, func(x Line) bool {
				return x.Kind == KindChain && x.Name == l.Name && x.Seq > l.Seq
			})
			clear(at)
			for i := range e.Lines {
				at[e.Lines[i].Key()] = i
			}
			continue
		}
		if rb, ok := rolled[l.Name]; ok && l.Kind == KindChain && l.Seq > rb.seq && l.Time.Before(rb.line.Time) {
			e.Late++
			continue
		}
		k := l.Key()
		i, ok := at[k]
		switch {
		case !ok:
			at[k] = len(e.Lines)
			e.Lines = append(e.Lines, l)
		case e.Lines[i].SHA256 == l.SHA256:
			e.Duplicates++
		default:
			e.Conflicts = append(e.Conflicts, fmt.Sprintf("%s is anchored twice with different hashes (%s… at %s, %s… at %s): one replaced the other",
				k, short(e.Lines[i].SHA256), e.Lines[i].Time.Format("2006-01-02T15:04:05Z"), short(l.SHA256), l.Time.Format("2006-01-02T15:04:05Z")))
		}
	}
	return e
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
