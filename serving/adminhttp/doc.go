// Package adminhttp serves Strata's REST admin API and its web console on a
// serving node's HTTP port (8080 by default), for what Pulsar users reach
// with curl, pulsar-admin's REST calls or a browser: topics, subscriptions,
// namespaces, permissions and the cluster.
//
// It owns nothing but the translation. Every request becomes the Go SDK's
// Admin call against the node's own client port, carrying the request's
// bearer token, so topic-scoped calls reach the topic's owner, names are
// validated, and authentication and authorization are exactly those of
// gRPC. It keeps one SDK client per distinct token (at most
// Config.MaxClients, least recently used closed first). Browsers'
// cross-site requests that change anything are refused
// (http.CrossOriginProtection), and Config.AllowedHosts bounds the Host
// names answered (DNS rebinding).
//
// # Paths
//
// The paths follow Pulsar's /admin/v2 where Strata has the same operation;
// T below is /admin/v2/persistent/{tenant}/{namespace}/{topic} and S
// /admin/v2/schemas/{tenant}/{namespace}/{topic}. Bodies and
// answers are JSON, in the shapes the strata commands print. Errors answer
// {"code": "TOPIC_NOT_FOUND", "reason": "..."} with the HTTP status of the
// error's code (ErrorStatus).
//
//	GET    /admin/v2/cluster                               nodes and bookies
//	GET    /admin/v2/bookies                               bookie states
//	POST   /admin/v2/bookies/{id}/decommission | recommission
//	GET    /admin/v2/tenants                               tenants with a namespace
//	GET    /admin/v2/tenants/{tenant}                      {"admin_roles": [...]}
//	PUT    /admin/v2/tenants/{tenant}                      set admin roles (POST too)
//	GET    /admin/v2/namespaces/{tenant}                   namespaces
//	DELETE /admin/v2/namespaces/{tenant}/{namespace}
//	GET    /admin/v2/namespaces/{tenant}/{namespace}/policies
//	POST   /admin/v2/namespaces/{tenant}/{namespace}/policies   fields given are set
//	GET    /admin/v2/namespaces/{tenant}/{namespace}/permissions
//	POST   /admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}  ["produce","consume"]
//	DELETE /admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}
//	GET    /admin/v2/persistent/{tenant}/{namespace}       topics
//	GET    /admin/v2/persistent/{tenant}/{namespace}/partitioned   partitioned topics
//	PUT    T                                               create, not partitioned
//	DELETE T[?force=true]                                  delete (every partition)
//	GET    T/partitions                                    {"partitions": N}
//	PUT    T/partitions                                    create with N (body: N)
//	POST   T/partitions                                    raise to N (body: N)
//	GET    T/stats                                         stats (partitioned: per partition)
//	GET    T/subscriptions                                 subscription names
//	PUT    T/subscription/{sub}[?position=earliest]        create a subscription
//	DELETE T/subscription/{sub}
//	POST   T/subscription/{sub}/skip_all                   clear the backlog
//	POST   T/subscription/{sub}/resetcursor/{timestamp}    to a time (ms since the epoch)
//	POST   T/subscription/{sub}/resetcursor                {"message_id"|"time"|"earliest"|"latest", "dry_run"}
//	GET    T/subscription/{sub}/position/{n}               the nth message of the backlog
//	GET    T/subscription/{sub}/peek[?count=N]             the first N messages of the backlog
//	POST   T/terminate                                     last message ids
//	PUT    T/unload
//	PUT    T/compaction
//	PUT    T/offload
//	GET    T/policies                                      {"own": ..., "effective": ...}
//	POST   T/policies                                      replace the topic's own policy
//	DELETE T/policies
//	GET    T/permissions
//	POST   T/permissions/{role}                            ["produce","consume"]
//	DELETE T/permissions/{role}
//	GET    S/schema                                        the latest schema version
//	GET    S/schema/{version}                              one version
//	GET    S/schemas                                       every version
//	POST   S/schema                                        add a version: {"type", "definition", "properties"}
//	DELETE S/schema                                        leave the topic without a schema
//	POST   S/compatibility                                 could a schema be added?
//	GET    /console                                        the web console (HTML)
package adminhttp
