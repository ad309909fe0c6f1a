package metadata

import (
	"fmt"

	"github.com/strata-mq/strata/internal/ids"
)

// Key layout. This file is the only one that builds etcd keys; every other
// file asks it for them. P is Config.Prefix (default "/strata"); a topic is
// always written in full as tenant/namespace/name; values are JSON unless
// noted.
//
//	P/cluster-id                               plain text: the cluster's instance id, 32 hex digits,
//	                                           created once (InitClusterID) and never changed; each
//	                                           bookie keeps a copy in its data dir and refuses another
//	P/nodes/<node-id>                          NodeInfo; attached to the node's session lease
//	P/bookies/<bookie-id>                      BookieInfo; attached to the bookie's session lease
//	P/ledger-ids                               decimal text: the lowest ledger id not yet reserved.
//	                                           A Store reserves [v, v+LedgerIDBatch) with one CAS.
//	P/ledgers/<ledger-id, 20 digits>           Ledger (zero-padded so a range read lists in id order)
//	P/topics/<tenant>/<namespace>/<name>       Topic; a partitioned topic has one key for itself
//	                                           and one per partition (<name>-partition-<i>)
//	P/managed-ledgers/<tenant>/<namespace>/<name>
//	                                           ManagedLedger: the topic's ledger list
//	P/cursors/<tenant>/<namespace>/<name>/<subscription>
//	                                           Cursor of one durable subscription: mark-delete,
//	                                           acked ranges and batch acks (base64 in the JSON),
//	                                           epoch (absent before epochs: 0)
//	P/ownership/<tenant>/<namespace>/<name>    Ownership; attached to the owner's session lease
//	P/policies/<tenant>/<namespace>            NamespacePolicy
//	P/topic-policies/<tenant>/<namespace>/<name>
//	                                           TopicPolicy (of a topic, not of a partition);
//	                                           deleted with its topic or its namespace
//	P/bookie-drains/<bookie-id>                {"since": unix nanoseconds}: the bookie is being
//	                                           decommissioned (not leased: removed by an undrain)
//	P/tenants/<tenant>                         Tenant: its admin roles
//	P/permissions/<tenant>/<namespace>/<role>  Grant: what the role may do in the namespace;
//	                                           deleted with the namespace
//	P/topic-permissions/<tenant>/<namespace>/<name>/<role>
//	                                           Grant: what the role may do on one topic (every
//	                                           partition); deleted with the topic or its namespace
//	P/schemas/<tenant>/<namespace>/<name>/<version, 20 digits>
//	                                           Schema: one version of a topic's schema (every
//	                                           partition's); deleted with the topic or its namespace
//
// Every record's Version is the key's mod revision. Updates compare it
// (creation compares the create revision with 0), so concurrent writers
// cannot lose each other's updates. Node, bookie and subscription ids must
// not contain '/', so that a prefix read of a directory above returns only
// its direct children.
type keys struct{ prefix string }

const ledgerIDDigits = 20

func (k keys) clusterID() string       { return k.prefix + "/cluster-id" }
func (k keys) node(id string) string   { return k.prefix + "/nodes/" + id }
func (k keys) nodes() string           { return k.prefix + "/nodes/" }
func (k keys) bookie(id string) string { return k.prefix + "/bookies/" + id }
func (k keys) bookies() string         { return k.prefix + "/bookies/" }
func (k keys) drain(id string) string  { return k.drains() + id }
func (k keys) drains() string          { return k.prefix + "/bookie-drains/" }
func (k keys) ledgerIDs() string       { return k.prefix + "/ledger-ids" }
func (k keys) ledgers() string         { return k.prefix + "/ledgers/" }

func (k keys) ledger(id ids.LedgerID) string {
	return fmt.Sprintf("%s/ledgers/%0*d", k.prefix, ledgerIDDigits, uint64(id))
}

func (k keys) topic(name string) string { return k.prefix + "/topics/" + name }

// topics is the directory of every topic, or of a namespace's topics when
// namespace ("tenant/namespace") is not empty.
func (k keys) topics(namespace string) string {
	if namespace == "" {
		return k.prefix + "/topics/"
	}
	return k.prefix + "/topics/" + namespace + "/"
}

func (k keys) managedLedger(topic string) string { return k.prefix + "/managed-ledgers/" + topic }
func (k keys) cursor(topic, sub string) string   { return k.cursors(topic) + sub }
func (k keys) cursors(topic string) string       { return k.prefix + "/cursors/" + topic + "/" }
func (k keys) ownership(topic string) string     { return k.ownerships() + topic }
func (k keys) ownerships() string                { return k.prefix + "/ownership/" }
func (k keys) policy(namespace string) string    { return k.policies() + namespace }
func (k keys) policies() string                  { return k.prefix + "/policies/" }
func (k keys) topicPolicy(topic string) string   { return k.prefix + "/topic-policies/" + topic }

func (k keys) tenant(tenant string) string { return k.prefix + "/tenants/" + tenant }

// topicPermissions is the directory of one topic's grants, or of every
// topic grant of a namespace when topic is "tenant/namespace".
func (k keys) topicPermissions(topic string) string {
	return k.prefix + "/topic-permissions/" + topic + "/"
}

// permissions is the directory of a namespace's grants.
func (k keys) permissions(namespace string) string {
	return k.prefix + "/permissions/" + namespace + "/"
}

// schemas is the directory of one topic's schema versions, or of every
// topic's of a namespace when topic is "tenant/namespace".
func (k keys) schemas(topic string) string { return k.prefix + "/schemas/" + topic + "/" }

func (k keys) schema(topic string, version uint64) string {
	return fmt.Sprintf("%s%0*d", k.schemas(topic), ledgerIDDigits, version)
}

// topicPolicies is the directory of a namespace's topic policies.
func (k keys) topicPolicies(namespace string) string {
	return k.prefix + "/topic-policies/" + namespace + "/"
}
