package tiering

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-mq/strata/internal/topic"
)

// newObjectKey names a new segment object of ledger in topic directory dir.
// The uuid is version 7, so the key carries its creation time (to the
// millisecond) for the garbage collector.
func newObjectKey(dir string, ledger uint64) string {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New() // the random source failed; a v4 key is never collected
	}
	return fmt.Sprintf("%s/%020d-%s.arrow", dir, ledger, id)
}

// keyTime returns the creation time carried by a segment key, false when
// the key is not one this package writes.
func keyTime(key string) (time.Time, bool) {
	base := strings.TrimSuffix(path.Base(key), ".arrow")
	if len(base) != 20+1+36 || base[20] != '-' || !strings.HasSuffix(key, ".arrow") {
		return time.Time{}, false
	}
	id, err := uuid.Parse(base[21:])
	if err != nil || id.Version() != 7 {
		return time.Time{}, false
	}
	sec, nsec := id.Time().UnixTime()
	return time.Unix(sec, nsec), true
}

// CollectGarbage deletes the segment objects of topic that no metadata
// references (referenced reports whether a key is named by a ledger's
// Offload record) and that were created before the cutoff: objects of
// failed offloads whose cleanup could not run. Pass a cutoff older than
// any offload that may still be running, so its objects, not yet
// recorded, are spared. Keys this package did not write are left alone.
// It returns the deleted keys.
func CollectGarbage(ctx context.Context, store Store, topicName string, referenced func(key string) bool, cutoff time.Time) ([]string, error) {
	name, err := topic.Parse(topicName)
	if err != nil {
		return nil, err
	}
	var orphans []string
	err = store.List(ctx, name.String()+"/", func(o ObjectInfo) error {
		created, ok := keyTime(o.Key)
		if ok && created.Before(cutoff) && !referenced(o.Key) {
			orphans = append(orphans, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, k := range orphans {
		if err := store.Delete(ctx, k); err != nil {
			return orphans[:i], err
		}
	}
	if tc, ok := store.(tempCollector); ok {
		if err := tc.removeStaleTemps(ctx, name.String()+"/", cutoff); err != nil {
			return orphans, err
		}
	}
	return orphans, nil
}

// tempCollector is a store that writes an object through a temporary
// file first (DirStore), which a crash mid-write leaves behind: List does
// not show it, so CollectGarbage removes those of the topic last changed
// before its cutoff through this.
type tempCollector interface {
	removeStaleTemps(ctx context.Context, prefix string, cutoff time.Time) error
}
