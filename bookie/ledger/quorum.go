package ledger

import (
	"slices"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// writeSet returns the bookies that store entry e of fragment f: f.Bookies
// [(e+i)%E] for i in [0, qw).
func writeSet(f *metadata.Fragment, qw int, e ids.EntryID) []string {
	n := len(f.Bookies)
	ws := make([]string, 0, qw)
	for i := 0; i < qw && i < n; i++ {
		ws = append(ws, f.Bookies[(int(e%ids.EntryID(n))+i)%n])
	}
	return ws
}

// inWriteSet reports whether the bookie at index k of an ensemble of n
// stores entry e with write quorum qw, as writeSet would say without a
// slice per entry: k lies less than qw after e%n, around the ensemble.
func inWriteSet(n, qw, k int, e ids.EntryID) bool {
	return (k-int(e%ids.EntryID(n))+n)%n < qw
}

// fenceQuorum reports whether the bookies in ok cover at least (qw−qa)+1
// bookies of every write set of ensemble: then no write set can still give
// qa acknowledgements to a writer whose adds the ok bookies reject.
func fenceQuorum(ensemble []string, qw, qa int, ok func(string) bool) bool {
	need := qw - qa + 1
	f := metadata.Fragment{Bookies: ensemble}
	for s := range ensemble {
		n := 0
		for _, b := range writeSet(&f, qw, ids.EntryID(s)) {
			if ok(b) {
				n++
			}
		}
		if n < need {
			return false
		}
	}
	return true
}

// cloneLedger returns a deep copy of l (fragments and properties included).
func cloneLedger(l *metadata.Ledger) *metadata.Ledger {
	c := *l
	c.Fragments = make([]metadata.Fragment, len(l.Fragments))
	for i, f := range l.Fragments {
		c.Fragments[i] = metadata.Fragment{FirstEntry: f.FirstEntry, Bookies: slices.Clone(f.Bookies)}
	}
	if l.Properties != nil {
		c.Properties = make(map[string]string, len(l.Properties))
		for k, v := range l.Properties {
			c.Properties[k] = v
		}
	}
	if l.Offload != nil {
		o := *l.Offload
		o.Segments = slices.Clone(l.Offload.Segments)
		c.Offload = &o
	}
	return &c
}

// lastFragment returns the fragment being written (nil for a ledger without
// fragments).
func lastFragment(l *metadata.Ledger) *metadata.Fragment {
	if len(l.Fragments) == 0 {
		return nil
	}
	return &l.Fragments[len(l.Fragments)-1]
}
