package serving

// KeyOwner answers which of consumers (named, in attach order) a
// key_shared subscription gives key to, so tests can tell which keys move
// when a consumer joins.
func KeyOwner(consumers []string, key string) string {
	cs := make([]*consumer, len(consumers))
	for i, name := range consumers {
		cs[i] = &consumer{name: name}
	}
	return newHashRing(cs).pick(keyHash(key)).name
}
