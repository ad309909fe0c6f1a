package serving

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// bookieAdmin is what decommissioning bookies needs of the metadata store
// beyond Meta (the etcd store has it; the in-memory twin does not, and its
// nodes answer UNIMPLEMENTED).
type bookieAdmin interface {
	ListLedgers(ctx context.Context) ([]*metadata.Ledger, error)
	SetBookieDraining(ctx context.Context, id string, on bool, nowNanos int64) error
	ListDrainingBookies(ctx context.Context) ([]string, error)
}

func (n *Node) bookieAdmin() (bookieAdmin, error) {
	ba, ok := n.meta.(bookieAdmin)
	if !ok {
		return nil, errcode.New(errcode.Unimplemented, "this node's metadata store cannot decommission bookies")
	}
	return ba, nil
}

// DrainBookie marks a bookie draining, or not (undo). Draining bookies are
// left out of new ensembles, and the auditor (ledger.Auditor, run by Serve)
// copies every closed ledger off them while they still serve reads.
func (n *Node) DrainBookie(ctx context.Context, req *servingpb.DrainBookieRequest) (*servingpb.DrainBookieResponse, error) {
	ba, err := n.bookieAdmin()
	if err != nil {
		return nil, err
	}
	if err := ba.SetBookieDraining(ctx, req.GetBookie(), !req.GetUndo(), time.Now().UnixNano()); err != nil {
		return nil, unavailable("marking the bookie", err)
	}
	n.log.Info("bookie drain changed", "bookie", req.GetBookie(), "draining", !req.GetUndo(), "by", RoleOf(ctx))
	return &servingpb.DrainBookieResponse{}, nil
}

// ListBookies answers every bookie registered, draining or named by a
// ledger, with the ledgers that name it.
func (n *Node) ListBookies(ctx context.Context, _ *servingpb.ListBookiesRequest) (*servingpb.ListBookiesResponse, error) {
	ba, err := n.bookieAdmin()
	if err != nil {
		return nil, err
	}
	registered, err := n.meta.ListBookies(ctx)
	if err != nil {
		return nil, unavailable("listing bookies", err)
	}
	draining, err := ba.ListDrainingBookies(ctx)
	if err != nil {
		return nil, unavailable("listing draining bookies", err)
	}
	ledgers, err := ba.ListLedgers(ctx)
	if err != nil {
		return nil, unavailable("listing ledgers", err)
	}
	byID := map[string]*servingpb.BookieStatus{}
	get := func(id string) *servingpb.BookieStatus {
		if b := byID[id]; b != nil {
			return b
		}
		b := &servingpb.BookieStatus{Id: id}
		byID[id] = b
		return b
	}
	for _, b := range registered {
		s := get(b.ID)
		s.Addr, s.Registered, s.ReadOnly = b.Addr, true, b.ReadOnly
	}
	for _, id := range draining {
		get(id).Draining = true
	}
	for _, l := range ledgers {
		if l.Offload != nil && l.Offload.State != metadata.OffloadStarted {
			continue // the object store holds it: no bookie is needed
		}
		var named []string
		for _, f := range l.Fragments {
			for _, b := range f.Bookies {
				if !slices.Contains(named, b) {
					named = append(named, b)
				}
			}
		}
		for _, b := range named {
			s := get(b)
			s.Ledgers++
			if l.State != metadata.LedgerClosed {
				s.OpenLedgers++
			}
		}
	}
	out := &servingpb.ListBookiesResponse{}
	for _, b := range byID {
		out.Bookies = append(out.Bookies, b)
	}
	slices.SortFunc(out.Bookies, func(a, b *servingpb.BookieStatus) int { return cmp.Compare(a.Id, b.Id) })
	return out, nil
}
