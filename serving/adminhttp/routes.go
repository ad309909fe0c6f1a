package adminhttp

import (
	"net/http"
)

// prefix is the root of the API's paths, as Pulsar's.
const prefix = "/admin/v2"

// topicPath is T in the package comment.
const topicPath = prefix + "/persistent/{tenant}/{namespace}/{topic}"

// schemaPath is a topic's schema registry, S in the package comment.
const schemaPath = prefix + "/schemas/{tenant}/{namespace}/{topic}"

// Mount adds the API's routes and the console to mux. A node's mux
// answers / itself (health, metrics): these patterns are more specific.
func (g *Gateway) Mount(mux *http.ServeMux) {
	for _, r := range g.routes() {
		mux.Handle(r.pattern, g.guard(g.serve(r.h)))
	}
	mux.Handle("GET /console", g.guard(http.HandlerFunc(g.console)))
	mux.Handle("GET /console/{$}", g.guard(http.HandlerFunc(g.console)))
}

type route struct {
	pattern string
	h       handler
}

// routes is the API, one line per path and method.
func (g *Gateway) routes() []route {
	const ns = prefix + "/namespaces/{tenant}/{namespace}"
	const sub = topicPath + "/subscription/{subscription}"
	return []route{
		{"GET " + prefix + "/cluster", getCluster},
		{"GET " + prefix + "/bookies", getBookies},
		{"POST " + prefix + "/bookies/{bookie}/decommission", drainBookie(false)},
		{"POST " + prefix + "/bookies/{bookie}/recommission", drainBookie(true)},

		{"GET " + prefix + "/tenants", getTenants},
		{"GET " + prefix + "/tenants/{tenant}", getTenant},
		{"PUT " + prefix + "/tenants/{tenant}", setTenant},
		{"POST " + prefix + "/tenants/{tenant}", setTenant},

		{"GET " + prefix + "/namespaces/{tenant}", getNamespaces},
		{"DELETE " + ns, deleteNamespace},
		{"GET " + ns + "/policies", getNamespacePolicy},
		{"POST " + ns + "/policies", setNamespacePolicy},
		{"GET " + ns + "/permissions", getNamespacePermissions},
		{"POST " + ns + "/permissions/{role}", grantNamespacePermission},
		{"DELETE " + ns + "/permissions/{role}", revokeNamespacePermission},

		{"GET " + prefix + "/persistent/{tenant}/{namespace}", listTopics(false)},
		{"GET " + prefix + "/persistent/{tenant}/{namespace}/partitioned", listTopics(true)},
		{"PUT " + topicPath, createTopic},
		{"DELETE " + topicPath, deleteTopic},
		{"GET " + topicPath + "/partitions", getPartitions},
		{"PUT " + topicPath + "/partitions", createPartitioned},
		{"POST " + topicPath + "/partitions", addPartitions},
		{"DELETE " + topicPath + "/partitions", deleteTopic},
		{"GET " + topicPath + "/stats", topicStats},
		{"GET " + topicPath + "/subscriptions", listSubscriptions},
		{"POST " + topicPath + "/terminate", terminateTopic},
		{"PUT " + topicPath + "/unload", unloadTopic},
		{"PUT " + topicPath + "/compaction", compactTopic},
		{"PUT " + topicPath + "/offload", offloadTopic},
		{"GET " + topicPath + "/policies", getTopicPolicy},
		{"POST " + topicPath + "/policies", setTopicPolicy},
		{"DELETE " + topicPath + "/policies", removeTopicPolicy},
		{"GET " + topicPath + "/permissions", getTopicPermissions},
		{"POST " + topicPath + "/permissions/{role}", grantTopicPermission},
		{"DELETE " + topicPath + "/permissions/{role}", revokeTopicPermission},

		{"PUT " + sub, createSubscription},
		{"DELETE " + sub, deleteSubscription},
		{"POST " + sub + "/skip_all", skipAll},
		{"POST " + sub + "/resetcursor/{timestamp}", resetCursorToTime},
		{"POST " + sub + "/resetcursor", resetCursor},
		{"GET " + sub + "/position/{n}", peekAt},
		{"GET " + sub + "/peek", peek},

		{"GET " + schemaPath + "/schema", getSchema},
		{"GET " + schemaPath + "/schema/{version}", getSchemaVersion},
		{"GET " + schemaPath + "/schemas", listSchemas},
		{"POST " + schemaPath + "/schema", createSchema},
		{"DELETE " + schemaPath + "/schema", deleteSchema},
		{"POST " + schemaPath + "/compatibility", testSchemaCompatibility},
	}
}

// topicName is the request's tenant/namespace/topic.
func topicName(r *http.Request) string {
	return r.PathValue("tenant") + "/" + r.PathValue("namespace") + "/" + r.PathValue("topic")
}

// namespaceName is the request's tenant/namespace.
func namespaceName(r *http.Request) string {
	return r.PathValue("tenant") + "/" + r.PathValue("namespace")
}
