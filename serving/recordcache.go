package serving

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	meta "github.com/strata-mq/strata/metadata"
)

// recordCache keeps records read from etcd for a short while: what
// authorization reads (a namespace's grants, a topic's grants, a tenant's
// admin roles) and topics' schema versions, so that a burst of lookups and
// opens, as after a node failure when every client reconnects at once,
// reads each record once rather than once per call. An entry is read again
// after ttl: a change made at another node applies here within ttl; one
// made at this node applies at once (the writing handler forgets the
// entry). Concurrent misses of one key share one read; failed reads are
// not kept.
type recordCache struct {
	m       Meta
	ttl     time.Duration
	timeout time.Duration // of one read
	now     func() time.Time
	sf      singleflight.Group
	mu      struct {
		sync.Mutex
		entries map[string]cacheEntry
		// gens counts each key's forgets (all: every key's): a read that
		// began before one does not keep what it read, which may predate
		// the change.
		gens map[string]uint64
		all  uint64
	}
}

type cacheEntry struct {
	at time.Time
	v  any // map[string]meta.Grant, meta.Tenant or []meta.SchemaVersion
}

// maxCacheEntries bounds the cache; past it, expired entries are swept,
// and if that is not enough, everything is dropped.
const maxCacheEntries = 100_000

func newRecordCache(m Meta, ttl, timeout time.Duration) *recordCache {
	c := &recordCache{m: m, ttl: ttl, timeout: timeout, now: time.Now}
	c.mu.entries = make(map[string]cacheEntry)
	c.mu.gens = make(map[string]uint64)
	return c
}

// Keys by kind, so that a namespace and a topic never share one.
func schemasKey(topic string) string       { return "schemas\x00" + topic }
func nsGrantsKey(ns string) string         { return "ns\x00" + ns }
func topicGrantsKey(topic string) string   { return "topic\x00" + topic }
func tenantAccessKey(tenant string) string { return "tenant\x00" + tenant }

// permissions answers namespace ns's grants.
func (c *recordCache) permissions(ctx context.Context, ns string) (map[string]meta.Grant, error) {
	v, err := c.get(ctx, nsGrantsKey(ns), func(ctx context.Context) (any, error) { return c.m.GetPermissions(ctx, ns) })
	g, _ := v.(map[string]meta.Grant)
	return g, err
}

// topicPermissions answers topic's own grants.
func (c *recordCache) topicPermissions(ctx context.Context, topic string) (map[string]meta.Grant, error) {
	v, err := c.get(ctx, topicGrantsKey(topic), func(ctx context.Context) (any, error) { return c.m.GetTopicPermissions(ctx, topic) })
	g, _ := v.(map[string]meta.Grant)
	return g, err
}

// tenant answers tenant's record; a tenant without one is a zero Tenant.
func (c *recordCache) tenant(ctx context.Context, tenant string) (meta.Tenant, error) {
	v, err := c.get(ctx, tenantAccessKey(tenant), func(ctx context.Context) (any, error) {
		t, err := c.m.GetTenant(ctx, tenant)
		if errors.Is(err, meta.ErrNotFound) {
			return meta.Tenant{}, nil
		}
		return t, err
	})
	t, _ := v.(meta.Tenant)
	return t, err
}

// get answers key's value, from the cache while it is fresh, else by load.
func (c *recordCache) get(ctx context.Context, key string, load func(context.Context) (any, error)) (any, error) {
	c.mu.Lock()
	e, ok := c.mu.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.v, nil
	}
	ch := c.sf.DoChan(key, func() (any, error) {
		c.mu.Lock()
		// A caller that missed while another's read was under way may
		// get here once that read is done and kept: no second read.
		if e, ok := c.mu.entries[key]; ok && c.now().Sub(e.at) < c.ttl {
			c.mu.Unlock()
			return e.v, nil
		}
		gen := c.genLocked(key)
		c.mu.Unlock()
		at := c.now()
		// Shared by every caller waiting on key: one caller's cancel must
		// not fail the others, so it has its own bound.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		v, err := load(lctx)
		if err == nil {
			c.put(key, gen, cacheEntry{at: at, v: v})
		}
		return v, err
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put keeps e unless something was forgotten since gen.
func (c *recordCache) put(key string, gen uint64, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.genLocked(key) {
		return
	}
	if len(c.mu.entries) >= maxCacheEntries {
		now := c.now()
		for k, old := range c.mu.entries {
			if now.Sub(old.at) >= c.ttl {
				delete(c.mu.entries, k)
			}
		}
		if len(c.mu.entries) >= maxCacheEntries {
			clear(c.mu.entries)
		}
	}
	c.mu.entries[key] = e
}

// forget drops key, after this node changed what it caches, so that the
// next check reads the change. Reads of key in flight do not keep what
// they read, and the next reader of key does not join them.
func (c *recordCache) forget(key string) {
	c.mu.Lock()
	delete(c.mu.entries, key)
	if len(c.mu.gens) >= maxCacheEntries {
		clear(c.mu.gens)
		c.mu.all++ // every read in flight began before: none is kept
	}
	c.mu.gens[key]++
	c.mu.Unlock()
	c.sf.Forget(key)
}

// forgetAll drops every entry (a namespace's deletion took many).
func (c *recordCache) forgetAll() {
	c.mu.Lock()
	clear(c.mu.entries)
	c.mu.all++
	c.mu.Unlock()
}

// genLocked is key's generation: it changes whenever key is forgotten.
func (c *recordCache) genLocked(key string) uint64 { return c.mu.all<<32 + c.mu.gens[key] }

// schemas answers topic's schema versions.
func (c *recordCache) schemas(ctx context.Context, topic string) ([]meta.SchemaVersion, error) {
	v, err := c.get(ctx, schemasKey(topic), func(ctx context.Context) (any, error) { return c.m.ListSchemas(ctx, topic) })
	all, _ := v.([]meta.SchemaVersion)
	return all, err
}
